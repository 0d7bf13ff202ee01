package agent

import (
	"context"
	"fmt"
	"net/http"

	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/api"
)

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
	m, err := alert.New(cfg, opts)
	if err != nil {
		return err
	}
	if err := a.reg.Register(m); err != nil {
		return fmt.Errorf("alerts: register metrics: %w", err)
	}
	a.alerts = m
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
