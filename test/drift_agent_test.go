package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// driftPluginDir lays out a plugin directory as a package would: the five
// real detector plugins and the test plugin (as detector "crashy"), with a
// catalog.json that trusts them.
func driftPluginDir(t *testing.T) string {
	t.Helper()
	exe := installDrift(t)
	pdir := filepath.Join(filepath.Dir(exe), "plugins")
	buildTestPlugin(t, "detector", pdir, "crashy")
	var entries []string
	for _, name := range append(append([]string{}, detectorPlugins...), "crashy") {
		b, err := os.ReadFile(filepath.Join(pdir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		entries = append(entries, fmt.Sprintf(`{"name": %q, "kind": "detector", "file": %q, "sha256": %q}`, name, name, hex.EncodeToString(sum[:])))
	}
	writeFile(t, filepath.Join(pdir, "catalog.json"), `{"version": 1, "plugins": [`+strings.Join(entries, ",")+`]}`)
	return pdir
}

type driftFeature struct {
	Feature        string   `json:"feature"`
	Method         string   `json:"method"`
	Statistic      float64  `json:"statistic"`
	PValue         *float64 `json:"p_value"`
	AdjustedPValue *float64 `json:"adjusted_p_value"`
	Threshold      float64  `json:"threshold"`
	Severity       string   `json:"severity"`
	ReferenceN     int      `json:"reference_n"`
	CurrentN       int      `json:"current_n"`
	Error          string   `json:"error"`
}

type driftVersion struct {
	Version           string         `json:"version"`
	Verdict           string         `json:"verdict"`
	Correction        string         `json:"correction"`
	Features          []driftFeature `json:"features"`
	ReferenceAccuracy *float64       `json:"reference_accuracy"`
	ReferenceLabelled int            `json:"reference_labelled"`
	Reference         *struct {
		Source       string    `json:"source"`
		PinnedAt     time.Time `json:"pinned_at"`
		Observations int       `json:"observations"`
	} `json:"reference"`
}

func doJSON(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d, undecodable body: %v", method, url, resp.StatusCode, err)
		}
	}
	return resp.StatusCode
}

func evaluateDrift(t *testing.T, base, model string) []driftVersion {
	t.Helper()
	var out struct {
		Versions []driftVersion `json:"versions"`
	}
	if code := doJSON(t, "POST", base+"/v1/models/"+model+"/drift/evaluate", nil, &out); code != 200 {
		t.Fatalf("evaluate %s: %d", model, code)
	}
	return out.Versions
}

func sev(v driftVersion) map[string]string {
	out := map[string]string{}
	for _, f := range v.Features {
		out[f.Feature] = f.Severity
	}
	return out
}

// fraudBatch makes 100 observations. Unshifted, every feature cycles
// deterministically through the same 100 values (normal quantiles for
// amount), so windows of whole batches have identical distributions and
// no detector can flag them, whatever the seed. Shifted, amount is drawn
// from N(1, 1) and country is "DE" half the time more; tenure, device and
// the prediction never change.
func fraudBatch(r *rand.Rand, shifted bool) map[string]any {
	items := make([]map[string]any, 100)
	for i := range items {
		g := (float64(i*37%100) + 0.5) / 100
		amount := math.Sqrt2 * math.Erfinv(2*g-1)
		country := []string{"DE", "FR", "IT", "ES"}[i%4]
		if shifted {
			amount = r.NormFloat64() + 1
			if r.Float64() < 0.5 {
				country = "DE"
			}
		}
		pred := i % 2
		items[i] = map[string]any{
			"model": "fraud", "version": "v1", "latency_ms": 5, "prediction": pred, "label": []int{pred, 1 - pred, pred, pred}[i%4],
			"features": map[string]any{"amount": amount, "tenure": 10 * g, "country": country, "device": []string{"ios", "android", "web"}[i%3]},
		}
	}
	return map[string]any{"observations": items}
}

// TestDriftAgentEndToEnd runs the agent with the real detector plugins:
// the automatic reference is the first 1,000 observations; after 1,000
// more from the same distribution every feature is ok; after 1,000 whose
// amount and country shifted, those two are critical and the others stay
// ok; the API, `vigil drift`, the history and /metrics (promtool-clean)
// say so. A crashing and a missing detector give a per-feature error and a
// degraded drift subsystem, not a dead agent. After a restart the pinned
// reference is still there and the current windows are refilled from the
// stored observations.
func TestDriftAgentEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	pdir := driftPluginDir(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
plugins:
  dirs: [`+pdir+`]
  crash_budget: 100
alerts:
  interval: 100ms
drift:
  interval: 1h
  reference_size: 1000
  current_window: 1000
  min_samples: 100
models:
  fraud:
    features:
      tenure:
        detector: psi
        params: {bins: 10}
  canary:
    features:
      flaky: {detector: crashy, method: mean, params: {crash: true}}
      ghost: {detector: nosuch}
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	r := rand.New(rand.NewPCG(2026, 11))
	post := func(body map[string]any) {
		t.Helper()
		if code, resp := postJSON(t, base+"/v1/observations", body); code != 202 {
			t.Fatalf("observations: %d %v", code, resp)
		}
	}
	for range 5 {
		post(fraudBatch(r, false))
	}
	// Before any evaluation the CLI says so rather than printing nothing.
	if out, err := exec.Command(vigilBin, "drift", "fraud", "-http-addr", a.addr).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "fraud: no drift evaluation yet") {
		t.Errorf("vigil drift before any evaluation: %v\n%s", err, out)
	}
	if vs := evaluateDrift(t, base, "fraud"); len(vs) != 1 || vs[0].Verdict != "no_reference" {
		t.Fatalf("500 of 1000 reference observations: %+v", vs)
	}
	for range 15 {
		post(fraudBatch(r, false))
	}
	vs := evaluateDrift(t, base, "fraud")
	if len(vs) != 1 || vs[0].Reference == nil || vs[0].Reference.Source != "auto" || vs[0].Reference.Observations != 1000 {
		t.Fatalf("automatic reference: %+v", vs)
	}
	if vs[0].ReferenceLabelled != 1000 || vs[0].ReferenceAccuracy == nil || math.Abs(*vs[0].ReferenceAccuracy-0.75) > 1e-12 {
		t.Errorf("reference accuracy %v of %d, want 0.75 of 1000", vs[0].ReferenceAccuracy, vs[0].ReferenceLabelled)
	}
	for f, s := range sev(vs[0]) {
		if s != "ok" {
			t.Errorf("same distribution: %s is %s", f, s)
		}
	}
	pinned := vs[0].Reference.PinnedAt

	for range 10 {
		post(fraudBatch(r, true))
	}
	vs = evaluateDrift(t, base, "fraud")
	want := map[string]string{"amount": "critical", "country": "critical", "tenure": "ok", "device": "ok", "prediction": "ok"}
	got := sev(vs[0])
	for f, s := range want {
		if got[f] != s {
			t.Errorf("after the shift: %s is %q, want %s (%+v)", f, got[f], s, vs[0].Features)
		}
	}
	if len(got) != len(want) || vs[0].Verdict != "critical" || vs[0].Correction != "bonferroni" {
		t.Errorf("features %v, verdict %s, correction %s", got, vs[0].Verdict, vs[0].Correction)
	}
	for _, f := range vs[0].Features {
		wantMethod := map[string]string{"amount": "ks", "country": "chisquare", "tenure": "psi", "device": "chisquare", "prediction": "ks"}[f.Feature]
		if f.Method != wantMethod || f.ReferenceN != 1000 || f.CurrentN != 1000 || f.Error != "" {
			t.Errorf("%s: %+v (want method %s, windows 1000/1000)", f.Feature, f, wantMethod)
		}
		if (f.PValue == nil) != (f.Method == "psi") || (f.AdjustedPValue == nil) != (f.Method == "psi") {
			t.Errorf("%s: p %v adjusted %v", f.Feature, f.PValue, f.AdjustedPValue)
		}
	}

	// The drift alert of a critical feature says what it rests on: the
	// current window's values (samples), and which test (method).
	waitFor(t, func() bool {
		var ab alertsBody
		if code := doJSON(t, "GET", base+"/v1/alerts?state=firing", nil, &ab); code != 200 {
			t.Fatalf("GET /v1/alerts: %d", code)
		}
		for _, al := range ab.Alerts {
			if al.Rule == "drift" && al.Labels["feature"] == "amount" {
				if al.Severity != "critical" || al.Labels["method"] != "ks" || al.Samples != 1000 {
					t.Fatalf("drift alert of amount: %+v, want critical, method ks, samples 1000", al)
				}
				return true
			}
		}
		return false
	}, "a firing drift alert for amount")

	// GET shows the same; history keeps both evaluations.
	var cur struct {
		Versions []driftVersion `json:"versions"`
	}
	if code := doJSON(t, "GET", base+"/v1/models/fraud/drift?version=v1", nil, &cur); code != 200 || len(cur.Versions) != 1 || sev(cur.Versions[0])["amount"] != "critical" {
		t.Fatalf("GET drift: %d %+v", code, cur)
	}
	var hist struct {
		Evaluations []driftVersion `json:"evaluations"`
	}
	if code := doJSON(t, "GET", base+"/v1/models/fraud/drift/history?version=v1&feature=amount&limit=5", nil, &hist); code != 200 || len(hist.Evaluations) != 2 ||
		sev(hist.Evaluations[0])["amount"] != "critical" || sev(hist.Evaluations[1])["amount"] != "ok" || len(hist.Evaluations[0].Features) != 1 {
		t.Fatalf("history: %d %+v", code, hist)
	}
	if code := doJSON(t, "GET", base+"/v1/models/nosuch/drift", nil, nil); code != 404 {
		t.Errorf("unknown model: %d", code)
	}

	// The CLI: JSON, and exit status 1 for a critical feature.
	cmd := exec.Command(vigilBin, "drift", "fraud", "-version", "v1", "-format", "json", "-http-addr", a.addr)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), `"severity": "critical"`) {
		t.Errorf("vigil drift fraud -format json: %v\n%s", err, out)
	}
	out, _ = exec.Command(vigilBin, "drift", "fraud", "-http-addr", a.addr).Output()
	if !strings.Contains(string(out), "fraud v1: critical (correction bonferroni") || !strings.Contains(string(out), "amount") {
		t.Errorf("vigil drift fraud:\n%s", out)
	}

	// Metrics: promtool-clean, with the severities.
	code, metrics := get(t, base+"/metrics", "")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(metrics)
	if out, err := check.CombinedOutput(); code != 200 || err != nil {
		t.Errorf("promtool check metrics: %d %v\n%s", code, err, out)
	}
	for _, want := range []string{
		`vigil_drift_severity{feature="amount",model="fraud",version="v1"} 2`,
		`vigil_drift_severity{feature="tenure",model="fraud",version="v1"} 0`,
		`vigil_drift_statistic{feature="tenure",method="psi",model="fraud",version="v1"}`,
		`vigil_drift_evaluations_total{result="ok"}`,
		`vigil_drift_evaluation_duration_seconds_count`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Uploaded reference for v2, and a bad upload naming its field.
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if code := doJSON(t, "POST", base+"/v1/models/fraud/reference", map[string]any{"version": "v2", "features": map[string]any{"amount": []any{1, "x", true}}}, &e); code != 400 || !strings.Contains(e.Error.Message, "features.amount[2]") {
		t.Errorf("bad upload: %d %+v", code, e)
	}
	var info struct {
		Source   string         `json:"source"`
		Features map[string]int `json:"features"`
	}
	if code := doJSON(t, "POST", base+"/v1/models/fraud/reference", map[string]any{"version": "v2", "features": map[string]any{"amount": []float64{1, 2, 3}}, "prediction": []int{0, 1, 1}}, &info); code != 201 || info.Source != "upload" || info.Features["amount"] != 3 || info.Features["prediction"] != 3 {
		t.Errorf("upload: %d %+v", code, info)
	}

	// Errors: a crashing detector and a missing one, per feature; the
	// agent stays up and says drift is degraded.
	items := make([]map[string]any, 200)
	for i := range items {
		items[i] = map[string]any{"model": "canary", "version": "v1", "features": map[string]any{"flaky": r.NormFloat64(), "ghost": r.NormFloat64(), "fine": r.NormFloat64()}}
	}
	post(map[string]any{"observations": items[:100]})
	post(map[string]any{"observations": items[100:]})
	var pin struct {
		Observations int `json:"observations"`
	}
	now := time.Now()
	if code := doJSON(t, "POST", base+"/v1/models/canary/reference", map[string]any{"version": "v1", "from": now.Add(-time.Hour).Format(time.RFC3339), "to": now.Add(time.Hour).UnixMilli()}, &pin); code != 201 || pin.Observations != 200 {
		t.Fatalf("pin range: %d %+v", code, pin)
	}
	cv := evaluateDrift(t, base, "canary")
	for _, f := range cv[0].Features {
		switch f.Feature {
		case "flaky", "ghost":
			if f.Severity != "error" || f.Error == "" {
				t.Errorf("%s: %+v, want an error", f.Feature, f)
			}
		case "fine":
			if f.Severity != "ok" || f.Error != "" {
				t.Errorf("fine: %+v", f)
			}
		}
	}
	if len(cv[0].Features) != 3 || !strings.Contains(featureErr(cv[0], "ghost"), `detector nosuch: not_found: no plugin "nosuch"`) || !strings.HasPrefix(featureErr(cv[0], "flaky"), "detector crashy: ") {
		t.Errorf("canary: %+v", cv[0].Features)
	}
	waitHealthy(t, base, "")
	var st struct {
		Subsystems []struct{ Name, State, Reason string } `json:"subsystems"`
	}
	doJSON(t, "GET", base+"/v1/status", nil, &st)
	degraded := false
	for _, s := range st.Subsystems {
		degraded = degraded || (s.Name == "drift" && s.State == "degraded" && strings.Contains(s.Reason, "canary"))
	}
	if !degraded {
		t.Errorf("drift subsystem not degraded: %+v", st.Subsystems)
	}

	// Restart: the references are still pinned.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.waitExit(t, 20*time.Second); code != 0 {
		t.Fatalf("agent exit %d", code)
	}
	b := startAgent(t, nil, "-config", cfg)
	base = "http://" + b.addr
	waitHealthy(t, base, "")
	var refs struct {
		References []struct {
			Version      string    `json:"version"`
			Source       string    `json:"source"`
			PinnedAt     time.Time `json:"pinned_at"`
			Observations int       `json:"observations"`
		} `json:"references"`
	}
	if code := doJSON(t, "GET", base+"/v1/models/fraud/reference", nil, &refs); code != 200 || len(refs.References) != 2 ||
		refs.References[0].Version != "v1" || refs.References[0].Source != "auto" || !refs.References[0].PinnedAt.Equal(pinned) || refs.References[0].Observations != 1000 ||
		refs.References[1].Source != "upload" {
		t.Fatalf("after restart: %d %+v", code, refs)
	}
	if code := doJSON(t, "GET", base+"/v1/models/fraud/drift?version=v1", nil, &cur); code != 200 || sev(cur.Versions[0])["amount"] != "critical" {
		t.Errorf("latest evaluation after restart: %d %+v", code, cur)
	}
	// The current windows were refilled from the stored observations, and
	// are compared with the same reference.
	vs = evaluateDrift(t, base, "fraud")
	for _, v := range vs {
		if v.Version != "v1" {
			continue
		}
		if sev(v)["amount"] != "critical" || sev(v)["tenure"] != "ok" || !v.Reference.PinnedAt.Equal(pinned) {
			t.Errorf("after restart: %+v", v)
		}
		for _, f := range v.Features {
			if f.CurrentN != 1000 || f.ReferenceN != 1000 {
				t.Errorf("after restart: %s windows %d/%d, want 1000/1000", f.Feature, f.ReferenceN, f.CurrentN)
			}
		}
	}
	var del struct {
		Deleted bool `json:"deleted"`
	}
	if code := doJSON(t, "DELETE", base+"/v1/models/fraud/reference?version=v2", nil, &del); code != 200 || !del.Deleted {
		t.Errorf("delete: %d %+v", code, del)
	}

	// SIGHUP with tenure disabled and min_samples changed: the running
	// engine applies the models and drift keys; current_window, which
	// shapes the windows it holds, needs a restart and is said to.
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(orig), "      tenure:\n        detector: psi\n        params: {bins: 10}\n", "      tenure:\n        disabled: true\n", 1)
	next = strings.Replace(next, "  current_window: 1000\n  min_samples: 100\n", "  current_window: 500\n  min_samples: 90\n", 1)
	if next == string(orig) {
		t.Fatal("the test's config edit did not apply")
	}
	writeFile(t, cfg, next)
	if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(b.stderr.String(), "configuration reloaded") }, "the reload")
	logs := b.stderr.String()
	if !strings.Contains(logs, `"drift.min_samples"`) || !strings.Contains(logs, `"models"`) || !strings.Contains(logs, `"keys":["drift.current_window"]`) {
		t.Fatalf("reload log does not apply drift.min_samples and models and defer drift.current_window:\n%s", logs)
	}
	for _, v := range evaluateDrift(t, base, "fraud") {
		if v.Version != "v1" {
			continue
		}
		if _, ok := sev(v)["tenure"]; ok || sev(v)["amount"] != "critical" {
			t.Errorf("after the reload tenure is still evaluated, or amount is not critical: %+v", sev(v))
		}
		for _, f := range v.Features {
			if f.CurrentN != 1000 {
				t.Errorf("%s: current window %d after a reload; current_window needs a restart", f.Feature, f.CurrentN)
			}
		}
	}
}

func featureErr(v driftVersion, name string) string {
	for _, f := range v.Features {
		if f.Feature == name {
			return f.Error
		}
	}
	return ""
}
