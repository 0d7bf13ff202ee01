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
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

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

Exit status: 0 when no column drifted, 1 when at least one did, 2 on
error. See docs/drift.md.`, stdout, stderr)
	method := fs.String("method", "auto", "detector `method`: ks, psi, chisquare, wasserstein, jensenshannon or auto")
	refPath := fs.String("reference", "", "reference CSV `file` (required)")
	curPath := fs.String("current", "", "current CSV `file` (required)")
	var columns, params multiFlag
	fs.Var(&columns, "column", "compare only this column `name` (repeatable; default: every reference column)")
	fs.Var(&params, "param", "method parameter `key=value`, e.g. bins=20 or normalize=false (repeatable; not with auto)")
	var threshold optFloat
	fs.Var(&threshold, "threshold", "override the method's default `threshold` (not with auto)")
	format := fs.String("format", "table", "output `format`: table, text (the same) or json")
	pluginDir := fs.String("plugin-dir", "", "`directory` of the detector plugins (default: plugins/ beside the vigil binary, then /usr/lib/vigil/plugins)")
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
	if *method != "auto" && !contains(driftMethods, *method) {
		return fail("-method %q: want one of %s or auto", *method, strings.Join(driftMethods, ", "))
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
	runner := &detectorRunner{dir: *pluginDir, stderr: stderr}
	defer runner.close()

	var results []DriftResult
	drifted := false
	for _, col := range columns {
		req, err := columnRequest(col, ref, cur)
		if err != nil {
			return fail("%v", err)
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
		c, err := runner.client(m)
		if err != nil {
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
// data type from both files.
func columnRequest(name string, ref, cur *csvFile) (*sdk.DetectRequest, error) {
	ri, err := ref.column(name)
	if err != nil {
		return nil, err
	}
	ci, err := cur.column(name)
	if err != nil {
		return nil, err
	}
	numeric := true
	for _, side := range []struct {
		f *csvFile
		i int
	}{{ref, ri}, {cur, ci}} {
		for _, row := range side.f.rows {
			cell := strings.TrimSpace(row[side.i])
			if cell == "" {
				continue
			}
			if _, err := strconv.ParseFloat(cell, 64); err != nil {
				numeric = false
			}
		}
	}
	req := &sdk.DetectRequest{DataType: pb.DataType_CATEGORICAL}
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
			v, _ := strconv.ParseFloat(cell, 64)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("%s:%d: column %q: %q is not a finite number", side.f.path, side.f.lines[k], name, cell)
			}
			*side.nums = append(*side.nums, v)
		}
		if len(*side.nums)+len(*side.cats) == 0 {
			return nil, fmt.Errorf("%s: column %q has no values", side.f.path, name)
		}
	}
	return req, nil
}

// detectorRunner starts detector plugins on demand, one process each.
type detectorRunner struct {
	dir     string
	stderr  io.Writer
	clients map[string]*plugin.Client
	dets    map[string]sdk.DetectorClient
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

// find returns the plugin binary for name and its SHA-256. Where the
// directory has a package catalog.json naming the plugin, the binary must
// match the hash recorded there.
func (r *detectorRunner) find(name string) (string, []byte, error) {
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

// client returns a connection to the plugin serving method.
func (r *detectorRunner) client(method string) (sdk.DetectorClient, error) {
	if c, ok := r.dets[method]; ok {
		return c, nil
	}
	path, sum, err := r.find(method)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}
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
	r.clients[method] = client
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
	r.dets[method] = det
	return det, nil
}

func (r *detectorRunner) close() {
	for _, c := range r.clients {
		c.Kill()
	}
}

var _ flag.Value = (*optFloat)(nil)
var _ flag.Value = (*multiFlag)(nil)
