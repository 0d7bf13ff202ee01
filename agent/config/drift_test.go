package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestDriftAndModelsSections: the drift and models sections load, and bad
// keys or values are errors naming the file, line and key.
func TestDriftAndModelsSections(t *testing.T) {
	p := writeFile(t, t.TempDir(), "vigil.yaml", `
drift:
  interval: 10s
  current_window_time: 5m
  correction: bh
models:
  fraud:
    features:
      amount: {detector: psi, threshold: 0.25, params: {bins: 20}}
      prediction: {detector: jensenshannon}
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	f := l.Models["fraud"].Features["amount"]
	if l.Drift.Interval.String() != "10s" || f.Detector != "psi" || *f.Threshold != 0.25 || f.Params["bins"] != 20 || l.Drift.CurrentWindow != 1000 {
		t.Fatalf("loaded %+v %+v", l.Drift, l.Models)
	}
	for _, tc := range []struct{ body, want string }{
		{"drift:\n  intervall: 1s\n", `vigil.yaml:2: drift.intervall: unknown key "intervall" (did you mean "interval"?)`},
		{"drift:\n  correction: holm\n", "vigil.yaml:2: drift.correction: unknown correction"},
		{"models:\n  fraud:\n    features:\n      amount:\n        detectr: ks\n", `vigil.yaml:5: models.fraud.features.amount.detectr: unknown key "detectr" (did you mean "detector"?)`},
		{"models:\n  fraud:\n    features:\n      amount:\n        detector: ks\n        threshold: 2\n", "vigil.yaml:6: models.fraud.features.amount.threshold: is a p-value level for ks"},
		{"models:\n  fraud:\n    features:\n      amount:\n        threshold: nope\n", "vigil.yaml:5: models.fraud.features.amount.threshold: expected a number"},
	} {
		p := writeFile(t, t.TempDir(), "vigil.yaml", tc.body)
		_, err := Load(Options{Path: p, Env: noEnv})
		if err == nil {
			t.Errorf("%q loaded; want %q", tc.body, tc.want)
			continue
		}
		if msg := strings.ReplaceAll(err.Error(), filepath.Dir(p)+"/", ""); !strings.Contains(msg, tc.want) {
			t.Errorf("error %q does not contain %q", msg, tc.want)
		}
	}
}

// TestDriftSwitchesAreIndependent: turning the automatic reference off,
// in a file or the environment, leaves drift evaluation on, and the other
// way round (the two defaults once shared one *bool, so auto_reference:
// false switched the whole drift engine off).
func TestDriftSwitchesAreIndependent(t *testing.T) {
	for _, tc := range []struct {
		name, body  string
		env         map[string]string
		enabled, ar bool
	}{
		{name: "file auto_reference", body: "drift:\n  auto_reference: false\n", enabled: true, ar: false},
		{name: "file enabled", body: "drift:\n  enabled: false\n", enabled: false, ar: true},
		{name: "env auto_reference", body: "log_level: info\n", env: map[string]string{"VIGIL_DRIFT_AUTO_REFERENCE": "false"}, enabled: true, ar: false},
		{name: "env enabled", body: "log_level: info\n", env: map[string]string{"VIGIL_DRIFT_ENABLED": "false"}, enabled: false, ar: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "vigil.yaml", tc.body)
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			l, err := Load(Options{Path: p, Env: lookup})
			if err != nil {
				t.Fatal(err)
			}
			if *l.Drift.Enabled != tc.enabled || *l.Drift.AutoReference != tc.ar {
				t.Fatalf("drift.enabled=%v drift.auto_reference=%v; want %v %v", *l.Drift.Enabled, *l.Drift.AutoReference, tc.enabled, tc.ar)
			}
		})
	}
}
