package config

import (
	"strings"
	"testing"
	"time"
)

// TestAlertsSection: the alerts section decodes strictly (unknown rule
// names and keys are errors with file and line), per-model overrides
// merge over the global rules, and semantic errors name the key and line.
func TestAlertsSection(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "vigil.yaml", `
alerts:
  interval: 5s
  rules:
    latency_p95:
      warning: 50
      for: 30s
  models:
    fraud:
      latency_p95:
        critical: 400
      error_rate:
        enabled: false
  alertmanagers:
    - url: http://127.0.0.1:9093
  webhooks:
    - name: pager
      url: https://hooks.example/x
      bearer_token_env: HOOK_TOKEN
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	a := l.Alerts
	if a.Interval != 5*time.Second || len(a.Alertmanagers) != 1 || a.Webhooks[0].Name != "pager" {
		t.Fatalf("alerts: %+v", a)
	}
	e := a.RuleFor("latency_p95", "fraud")
	if e.Warning != 50 || e.Critical != 400 || e.For != 30*time.Second || e.MinSamples != 100 || !e.Enabled {
		t.Errorf("fraud latency_p95: %+v", e)
	}
	if e := a.RuleFor("latency_p95", "other"); e.Warning != 50 || e.Critical != 200 {
		t.Errorf("other latency_p95: %+v", e)
	}
	if a.RuleFor("error_rate", "fraud").Enabled || !a.RuleFor("error_rate", "other").Enabled {
		t.Error("error_rate enabled: false for fraud only")
	}

	for _, tc := range []struct{ body, want string }{
		{"alerts:\n  rules:\n    latency_p99:\n      warning: 1\n", `vigil.yaml:3: alerts.rules.latency_p99: unknown key "latency_p99"`},
		{"alerts:\n  models:\n    fraud:\n      error_rate:\n        treshold: 1\n", `vigil.yaml:5: alerts.models.fraud.error_rate.treshold: unknown key "treshold"`},
		{"alerts:\n  rules:\n    error_rate:\n      warning: 0.5\n      critical: 0.1\n", "vigil.yaml:5: alerts.rules.error_rate.critical: 0.1 is below warning 0.5"},
		{"alerts:\n  rules:\n    drift:\n      warning: 0.3\n", "vigil.yaml:4: alerts.rules.drift.warning: does not apply to drift"},
		{"alerts:\n  webhooks:\n    - url: ftp://x\n", `vigil.yaml:3: alerts.webhooks[0].url: "ftp://x" is not an http(s) URL`},
	} {
		p := writeFile(t, t.TempDir(), "vigil.yaml", tc.body)
		_, err := Load(Options{Path: p, Env: noEnv})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.body, err, tc.want)
		}
	}
}
