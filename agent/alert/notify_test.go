package alert

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	vtest "github.com/vigilml/vigil/internal/testutil"
)

// startReceivers runs every receiver's delivery loop until the test ends.
func startReceivers(t *testing.T, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, r := range m.receivers {
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func counter(m *Manager, receiver, result string) float64 {
	return testutil.ToFloat64(m.metrics.notifications.WithLabelValues(receiver, result))
}

// TestWebhookRetries: a webhook that fails its first two attempts with
// 503 gets the notification on the third, with the bearer token from its
// file; the counters and the status say so.
func TestWebhookRetries(t *testing.T) {
	var mu sync.Mutex
	var attempts int
	var got WebhookPayload
	var auth, custom string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts <= 2 {
			// Quoting the credential, as some proxies do.
			http.Error(w, "try later; you sent "+r.Header.Get("Authorization"), http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil {
			t.Errorf("webhook body: %v: %s", err, body)
		}
		auth, custom = r.Header.Get("Authorization"), r.Header.Get("X-Team")
	}))
	defer srv.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Rules:    Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Webhooks: []Receiver{{Name: "hook", URL: srv.URL + "/hook/SECRETPATH", BearerTokenFile: tokenFile, Headers: map[string]string{"X-Team": "ml"}}},
		Delivery: Delivery{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxAttempts: 5},
	}
	m, st, _ := newTestManager(t, cfg, nil)
	startReceivers(t, m)
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	waitFor(t, "the webhook's sent counter", func() bool { return counter(m, "hook", resultSent) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if attempts != 3 || counter(m, "hook", resultRetried) != 2 || counter(m, "hook", resultFailed) != 0 {
		t.Fatalf("attempts %d, retried %v, failed %v", attempts, counter(m, "hook", resultRetried), counter(m, "hook", resultFailed))
	}
	if auth != "Bearer s3cret-token" || custom != "ml" {
		t.Errorf("headers: Authorization %q, X-Team %q", auth, custom)
	}
	if got.Version != "1" || got.Instance != "node-1" || len(got.Alerts) != 1 {
		t.Fatalf("payload %+v", got)
	}
	a := got.Alerts[0]
	if a.State != StateFiring || a.Severity != SeverityWarning || a.Labels["model"] != "fraud" || a.Labels["alertname"] != "VigilLatencyP95High" || a.Value != 150 {
		t.Errorf("alert in payload: %+v", a)
	}
	rs := m.Status().Receivers
	if len(rs) != 1 || rs[0].Failing || rs[0].Notifications != 1 || rs[0].LastSuccess == nil || !strings.Contains(rs[0].LastError, "503") {
		t.Errorf("receiver status %+v", rs)
	}
	if strings.Contains(rs[0].LastError, "SECRETPATH") {
		t.Errorf("the error shows the URL's path: %q", rs[0].LastError)
	}
	if strings.Contains(rs[0].LastError, "s3cret-token") || !strings.Contains(rs[0].LastError, "[redacted]") {
		t.Errorf("the error quotes the receiver's token: %q", rs[0].LastError)
	}
}

// TestWebhookGivesUp: a 4xx answer is not retried; a dead server is tried
// max_attempts times; both count as failed and mark the receiver failing.
func TestWebhookGivesUp(t *testing.T) {
	var mu sync.Mutex
	var attempts int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		http.Error(w, "bad payload", http.StatusBadRequest)
	}))
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	cfg := Config{
		Rules:    Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Webhooks: []Receiver{{Name: "refuses", URL: srv.URL}, {Name: "dead", URL: deadURL}},
		Delivery: Delivery{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, MaxAttempts: 3},
	}
	m, st, _ := newTestManager(t, cfg, nil)
	startReceivers(t, m)
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	waitFor(t, "both receivers to give up", func() bool {
		return counter(m, "refuses", resultFailed) == 1 && counter(m, "dead", resultFailed) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if attempts != 1 || counter(m, "refuses", resultRetried) != 0 {
		t.Errorf("a 400 was retried: %d attempts", attempts)
	}
	if counter(m, "dead", resultRetried) != 2 {
		t.Errorf("dead receiver retried %v times, want 2", counter(m, "dead", resultRetried))
	}
	reason, degraded := m.Status().Reason()
	if !degraded || !strings.Contains(reason, "delivery failing to") || !strings.Contains(reason, "400 Bad Request") {
		t.Errorf("status reason %q degraded %v", reason, degraded)
	}
}

// TestQueueDropsOldest: a receiver whose loop is stalled never blocks
// evaluation; past queue_size the oldest notification is dropped.
func TestQueueDropsOldest(t *testing.T) {
	cfg := Config{
		Rules:    Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Webhooks: []Receiver{{Name: "stalled", URL: "http://127.0.0.1:1/"}},
		Delivery: Delivery{QueueSize: 2},
	}
	m, st, clk := newTestManager(t, cfg, nil)
	// No receiver loop runs: every state change queues a body.
	for i, p95 := range []float64{150, 10, 150, 10} {
		clk.Advance(15 * time.Second)
		st.set("fraud", "v1", latency(p95, 200))
		m.Evaluate()
		_ = i
	}
	r := m.receivers[0]
	if len(r.queue) != 2 || counter(m, "stalled", resultDropped) != 2 || r.status().Dropped != 2 {
		t.Fatalf("queue %d, dropped %v", len(r.queue), counter(m, "stalled", resultDropped))
	}
	var p WebhookPayload
	if err := json.Unmarshal(<-r.queue, &p); err != nil || p.Alerts[0].State != StateFiring {
		t.Fatalf("oldest kept should be the second firing: %+v %v", p, err)
	}
}

// TestAlertmanagerPayload checks the v2 body: firing alerts resent every
// resend_interval with endsAt in the future, a severity change resolving
// the old label set, resolved alerts with endsAt = resolution time.
func TestAlertmanagerPayload(t *testing.T) {
	cfg := Config{
		Rules:          Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Alertmanagers:  []Receiver{{Name: "am", URL: "http://127.0.0.1:1"}},
		ResendInterval: time.Minute,
		GeneratorURL:   "http://grafana.example/d/vigil",
	}
	m, st, clk := newTestManager(t, cfg, nil)
	r := m.receivers[0]
	if r.url != "http://127.0.0.1:1/api/v2/alerts" {
		t.Fatalf("url %s", r.url)
	}
	next := func() []PostableAlert { t.Helper(); return nextPost(t, m) }
	t0 := clk.Now()
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	got := next()
	if len(got) != 1 || got[0].Labels["severity"] != "warning" || !got[0].StartsAt.Equal(t0) || !got[0].EndsAt.Equal(t0.Add(4*time.Minute)) ||
		got[0].Annotations["summary"] == "" || got[0].GeneratorURL != cfg.GeneratorURL || got[0].Labels["instance"] != "node-1" {
		t.Fatalf("first send: %+v", got)
	}
	clk.Advance(30 * time.Second)
	m.Evaluate()
	if got := next(); got != nil {
		t.Fatalf("sent again before resend_interval: %+v", got)
	}
	clk.Advance(30 * time.Second)
	m.Evaluate()
	if got := next(); len(got) != 1 || !got[0].EndsAt.Equal(clk.Now().Add(4*time.Minute)) {
		t.Fatalf("resend: %+v", got)
	}
	clk.Advance(15 * time.Second)
	st.set("fraud", "v1", latency(250, 200))
	m.Evaluate()
	got = next()
	if len(got) != 2 || got[0].Labels["severity"] != "warning" || !got[0].EndsAt.Equal(clk.Now()) ||
		got[1].Labels["severity"] != "critical" || got[1].EndsAt.Before(clk.Now().Add(time.Minute)) {
		t.Fatalf("escalation: %+v", got)
	}
	clk.Advance(15 * time.Second)
	st.set("fraud", "v1", latency(10, 200))
	m.Evaluate()
	got = next()
	if len(got) != 1 || got[0].Labels["severity"] != "critical" || !got[0].EndsAt.Equal(clk.Now()) {
		t.Fatalf("resolution: %+v", got)
	}
}

// TestAlertmanagerIntegration delivers to a real Alertmanager: a firing
// alert appears in its GET /api/v2/alerts with the right labels and
// annotations, an escalation replaces the warning with the critical, and
// resolving removes it.
func TestAlertmanagerIntegration(t *testing.T) {
	am := vtest.StartAlertmanager(t)
	cfg := Config{
		Rules:         Rules{LatencyP95: RuleConfig{For: ptr(time.Duration(0))}},
		Alertmanagers: []Receiver{{Name: "am", URL: am.URL}},
		Delivery:      Delivery{MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
	}
	st := &fakeStats{}
	m, err := New(cfg, Options{Stats: st, Instance: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	startReceivers(t, m)
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	match := map[string]string{"alertname": "VigilLatencyP95High", "rule": "latency_p95", "model": "fraud", "version": "v1", "instance": "node-1"}
	got := am.WaitAlerts(t, 10*time.Second, "the warning alert", func(as []vtest.AMAlert) bool {
		return len(as) == 1 && vtest.Find(as, match) != nil
	})
	a := got[0]
	if a.Labels["severity"] != "warning" || a.Status.State != "active" || !strings.Contains(a.Annotations["summary"], "p95 latency of fraud v1") || a.Annotations["value"] != "150" {
		t.Fatalf("alert in alertmanager: %+v", a)
	}
	st.set("fraud", "v1", latency(250, 200))
	m.Evaluate()
	am.WaitAlerts(t, 10*time.Second, "only the critical alert", func(as []vtest.AMAlert) bool {
		return len(as) == 1 && as[0].Labels["severity"] == "critical"
	})
	st.set("fraud", "v1", latency(10, 200))
	m.Evaluate()
	am.WaitAlerts(t, 10*time.Second, "no alerts after resolution", func(as []vtest.AMAlert) bool { return len(as) == 0 })
	// Alertmanager can show the resolution before the sender has read its
	// answer and counted the delivery: wait for the count.
	deadline := time.Now().Add(5 * time.Second)
	for counter(m, "am", resultSent) != 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if counter(m, "am", resultSent) != 3 || counter(m, "am", resultFailed) != 0 {
		t.Errorf("sent %v failed %v", counter(m, "am", resultSent), counter(m, "am", resultFailed))
	}
}

// TestMetrics: vigil_alert_active is 1 per firing (rule, model, version,
// severity) and absent for pending alerts; promtool-clean names.
func TestMetrics(t *testing.T) {
	cfg := Config{Models: map[string]Rules{"now": {LatencyP95: RuleConfig{For: ptr(time.Duration(0))}}},
		Webhooks: []Receiver{{Name: "hook", URL: "http://127.0.0.1:1/"}}}
	m, st, _ := newTestManager(t, cfg, nil)
	st.set("now", "v1", latency(250, 200))
	st.set("later", "v1", latency(250, 200))
	m.Evaluate()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(m)
	want := `
# HELP vigil_alert_active 1 for each (rule, model, version, severity) with at least one firing alert; absent otherwise. Drift alerts of several features of one model version share a series.
# TYPE vigil_alert_active gauge
vigil_alert_active{model="now",rule="latency_p95",severity="critical",version="v1"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_alert_active"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg, "vigil_alert_notifications_total"); err != nil || n != 4 {
		t.Fatalf("notification series %d, %v", n, err)
	}
}
