package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

type alertsBody struct {
	Enabled bool `json:"enabled"`
	Alerts  []struct {
		ID          string            `json:"id"`
		Rule        string            `json:"rule"`
		State       string            `json:"state"`
		Severity    string            `json:"severity"`
		Labels      map[string]string `json:"labels"`
		Value       float64           `json:"value"`
		Threshold   float64           `json:"threshold"`
		Samples     uint64            `json:"samples"`
		ActiveSince time.Time         `json:"active_since"`
		FiredAt     *time.Time        `json:"fired_at"`
	} `json:"alerts"`
	Status struct {
		Firing    int `json:"firing"`
		Receivers []struct {
			Name          string `json:"name"`
			Notifications uint64 `json:"notifications_sent"`
			Failing       bool   `json:"failing"`
		} `json:"receivers"`
		Inactive []string `json:"inactive_rules"`
	} `json:"status"`
}

func getAlerts(t *testing.T, base string) alertsBody {
	t.Helper()
	code, body := get(t, base+"/v1/alerts", "")
	if code != 200 {
		t.Fatalf("GET /v1/alerts: %d %s", code, body)
	}
	var out alertsBody
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET /v1/alerts: %v: %s", err, body)
	}
	return out
}

// TestLatencyAlertEndToEnd drives the real agent with a real Alertmanager:
// observations with a high p95 latency make latency_p95 fire as critical
// in /v1/alerts, in Alertmanager (with the agent's node name as
// instance), on /metrics (promtool-clean) and in `vigil alerts`; a model
// with only 8 slow requests and a fast model raise nothing.
func TestLatencyAlertEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	am := testutil.StartAlertmanager(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "node_name: e2e-node\ndata_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
alerts:
  interval: 200ms
  resend_interval: 1s
  rules:
    latency_p95:
      for: 1s
      min_samples: 50
  alertmanagers:
    - name: am
      url: `+am.URL+`
  delivery:
    min_backoff: 50ms
    max_backoff: 500ms
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	first := getAlerts(t, base)
	if !first.Enabled || len(first.Alerts) != 0 || len(first.Status.Inactive) != 0 {
		t.Fatalf("before any observation: %+v", first)
	}

	post := func(model string, n int, latency func(i int) float64) {
		items := make([]map[string]any, n)
		for i := range items {
			items[i] = map[string]any{"model": model, "version": "v1", "latency_ms": latency(i), "status": 200}
		}
		if code, body := postJSON(t, base+"/v1/observations", map[string]any{"observations": items}); code != 202 {
			t.Fatalf("POST %s: %d %v", model, code, body)
		}
	}
	post("fraud", 200, func(i int) float64 { return 250 + float64(i%100) }) // p95 ≈ 345 ms
	post("fast", 200, func(i int) float64 { return 5 })
	post("tiny", 8, func(i int) float64 { return 900 })

	var got alertsBody
	waitFor(t, func() bool {
		got = getAlerts(t, base)
		return len(got.Alerts) > 0 && got.Alerts[0].State == "firing"
	}, "latency_p95 to fire in /v1/alerts")
	if len(got.Alerts) != 1 {
		t.Fatalf("want exactly one alert (fraud), got %+v", got.Alerts)
	}
	al := got.Alerts[0]
	if al.Rule != "latency_p95" || al.Severity != "critical" || al.Labels["model"] != "fraud" || al.Labels["version"] != "v1" ||
		al.Labels["instance"] != "e2e-node" || al.Threshold != 200 || al.Value < 340 || al.Value > 350 || al.Samples != 200 ||
		al.FiredAt == nil || al.FiredAt.Sub(al.ActiveSince) < time.Second {
		t.Fatalf("alert %+v", al)
	}

	amAlerts := am.WaitAlerts(t, 10*time.Second, "the agent's alert", func(as []testutil.AMAlert) bool {
		return testutil.Find(as, map[string]string{"alertname": "VigilLatencyP95High", "model": "fraud"}) != nil
	})
	if len(amAlerts) != 1 {
		t.Fatalf("alertmanager holds %d alerts, want 1: %+v", len(amAlerts), amAlerts)
	}
	for k, v := range map[string]string{"severity": "critical", "rule": "latency_p95", "version": "v1", "instance": "e2e-node"} {
		if amAlerts[0].Labels[k] != v {
			t.Errorf("alertmanager label %s = %q, want %q", k, amAlerts[0].Labels[k], v)
		}
	}
	if !strings.Contains(amAlerts[0].Annotations["summary"], "p95 latency of fraud v1") || amAlerts[0].Status.State != "active" {
		t.Errorf("alertmanager alert %+v", amAlerts[0])
	}

	code, metrics := get(t, base+"/metrics", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`vigil_alert_active{model="fraud",rule="latency_p95",severity="critical",version="v1"} 1`,
		`vigil_alert_notifications_total{receiver="am",result="sent"}`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if bytes.Contains(metrics, []byte(`vigil_alert_active{model="tiny"`)) || bytes.Contains(metrics, []byte(`vigil_alert_active{model="fast"`)) {
		t.Error("an alert is active for tiny or fast")
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics failed: %v\n%s", err, out)
	}

	out, err := runCLI("alerts", "-http-addr", a.addr)
	if err != nil || !strings.Contains(out, "STATE") {
		t.Fatalf("vigil alerts: %v\n%s", err, out)
	}
	row := grepLines(out, "latency_p95")
	for _, want := range []string{"firing", "critical", "fraud", "v1", "200.0 ms"} {
		if !strings.Contains(row, want) {
			t.Errorf("vigil alerts row %q lacks %q", row, want)
		}
	}
	out, err = runCLI("alerts", "-http-addr", a.addr, "-format", "json", "-all")
	var js alertsBody
	if err != nil || json.Unmarshal([]byte(out), &js) != nil || len(js.Alerts) != 1 || js.Alerts[0].ID != al.ID {
		t.Fatalf("vigil alerts -format json: %v\n%s", err, out)
	}
	code, body := get(t, base+"/v1/alerts?state=bogus", "")
	if code != 400 || !strings.Contains(string(body), "query parameter state") {
		t.Errorf("state=bogus: %d %s", code, body)
	}
	code, body = get(t, base+"/v1/status", "")
	if code != 200 || !strings.Contains(string(body), fmt.Sprintf("%d firing", 1)) {
		t.Errorf("/v1/status does not report the firing alert: %s", body)
	}

	// The agent crashes (SIGKILL: no clean shutdown) and starts again: the
	// alert is firing from the first moment, as the same alert (id, start
	// and firing times), and stays active in Alertmanager.
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.waitExit(t, 10*time.Second)
	a = startAgent(t, nil, "-config", cfg)
	base = "http://" + a.addr
	after := getAlerts(t, base)
	if len(after.Alerts) != 1 || after.Alerts[0].ID != al.ID || after.Alerts[0].State != "firing" ||
		!after.Alerts[0].ActiveSince.Equal(al.ActiveSince) || after.Alerts[0].FiredAt == nil || !after.Alerts[0].FiredAt.Equal(*al.FiredAt) {
		t.Fatalf("after a crash and restart: %+v\nbefore: %+v", after.Alerts, al)
	}
	waitFor(t, func() bool {
		got := getAlerts(t, base)
		return got.Status.Firing == 1 && len(got.Status.Receivers) == 1 && got.Status.Receivers[0].Notifications > 0
	}, "the restarted agent to send the restored alert to Alertmanager")
	amAlerts = am.WaitAlerts(t, 10*time.Second, "the alert after the restart", func(as []testutil.AMAlert) bool {
		return testutil.Find(as, map[string]string{"alertname": "VigilLatencyP95High", "model": "fraud"}) != nil
	})
	if len(amAlerts) != 1 || amAlerts[0].Status.State != "active" {
		t.Fatalf("alertmanager after the restart: %+v", amAlerts)
	}

	// SIGHUP with the latency thresholds raised above the model's p95: the
	// running agent applies the alerts section, and the alert resolves in
	// the agent and in Alertmanager.
	orig, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raised := strings.Replace(string(orig), "      min_samples: 50\n", "      min_samples: 50\n      warning: 1000\n      critical: 2000\n", 1)
	writeFile(t, cfg, raised)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), `"alerts.rules.latency_p95.warning"`) }, "the reload to apply the alerts section")
	waitFor(t, func() bool {
		got := getAlerts(t, base)
		return len(got.Alerts) == 1 && got.Alerts[0].State == "resolved"
	}, "the alert to resolve under the raised thresholds")
	am.WaitAlerts(t, 10*time.Second, "Alertmanager to see the resolution", func(as []testutil.AMAlert) bool {
		return testutil.Find(as, map[string]string{"alertname": "VigilLatencyP95High", "model": "fraud"}) == nil
	})
	if strings.Contains(a.stderr.String(), `need a restart to take effect; the agent keeps the running values","keys":["alerts`) {
		t.Errorf("the reload logged alerts keys as needing a restart:\n%s", a.stderr)
	}
}
