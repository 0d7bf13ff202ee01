package alert

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options are what the agent hands the manager besides configuration.
type Options struct {
	// Stats gives the model stats the latency and error rules read.
	// Required.
	Stats StatsSource
	// Drift feeds the drift and accuracy_drop rules; nil until agent/drift
	// is plugged in (SetDriftSource).
	Drift DriftSource
	// Instance is the instance label of every delivered alert: the node
	// name.
	Instance string
	Logger   *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject their own.
	Now func() time.Time
	// Env looks up environment variables (bearer_token_env); nil means
	// os.LookupEnv.
	Env func(string) (string, bool)
	// Client sends notifications; nil builds one.
	Client *http.Client
	// State keeps the alerts across restarts; nil keeps them in memory
	// only.
	State StateStore
}

// Manager evaluates the rules, keeps every alert's state and hands
// notifications to the receivers. Evaluation never waits for delivery.
type Manager struct {
	cfg        Config
	opts       Options
	log        *slog.Logger
	modelNames []string
	drift      atomic.Pointer[driftHolder]
	receivers  []*receiver
	metrics    *metrics

	mu        sync.Mutex // guards cfg, modelNames, receivers, runCtx and the fields below
	alerts    map[string]*tracked
	lastEval  time.Time
	evalCount uint64
	snapSeq   uint64    // numbers the state snapshots, in the order taken
	snapAt    time.Time // when the last one was taken

	runCtx   context.Context // set while Run runs, for receivers started later
	runWG    sync.WaitGroup  // the receivers' delivery loops
	reloaded chan struct{}   // Reload tells Run to pick up a new interval

	saveMu      sync.Mutex // serializes writes to opts.State
	savedSeq    uint64
	saveFailing bool
}

type driftHolder struct{ DriftSource }

// New builds a manager; Run starts it. It fails when a receiver's token
// cannot be read.
func New(cfg Config, opts Options) (*Manager, error) {
	if opts.Stats == nil {
		return nil, fmt.Errorf("alerts: no stats source")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Env == nil {
		opts.Env = os.LookupEnv
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	m := &Manager{cfg: cfg, opts: opts, log: opts.Logger, alerts: map[string]*tracked{}, reloaded: make(chan struct{}, 1)}
	m.modelNames = slices.Sorted(maps.Keys(cfg.Models))
	m.metrics = newMetrics()
	m.SetDriftSource(opts.Drift)
	recv, err := m.buildReceivers(cfg)
	if err != nil {
		return nil, err
	}
	m.receivers = recv
	m.loadState()
	return m, nil
}

// buildReceivers makes the receivers cfg names, sorted by name.
func (m *Manager) buildReceivers(cfg Config) ([]*receiver, error) {
	var out []*receiver
	for _, group := range []struct {
		kind string
		list []Receiver
	}{{kindAlertmanager, cfg.Alertmanagers}, {kindWebhook, cfg.Webhooks}} {
		kind := group.kind
		for i, rc := range group.list {
			r, err := newReceiver(kind, rc, cfg.Delivery, m.opts)
			if err != nil {
				return nil, fmt.Errorf("alerts.%s[%d]: %w", kind+"s", i, err)
			}
			r.metrics = m.metrics
			out = append(out, r)
			m.metrics.initReceiver(r.name)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// Reload applies a new configuration to the running manager: rules,
// thresholds, models, intervals and receivers. Alerts keep their state;
// one whose rule is now off, or whose condition no longer holds under the
// new thresholds, resolves at the next evaluation. When the receivers or
// the delivery settings changed, new receivers replace the old ones, what
// waited in the old queues is dropped, and every firing or resolved alert
// is sent to the new ones at the next evaluation. On error (such as an unreadable token file)
// nothing changes.
func (m *Manager) Reload(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	cfg = cfg.withDefaults()
	m.mu.Lock()
	old := m.cfg
	m.mu.Unlock()
	same := reflect.DeepEqual(old.Alertmanagers, cfg.Alertmanagers) && reflect.DeepEqual(old.Webhooks, cfg.Webhooks) &&
		reflect.DeepEqual(old.Delivery, cfg.Delivery)
	var recv []*receiver
	if !same {
		var err error
		if recv, err = m.buildReceivers(cfg); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.cfg = cfg
	m.modelNames = slices.Sorted(maps.Keys(cfg.Models))
	var stale []*receiver
	if !same {
		stale, m.receivers = m.receivers, recv
		for _, t := range m.alerts {
			if t.State != StatePending {
				t.dirty = true // the new receivers have not seen it
			}
		}
		if m.runCtx != nil {
			for _, r := range recv {
				m.startReceiver(r)
			}
		}
	}
	m.mu.Unlock()
	keep := map[string]bool{}
	for _, r := range recv {
		keep[r.name] = true
	}
	for _, r := range stale {
		r.stop()
		if !keep[r.name] {
			m.metrics.forgetReceiver(r.name)
		}
	}
	select {
	case m.reloaded <- struct{}{}:
	default:
	}
	return nil
}

// startReceiver runs r's delivery loop under the manager's run context.
// Called with m.mu held, once Run has started.
func (m *Manager) startReceiver(r *receiver) {
	ctx, cancel := context.WithCancel(m.runCtx)
	r.cancel, r.done = cancel, make(chan struct{})
	m.runWG.Add(1)
	go func() {
		defer m.runWG.Done()
		defer close(r.done)
		r.run(ctx)
	}()
}

// SetDriftSource plugs in (or, with nil, removes) what the drift and
// accuracy_drop rules read. Safe while running.
func (m *Manager) SetDriftSource(d DriftSource) {
	if d == nil {
		m.drift.Store(nil)
		return
	}
	m.drift.Store(&driftHolder{d})
}

func (m *Manager) driftSource() DriftSource {
	if h := m.drift.Load(); h != nil {
		return h.DriftSource
	}
	return nil
}

// Config returns the configuration in use, defaults applied.
func (m *Manager) Config() Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Run evaluates every interval and delivers notifications until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.runCtx = ctx
	for _, r := range m.receivers {
		m.startReceiver(r)
	}
	interval := m.cfg.Interval
	m.mu.Unlock()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		m.Evaluate()
		select {
		case <-ctx.Done():
			m.mu.Lock()
			m.runCtx = nil // a Reload from now on starts no receiver
			m.mu.Unlock()
			m.runWG.Wait()
			m.snapshotNow(true)
			return
		case <-tick.C:
		case <-m.reloaded:
			if iv := m.Config().Interval; iv != interval {
				interval = iv
				tick.Reset(interval)
			}
		}
	}
}

// Evaluate runs every rule once at the manager's clock, advances every
// alert's state and queues the notifications due.
func (m *Manager) Evaluate() {
	now := m.opts.Now()
	m.mu.Lock()
	conds := m.conditions(m.alerts)
	keys := map[string]bool{}
	for k := range conds {
		keys[k] = true
	}
	for k := range m.alerts {
		keys[k] = true
	}
	changed := false
	for k := range keys {
		cur := m.alerts[k]
		c, ok := conds[k]
		if !ok {
			if cur == nil || cur.State == StateResolved {
				continue
			}
			// The condition's subject is gone (no requests in the window,
			// the rule turned off, no finding any more): clear.
			c = pendingCond{Condition: Condition{Labels: cur.labels, Value: cur.Value, Threshold: cur.Threshold, Summary: cur.Summary, Description: cur.Description}}
		}
		if cur != nil && cur.State == StateResolved && (c.Level == SeverityNone || c.Hold) {
			continue // stays resolved until its retention ends
		}
		prevSev := SeverityNone
		if cur != nil && cur.State != StateResolved {
			prevSev = cur.Severity
		}
		critBefore := prevCrit(cur)
		next, tr := step(cur, c.Condition, c.forDur, now)
		if next == nil {
			if cur != nil {
				delete(m.alerts, k)
				changed = true
			}
			continue
		}
		if tr.from != tr.to || tr.escalated || tr.eased || cur == nil || cur.State == StateResolved ||
			!next.critSince.Equal(critBefore) {
			changed = true
		}
		if next.ID == "" || (cur != nil && cur.State == StateResolved) {
			next.ID = fingerprint(k)
			next.Rule = c.Labels["rule"]
		}
		next.Labels = m.deliveredLabels(next.labels, next.Severity)
		m.alerts[k] = next
		m.logTransition(next, tr, prevSev)
	}
	for k, t := range m.alerts {
		if t.State == StateResolved && now.Sub(*t.ResolvedAt) > m.cfg.ResolvedRetention {
			delete(m.alerts, k)
			changed = true
		}
	}
	am, hooks := m.dueNotifications(now)
	m.lastEval = now
	m.evalCount++
	snap, seq := m.snapshotLocked(changed, now)
	receivers := m.receivers
	m.mu.Unlock()
	m.saveState(snap, seq)
	for _, r := range receivers {
		switch {
		case r.kind == kindAlertmanager && len(am) > 0:
			r.enqueue(am)
		case r.kind == kindWebhook && len(hooks) > 0:
			r.enqueue(m.webhookBody(hooks, now))
		}
	}
}

// prevCrit is when t's critical condition started, zero for no alert.
func prevCrit(t *tracked) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.critSince
}

// stateRefresh is how often the saved state is rewritten while alerts
// are listed even when nothing changed, so that its saved_at tells the
// next start (within this much) how long the agent was down.
const stateRefresh = time.Minute

// snapshotLocked encodes the alerts for opts.State when force (this
// evaluation changed what a restart should restore: a state or severity,
// an alert appearing or going), or when alerts are listed and the last
// snapshot is stateRefresh old. Called with m.mu held.
func (m *Manager) snapshotLocked(force bool, now time.Time) ([]byte, uint64) {
	if m.opts.State == nil {
		return nil, 0
	}
	if !force && (len(m.alerts) == 0 || now.Sub(m.snapAt) < stateRefresh) {
		return nil, 0
	}
	m.snapAt = now
	b, err := m.encodeState(now)
	if err != nil {
		m.log.Error("cannot encode the alert state", "err", err)
		return nil, 0
	}
	m.snapSeq++
	return b, m.snapSeq
}

// snapshotNow saves the current state (at shutdown, so that the next start
// knows how long the agent was down).
func (m *Manager) snapshotNow(force bool) {
	m.mu.Lock()
	snap, seq := m.snapshotLocked(force, m.opts.Now())
	m.mu.Unlock()
	m.saveState(snap, seq)
}

// deliveredLabels are the identity labels plus alertname, instance and
// severity.
func (m *Manager) deliveredLabels(id Labels, sev Severity) Labels {
	l := maps.Clone(id)
	l["alertname"] = AlertName(id["rule"])
	l["severity"] = string(sev)
	if m.opts.Instance != "" {
		l["instance"] = m.opts.Instance
	}
	return l
}

func (m *Manager) logTransition(t *tracked, tr transition, prevSev Severity) {
	attrs := []any{"alert", t.ID, "rule", t.Rule, "model", t.labels["model"], "version", t.labels["version"], "severity", string(t.Severity), "value", t.Value, "threshold", t.Threshold}
	if f := t.labels["feature"]; f != "" {
		attrs = append(attrs, "feature", f)
	}
	switch {
	case tr.fired:
		m.log.Warn("alert firing", attrs...)
	case tr.resolved:
		m.log.Info("alert resolved", attrs...)
	case tr.escalated, tr.eased:
		m.log.Warn("alert severity changed", append(attrs, "from", string(prevSev))...)
	case tr.from == "" && tr.to == StatePending:
		m.log.Info("alert pending", attrs...)
	}
}

// Alerts lists the pending, firing and recently resolved alerts: firing
// first, then pending, then resolved; within a state critical first, then
// by rule and labels.
func (m *Manager) Alerts() []Alert {
	m.mu.Lock()
	out := make([]Alert, 0, len(m.alerts))
	for _, t := range m.alerts {
		a := t.Alert
		a.Labels = maps.Clone(t.Labels)
		out = append(out, a)
	}
	m.mu.Unlock()
	order := map[State]int{StateFiring: 0, StatePending: 1, StateResolved: 2}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if order[a.State] != order[b.State] {
			return order[a.State] < order[b.State]
		}
		if a.Severity != b.Severity {
			return a.Severity.rank() > b.Severity.rank()
		}
		return a.Labels.key() < b.Labels.key()
	})
	return out
}

// FiringCount is the number of firing alerts (for the fleet's health
// tags).
func (m *Manager) FiringCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, t := range m.alerts {
		if t.State == StateFiring {
			n++
		}
	}
	return n
}

// ReceiverStatus is one receiver's delivery state.
type ReceiverStatus struct {
	Name          string     `json:"name"`
	Kind          string     `json:"kind"`
	Queued        int        `json:"queued"`
	LastSuccess   *time.Time `json:"last_success,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	Failing       bool       `json:"failing"`
	Notifications uint64     `json:"notifications_sent"`
	Failed        uint64     `json:"notifications_failed"`
	Dropped       uint64     `json:"notifications_dropped"`
}

// Status summarizes the manager for /v1/status and GET /v1/alerts.
type Status struct {
	Firing         int              `json:"firing"`
	Pending        int              `json:"pending"`
	Resolved       int              `json:"resolved"`
	LastEvaluation *time.Time       `json:"last_evaluation,omitempty"`
	Interval       string           `json:"interval"`
	Receivers      []ReceiverStatus `json:"receivers"`
	// Inactive lists the rules that evaluate nothing, with why.
	Inactive []string `json:"inactive_rules,omitempty"`
}

// Status returns the manager's state.
func (m *Manager) Status() Status {
	st := Status{Receivers: []ReceiverStatus{}}
	m.mu.Lock()
	st.Interval = m.cfg.Interval.String()
	receivers := m.receivers
	for _, t := range m.alerts {
		switch t.State {
		case StateFiring:
			st.Firing++
		case StatePending:
			st.Pending++
		case StateResolved:
			st.Resolved++
		}
	}
	if !m.lastEval.IsZero() {
		t := m.lastEval.UTC()
		st.LastEvaluation = &t
	}
	m.mu.Unlock()
	for _, r := range receivers {
		st.Receivers = append(st.Receivers, r.status())
	}
	if m.driftSource() == nil {
		st.Inactive = append(st.Inactive, "drift: drift evaluation is off (drift.enabled)", "accuracy_drop: drift evaluation is off (drift.enabled); the reference accuracy comes from it")
	}
	return st
}

// Reason is a one-line summary for the subsystem status; degraded is true
// while a receiver is failing.
func (s Status) Reason() (reason string, degraded bool) {
	parts := []string{fmt.Sprintf("%d firing, %d pending", s.Firing, s.Pending)}
	var failing []string
	for _, r := range s.Receivers {
		if r.Failing {
			failing = append(failing, fmt.Sprintf("%s %s: %s", r.Kind, r.Name, r.LastError))
		}
	}
	if len(failing) > 0 {
		parts = append(parts, "delivery failing to "+strings.Join(failing, "; "))
	}
	if len(s.Receivers) == 0 {
		parts = append(parts, "no alertmanagers or webhooks configured")
	}
	if len(s.Inactive) > 0 {
		parts = append(parts, "drift and accuracy_drop evaluate nothing: drift evaluation is off")
	}
	return strings.Join(parts, "; "), len(failing) > 0
}
