package agent

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/version"
)

// openFleet creates the serf member when gossip is enabled; Run joins.
func (a *Agent) openFleet() error {
	cfg := a.cfg.Gossip
	if !cfg.Enabled {
		a.setStatus("gossip", func() SubsystemStatus {
			return SubsystemStatus{Name: "gossip", State: StateDisabled, Reason: "gossip.enabled is false"}
		})
		a.fleetRoutes()
		return nil
	}
	f, err := fleet.New(cfg, fleet.Options{
		NodeName:   a.cfg.NodeName,
		DataDir:    a.dir.Path,
		Version:    version.Get().Version,
		Logger:     a.logger.With("subsystem", "gossip"),
		Registerer: a.reg,
	})
	if err != nil {
		if a.opts.Dev {
			// A second dev agent on the host finds the dev port taken; it
			// runs on without a fleet rather than failing.
			a.logger.Warn("gossip unavailable in dev mode", "err", err)
			reason := err.Error()
			a.setStatus("gossip", func() SubsystemStatus {
				return SubsystemStatus{Name: "gossip", State: StateUnavailable, Reason: reason}
			})
			a.fleetRoutes()
			return nil
		}
		return err
	}
	a.fleet = f
	f.SetSummarySource(a.fleetSummary)
	if a.observe != nil {
		f.SetStatsSource(observeStats{a.observe})
	}
	a.setStatus("gossip", func() SubsystemStatus {
		st := f.Status()
		s := SubsystemStatus{Name: "gossip", State: StateRunning, Reason: st.Reason}
		switch {
		case st.Failed:
			s.State = StateFailed
		case !st.OK:
			s.State = StateDegraded
		}
		return s
	})
	a.addCheck("gossip", a.checkGossip)
	a.fleetRoutes()
	return nil
}

// checkGossip fails once gossip, configured and started, has stopped by
// itself: the node is out of the fleet (others see it failed, queries and
// tags no longer reach it) while the agent runs on. A stop on a lost name
// conflict is marked as one a restart cannot fix (see restartCannotFix).
func (a *Agent) checkGossip(context.Context) error {
	err := a.fleet.StopErr()
	if errors.Is(err, fleet.ErrNameConflict) {
		return restartCannotFixError{err}
	}
	return err
}

// fleetWindow is the window of observations behind the health tags and
// this node's answers to fleet stats queries.
const fleetWindow = 5 * time.Minute

// fleetSummary is what this node publishes in its tags: the model versions
// it has observed in the last fleetWindow with their worst p95 latency and
// error rate (agent/observe), GPU utilization (telemetry), the features
// drifting critically (agent/drift) and the number of firing alerts
// (agent/alert).
func (a *Agent) fleetSummary() fleet.Summary {
	var s fleet.Summary
	if a.observe != nil {
		var worstP95, worstErr float64
		var haveP95, haveErr bool
		for _, m := range a.observe.Models(fleetWindow) {
			for _, v := range m.Versions {
				st := v.Stats
				if st == nil || st.Requests == 0 {
					continue // not served lately
				}
				s.Models = append(s.Models, fleet.Model{Name: m.Model, Version: v.Version})
				if st.LatencyP95Ms != nil && (!haveP95 || *st.LatencyP95Ms > worstP95) {
					worstP95, haveP95 = *st.LatencyP95Ms, true
				}
				if st.ErrorRate != nil && (!haveErr || *st.ErrorRate > worstErr) {
					worstErr, haveErr = *st.ErrorRate, true
				}
			}
		}
		if haveP95 {
			s.Health.WorstP95Ms = &worstP95
		}
		if haveErr {
			s.Health.WorstErrorRate = &worstErr
		}
	}
	if a.alerts != nil {
		n := a.alerts.FiringCount()
		s.Health.Alerts = &n
	}
	s.Health.Drifting = a.driftingFeatures()
	if a.telemetry == nil {
		return s
	}
	snap := a.telemetry.GPUs()
	var sum float64
	var n int
	for _, d := range snap.Devices {
		if d.UtilizationRatio != nil && !math.IsNaN(*d.UtilizationRatio) {
			sum += *d.UtilizationRatio
			n++
		}
	}
	if n > 0 && !snap.Stale {
		u := sum / float64(n)
		s.Health.GPUUtil = &u
	}
	return s
}

var errGossipOff = api.Errorf(http.StatusConflict, "gossip_disabled", "gossip is not running on this node (gossip.enabled is false, or it could not start: see vigil status)")

// fleetDown answers 409 and returns true when gossip is off or has stopped
// by itself (a name conflict), whose member list would be stale.
func (a *Agent) fleetDown(w http.ResponseWriter) bool {
	if a.fleet == nil {
		api.WriteError(w, errGossipOff)
		return true
	}
	if why := a.fleet.Stopped(); why != "" {
		api.WriteError(w, api.Errorf(http.StatusConflict, "gossip_stopped", "%s", why))
		return true
	}
	return false
}

func (a *Agent) fleetRoutes() {
	a.api.HandleFunc("GET /v1/fleet/members", api.Read, func(w http.ResponseWriter, r *http.Request) {
		if a.fleetDown(w) {
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"members": a.fleet.Members()})
	})
	// Listing shows the keys themselves: write scope, like changing them.
	a.api.HandleFunc("GET /v1/fleet/keyring", api.Write, func(w http.ResponseWriter, r *http.Request) {
		a.keyringOp(w, fleet.KeyList, "")
	})
	a.api.HandleFunc("POST /v1/fleet/keyring", api.Write, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Op  string `json:"op"`
			Key string `json:"key"`
		}
		if err := api.DecodeJSON(r, &req); err != nil {
			api.WriteError(w, err)
			return
		}
		op := fleet.KeyringOp(req.Op)
		switch op {
		case fleet.KeyInstall, fleet.KeyUse, fleet.KeyRemove:
		default:
			api.WriteError(w, api.BadRequest("field op: %q is not install, use or remove", req.Op))
			return
		}
		if _, err := fleet.DecodeKey(req.Key); err != nil {
			api.WriteError(w, api.BadRequest("field key: %v", err))
			return
		}
		a.keyringOp(w, op, strings.TrimSpace(req.Key))
	})
	a.api.HandleFunc("GET /v1/fleet/models/{model}/stats", api.Read, func(w http.ResponseWriter, r *http.Request) {
		if a.fleetDown(w) {
			return
		}
		st, err := a.fleet.Stats(r.Context(), r.PathValue("model"))
		if err != nil {
			api.WriteError(w, api.BadRequest("%v", err))
			return
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
}

func (a *Agent) keyringOp(w http.ResponseWriter, op fleet.KeyringOp, key string) {
	if a.fleetDown(w) {
		return
	}
	res, err := a.fleet.Keyring(op, key)
	if errors.Is(err, fleet.ErrPrimaryKey) || errors.Is(err, fleet.ErrKeyNotInstalled) {
		api.WriteError(w, api.BadRequest("field key: %v", err))
		return
	}
	if errors.Is(err, fleet.ErrNotEncrypted) {
		api.WriteError(w, api.Errorf(http.StatusConflict, "not_encrypted", "%v", err))
		return
	}
	if err != nil {
		api.WriteJSON(w, http.StatusBadGateway, map[string]any{"error": map[string]string{"code": "keyring_incomplete", "message": err.Error()}, "result": res})
		return
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// startFleet joins the fleet in the background.
func (a *Agent) startFleet(ctx context.Context) {
	if a.fleet != nil {
		a.fleet.Start(ctx)
	}
}

// leaveFleet leaves gracefully within ctx (the shutdown timeout).
func (a *Agent) leaveFleet(ctx context.Context) error {
	if a.fleet == nil {
		return nil
	}
	return a.fleet.Leave(ctx)
}

// reloadFleet applies what a SIGHUP can change in gossip: the role.
func (a *Agent) reloadFleet(next config.Loaded) {
	if a.fleet != nil {
		a.fleet.SetRole(next.Gossip.Role)
	}
}

// observeStats answers fleet stats queries from this node's observations
// of a model (all versions) over the last fleetWindow.
type observeStats struct{ o *observe.Service }

func (o observeStats) ModelStats(model string) (fleet.ModelStats, bool) {
	stats, ok := o.o.Stats(model, "", fleetWindow)
	if !ok {
		return fleet.ModelStats{}, false
	}
	var out fleet.ModelStats
	for _, st := range stats {
		out.Requests += st.Requests
		out.Errors += st.Errors
		if st.Sketch == nil {
			continue
		}
		if out.Latency == nil {
			out.Latency = st.Sketch
		} else if err := out.Latency.MergeWith(st.Sketch); err != nil {
			return fleet.ModelStats{}, false
		}
	}
	return out, out.Requests > 0
}
