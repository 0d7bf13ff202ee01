package alert

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// memState is a StateStore in memory; failing makes SaveAlerts fail.
type memState struct {
	mu      sync.Mutex
	b       []byte
	saves   int
	failing bool
}

func (s *memState) LoadAlerts() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b, nil
}

func (s *memState) SaveAlerts(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		return errors.New("disk full")
	}
	s.b = append([]byte(nil), b...)
	s.saves++
	return nil
}

func (s *memState) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves
}

// restartable builds managers that share stats, clock and saved state, as
// one agent restarted would.
type restartable struct {
	t     *testing.T
	cfg   Config
	st    *fakeStats
	clk   *clock
	state *memState
	log   *bytes.Buffer
}

func newRestartable(t *testing.T, cfg Config) *restartable {
	return &restartable{t: t, cfg: cfg, st: &fakeStats{}, clk: &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		state: &memState{}, log: &bytes.Buffer{}}
}

func (r *restartable) start() *Manager {
	r.t.Helper()
	m, err := New(r.cfg, Options{Stats: r.st, Now: r.clk.Now, Instance: "node-1", State: r.state,
		Logger: slog.New(slog.NewTextHandler(r.log, nil))})
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

// nextPost is what the manager queued for its first Alertmanager, nil
// when nothing.
func nextPost(t *testing.T, m *Manager) []PostableAlert {
	t.Helper()
	select {
	case b := <-m.receivers[0].queue:
		var out []PostableAlert
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	default:
		return nil
	}
}

// TestFiringAlertSurvivesRestart: a firing alert comes back firing after a
// restart, with the same id and times, is sent to Alertmanager again at
// the first evaluation (its endsAt refreshed), and resolves normally.
func TestFiringAlertSurvivesRestart(t *testing.T) {
	r := newRestartable(t, Config{Alertmanagers: []Receiver{{Name: "am", URL: "http://127.0.0.1:1"}}, ResendInterval: time.Minute})
	m1 := r.start()
	r.st.set("fraud", "v1", latency(150, 200))
	m1.Evaluate()
	r.clk.Advance(time.Minute)
	m1.Evaluate()
	before := find(m1, "latency_p95", "fraud", "v1", "")
	if before == nil || before.State != StateFiring {
		t.Fatalf("before the restart: %+v", before)
	}
	if nextPost(t, m1) == nil {
		t.Fatal("the firing alert was not queued for Alertmanager")
	}

	r.clk.Advance(20 * time.Second) // the agent is down
	m2 := r.start()
	after := find(m2, "latency_p95", "fraud", "v1", "")
	if after == nil || after.State != StateFiring || after.ID != before.ID || !after.FiredAt.Equal(*before.FiredAt) ||
		!after.ActiveSince.Equal(before.ActiveSince) || after.Severity != SeverityWarning || after.Labels["instance"] != "node-1" {
		t.Fatalf("after the restart: %+v\nbefore: %+v", after, before)
	}
	if got := m2.FiringCount(); got != 1 {
		t.Fatalf("FiringCount after restart = %d", got)
	}
	if !strings.Contains(r.log.String(), "restored alert state") {
		t.Fatalf("log does not say the state was restored:\n%s", r.log)
	}

	m2.Evaluate()
	got := nextPost(t, m2)
	if len(got) != 1 || !got[0].StartsAt.Equal(before.ActiveSince) || !got[0].EndsAt.Equal(r.clk.Now().Add(4*time.Minute)) {
		t.Fatalf("first send after the restart: %+v", got)
	}
	if a := find(m2, "latency_p95", "fraud", "v1", ""); a.State != StateFiring || !a.FiredAt.Equal(*before.FiredAt) {
		t.Fatalf("after the first evaluation: %+v", a)
	}

	r.clk.Advance(15 * time.Second)
	r.st.set("fraud", "v1", latency(10, 200))
	m2.Evaluate()
	got = nextPost(t, m2)
	if len(got) != 1 || !got[0].EndsAt.Equal(r.clk.Now()) {
		t.Fatalf("resolution after the restart: %+v", got)
	}
}

// TestPendingAlertDowntimeDoesNotCount: a pending alert is restored
// pending, and the time the agent was down does not count towards `for`.
func TestPendingAlertDowntimeDoesNotCount(t *testing.T) {
	r := newRestartable(t, Config{})
	m1 := r.start()
	r.st.set("fraud", "v1", latency(150, 200))
	m1.Evaluate()
	r.clk.Advance(40 * time.Second)
	m1.Evaluate()
	if a := find(m1, "latency_p95", "fraud", "v1", ""); a == nil || a.State != StatePending {
		t.Fatalf("before the restart: %+v", a)
	}
	// The last snapshot was taken at the first evaluation (nothing changed
	// since), 40 s before the agent went down for 10 minutes more.
	r.clk.Advance(10 * time.Minute)
	m2 := r.start()
	a := find(m2, "latency_p95", "fraud", "v1", "")
	if a == nil || a.State != StatePending {
		t.Fatalf("after the restart: %+v", a)
	}
	m2.Evaluate()
	if a := find(m2, "latency_p95", "fraud", "v1", ""); a.State != StatePending {
		t.Fatalf("fired at once after a restart, counting the downtime: %+v", a)
	}
	r.clk.Advance(time.Minute)
	m2.Evaluate()
	if a := find(m2, "latency_p95", "fraud", "v1", ""); a.State != StateFiring {
		t.Fatalf("did not fire once `for` held after the restart: %+v", a)
	}
}

// TestStateSavedOnChangeAndRefreshed: a snapshot is written when an alert
// changes state, rewritten while alerts are listed (so that its age tells
// the downtime), and not written at all while nothing is listed.
func TestStateSavedOnChangeAndRefreshed(t *testing.T) {
	r := newRestartable(t, Config{})
	m := r.start()
	for range 5 {
		m.Evaluate()
		r.clk.Advance(time.Minute)
	}
	if n := r.state.count(); n != 0 {
		t.Fatalf("%d snapshots written with no alerts ever listed", n)
	}
	r.st.set("fraud", "v1", latency(150, 200))
	m.Evaluate() // pending
	if n := r.state.count(); n != 1 {
		t.Fatalf("%d snapshots after the alert appeared; want 1", n)
	}
	r.clk.Advance(15 * time.Second)
	m.Evaluate() // still pending, nothing changed
	if n := r.state.count(); n != 1 {
		t.Fatalf("%d snapshots after an evaluation that changed nothing; want 1", n)
	}
	r.clk.Advance(45 * time.Second)
	m.Evaluate() // fires
	if n := r.state.count(); n != 2 {
		t.Fatalf("%d snapshots after the alert fired; want 2", n)
	}
	r.clk.Advance(stateRefresh)
	m.Evaluate() // firing, unchanged, but the snapshot is stateRefresh old
	if n := r.state.count(); n != 3 {
		t.Fatalf("%d snapshots after %s; want 3", n, stateRefresh)
	}
	var s snapshot
	if err := json.Unmarshal(r.state.b, &s); err != nil || !s.SavedAt.Equal(r.clk.Now()) || len(s.Alerts) != 1 || s.Alerts[0].State != StateFiring {
		t.Fatalf("snapshot %s (%v)", r.state.b, err)
	}
}

// TestStaleOrBadStateIgnored: a snapshot older than the outage tolerance,
// of another version or not JSON is logged and ignored; the agent starts
// with no alerts.
func TestStaleOrBadStateIgnored(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(r *restartable)
		logs    string
	}{
		{"older than the outage tolerance", func(r *restartable) {
			m := r.start()
			r.st.set("fraud", "v1", latency(150, 200))
			m.Evaluate()
			r.clk.Advance(time.Minute)
			m.Evaluate()
			r.clk.Advance(OutageTolerance + time.Second)
		}, "more than the outage tolerance"},
		{"another version", func(r *restartable) {
			r.state.b = []byte(`{"version": 99, "saved_at": "2026-01-02T03:04:05Z", "alerts": []}`)
		}, "version 99"},
		{"not JSON", func(r *restartable) { r.state.b = []byte("\x00garbage") }, "decode saved alert state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRestartable(t, Config{})
			tc.prepare(r)
			m := r.start()
			if got := m.Alerts(); len(got) != 0 {
				t.Fatalf("alerts restored: %+v", got)
			}
			if !strings.Contains(r.log.String(), tc.logs) || !strings.Contains(r.log.String(), "starting with no alerts") {
				t.Fatalf("log does not say why (%q):\n%s", tc.logs, r.log)
			}
		})
	}
}

// TestStateSaveFailureCounted: a failing store never stops evaluation; it
// is logged once per run of failures and counted.
func TestStateSaveFailureCounted(t *testing.T) {
	r := newRestartable(t, Config{})
	r.state.failing = true
	m := r.start()
	r.st.set("fraud", "v1", latency(150, 200))
	m.Evaluate()
	r.clk.Advance(time.Minute)
	m.Evaluate()
	if a := find(m, "latency_p95", "fraud", "v1", ""); a == nil || a.State != StateFiring {
		t.Fatalf("evaluation stopped by a failing store: %+v", a)
	}
	if got := testutil.ToFloat64(m.metrics.stateSaveFailures); got != 2 {
		t.Fatalf("vigil_alert_state_save_failures_total = %v; want 2", got)
	}
	if n := strings.Count(r.log.String(), "cannot save the alert state"); n != 1 {
		t.Fatalf("logged %d times; want once:\n%s", n, r.log)
	}
}
