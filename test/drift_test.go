package test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var detectorPlugins = []string{"ks", "psi", "chisquare", "wasserstein", "jensenshannon"}

// installDrift lays out a build like `make build` does: a copy of the
// vigil binary in DIR/bin with the real detector plugins in
// DIR/bin/plugins. It returns the vigil path.
func installDrift(t *testing.T) string {
	t.Helper()
	binDir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(filepath.Join(binDir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(vigilBin)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(binDir, "vigil")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	buildDetectorsOnce.Do(func() {
		// Built once per test run, beside the vigil binary TestMain built
		// (and removes).
		dir := filepath.Join(filepath.Dir(vigilBin), "detectors")
		args := []string{"build", "-o", dir + string(filepath.Separator)}
		for _, p := range detectorPlugins {
			args = append(args, "../plugins/detectors/"+p)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			buildDetectorsErr = fmt.Errorf("build detector plugins: %v\n%s", err, out)
			return
		}
		builtDetectors = dir
	})
	if buildDetectorsErr != nil {
		t.Fatal(buildDetectorsErr)
	}
	for _, p := range detectorPlugins {
		b, err := os.ReadFile(filepath.Join(builtDetectors, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(binDir, "plugins", p), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return exe
}

var (
	buildDetectorsOnce sync.Once
	buildDetectorsErr  error
	builtDetectors     string
)

// runExit runs a command and returns its combined output and exit code.
func runExit(t *testing.T, exe string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(exe, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &ee):
		return stdout.String(), stderr.String(), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v", exe, args, err)
	return "", "", -1
}

// writeDriftCSVs writes a reference and a current file: x shifts, y does
// not, colour changes its mix, z has ties and stays put.
func writeDriftCSVs(t *testing.T, dir string) (string, string) {
	t.Helper()
	r := rand.New(rand.NewPCG(42, 1))
	colours := []string{"red", "green", "blue", "black"}
	write := func(name string, n int, shift float64, mix []float64) string {
		var b strings.Builder
		b.WriteString("x,y,colour,z\n")
		for i := 0; i < n; i++ {
			u, k := r.Float64(), 0
			for k < len(mix)-1 && u > mix[k] {
				u -= mix[k]
				k++
			}
			fmt.Fprintf(&b, "%.6f,%.6f,%s,%d\n", r.NormFloat64()+shift, r.NormFloat64()*2+5, colours[k], r.IntN(6))
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("reference.csv", 3000, 0, []float64{0.25, 0.25, 0.25, 0.25}),
		write("current.csv", 2500, 0.3, []float64{0.4, 0.2, 0.2, 0.2})
}

type driftRow struct {
	Column    string   `json:"column"`
	Method    string   `json:"method"`
	Statistic float64  `json:"statistic"`
	PValue    *float64 `json:"p_value"`
	Threshold float64  `json:"threshold"`
	Drifted   bool     `json:"drifted"`
}

func TestDriftCompareCLI(t *testing.T) {
	exe := installDrift(t)
	dir := t.TempDir()
	ref, cur := writeDriftCSVs(t, dir)

	// auto: KS for the numeric columns (<= 10,000 values), chi-square for
	// the categorical one; exit 1 since some column drifted.
	out, errOut, code := runExit(t, exe, "drift", "compare", "--reference", ref, "--current", cur, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (drift)\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("json output: %v\n%s", err, out)
	}
	for _, obj := range raw {
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if strings.Join(keys, ",") != "column,drifted,method,p_value,statistic,threshold" {
			t.Errorf("json keys %v", keys)
		}
	}
	var rows []driftRow
	json.Unmarshal([]byte(out), &rows)
	want := map[string]struct {
		method  string
		drifted bool
	}{"x": {"ks", true}, "y": {"ks", false}, "colour": {"chisquare", true}, "z": {"ks", false}}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %s", len(rows), out)
	}
	for _, r := range rows {
		w := want[r.Column]
		if r.Method != w.method || r.Drifted != w.drifted || r.PValue == nil || r.Threshold != 0.05 {
			t.Errorf("column %s: %+v, want method %s drifted %v", r.Column, r, w.method, w.drifted)
		}
	}

	// The same numbers from scipy on the same files.
	script := `
import csv, json, sys
from scipy import stats
import numpy as np
def col(path, name):
    with open(path) as f:
        return [r[name] for r in csv.DictReader(f)]
ref, cur = sys.argv[1], sys.argv[2]
out = {}
for c in ("x", "y", "z"):
    r = stats.ks_2samp([float(v) for v in col(ref, c)], [float(v) for v in col(cur, c)])
    out[c] = [float(r.statistic), float(r.pvalue)]
a, b = col(ref, "colour"), col(cur, "colour")
names = sorted(set(a) | set(b))
res = stats.chi2_contingency(np.array([[a.count(n) for n in names], [b.count(n) for n in names]]))
out["colour"] = [float(res[0]), float(res[1])]
json.dump(out, sys.stdout)
`
	py, err := exec.Command("/usr/bin/python3", "-c", script, ref, cur).CombinedOutput()
	if err != nil {
		t.Fatalf("scipy (Debian python3-scipy, run `make test-deps` as root): %v\n%s", err, py)
	}
	var truth map[string][2]float64
	if err := json.Unmarshal(py, &truth); err != nil {
		t.Fatalf("%v: %s", err, py)
	}
	for _, r := range rows {
		w := truth[r.Column]
		if math.Abs(r.Statistic-w[0]) > 1e-9*math.Abs(w[0]) || math.Abs(*r.PValue-w[1]) > 1e-9*w[1] {
			t.Errorf("column %s: statistic %.17g p %.17g; scipy %.17g %.17g", r.Column, r.Statistic, *r.PValue, w[0], w[1])
		}
	}

	// One undrifted column: exit 0; the table names the columns.
	out, errOut, code = runExit(t, exe, "drift", "compare", "-reference", ref, "-current", cur, "-column", "y")
	if code != 0 || !strings.Contains(out, "COLUMN") || !strings.Contains(out, "y ") || strings.Contains(out, "colour") {
		t.Errorf("-column y: exit %d\n%s%s", code, out, errOut)
	}

	// Every method through its plugin, with parameters and thresholds.
	for _, args := range [][]string{
		{"-method", "psi", "-column", "x", "-param", "bins=5", "-threshold", "0.01"},
		{"-method", "psi", "-column", "colour"},
		{"-method", "wasserstein", "-column", "x"},
		{"-method", "wasserstein", "-column", "y", "-param", "normalize=false", "-threshold", "1"},
		{"-method", "jensenshannon", "-column", "colour", "-threshold", "0.05"},
		{"-method", "jensenshannon", "-column", "z"},
		{"-method", "chisquare", "-column", "colour"},
	} {
		out, errOut, code := runExit(t, exe, append([]string{"drift", "compare", "-reference", ref, "-current", cur, "-format", "json"}, args...)...)
		var rs []driftRow
		if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
			t.Errorf("%v: exit %d, output %q %s", args, code, out, errOut)
			continue
		}
		r := rs[0]
		wantCode := 0
		if r.Drifted {
			wantCode = 1
		}
		if r.Method != args[1] || code != wantCode || (r.PValue != nil) != (args[1] == "chisquare") {
			t.Errorf("%v: exit %d, %+v", args, code, r)
		}
		if args[1] == "psi" && args[3] == "x" && (r.Threshold != 0.01 || !r.Drifted) {
			t.Errorf("psi on the shifted column: %+v", r)
		}
	}
}

func TestDriftCompareErrors(t *testing.T) {
	exe := installDrift(t)
	dir := t.TempDir()
	ref, cur := writeDriftCSVs(t, dir)
	badRow := filepath.Join(dir, "bad-row.csv")
	os.WriteFile(badRow, []byte("x,y,colour,z\n1,2,red,3\n4,5,blue\n"), 0o644)
	nan := filepath.Join(dir, "nan.csv")
	os.WriteFile(nan, []byte("x,y,colour,z\n1,2,red,3\n4,NaN,blue,1\n"), 0o644)
	other := filepath.Join(dir, "other.csv")
	os.WriteFile(other, []byte("a,b\n1,2\n"), 0o644)
	empty := t.TempDir()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-reference", ref, "-current", badRow}, badRow + ":3:"},
		{[]string{"-reference", ref, "-current", nan, "-column", "y"}, nan + ":3: column \"y\": \"NaN\" is not a finite number"},
		{[]string{"-reference", ref, "-current", other}, "has no column \"x\""},
		{[]string{"-reference", ref, "-current", cur, "-method", "ks", "-column", "colour"}, `column "colour" is categorical, but detector "ks" (method ks) takes numeric data only`},
		{[]string{"-reference", ref, "-current", cur, "-method", "psi", "-param", "bins=1"}, "params.bins"},
		{[]string{"-reference", ref, "-current", cur, "-method", "nope"}, "-method \"nope\""},
		{[]string{"-reference", ref, "-current", cur, "-threshold", "0.1"}, "need an explicit -method"},
		{[]string{"-reference", ref, "-current", cur, "-plugin-dir", empty}, "not found in " + empty},
		{[]string{"-reference", ref}, "-reference and -current are required"},
		{[]string{"-reference", filepath.Join(dir, "missing.csv"), "-current", cur}, "no such file"},
	} {
		out, errOut, code := runExit(t, exe, append([]string{"drift", "compare"}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 and %q); stdout %q", tc.args, code, errOut, tc.want, out)
		}
	}
	// A plugin directory with a package catalog: a binary that no longer
	// matches its recorded SHA-256 is refused.
	pkgDir := filepath.Join(t.TempDir(), "plugins")
	os.MkdirAll(pkgDir, 0o755)
	ksBin, _ := os.ReadFile(filepath.Join(filepath.Dir(exe), "plugins", "ks"))
	os.WriteFile(filepath.Join(pkgDir, "ks"), append(ksBin, 0), 0o755)
	os.WriteFile(filepath.Join(pkgDir, "catalog.json"), []byte(`{"version":1,"plugins":[{"name":"ks","file":"ks","sha256":"`+strings.Repeat("0", 64)+`"}]}`), 0o644)
	if _, errOut, code := runExit(t, exe, "drift", "compare", "-reference", ref, "-current", cur, "-method", "ks", "-column", "x", "-plugin-dir", pkgDir); code != 2 || !strings.Contains(errOut, "does not match the SHA-256") {
		t.Errorf("tampered plugin: exit %d, %s", code, errOut)
	}
	if _, errOut, code := runExit(t, exe, "drift", "model-x", "model-y"); code != 2 || !strings.Contains(errOut, "exactly one MODEL") {
		t.Errorf("vigil drift model-x model-y: exit %d %s", code, errOut)
	}
}

// TestDriftCompareThirdParty: -detector runs a third party's detector
// plugin (the SDK's mean-shift example) only by a pinned SHA-256: the one
// its directory's catalog.json records, or -sha256; an unpinned binary is
// refused with what to do instead. The method and the column's data type
// are checked against the plugin's Describe before any value is sent.
func TestDriftCompareThirdParty(t *testing.T) {
	exe := installDrift(t)
	dir := t.TempDir()
	ref, cur := writeDriftCSVs(t, dir)
	plugDir := filepath.Join(t.TempDir(), "plugins")
	bin := filepath.Join(plugDir, "mean-shift")
	if out, err := exec.Command("go", "build", "-o", bin, "../sdk/examples/meanshift").CombinedOutput(); err != nil {
		t.Fatalf("build mean-shift: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := fmt.Sprintf("%x", sha256.Sum256(b))
	base := []string{"drift", "compare", "-reference", ref, "-current", cur, "-plugin-dir", plugDir, "-detector", "mean-shift"}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-method", "mean_shift", "-column", "x"}, "is not trusted"},
		{[]string{"-method", "mean_shift", "-column", "x"}, "-sha256"},
		{[]string{"-method", "mean_shift", "-column", "x", "-sha256", strings.Repeat("a", 64)}, "refusing to run it"},
		{[]string{"-method", "mean_shift", "-column", "colour", "-sha256", sum}, `column "colour" is categorical, but detector "mean-shift" (method mean_shift) takes numeric data only`},
		{[]string{"-column", "x", "-sha256", sum}, `detector "mean-shift" offers no method "mean-shift" (it offers: mean_shift)`},
	} {
		out, errOut, code := runExit(t, exe, append(base, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 and %q); stdout %q", tc.args, code, errOut, tc.want, out)
		}
	}

	check := func(what string, args ...string) {
		t.Helper()
		out, errOut, code := runExit(t, exe, append(append(base, "-method", "mean_shift", "-threshold", "0.1", "-column", "x", "-column", "y", "-format", "json"), args...)...)
		var rows []driftRow
		if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 1 {
			t.Fatalf("%s: exit %d (want 1), %v\nstdout:\n%s\nstderr:\n%s", what, code, err, out, errOut)
		}
		if len(rows) != 2 || rows[0].Method != "mean_shift" || !rows[0].Drifted || rows[1].Drifted {
			t.Errorf("%s: %+v, want x drifted and y not, by mean_shift", what, rows)
		}
	}
	check("pinned by -sha256", "-sha256", strings.ToUpper(sum))
	// Registered plugins' files are often named otherwise: the pinned hash
	// finds the binary in the plugin directory.
	otherDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(otherDir, "vigil-detector-mean-shift"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	check("found by its -sha256", "-plugin-dir", otherDir, "-sha256", sum)
	if _, errOut, code := runExit(t, exe, "drift", "compare", "-reference", ref, "-current", cur, "-plugin-dir", otherDir, "-detector", "mean-shift", "-method", "mean_shift", "-sha256", strings.Repeat("b", 64)); code != 2 || !strings.Contains(errOut, "no file there is named mean-shift or has the SHA-256") {
		t.Errorf("no file with the pinned hash: exit %d, %s", code, errOut)
	}
	cat := `{"version":1,"plugins":[{"name":"mean-shift","kind":"detector","file":"mean-shift","sha256":"` + sum + `"}]}`
	if err := os.WriteFile(filepath.Join(plugDir, "catalog.json"), []byte(cat), 0o644); err != nil {
		t.Fatal(err)
	}
	check("pinned by catalog.json")
}

// TestDriftCompareRegistered: -registered runs a third party's detector as
// the running agent trusts it after `vigil plugins register`: at the
// registered path, by the registered SHA-256 (the agent's catalog is locked
// while it runs, so the command asks the agent). A binary changed since
// its registration, a name the agent does not have, or one it trusts
// otherwise is refused.
func TestDriftCompareRegistered(t *testing.T) {
	exe := installDrift(t)
	dir := t.TempDir()
	ref, cur := writeDriftCSVs(t, dir)
	pdir := filepath.Join(dir, "plugins")
	bin := filepath.Join(pdir, "vigil-detector-mean-shift")
	if out, err := exec.Command("go", "build", "-o", bin, "../sdk/examples/meanshift").CombinedOutput(); err != nil {
		t.Fatalf("build mean-shift: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
plugins:
  dirs: [`+pdir+`]
`)
	a := startAgent(t, nil, "-config", cfg)
	waitHealthy(t, "http://"+a.addr, "")
	compare := func(name string, extra ...string) (string, string, int) {
		t.Helper()
		args := []string{"drift", "compare", "-reference", ref, "-current", cur, "-detector", name, "-method", "mean_shift",
			"-threshold", "0.1", "-column", "x", "-column", "y", "-format", "json", "-http-addr", a.addr}
		return runExit(t, exe, append(args, extra...)...)
	}

	// In the agent's plugin directory but not registered: the agent lists
	// it untrusted, by its file name.
	if _, errOut, code := compare("mean-shift", "-registered"); code != 2 || !strings.Contains(errOut, `has no plugin named "mean-shift"`) {
		t.Errorf("before register: exit %d, %s", code, errOut)
	}
	if out, err := vigil(t, "plugins", "register", bin, "-http-addr", a.addr); err != nil {
		t.Fatalf("vigil plugins register: %v\n%s", err, out)
	}
	out, errOut, code := compare("mean-shift", "-registered")
	var rows []driftRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != 1 {
		t.Fatalf("registered: exit %d (want 1), %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if len(rows) != 2 || !rows[0].Drifted || rows[1].Drifted || !strings.Contains(errOut, "registered as \"mean-shift\" with the agent") {
		t.Errorf("registered: %+v, stderr %q; want x drifted and y not, and the binary named", rows, errOut)
	}

	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"nosuch", []string{"-registered"}, `has no plugin named "nosuch"`},
		{"mean-shift", []string{"-registered", "-sha256", strings.Repeat("a", 64)}, "give one"},
	} {
		if _, errOut, code := compare(tc.name, tc.extra...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s %v: exit %d, stderr %q (want exit 2 and %q)", tc.name, tc.extra, code, errOut, tc.want)
		}
	}
	if _, errOut, code := runExit(t, exe, "drift", "compare", "-reference", ref, "-current", cur, "-registered"); code != 2 || !strings.Contains(errOut, "give -detector too") {
		t.Errorf("-registered without -detector: exit %d, %s", code, errOut)
	}

	// Changed since its registration: refused, saying how to trust it.
	f, err := os.OpenFile(bin, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0})
	f.Close()
	if _, errOut, code := compare("mean-shift", "-registered"); code != 2 || !strings.Contains(errOut, "refusing to run it") || !strings.Contains(errOut, "vigil plugins register "+bin) {
		t.Errorf("changed binary: exit %d, %s", code, errOut)
	}
}
