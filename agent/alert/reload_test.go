package alert

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// hookServer is a webhook receiver that records the alerts it was sent.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	alerts []Alert
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p WebhookPayload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		h.mu.Lock()
		h.alerts = append(h.alerts, p.Alerts...)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) received() []Alert {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Alert(nil), h.alerts...)
}

// TestReloadRulesKeepsState: a reload that raises the threshold resolves a
// firing alert at the next evaluation, one that lowers it again makes a
// new episode; the alert's state is kept across the reload itself.
func TestReloadRulesKeepsState(t *testing.T) {
	zero := ptr(time.Duration(0))
	m, st, clk := newTestManager(t, Config{Rules: Rules{LatencyP95: RuleConfig{For: zero}}}, nil)
	st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	before := find(m, "latency_p95", "fraud", "v1", "")
	if before == nil || before.State != StateFiring {
		t.Fatalf("before: %+v", before)
	}
	if err := m.Reload(Config{Rules: Rules{LatencyP95: RuleConfig{For: zero, Warning: ptr(500.0), Critical: ptr(900.0)}}}); err != nil {
		t.Fatal(err)
	}
	if a := find(m, "latency_p95", "fraud", "v1", ""); a == nil || a.State != StateFiring || a.ID != before.ID {
		t.Fatalf("the reload itself changed the alert: %+v", a)
	}
	if got := *m.Config().Rules.LatencyP95.Warning; got != 500 {
		t.Fatalf("Config() after reload: warning %v", got)
	}
	clk.Advance(15 * time.Second)
	m.Evaluate()
	if a := find(m, "latency_p95", "fraud", "v1", ""); a == nil || a.State != StateResolved {
		t.Fatalf("with the raised threshold: %+v", a)
	}
	if err := m.Reload(Config{Rules: Rules{LatencyP95: RuleConfig{For: zero, Enabled: ptr(false)}}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(15 * time.Second)
	m.Evaluate()
	if a := find(m, "latency_p95", "fraud", "v1", ""); a == nil || a.State != StateResolved {
		t.Fatalf("with the rule off: %+v", a)
	}
}

// TestReloadReceivers: while running, a reload moves delivery from one
// webhook to another (the new one gets the firing alert at the next
// evaluation, the old one's series go away); a reload whose token file
// cannot be read fails and changes nothing; a new interval takes effect.
func TestReloadReceivers(t *testing.T) {
	oldHook, newHook := newHookServer(t), newHookServer(t)
	zero := ptr(time.Duration(0))
	cfg := Config{Interval: 10 * time.Minute, Rules: Rules{LatencyP95: RuleConfig{For: zero}},
		Webhooks: []Receiver{{Name: "old", URL: oldHook.URL}}}
	st := &fakeStats{}
	m, err := New(cfg, Options{Stats: st, Instance: "node-1"})
	if err != nil {
		t.Fatal(err)
	}
	st.set("fraud", "v1", latency(150, 200))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the old webhook to get the alert", func() bool { return len(oldHook.received()) == 1 })

	bad := cfg
	bad.Webhooks = []Receiver{{Name: "new", URL: newHook.URL, BearerTokenFile: filepath.Join(t.TempDir(), "missing")}}
	if err := m.Reload(bad); err == nil || !strings.Contains(err.Error(), "alerts.webhooks[0]") {
		t.Fatalf("reload with an unreadable token file: %v", err)
	}
	if rs := m.Status().Receivers; len(rs) != 1 || rs[0].Name != "old" {
		t.Fatalf("a failed reload changed the receivers: %+v", rs)
	}

	next := cfg
	next.Interval = 100 * time.Millisecond
	next.Webhooks = []Receiver{{Name: "new", URL: newHook.URL}}
	if err := m.Reload(next); err != nil {
		t.Fatal(err)
	}
	// The interval drops from 10 minutes to 100 ms: evaluations resume at
	// once, and the alert, new to this receiver, is sent to it.
	waitFor(t, "the new webhook to get the firing alert", func() bool {
		got := newHook.received()
		return len(got) > 0 && got[0].State == StateFiring && got[0].Labels["model"] == "fraud"
	})
	if rs := m.Status().Receivers; len(rs) != 1 || rs[0].Name != "new" || m.Status().Interval != "100ms" {
		t.Fatalf("status after reload: %+v", m.Status())
	}
	if n := testutil.CollectAndCount(m, "vigil_alert_notifications_total"); n != 4 {
		t.Fatalf("%d notification series after the reload; want the new receiver's 4 only", n)
	}
	st.set("fraud", "v1", latency(10, 200))
	waitFor(t, "the new webhook to get the resolution", func() bool {
		got := newHook.received()
		return got[len(got)-1].State == StateResolved
	})
	if n := len(oldHook.received()); n != 1 {
		t.Fatalf("the old webhook got %d notifications; want only the one before the reload", n)
	}
}
