package alert

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"
)

// StateStore keeps the alerts' state across agent restarts (Options.State).
// The agent backs it with a bbolt file in its data directory.
type StateStore interface {
	// LoadAlerts returns the last saved snapshot, or nil when there is none.
	LoadAlerts() ([]byte, error)
	// SaveAlerts replaces the snapshot.
	SaveAlerts([]byte) error
}

// OutageTolerance is how old a saved state may be and still be restored,
// as Prometheus' --rules.alert.for-outage-tolerance (same default): after a
// longer outage, Alertmanager has long expired the firing alerts (their
// endsAt is 4 × resend_interval) and the pending ones prove nothing.
const OutageTolerance = time.Hour

const snapshotVersion = 1

type snapshot struct {
	Version int          `json:"version"`
	SavedAt time.Time    `json:"saved_at"`
	Alerts  []savedAlert `json:"alerts"`
}

// savedAlert is one tracked alert with the machine state that Alert does
// not show.
type savedAlert struct {
	Alert
	Identity     Labels    `json:"identity"`
	CritSince    time.Time `json:"crit_since,omitzero"`
	PrevSeverity Severity  `json:"prev_severity,omitempty"`
}

// encodeState is the snapshot of the alerts, taken under m.mu. Alerts
// are listed by identity, so that the same state always encodes to the
// same bytes (the golden encoding test compares them).
func (m *Manager) encodeState(now time.Time) ([]byte, error) {
	s := snapshot{Version: snapshotVersion, SavedAt: now.UTC(), Alerts: make([]savedAlert, 0, len(m.alerts))}
	for _, k := range slices.Sorted(maps.Keys(m.alerts)) {
		t := m.alerts[k]
		s.Alerts = append(s.Alerts, savedAlert{Alert: t.Alert, Identity: t.labels, CritSince: t.critSince, PrevSeverity: t.prevSeverity})
	}
	return json.Marshal(s)
}

// restore loads the saved alerts into an empty manager. The time the agent
// was down does not count towards `for`: a pending alert's start (and a
// critical condition's) moves forward by the downtime, as Prometheus does
// when it restores `for` state. Firing and resolved alerts keep their times
// (Alertmanager knows them by those) and are sent again at the first
// evaluation, which refreshes their endsAt or, if the condition cleared
// while the agent was down, resolves them.
func (m *Manager) restore(b []byte, now time.Time) (int, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return 0, fmt.Errorf("decode saved alert state: %w", err)
	}
	if s.Version != snapshotVersion {
		return 0, fmt.Errorf("saved alert state has version %d; this agent reads version %d", s.Version, snapshotVersion)
	}
	down := now.Sub(s.SavedAt)
	if down > OutageTolerance {
		return 0, fmt.Errorf("saved alert state is %s old, more than the outage tolerance of %s", down.Round(time.Second), OutageTolerance)
	}
	down = max(down, 0)
	n := 0
	for _, sa := range s.Alerts {
		if len(sa.Identity) == 0 || sa.Identity["rule"] == "" {
			continue
		}
		switch sa.State {
		case StatePending, StateFiring:
		case StateResolved:
			if sa.ResolvedAt == nil {
				continue
			}
		default:
			continue
		}
		t := &tracked{Alert: sa.Alert, labels: sa.Identity, critSince: sa.CritSince, prevSeverity: sa.PrevSeverity}
		if t.State == StatePending {
			t.ActiveSince = t.ActiveSince.Add(down)
		}
		if !t.critSince.IsZero() {
			t.critSince = t.critSince.Add(down)
		}
		t.ID = fingerprint(t.labels.key())
		t.Labels = m.deliveredLabels(t.labels, t.Severity)
		m.alerts[t.labels.key()] = t
		n++
	}
	return n, nil
}

// loadState restores what opts.State holds; a snapshot that cannot be used
// is logged and ignored: the agent then starts with no alerts, as it did
// before alert state was kept.
func (m *Manager) loadState() {
	if m.opts.State == nil {
		return
	}
	b, err := m.opts.State.LoadAlerts()
	if err != nil {
		m.log.Warn("cannot read the saved alert state; starting with no alerts", "err", err)
		return
	}
	if b == nil {
		return
	}
	n, err := m.restore(b, m.opts.Now())
	if err != nil {
		m.log.Warn("not restoring the saved alert state; starting with no alerts", "err", err)
		return
	}
	if n > 0 {
		m.log.Info("restored alert state", "alerts", n)
	}
}

// saveState writes the snapshot number seq taken by Evaluate, unless a
// later one was written already; failures are logged (once per run of
// failures) and counted, never fatal.
func (m *Manager) saveState(b []byte, seq uint64) {
	if m.opts.State == nil || b == nil {
		return
	}
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	if seq <= m.savedSeq {
		return
	}
	m.savedSeq = seq
	if err := m.opts.State.SaveAlerts(b); err != nil {
		m.metrics.stateSaveFailures.Inc()
		if !m.saveFailing {
			m.log.Warn("cannot save the alert state; alerts will start again from nothing after a restart", "err", err)
		}
		m.saveFailing = true
		return
	}
	m.saveFailing = false
}
