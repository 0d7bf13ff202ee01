package alert

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
)

// fakeStats serves the same stats under every window.
type fakeStats struct {
	mu sync.Mutex
	st map[[2]string]observe.WindowStats // (model, version)
}

func (f *fakeStats) set(model, version string, st observe.WindowStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.st == nil {
		f.st = map[[2]string]observe.WindowStats{}
	}
	f.st[[2]string{model, version}] = st
}

func (f *fakeStats) remove(model, version string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.st, [2]string{model, version})
}

func (f *fakeStats) Models(win time.Duration) []observe.ModelInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []observe.ModelInfo
	for k, st := range f.st {
		st := st
		out = append(out, observe.ModelInfo{Model: k[0], Versions: []observe.VersionInfo{{Version: k[1], Stats: &st}}})
	}
	return out
}

type fakeDrift struct {
	mu       sync.Mutex
	findings []DriftFinding
	refAcc   map[string]float64
	refN     int
}

func (f *fakeDrift) DriftFindings() []DriftFinding {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]DriftFinding(nil), f.findings...)
}

func (f *fakeDrift) ReferenceAccuracy(model, version string) (float64, int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc, ok := f.refAcc[model+"/"+version]
	return acc, f.refN, ok
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func f64(v float64) *float64 { return &v }

func latency(p95 float64, n uint64) observe.WindowStats {
	return observe.WindowStats{Requests: n, LatencyCount: n, LatencyP95Ms: f64(p95), ErrorRate: f64(0)}
}

func newTestManager(t *testing.T, cfg Config, drift DriftSource) (*Manager, *fakeStats, *clock) {
	t.Helper()
	st := &fakeStats{}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	m, err := New(cfg, Options{Stats: st, Drift: drift, Now: clk.Now, Instance: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	return m, st, clk
}

// find returns the alert of rule for model/version (and feature), nil
// when inactive.
func find(m *Manager, rule, model, version, feature string) *Alert {
	for _, a := range m.Alerts() {
		if a.Rule == rule && a.Labels["model"] == model && a.Labels["version"] == version && a.Labels["feature"] == feature {
			return &a
		}
	}
	return nil
}

// evalStep is one evaluation in a scenario: advance the clock, set the
// stats (nil removes them), evaluate, expect a state and severity
// ("" state: inactive).
type evalStep struct {
	advance  time.Duration
	stats    *observe.WindowStats
	state    State
	severity Severity
}

func ws(st observe.WindowStats) *observe.WindowStats { return &st }

func TestLatencyStateMachine(t *testing.T) {
	none := (*observe.WindowStats)(nil)
	for _, tc := range []struct {
		name  string
		steps []evalStep
	}{
		{"for must hold before firing", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{30 * time.Second, ws(latency(150, 200)), StatePending, SeverityWarning},
			{30 * time.Second, ws(latency(150, 200)), StateFiring, SeverityWarning},
		}},
		{"too few samples never alert", []evalStep{
			{0, ws(latency(900, 8)), "", ""},
			{time.Minute, ws(latency(900, 8)), "", ""},
			{time.Minute, ws(latency(900, 99)), "", ""},
			{time.Minute, ws(latency(900, 100)), StatePending, SeverityWarning},
		}},
		{"pending clears without firing", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{15 * time.Second, ws(latency(50, 200)), "", ""},
		}},
		{"pending goes back to inactive on too few samples", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{15 * time.Second, ws(latency(150, 20)), "", ""},
		}},
		{"hysteresis does not hold a pending alert", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{15 * time.Second, ws(latency(95, 200)), "", ""},
		}},
		{"escalation needs critical itself for the whole for", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
			{30 * time.Second, ws(latency(190, 200)), StateFiring, SeverityWarning},
			{30 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
			{time.Minute, ws(latency(250, 200)), StateFiring, SeverityCritical},
		}},
		{"threshold is strict", []evalStep{
			{0, ws(latency(100, 200)), "", ""},
		}},
		{"hysteresis keeps firing until below warning x 0.9", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(95, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(90.5, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(90, 200)), StateResolved, SeverityWarning},
			{15 * time.Second, ws(latency(95, 200)), StateResolved, SeverityWarning},
		}},
		{"firing holds with too few samples, resolves with none", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(20, 5)), StateFiring, SeverityWarning},
			{15 * time.Second, none, StateResolved, SeverityWarning},
		}},
		{"escalates after critical held for, eases with hysteresis", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
			{45 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(250, 200)), StateFiring, SeverityCritical},
			{15 * time.Second, ws(latency(190, 200)), StateFiring, SeverityCritical},
			{15 * time.Second, ws(latency(180, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
		}},
		{"critical from the start fires as critical", []evalStep{
			{0, ws(latency(250, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(250, 200)), StateFiring, SeverityCritical},
		}},
		{"critical not held long enough fires as warning", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{30 * time.Second, ws(latency(250, 200)), StatePending, SeverityWarning},
			{30 * time.Second, ws(latency(250, 200)), StateFiring, SeverityWarning},
			{30 * time.Second, ws(latency(250, 200)), StateFiring, SeverityCritical},
		}},
		{"resolved alert starts a new episode", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(10, 200)), StateResolved, SeverityWarning},
			{15 * time.Second, ws(latency(150, 200)), StatePending, SeverityWarning},
		}},
		{"resolved alerts are forgotten after the retention", []evalStep{
			{0, ws(latency(150, 200)), StatePending, SeverityWarning},
			{time.Minute, ws(latency(150, 200)), StateFiring, SeverityWarning},
			{15 * time.Second, ws(latency(10, 200)), StateResolved, SeverityWarning},
			{15 * time.Minute, ws(latency(10, 200)), StateResolved, SeverityWarning},
			{time.Second, ws(latency(10, 200)), "", ""},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, st, clk := newTestManager(t, Config{}, nil)
			for i, s := range tc.steps {
				clk.Advance(s.advance)
				if s.stats == nil {
					st.remove("fraud", "v1")
				} else {
					st.set("fraud", "v1", *s.stats)
				}
				m.Evaluate()
				a := find(m, RuleLatencyP95, "fraud", "v1", "")
				var gotState State
				var gotSev Severity
				if a != nil {
					gotState, gotSev = a.State, a.Severity
				}
				if gotState != s.state || gotSev != s.severity {
					t.Fatalf("evalStep %d: state %q severity %q, want %q %q (alert %+v)", i, gotState, gotSev, s.state, s.severity, a)
				}
				if a != nil && a.Labels["severity"] != string(a.Severity) {
					t.Fatalf("evalStep %d: severity label %q, severity %q", i, a.Labels["severity"], a.Severity)
				}
			}
		})
	}
}

func TestAlertFields(t *testing.T) {
	m, st, clk := newTestManager(t, Config{}, nil)
	start := clk.Now()
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	clk.Advance(time.Minute)
	m.Evaluate()
	a := find(m, RuleLatencyP95, "fraud", "v1", "")
	if a == nil || a.State != StateFiring {
		t.Fatalf("not firing: %+v", a)
	}
	want := map[string]string{"alertname": "VigilLatencyP95High", "rule": "latency_p95", "model": "fraud", "version": "v1", "severity": "warning", "instance": "node-1"}
	if len(a.Labels) != len(want) {
		t.Errorf("labels %v, want %v", a.Labels, want)
	}
	for k, v := range want {
		if a.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, a.Labels[k], v)
		}
	}
	if a.Value != 150 || a.Threshold != 100 || a.Samples != 200 || !a.ActiveSince.Equal(start) || a.FiredAt == nil || !a.FiredAt.Equal(start.Add(time.Minute)) {
		t.Errorf("fields: %+v", a)
	}
	if !strings.Contains(a.Summary, "150.0 ms") || a.Description == "" || a.ID == "" {
		t.Errorf("summary %q, description %q, id %q", a.Summary, a.Description, a.ID)
	}
	if m.FiringCount() != 1 {
		t.Errorf("FiringCount = %d", m.FiringCount())
	}
}

func TestErrorRateRule(t *testing.T) {
	for _, tc := range []struct {
		name     string
		errs, n  uint64
		severity Severity
	}{
		{"below warning", 1, 1000, ""},
		{"warning above 0.1%", 2, 1000, SeverityWarning},
		{"critical above 1%", 11, 1000, SeverityCritical},
		{"too few requests", 5, 8, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, st, clk := newTestManager(t, Config{}, nil)
			er := float64(tc.errs) / float64(tc.n)
			st.set("fraud", "v1", observe.WindowStats{Requests: tc.n, Errors: tc.errs, ErrorRate: &er})
			m.Evaluate()
			clk.Advance(time.Minute)
			m.Evaluate()
			a := find(m, RuleErrorRate, "fraud", "v1", "")
			if tc.severity == "" {
				if a != nil {
					t.Fatalf("alert %+v, want none", a)
				}
				return
			}
			if a == nil || a.State != StateFiring || a.Severity != tc.severity || a.Value != er {
				t.Fatalf("alert %+v, want firing %s", a, tc.severity)
			}
		})
	}
}

func TestPerModelOverrides(t *testing.T) {
	cfg := Config{
		Rules: Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Models: map[string]Rules{
			"fast":  {LatencyP95: RuleConfig{Warning: ptr(10.0), Critical: ptr(20.0), MinSamples: ptr(5)}},
			"quiet": {LatencyP95: RuleConfig{Enabled: ptr(false)}},
			"slow":  {LatencyP95: RuleConfig{For: ptr(time.Hour)}},
		},
	}
	m, st, _ := newTestManager(t, cfg, nil)
	for _, model := range []string{"fast", "quiet", "slow", "other"} {
		st.set(model, "v1", latency(150, 200))
	}
	st.set("fast", "v2", latency(15, 6))
	m.Evaluate()
	for _, tc := range []struct {
		model, version string
		state          State
		severity       Severity
	}{
		{"fast", "v1", StateFiring, SeverityCritical}, // own thresholds, global for: 0
		{"fast", "v2", StateFiring, SeverityWarning},  // own min_samples
		{"quiet", "v1", "", ""},                       // disabled
		{"slow", "v1", StatePending, SeverityWarning}, // own for
		{"other", "v1", StateFiring, SeverityWarning}, // global rule, built-in thresholds
	} {
		a := find(m, RuleLatencyP95, tc.model, tc.version, "")
		var state State
		var sev Severity
		if a != nil {
			state, sev = a.State, a.Severity
		}
		if state != tc.state || sev != tc.severity {
			t.Errorf("%s %s: %q %q, want %q %q", tc.model, tc.version, state, sev, tc.state, tc.severity)
		}
	}
	e := cfg.RuleFor(RuleLatencyP95, "fast")
	if e.Warning != 10 || e.Critical != 20 || e.For != 0 || e.MinSamples != 5 || e.Window != 5*time.Minute || e.Resolve != 9 {
		t.Errorf("effective rule for fast: %+v", e)
	}
}

func TestDriftRule(t *testing.T) {
	fd := &fakeDrift{}
	m, _, clk := newTestManager(t, Config{}, fd)
	p := func(v float64) *float64 { return &v }
	setFinding := func(sev string, stat float64, pv *float64) {
		fd.mu.Lock()
		fd.findings = []DriftFinding{
			{Model: "fraud", Version: "v1", Feature: "amount", Method: "psi", Statistic: stat, Threshold: 0.1, Severity: sev, EvaluatedAt: clk.Now(), Samples: 1000},
			{Model: "fraud", Version: "v1", Feature: "age", Method: "ks", Statistic: 0.3, PValue: pv, Threshold: 0.05, Severity: sev, EvaluatedAt: clk.Now(), Samples: 800},
		}
		fd.mu.Unlock()
	}
	for i, s := range []struct {
		sev      string
		stat     float64
		pv       float64
		state    State
		severity Severity
	}{
		{"ok", 0.05, 0.5, "", ""},
		{"critical", 0.3, 0.001, StateFiring, SeverityCritical}, // for: 0 by default
		{"warning", 0.15, 0.01, StateFiring, SeverityWarning},
		{"insufficient_data", 0, 0, StateFiring, SeverityWarning}, // holds
		{"ok", 0.095, 0.052, StateFiring, SeverityWarning},        // within hysteresis
		{"ok", 0.08, 0.2, StateResolved, SeverityWarning},
	} {
		clk.Advance(15 * time.Second)
		setFinding(s.sev, s.stat, p(s.pv))
		m.Evaluate()
		for _, feature := range []string{"amount", "age"} {
			a := find(m, RuleDrift, "fraud", "v1", feature)
			var state State
			var sev Severity
			if a != nil {
				state, sev = a.State, a.Severity
			}
			if state != s.state || sev != s.severity {
				t.Fatalf("evalStep %d %s: %q %q, want %q %q", i, feature, state, sev, s.state, s.severity)
			}
			if a != nil && (a.Labels["method"] == "" || a.Labels["alertname"] != "VigilFeatureDrift") {
				t.Fatalf("labels %v", a.Labels)
			}
			// The value is what the threshold is compared with: the
			// p-value for a test, the statistic otherwise.
			if a != nil && a.State == StateFiring && s.sev != "insufficient_data" {
				want := s.stat
				if feature == "age" {
					want = s.pv
				}
				if a.Value != want {
					t.Errorf("evalStep %d %s: value %v, want %v (threshold %v)", i, feature, a.Value, want, a.Threshold)
				}
				// samples: the current window's values the finding rests on.
				if wantN := map[string]uint64{"amount": 1000, "age": 800}[feature]; a.Samples != wantN {
					t.Errorf("evalStep %d %s: samples %d, want %d", i, feature, a.Samples, wantN)
				}
			}
		}
	}
}

// TestDriftDescriptionRawPValue: a warning from a p-value test is a raw
// p-value below the threshold whose corrected one is not; the alert's value
// is the corrected p-value, so the description names both, or the reader
// sees a value above the threshold and no reason for the warning.
func TestDriftDescriptionRawPValue(t *testing.T) {
	fd := &fakeDrift{}
	m, _, clk := newTestManager(t, Config{}, fd)
	p := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		raw, adj *float64
		want     string
	}{
		{p(0.041), p(0.123), "chisquare statistic 8.255, p-value 0.041 before the multiple-testing correction, 0.123 after (threshold 0.05); drift engine severity warning"},
		{nil, p(0.03), "chisquare statistic 8.255, p-value 0.03 (threshold 0.05); drift engine severity warning"},
		{p(0.03), p(0.03), "chisquare statistic 8.255, p-value 0.03 (threshold 0.05); drift engine severity warning"},
	} {
		clk.Advance(15 * time.Second)
		fd.mu.Lock()
		fd.findings = []DriftFinding{{Model: "fraud", Version: "v1", Feature: "country", Method: "chisquare", Statistic: 8.255,
			PValue: tc.adj, RawPValue: tc.raw, Threshold: 0.05, Severity: "warning", EvaluatedAt: clk.Now(), Samples: 1000}}
		fd.mu.Unlock()
		m.Evaluate()
		a := find(m, RuleDrift, "fraud", "v1", "country")
		if a == nil || a.Value != *tc.adj || !strings.HasPrefix(a.Description, tc.want) {
			t.Errorf("raw %v adjusted %v: alert %+v, want value %v and a description starting %q", tc.raw, *tc.adj, a, *tc.adj, tc.want)
		}
	}
}

func TestAccuracyDropRule(t *testing.T) {
	cfg := Config{Rules: Rules{AccuracyDrop: RuleConfig{For: ptr(time.Duration(0))}}}
	acc := func(a float64, n uint64) observe.WindowStats {
		return observe.WindowStats{Requests: n, Labelled: n, Accuracy: &a}
	}
	for _, tc := range []struct {
		name     string
		ref      float64
		refN     int
		cur      observe.WindowStats
		severity Severity
	}{
		{"small drop", 0.90, 500, acc(0.89, 500), ""},
		{"warning above 2 points", 0.90, 500, acc(0.87, 500), SeverityWarning},
		{"critical above 5 points", 0.90, 500, acc(0.80, 500), SeverityCritical},
		{"improvement", 0.90, 500, acc(0.95, 500), ""},
		{"too few current labels", 0.90, 500, acc(0.5, 50), ""},
		{"too few reference labels", 0.90, 50, acc(0.5, 500), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd := &fakeDrift{refAcc: map[string]float64{"fraud/v1": tc.ref}, refN: tc.refN}
			m, st, _ := newTestManager(t, cfg, fd)
			st.set("fraud", "v1", tc.cur)
			m.Evaluate()
			a := find(m, RuleAccuracyDrop, "fraud", "v1", "")
			if tc.severity == "" {
				if a != nil {
					t.Fatalf("alert %+v, want none", a)
				}
				return
			}
			if a == nil || a.State != StateFiring || a.Severity != tc.severity {
				t.Fatalf("alert %+v, want firing %s", a, tc.severity)
			}
		})
	}
}

func TestNoDriftSource(t *testing.T) {
	m, st, _ := newTestManager(t, Config{Rules: Rules{AccuracyDrop: RuleConfig{For: ptr(time.Duration(0))}}}, nil)
	a := 0.1
	st.set("fraud", "v1", observe.WindowStats{Requests: 500, Labelled: 500, Accuracy: &a})
	m.Evaluate()
	if len(m.Alerts()) != 0 {
		t.Fatalf("alerts without a drift source: %+v", m.Alerts())
	}
	s := m.Status()
	if len(s.Inactive) != 2 {
		t.Fatalf("inactive rules %v", s.Inactive)
	}
	reason, degraded := s.Reason()
	if !strings.Contains(reason, "drift evaluation is off") || degraded {
		t.Fatalf("reason %q degraded %v", reason, degraded)
	}
	m.SetDriftSource(&fakeDrift{refAcc: map[string]float64{"fraud/v1": 0.9}, refN: 500})
	m.Evaluate()
	if a := find(m, RuleAccuracyDrop, "fraud", "v1", ""); a == nil || a.Severity != SeverityCritical {
		t.Fatalf("after SetDriftSource: %+v", a)
	}
	if s := m.Status(); len(s.Inactive) != 0 {
		t.Fatalf("inactive rules %v", s.Inactive)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero config", func(c *Config) { *c = Config{} }, ""},
		{"critical below warning", func(c *Config) { c.Rules.LatencyP95.Critical = ptr(50.0) }, "alerts.rules.latency_p95.critical: 50 is below warning 100"},
		{"model critical below global warning", func(c *Config) {
			c.Models = map[string]Rules{"m": {LatencyP95: RuleConfig{Critical: ptr(50.0)}}}
		}, "alerts.models.m.latency_p95.critical"},
		{"ratio above 1", func(c *Config) { c.Rules.ErrorRate.Critical = ptr(5.0) }, "alerts.rules.error_rate.critical: is a ratio"},
		{"negative threshold", func(c *Config) { c.Rules.ErrorRate.Warning = ptr(-1.0) }, "alerts.rules.error_rate.warning: must be a number >= 0"},
		{"resolve above warning", func(c *Config) { c.Rules.LatencyP95.Resolve = ptr(150.0) }, "alerts.rules.latency_p95.resolve"},
		{"window not kept", func(c *Config) { c.Rules.LatencyP95.Window = ptr(2 * time.Minute) }, "alerts.rules.latency_p95.window: 2m0s is not one of 1m, 5m, 1h"},
		{"hysteresis too large", func(c *Config) { c.Rules.ErrorRate.Hysteresis = ptr(1.0) }, "alerts.rules.error_rate.hysteresis"},
		{"min_samples zero", func(c *Config) { c.Rules.ErrorRate.MinSamples = ptr(0) }, "alerts.rules.error_rate.min_samples"},
		{"negative for", func(c *Config) { c.Rules.ErrorRate.For = ptr(-time.Second) }, "alerts.rules.error_rate.for"},
		{"drift threshold", func(c *Config) { c.Rules.Drift.Warning = ptr(0.2) }, "alerts.rules.drift.warning: does not apply to drift"},
		{"drift window per model", func(c *Config) {
			c.Models = map[string]Rules{"m": {Drift: RuleConfig{Window: ptr(time.Minute)}}}
		}, "alerts.models.m.drift.window: does not apply"},
		{"interval", func(c *Config) { c.Interval = time.Millisecond }, "alerts.interval"},
		{"am url", func(c *Config) { c.Alertmanagers = []Receiver{{URL: "ftp://x"}} }, "alerts.alertmanagers[0].url: \"ftp://x\" is not an http(s) URL"},
		{"am url missing", func(c *Config) { c.Alertmanagers = []Receiver{{}} }, "alerts.alertmanagers[0].url: is required"},
		{"url credentials", func(c *Config) { c.Webhooks = []Receiver{{URL: "http://u:p@h/x"}} }, "alerts.webhooks[0].url: must not hold credentials"},
		{"authorization header", func(c *Config) {
			c.Webhooks = []Receiver{{URL: "http://h/x", Headers: map[string]string{"authorization": "Bearer x"}}}
		}, "alerts.webhooks[0].headers.authorization: secrets do not belong"},
		{"two token sources", func(c *Config) {
			c.Webhooks = []Receiver{{URL: "http://h/x", BearerTokenFile: "/f", BearerTokenEnv: "E"}}
		}, "alerts.webhooks[0].bearer_token_env"},
		{"duplicate names", func(c *Config) {
			c.Webhooks = []Receiver{{URL: "http://h/x"}, {URL: "http://h/y"}}
		}, "alerts.webhooks[1].name: \"http://h\" is also the name of alerts.webhooks[0]"},
		{"queue size", func(c *Config) { c.Delivery.QueueSize = -1 }, "alerts.delivery.queue_size"},
		{"backoff order", func(c *Config) { c.Delivery.MinBackoff, c.Delivery.MaxBackoff = time.Minute, time.Second }, "alerts.delivery.max_backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestInheritedThresholdErrorOnce: a global warning above the built-in
// critical is reported at the global key, and not again at each model
// that sets nothing for the rule but, say, its min_samples.
func TestInheritedThresholdErrorOnce(t *testing.T) {
	c := DefaultConfig()
	c.Rules.LatencyP95.Warning = ptr(5000.0)
	c.Models = map[string]Rules{
		"quiet": {LatencyP95: RuleConfig{MinSamples: ptr(5)}},
		"own":   {LatencyP95: RuleConfig{Critical: ptr(4000.0)}},
	}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "alerts.rules.latency_p95.critical") {
		t.Fatalf("error %v; want the global key's", err)
	}
	if strings.Contains(err.Error(), "models.quiet") {
		t.Errorf("a model that sets no threshold got the global error again: %v", err)
	}
	// A model that sets a threshold of its own is checked with it.
	if !strings.Contains(err.Error(), "alerts.models.own.latency_p95.critical: 4000 is below warning 5000") {
		t.Errorf("error %v; want the model's own key too", err)
	}
}

func TestBearerTokenEnv(t *testing.T) {
	cfg := Config{Webhooks: []Receiver{{URL: "http://127.0.0.1:1/hook", BearerTokenEnv: "HOOK_TOKEN"}}}
	_, err := New(cfg, Options{Stats: &fakeStats{}, Env: func(string) (string, bool) { return "", false }})
	if err == nil || !strings.Contains(err.Error(), "alerts.webhooks[0]: bearer_token_env: environment variable HOOK_TOKEN is not set") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkEvaluate: one evaluation of the latency and error rules over
// 256 (model, version) pairs (observe.max_models' default), all firing,
// with an Alertmanager and a webhook receiver queued (not sent).
func BenchmarkEvaluate(b *testing.B) {
	st := &fakeStats{}
	for i := range 256 {
		s := latency(250, 1000)
		er := 0.05
		s.ErrorRate = &er
		st.set("model-"+strings.Repeat("x", i%7)+string(rune('a'+i%26)), "v"+string(rune('0'+i/26)), s)
	}
	clk := &clock{t: time.Now()}
	m, err := New(Config{Rules: Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}, ErrorRate: RuleConfig{For: ptr(time.Duration(0))}},
		Alertmanagers: []Receiver{{URL: "http://127.0.0.1:1"}}, Webhooks: []Receiver{{URL: "http://127.0.0.2:1"}}}, Options{Stats: st, Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		clk.Advance(time.Minute) // every alert is due for a resend
		m.Evaluate()
		for _, r := range m.receivers {
			for len(r.queue) > 0 {
				<-r.queue
			}
		}
	}
}

// TestDriftThresholdFollowsSeverity: a statistic method's drift alert
// reports the threshold of its severity (api.md: "threshold is the one of
// the current severity"): PSI's 0.2 when critical, 0.1 when warning.
func TestDriftThresholdFollowsSeverity(t *testing.T) {
	fd := &fakeDrift{}
	m, _, clk := newTestManager(t, Config{}, fd)
	for _, s := range []struct {
		sev  string
		stat float64
		want Severity
		thr  float64
	}{
		{"critical", 0.3, SeverityCritical, 0.2},
		{"warning", 0.15, SeverityWarning, 0.1},
	} {
		clk.Advance(15 * time.Second)
		fd.mu.Lock()
		fd.findings = []DriftFinding{{Model: "fraud", Version: "v1", Feature: "amount", Method: "psi",
			Statistic: s.stat, Threshold: 0.1, Critical: 0.2, Severity: s.sev, EvaluatedAt: clk.Now()}}
		fd.mu.Unlock()
		m.Evaluate()
		a := find(m, RuleDrift, "fraud", "v1", "amount")
		if a == nil || a.Severity != s.want || a.Threshold != s.thr {
			t.Fatalf("%s: alert %+v, want severity %s with threshold %g", s.sev, a, s.want, s.thr)
		}
	}
}
