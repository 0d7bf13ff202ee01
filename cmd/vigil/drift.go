package main

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigilml/vigil/agent/client"
	"github.com/vigilml/vigil/agent/drift"
	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// driftMethods are the detector plugins `vigil drift compare` can run, by
// method name; each is served by the plugin binary of the same name.
var driftMethods = []string{"ks", "psi", "chisquare", "wasserstein", "jensenshannon"}

func runDrift(args []string, stdout, stderr io.Writer) int {
	const help = `
Drift detection.

  vigil drift MODEL [-version V] [-format table|json] [-evaluate]
            a running agent's latest drift evaluation of MODEL
  vigil drift compare [flags]
            compare a reference CSV with a current CSV, column by column,
            with the detector plugins (no running agent needed)`
	if code, done := groupHelp(args, "vigil drift MODEL [flags] | vigil drift compare [flags]", help, stdout, stderr); done {
		return code
	}
	switch args[0] {
	case "compare":
		return driftCompare(args[1:], stdout, stderr)
	}
	return driftModel(args, stdout, stderr)
}

// optFloat is a float flag that remembers whether it was set.
type optFloat struct {
	v   float64
	set bool
}

func (o *optFloat) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatFloat(o.v, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("want a finite number")
	}
	o.v, o.set = v, true
	return nil
}

// DriftResult is one line of `vigil drift compare -format json`.
type DriftResult struct {
	Column    string   `json:"column"`
	Method    string   `json:"method"`
	Statistic float64  `json:"statistic"`
	PValue    *float64 `json:"p_value"`
	Threshold float64  `json:"threshold"`
	Drifted   bool     `json:"drifted"`
}

func driftCompare(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("drift compare", "drift compare -reference FILE -current FILE [flags]", `
Compare the distribution of each column of a current CSV file with a
reference CSV file, using Vigil's detector plugins as separate processes
(the same binaries the agent runs). Both files need a header row; every
reference column is compared unless -column picks some. A column is
numeric when every non-empty cell in both files is a number, categorical
otherwise; empty cells are missing values and skipped.

Methods: ks, psi, chisquare, wasserstein, jensenshannon, or auto: ks for a
numeric column when both samples have at most 10,000 values, psi when
larger; chisquare for a categorical column.

A third party's detector plugin runs with -detector NAME (and -method, by
default NAME), only when its SHA-256 is pinned, as the agent requires: by
the catalog.json of its plugin directory, by -sha256, or, with -registered,
by what the running agent recorded at vigil plugins register.

Exit status: 0 when no column drifted, 1 when at least one did, 2 on
error. See docs/drift.md.`, stdout, stderr)
	method := fs.String("method", "auto", "detector `method`: ks, psi, chisquare, wasserstein, jensenshannon or auto; with -detector, one the plugin offers (default: its name)")
	detector := fs.String("detector", "", "detector plugin `name` to run, a third party's: trusted by the SHA-256 that its directory's catalog.json or -sha256 pins (default: the built-in plugin named like the method)")
	pin := fs.String("sha256", "", "SHA-256 (`hex`) to trust the -detector binary by when no catalog.json lists it: PLUGIN_DIR/NAME, or else the file with this hash")
	registered := fs.Bool("registered", false, "trust the -detector binary as the running agent does: by the path and SHA-256 that vigil plugins register recorded for it (asks the agent at -http-addr)")
	agentWait := 10 * time.Second
	newClient := agentFlags(fs, &agentWait)
	refPath := fs.String("reference", "", "reference CSV `file` (required)")
	curPath := fs.String("current", "", "current CSV `file` (required)")
	var columns, params multiFlag
	fs.Var(&columns, "column", "compare only this column `name` (repeatable; default: every reference column)")
	fs.Var(&params, "param", "method parameter `key=value`, e.g. bins=20 or normalize=false (repeatable; not with auto)")
	var threshold optFloat
	fs.Var(&threshold, "threshold", "override the method's default `threshold` (not with auto)")
	format := fs.String("format", "table", "output `format`: table, text (the same) or json")
	pluginDir := fs.String("plugin-dir", "", "`directory` of the detector plugins (default: plugins/ beside the vigil binary, then /usr/lib/vigil/plugins; for -detector also /etc/vigil/plugins.d)")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this `duration`")
	if code, done := parseFlags(fs, args, stdout); done {
		return code
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "vigil drift compare: "+format+"\n", a...)
		return 2
	}
	if len(fs.Args()) > 0 {
		return fail("unexpected argument %q", fs.Args()[0])
	}
	if *refPath == "" || *curPath == "" {
		return fail("-reference and -current are required")
	}
	switch {
	case *pin != "" && *detector == "":
		return fail("-sha256 pins the plugin that -detector names; give -detector too")
	case *registered && *detector == "":
		return fail("-registered trusts the plugin that -detector names; give -detector too")
	case *registered && *pin != "":
		return fail("-registered and -sha256 both say which binary to trust; give one")
	case *pin != "" && !sha256RE.MatchString(strings.ToLower(*pin)):
		return fail("-sha256 %q: want 64 hexadecimal digits", *pin)
	case *detector != "" && !pluginNameRE.MatchString(*detector):
		return fail("-detector %q: want a plugin name (1 to 63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)", *detector)
	case *detector != "" && *method == "auto":
		*method = *detector // the agent's default: the method named like the plugin
	case *detector == "" && *method != "auto" && !contains(driftMethods, *method):
		return fail("-method %q: want one of %s or auto; a third party's method needs -detector (its plugin)", *method, strings.Join(driftMethods, ", "))
	}
	if *format == "text" { // the other commands' name for it
		*format = "table"
	}
	if *format != "table" && *format != "json" {
		return fail("-format %q: want table or json", *format)
	}
	if *timeout <= 0 {
		return fail("-timeout %s: want a positive duration, such as 5m", *timeout)
	}
	if *method == "auto" && (len(params) > 0 || threshold.set) {
		return fail("-param and -threshold need an explicit -method: auto may pick a different method per column")
	}
	pmap, err := parseParams(params)
	if err != nil {
		return fail("%v", err)
	}

	ref, err := readCSV(*refPath)
	if err != nil {
		return fail("%v", err)
	}
	cur, err := readCSV(*curPath)
	if err != nil {
		return fail("%v", err)
	}
	if len(columns) == 0 {
		columns = ref.header
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	runner := &detectorRunner{dir: *pluginDir, pin: strings.ToLower(*pin), stderr: stderr}
	if *registered {
		runner.agent = newClient
	}
	defer runner.close()

	var results []DriftResult
	drifted := false
	for _, col := range columns {
		req, warning, err := columnRequest(col, ref, cur)
		if err != nil {
			return fail("%v", err)
		}
		if warning != "" {
			fmt.Fprintf(stderr, "vigil drift compare: warning: %s\n", warning)
		}
		m := *method
		if m == "auto" {
			m = autoMethod(req)
		}
		req.Method, req.Feature, req.Params = m, col, pmap
		if threshold.set {
			t := threshold.v
			req.Threshold = &t
		}
		plugin := m
		if *detector != "" {
			plugin = *detector
		}
		c, err := runner.client(plugin)
		if err != nil {
			return fail("%v", err)
		}
		if err := runner.checkMethod(ctx, plugin, req); err != nil {
			return fail("%v", err)
		}
		resp, err := c.Detect(ctx, req)
		if err != nil {
			return fail("column %q, method %s: %v", col, m, err)
		}
		r := DriftResult{Column: col, Method: resp.GetMethod(), Statistic: resp.GetStatistic(), Threshold: resp.GetThreshold(), Drifted: resp.GetDrifted()}
		if resp.PValue != nil {
			p := resp.GetPValue()
			r.PValue = &p
		}
		drifted = drifted || r.Drifted
		results = append(results, r)
	}

	if *format == "json" {
		b, _ := json.MarshalIndent(results, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "COLUMN\tMETHOD\tSTATISTIC\tP-VALUE\tTHRESHOLD\tDRIFTED")
		for _, r := range results {
			p := "-"
			if r.PValue != nil {
				p = fmt.Sprintf("%.4g", *r.PValue)
			}
			d := "no"
			if r.Drifted {
				d = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.6g\t%s\t%g\t%s\n", r.Column, r.Method, r.Statistic, p, r.Threshold, d)
		}
		tw.Flush()
	}
	if drifted {
		return 1
	}
	return 0
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// parseParams turns key=value flags into plugin parameters: true and false
// are booleans, numbers are numbers, anything else a string.
func parseParams(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-param %q: want key=value", kv)
		}
		switch {
		case v == "true" || v == "false":
			out[k] = v == "true"
		default:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = f
			} else {
				out[k] = v
			}
		}
	}
	return out, nil
}

// autoMethod is the documented automatic choice, the agent's own rule.
func autoMethod(req *sdk.DetectRequest) string {
	return drift.AutoMethod(req.DataType == pb.DataType_CATEGORICAL,
		len(req.ReferenceNumeric)+len(req.ReferenceCategorical), len(req.CurrentNumeric)+len(req.CurrentCategorical))
}

// csvFile is a parsed CSV file: the header and, per row, the cells and the
// line the row starts on.
type csvFile struct {
	path   string
	header []string
	rows   [][]string
	lines  []int
}

func readCSV(path string) (*csvFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = false
	out := &csvFile{path: path}
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty file; want a header row and data rows", path)
	}
	if err != nil {
		return nil, csvError(path, err)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if h == "" {
			return nil, fmt.Errorf("%s:1: column %d has an empty name", path, i+1)
		}
		if seen[h] {
			return nil, fmt.Errorf("%s:1: column %q appears twice", path, h)
		}
		seen[h] = true
		header[i] = h
	}
	out.header = header
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(path, err)
		}
		line, _ := r.FieldPos(0)
		out.rows = append(out.rows, rec)
		out.lines = append(out.lines, line)
	}
	if len(out.rows) == 0 {
		return nil, fmt.Errorf("%s: no data rows after the header", path)
	}
	return out, nil
}

func csvError(path string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Errorf("%s:%d: row has a different number of fields from the header", path, pe.StartLine)
		}
		return fmt.Errorf("%s:%d: %v", path, pe.Line, pe.Err)
	}
	return fmt.Errorf("%s: %w", path, err)
}

func (f *csvFile) column(name string) (int, error) {
	for i, h := range f.header {
		if h == name {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s has no column %q (columns: %s)", f.path, name, strings.Join(f.header, ", "))
}

// columnRequest builds the detect request for one column, deciding its
// data type from both files. warning is not empty when the column is
// categorical although most of its cells are numbers: a missing-value
// marker such as "NA" then turns a numeric column into categories, and
// chisquare pools its many distinct values into one column and reports no
// drift, so the user is told which cell did it.
func columnRequest(name string, ref, cur *csvFile) (req *sdk.DetectRequest, warning string, err error) {
	ri, err := ref.column(name)
	if err != nil {
		return nil, "", err
	}
	ci, err := cur.column(name)
	if err != nil {
		return nil, "", err
	}
	numeric := true
	var cells, numbers int
	var firstText string
	for _, side := range []struct {
		f *csvFile
		i int
	}{{ref, ri}, {cur, ci}} {
		for k, row := range side.f.rows {
			cell := strings.TrimSpace(row[side.i])
			if cell == "" {
				continue
			}
			cells++
			if _, ok := parseCSVNumber(cell); ok {
				numbers++
				continue
			}
			if numeric {
				firstText = fmt.Sprintf("%s:%d holds %q", side.f.path, side.f.lines[k], cell)
			}
			numeric = false
		}
	}
	if !numeric && 2*numbers > cells {
		warning = fmt.Sprintf("column %q is categorical (every value a category) because %s, not a number, though %d of its %d values are numbers; if such cells are missing values, leave them empty", name, firstText, numbers, cells)
	}
	req = &sdk.DetectRequest{DataType: pb.DataType_CATEGORICAL}
	if numeric {
		req.DataType = pb.DataType_NUMERIC
	}
	for _, side := range []struct {
		f    *csvFile
		i    int
		nums *[]float64
		cats *[]string
	}{{ref, ri, &req.ReferenceNumeric, &req.ReferenceCategorical}, {cur, ci, &req.CurrentNumeric, &req.CurrentCategorical}} {
		for k, row := range side.f.rows {
			cell := strings.TrimSpace(row[side.i])
			if cell == "" {
				continue
			}
			if !numeric {
				*side.cats = append(*side.cats, cell)
				continue
			}
			v, _ := parseCSVNumber(cell)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, "", fmt.Errorf("%s:%d: column %q: %q is not a finite number", side.f.path, side.f.lines[k], name, cell)
			}
			*side.nums = append(*side.nums, v)
		}
		if len(*side.nums)+len(*side.cats) == 0 {
			return nil, "", fmt.Errorf("%s: column %q has no values", side.f.path, name)
		}
	}
	return req, warning, nil
}

// parseCSVNumber reads a numeric cell with strconv.ParseFloat. A number
// too large for a float64 (1e400) reads as ±Inf, as numpy and pandas read
// it, so that the column stays numeric and the value is reported as not
// finite, instead of making the whole column categorical.
func parseCSVNumber(cell string) (float64, bool) {
	v, err := strconv.ParseFloat(cell, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

var (
	sha256RE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	pluginNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
)

// detectorRunner starts detector plugins on demand, one process each.
type detectorRunner struct {
	dir string
	// pin is -sha256: the hash a third party's binary must have when no
	// catalog.json lists it.
	pin string
	// agent, for -registered, asks the running agent for a plugin's
	// registration.
	agent   func() (*client.Client, error)
	stderr  io.Writer
	clients map[string]*plugin.Client
	dets    map[string]sdk.DetectorClient
	descs   map[string]*pb.DescribeResponse
}

// launch is a plugin binary to start: its path, the SHA-256 it is trusted
// by, and the arguments and environment its catalog entry gives.
type launch struct {
	path      string
	sum       []byte
	args, env []string
}

// pluginDirs are where the plugins are looked for, in order.
func (r *detectorRunner) pluginDirs() []string {
	if r.dir != "" {
		return []string{r.dir}
	}
	var dirs []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dirs = append(dirs, filepath.Join(filepath.Dir(exe), "plugins"))
	}
	return append(dirs, "/usr/lib/vigil/plugins")
}

// find returns how to start the plugin called name: a built-in one by its
// file name (findBuiltin), anyone else's only by a pinned SHA-256
// (findTrusted).
func (r *detectorRunner) find(name string) (launch, error) {
	if !contains(driftMethods, name) {
		return r.findTrusted(name)
	}
	path, sum, err := r.findBuiltin(name)
	if err == nil && r.pin != "" && hex.EncodeToString(sum) != r.pin {
		return launch{}, fmt.Errorf("%s has SHA-256 %s, not the %s that -sha256 pins; refusing to run it", path, hex.EncodeToString(sum), r.pin)
	}
	return launch{path: path, sum: sum}, err
}

// trustedDirs are where a third party's detector is looked for: the agent's
// default plugin directories, after plugins/ beside the vigil binary.
func (r *detectorRunner) trustedDirs() []string {
	if r.dir != "" {
		return []string{r.dir}
	}
	dirs := r.pluginDirs()
	for _, d := range pluginhost.DefaultDirs {
		if !contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// findTrusted finds a third party's detector plugin as the agent trusts
// one: by the SHA-256 that a catalog.json in its directory records for
// its name, or else by the SHA-256 that -sha256 pins, for the file
// DIR/NAME or, when there is none, the file with that hash.
// The agent's own catalog (vigil plugins register) lives in its data
// directory, which a running agent holds locked: -registered asks the
// agent instead (findRegistered), or -sha256 stands in for it.
func (r *detectorRunner) findTrusted(name string) (launch, error) {
	if r.agent != nil {
		return r.findRegistered(name)
	}
	dirs := r.trustedDirs()
	unlisted := "" // a file of that name that no catalog lists
	for _, d := range dirs {
		entries, err := pluginhost.ReadPackageCatalog(d)
		if err != nil {
			return launch{}, err
		}
		for _, e := range entries {
			if e.Name != name {
				continue
			}
			cat := filepath.Join(d, "catalog.json")
			if e.Kind != string(sdk.KindDetector) {
				return launch{}, fmt.Errorf("%s lists %q as a %s plugin, not a detector", cat, name, e.Kind)
			}
			sum, err := fileSum(e.Path)
			if err != nil {
				return launch{}, err
			}
			if got := hex.EncodeToString(sum); got != e.SHA256 {
				return launch{}, fmt.Errorf("%s does not match the SHA-256 in %s (it is %s, the catalog has %s); refusing to run it", e.Path, cat, got, e.SHA256)
			}
			if r.pin != "" && r.pin != e.SHA256 {
				return launch{}, fmt.Errorf("-sha256 %s differs from the SHA-256 that %s records for %q (%s); refusing to run it", r.pin, cat, name, e.SHA256)
			}
			return launch{path: e.Path, sum: sum, args: e.Args, env: e.Env}, nil
		}
		if unlisted == "" {
			p := filepath.Join(d, name)
			if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
				unlisted = p
			}
		}
	}
	switch {
	case unlisted == "" && r.pin == "":
		return launch{}, fmt.Errorf("detector plugin %q not found: no catalog.json in %s lists it and no file there has its name; point -plugin-dir at its directory, or pass -sha256 to find its binary by its hash", name, strings.Join(dirs, ", "))
	case r.pin == "":
		return launch{}, fmt.Errorf("detector plugin %q (%s) is not trusted: no catalog.json in its directory lists it, and vigil drift compare runs a third party's plugin only by a pinned SHA-256, as the agent does. Pass -registered to trust it as the running agent does after `vigil plugins register`, or -sha256 with the hash you trust (`sha256sum %s` computes it), or compare inside the agent (models.<model>.features.<feature>.detector: %s)", name, unlisted, unlisted, name)
	case unlisted != "":
		sum, err := fileSum(unlisted)
		if err != nil {
			return launch{}, err
		}
		if got := hex.EncodeToString(sum); got != r.pin {
			return launch{}, fmt.Errorf("%s has SHA-256 %s, not the %s that -sha256 pins; refusing to run it", unlisted, got, r.pin)
		}
		return launch{path: unlisted, sum: sum}, nil
	}
	// A registered plugin's file is often named otherwise (a registration
	// may name it): the pinned hash finds it in the plugin directories.
	for _, d := range dirs {
		des, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, de := range des {
			if !de.Type().IsRegular() || de.Name() == "catalog.json" {
				continue
			}
			p := filepath.Join(d, de.Name())
			if sum, err := fileSum(p); err == nil && hex.EncodeToString(sum) == r.pin {
				return launch{path: p, sum: sum}, nil
			}
		}
	}
	return launch{}, fmt.Errorf("detector plugin %q not found: no catalog.json in %s lists it, and no file there is named %s or has the SHA-256 %s that -sha256 pins", name, strings.Join(dirs, ", "), name, r.pin)
}

// findRegistered finds a third party's detector plugin as the running
// agent trusts it after `vigil plugins register`: at the path and by the
// SHA-256 that its catalog records. The catalog itself (plugins.db in the
// agent's data directory) is locked while the agent runs, so the agent is
// asked.
func (r *detectorRunner) findRegistered(name string) (launch, error) {
	c, err := r.agent()
	if err != nil {
		return launch{}, err
	}
	var list struct {
		Plugins []pluginhost.Status `json:"plugins"`
	}
	if _, err := c.Get(context.Background(), "/v1/plugins", &list); err != nil {
		return launch{}, fmt.Errorf("-registered: asking the agent for its plugins: %w", err)
	}
	for _, p := range list.Plugins {
		if p.Name != name {
			continue
		}
		if p.Source != "registered" {
			return launch{}, fmt.Errorf("-registered: the agent at %s does not trust plugin %q by a registration (its trust: %s); register it with `vigil plugins register PATH`, or trust it by its catalog.json or -sha256", c.Addr(), name, sourceOr(p.Source, "none, "+string(p.State)))
		}
		if p.Kind != "" && p.Kind != string(sdk.KindDetector) {
			return launch{}, fmt.Errorf("-registered: plugin %q is registered as a %s plugin, not a detector", name, p.Kind)
		}
		sum, err := fileSum(p.Path)
		if err != nil {
			return launch{}, fmt.Errorf("-registered: plugin %q: %w", name, err)
		}
		if got := hex.EncodeToString(sum); got != p.SHA256 {
			return launch{}, fmt.Errorf("%s has SHA-256 %s, not the %s registered for %q with the agent; refusing to run it (`vigil plugins register %s` trusts the new binary)", p.Path, got, p.SHA256, name, p.Path)
		}
		fmt.Fprintf(r.stderr, "vigil drift compare: running %s, registered as %q with the agent at %s (SHA-256 %s)\n", p.Path, name, c.Addr(), p.SHA256[:12])
		return launch{path: p.Path, sum: sum}, nil
	}
	return launch{}, fmt.Errorf("-registered: the agent at %s has no plugin named %q (`vigil plugins list` shows those it has, an unregistered binary by its file name; `vigil plugins register PATH` trusts one)", c.Addr(), name)
}

func sourceOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func fileSum(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	return sum[:], nil
}

// checkMethod refuses, before any value is sent, a method the plugin does
// not offer and a column of a data type the method does not declare, as
// the agent does; a method that declares no types is left to the plugin.
func (r *detectorRunner) checkMethod(ctx context.Context, name string, req *sdk.DetectRequest) error {
	desc, ok := r.descs[name]
	if !ok {
		var err error
		if desc, err = r.dets[name].Describe(ctx); err != nil {
			return fmt.Errorf("detector %q: Describe: %v", name, err)
		}
		if r.descs == nil {
			r.descs = map[string]*pb.DescribeResponse{}
		}
		r.descs[name] = desc
	}
	var offered []string
	for _, m := range desc.GetMethods() {
		offered = append(offered, m.GetName())
		if m.GetName() != req.Method {
			continue
		}
		var takes []string
		for _, t := range m.GetDataTypes() {
			if t == req.DataType {
				return nil
			}
			takes = append(takes, strings.ToLower(t.String()))
		}
		if len(takes) == 0 {
			return nil
		}
		kind := strings.ToLower(req.DataType.String())
		return fmt.Errorf("column %q is %s, but detector %q (method %s) takes %s data only; compare it with a method that takes %s data (-column picks the columns)", req.Feature, kind, name, req.Method, strings.Join(takes, " or "), kind)
	}
	return fmt.Errorf("detector %q offers no method %q (it offers: %s); name one with -method", name, req.Method, strings.Join(offered, ", "))
}

// findBuiltin returns the plugin binary for name and its SHA-256. Where the
// directory has a package catalog.json naming the plugin, the binary must
// match the hash recorded there.
func (r *detectorRunner) findBuiltin(name string) (string, []byte, error) {
	dirs := r.pluginDirs()
	for _, d := range dirs {
		p := filepath.Join(d, name)
		info, err := os.Stat(p)
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return "", nil, err
		}
		sum := sha256.Sum256(b)
		if cat, err := os.ReadFile(filepath.Join(d, "catalog.json")); err == nil {
			var pc pluginhost.PackageCatalog
			if err := json.Unmarshal(cat, &pc); err != nil {
				return "", nil, fmt.Errorf("%s: %v", filepath.Join(d, "catalog.json"), err)
			}
			for _, e := range pc.Plugins {
				if e.File == name && e.SHA256 != hex.EncodeToString(sum[:]) {
					return "", nil, fmt.Errorf("%s does not match the SHA-256 in %s; refusing to run it", p, filepath.Join(d, "catalog.json"))
				}
			}
		}
		return p, sum[:], nil
	}
	return "", nil, fmt.Errorf("detector plugin %q not found in %s (build it with `make build`, or point -plugin-dir at the plugins)", name, strings.Join(dirs, ", "))
}

// client returns a connection to the detector plugin called name.
func (r *detectorRunner) client(name string) (sdk.DetectorClient, error) {
	if c, ok := r.dets[name]; ok {
		return c, nil
	}
	l, err := r.find(name)
	if err != nil {
		return nil, err
	}
	path, sum := l.path, l.sum
	cmd := exec.Command(path, l.args...)
	cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}, l.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		VersionedPlugins: sdk.PluginMap(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AutoMTLS:         true,
		StartTimeout:     20 * time.Second,
		Stderr:           io.Discard,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "plugin", Level: hclog.Error, Output: r.stderr}),
		GRPCDialOptions:  sdk.ClientDialOptions(),
	})
	if r.clients == nil {
		r.clients, r.dets = map[string]*plugin.Client{}, map[string]sdk.DetectorClient{}
	}
	r.clients[name] = client
	rpc, err := client.Client()
	if err != nil {
		return nil, fmt.Errorf("start %s: %v", path, err)
	}
	raw, err := rpc.Dispense(string(sdk.KindDetector))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	det, ok := raw.(sdk.DetectorClient)
	if !ok {
		return nil, fmt.Errorf("%s is not a detector plugin", path)
	}
	info, err := det.Info(context.Background())
	if err != nil {
		return nil, fmt.Errorf("%s: Info: %v", path, err)
	}
	if info.GetKind() != string(sdk.KindDetector) {
		return nil, fmt.Errorf("%s is a %s plugin, not a detector", path, info.GetKind())
	}
	r.dets[name] = det
	return det, nil
}

func (r *detectorRunner) close() {
	for _, c := range r.clients {
		c.Kill()
	}
}

var _ flag.Value = (*optFloat)(nil)
var _ flag.Value = (*multiFlag)(nil)
