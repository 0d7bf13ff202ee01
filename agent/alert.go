package agent

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/store"
)

// alertStateFile keeps the alerts' state across restarts, in the data
// directory.
const alertStateFile = "alerts.db"

// alertState is alert.StateStore over a KV file: one snapshot under one
// key.
type alertState struct{ kv *store.KV }

var alertStateKey = []byte("state")

func (s alertState) LoadAlerts() ([]byte, error) {
	b, ok, err := s.kv.Get("alerts", alertStateKey)
	if err != nil || !ok {
		return nil, err
	}
	return b, nil
}

func (s alertState) SaveAlerts(b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.kv.Put(ctx, "alerts", alertStateKey, b)
}

// openAlerts builds the alert manager over the observation stats and
// registers GET /v1/alerts; Run starts its evaluation loop. The drift and
// accuracy_drop rules read the drift engine's latest evaluations; with
// drift disabled they evaluate nothing, and the status says so.
func (a *Agent) openAlerts() error {
	cfg := a.cfg.Alerts
	a.api.HandleFunc("GET /v1/alerts", api.Read, a.handleAlerts)
	if !cfg.IsEnabled() {
		a.setStatus("alerts", func() SubsystemStatus {
			return SubsystemStatus{Name: "alerts", State: StateDisabled, Reason: "alerts.enabled is false"}
		})
		return nil
	}
	opts := alert.Options{
		Stats:    a.observe,
		Instance: a.cfg.NodeName,
		Logger:   a.logger.With("subsystem", "alerts"),
	}
	if a.drift != nil {
		opts.Drift = driftAlerts{a.drift}
	}
	a.corrupt.watch(filepath.Join(a.dir.Path, alertStateFile))
	kv, err := store.OpenKV(filepath.Join(a.dir.Path, alertStateFile), a.logger.With("subsystem", "alerts"))
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	opts.State = alertState{kv}
	m, err := alert.New(cfg, opts)
	if err != nil {
		kv.Close()
		return err
	}
	if err := a.reg.Register(m); err != nil {
		kv.Close()
		return fmt.Errorf("alerts: register metrics: %w", err)
	}
	a.alerts, a.alertKV = m, kv
	a.setStatus("alerts", func() SubsystemStatus {
		reason, degraded := m.Status().Reason()
		s := SubsystemStatus{Name: "alerts", State: StateRunning, Reason: reason}
		if degraded {
			s.State = StateDegraded
		}
		return s
	})
	return nil
}

// SetAlertDriftSource connects the drift engine to the drift and
// accuracy_drop alert rules. Safe to call while the agent runs.
func (a *Agent) SetAlertDriftSource(d alert.DriftSource) {
	if a.alerts != nil {
		a.alerts.SetDriftSource(d)
	}
}

// reloadAlerts hands a changed alerts section to the running manager and
// reports whether it took it. Turning alerts on or off (alerts.enabled)
// needs a restart; a section the manager refuses (an unreadable token
// file) is logged and the running one kept.
func (a *Agent) reloadAlerts(changed []string, next alert.Config) bool {
	touched := false
	for _, k := range changed {
		if k == "alerts.enabled" {
			return false
		}
		touched = touched || strings.HasPrefix(k, "alerts.")
	}
	if !touched || a.alerts == nil {
		return false
	}
	if err := a.alerts.Reload(next); err != nil {
		a.logger.Error("the new alerts section was not applied; the running one is kept", "err", err)
		return false
	}
	return true
}

// closeAlerts closes the alert state file, once the evaluation loop has
// stopped (it saves the state a last time on its way out).
func (a *Agent) closeAlerts() error {
	if a.alertKV == nil {
		return nil
	}
	return a.alertKV.Close()
}

// startAlerts runs the alert evaluation and delivery until ctx ends.
func (a *Agent) startAlerts(ctx context.Context) {
	if a.alerts == nil {
		return
	}
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.alerts.Run(ctx)
	}()
}

// AlertsResponse is the body of GET /v1/alerts.
type AlertsResponse struct {
	Enabled bool          `json:"enabled"`
	Alerts  []alert.Alert `json:"alerts"`
	Status  *alert.Status `json:"status,omitempty"`
}

func (a *Agent) handleAlerts(w http.ResponseWriter, r *http.Request) {
	out := AlertsResponse{Alerts: []alert.Alert{}}
	if a.alerts != nil {
		out.Enabled = true
		st := a.alerts.Status()
		out.Status = &st
		out.Alerts = a.alerts.Alerts()
	}
	if s := r.URL.Query().Get("state"); s != "" {
		switch alert.State(s) {
		case "active", alert.StatePending, alert.StateFiring, alert.StateResolved:
		default:
			api.WriteError(w, api.BadRequest("query parameter state: %q is not one of active, pending, firing, resolved", s))
			return
		}
		keep := []alert.Alert{}
		for _, al := range out.Alerts {
			if string(al.State) == s || (s == "active" && al.State != alert.StateResolved) {
				keep = append(keep, al)
			}
		}
		out.Alerts = keep
	}
	api.WriteJSON(w, http.StatusOK, out)
}
