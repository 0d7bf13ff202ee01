package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/drift"
	"github.com/vigilml/vigil/agent/observe"
)

// openDrift opens the drift engine, subscribes it to the observations and
// registers the reference and drift routes; Run starts its evaluations.
func (a *Agent) openDrift() error {
	cfg := a.cfg.Drift.WithDataDir(a.dir.Path)
	if cfg.Enabled != nil && !*cfg.Enabled {
		a.setStatus("drift", func() SubsystemStatus {
			return SubsystemStatus{Name: "drift", State: StateDisabled, Reason: "drift.enabled is false"}
		})
		off := func(w http.ResponseWriter, r *http.Request) {
			api.WriteError(w, api.Errorf(http.StatusConflict, "drift_disabled", "drift detection is turned off on this agent (drift.enabled: false)"))
		}
		for _, p := range []string{"GET /v1/models/{model}/drift", "GET /v1/models/{model}/drift/history", "GET /v1/models/{model}/reference"} {
			a.api.HandleFunc(p, api.Read, off)
		}
		for _, p := range []string{"POST /v1/models/{model}/drift/evaluate", "POST /v1/models/{model}/reference", "DELETE /v1/models/{model}/reference"} {
			a.api.HandleFunc(p, api.Write, off)
		}
		return nil
	}
	a.corrupt.watch(cfg.Path)
	e, err := drift.Open(cfg, a.cfg.Models, drift.Options{
		Logger:    a.logger.With("subsystem", "drift"),
		Source:    a.observe,
		Detectors: drift.HostDetectors(a.plugins),
	})
	if err != nil {
		return err
	}
	if err := e.Refill(context.Background()); err != nil {
		e.Close()
		return err
	}
	if err := a.reg.Register(e); err != nil {
		e.Close()
		return fmt.Errorf("drift: register metrics: %w", err)
	}
	a.drift = e
	a.observe.Subscribe(e.Add)
	a.setStatus("drift", func() SubsystemStatus {
		if why := e.Degraded(); why != "" {
			return SubsystemStatus{Name: "drift", State: StateDegraded, Reason: why}
		}
		return SubsystemStatus{Name: "drift", State: StateRunning, Reason: fmt.Sprintf("evaluating every %s", e.Config().Interval)}
	})
	a.api.HandleFunc("GET /v1/models/{model}/drift", api.Read, a.handleDrift)
	a.api.HandleFunc("POST /v1/models/{model}/drift/evaluate", api.Write, a.handleDriftEvaluate)
	a.api.HandleFunc("GET /v1/models/{model}/drift/history", api.Read, a.handleDriftHistory)
	a.api.HandleFunc("GET /v1/models/{model}/reference", api.Read, a.handleGetReference)
	a.api.HandleFunc("POST /v1/models/{model}/reference", api.Write, a.handlePinReference)
	a.api.HandleFunc("DELETE /v1/models/{model}/reference", api.Write, a.handleDeleteReference)
	return nil
}

// Drift is the drift engine (nil when drift.enabled is false), for the
// subsystems that consume its evaluations (alerts).
func (a *Agent) Drift() *drift.Engine { return a.drift }

// runDrift runs the periodic evaluations until ctx ends.
func (a *Agent) runDrift(ctx context.Context) {
	if a.drift != nil {
		a.drift.Run(ctx)
	}
}

// driftRestartKeys are the drift keys a running engine keeps: they shape
// the state it holds.
var driftRestartKeys = map[string]bool{
	"drift.enabled": true, "drift.path": true, "drift.current_window": true, "drift.current_window_time": true,
}

// driftReloadable reports whether a SIGHUP applies key to the running
// drift engine.
func driftReloadable(key string) bool {
	return key == "models" || strings.HasPrefix(key, "models.") || (strings.HasPrefix(key, "drift.") && !driftRestartKeys[key])
}

// reloadDrift hands a changed drift or models section to the running
// engine and reports whether it took it (not when drift is off).
func (a *Agent) reloadDrift(changed []string, next *config.Config) bool {
	if a.drift == nil || !slices.ContainsFunc(changed, driftReloadable) {
		return false
	}
	a.drift.Reload(next.Drift.WithDataDir(a.dir.Path), next.Models)
	return true
}

// closeDrift closes the drift file.
func (a *Agent) closeDrift() error {
	if a.drift == nil {
		return nil
	}
	return a.drift.Close()
}

// driftingFeatures is the fleet health tag: the features whose latest
// drift severity is critical; nil while drift is off.
func (a *Agent) driftingFeatures() *int {
	if a.drift == nil {
		return nil
	}
	n := a.drift.Drifting()
	return &n
}

func (a *Agent) unknownModel(model, version string) error {
	if version != "" && a.drift.Known(model, "") {
		return api.Errorf(http.StatusNotFound, api.CodeNotFound, "model %q has no version %q; GET /v1/models lists them", model, version)
	}
	return api.Errorf(http.StatusNotFound, api.CodeNotFound, "no observations or reference of model %q; GET /v1/models lists the monitored models", model)
}

// DriftResponse is the body of GET /v1/models/{model}/drift.
type DriftResponse struct {
	Model    string             `json:"model"`
	Versions []drift.Evaluation `json:"versions"`
}

func (a *Agent) handleDrift(w http.ResponseWriter, r *http.Request) {
	model, version := r.PathValue("model"), r.URL.Query().Get("version")
	evs, ok := a.drift.Model(model, version)
	if !ok {
		api.WriteError(w, a.unknownModel(model, version))
		return
	}
	if evs == nil {
		evs = []drift.Evaluation{}
	}
	api.WriteJSON(w, http.StatusOK, DriftResponse{Model: model, Versions: evs})
}

func (a *Agent) handleDriftEvaluate(w http.ResponseWriter, r *http.Request) {
	model, version := r.PathValue("model"), r.URL.Query().Get("version")
	if !a.drift.Known(model, version) {
		api.WriteError(w, a.unknownModel(model, version))
		return
	}
	evs, err := a.drift.Evaluate(r.Context(), model, version)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "drift evaluation did not finish: %v", err))
		return
	}
	if evs == nil {
		evs = []drift.Evaluation{}
	}
	api.WriteJSON(w, http.StatusOK, DriftResponse{Model: model, Versions: evs})
}

func (a *Agent) handleDriftHistory(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			api.WriteError(w, api.BadRequest("query parameter limit: want an integer from 1 to 10000, got %q", s))
			return
		}
		limit = n
	}
	evs, err := a.drift.History(model, q.Get("version"), q.Get("feature"), limit)
	if err != nil {
		a.logger.Error("drift history not read", "err", err)
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "drift history could not be read: %v", err))
		return
	}
	if evs == nil {
		evs = []drift.Evaluation{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"model": model, "evaluations": evs})
}

func (a *Agent) handleGetReference(w http.ResponseWriter, r *http.Request) {
	model, version := r.PathValue("model"), r.URL.Query().Get("version")
	refs := a.drift.References(model, version)
	if refs == nil {
		refs = []drift.ReferenceInfo{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"model": model, "references": refs})
}

func (a *Agent) handleDeleteReference(w http.ResponseWriter, r *http.Request) {
	model, version := r.PathValue("model"), r.URL.Query().Get("version")
	if version == "" {
		api.WriteError(w, api.BadRequest("query parameter version is required: a reference belongs to one version"))
		return
	}
	had, err := a.drift.Unpin(r.Context(), model, version)
	if err != nil {
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "%v", err))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"model": model, "version": version, "deleted": had})
}

// referenceRequest is the body of POST /v1/models/{model}/reference.
type referenceRequest struct {
	Version    string                     `json:"version"`
	From       json.RawMessage            `json:"from"`
	To         json.RawMessage            `json:"to"`
	Features   map[string]json.RawMessage `json:"features"`
	Prediction json.RawMessage            `json:"prediction"`
	Label      json.RawMessage            `json:"label"`
}

func (a *Agent) handlePinReference(w http.ResponseWriter, r *http.Request) {
	model := r.PathValue("model")
	var req referenceRequest
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, err)
		return
	}
	if req.Version == "" {
		api.WriteError(w, api.BadField("version", -1, "field version is required: a reference belongs to one model version"))
		return
	}
	upload := req.Features != nil || len(req.Prediction) > 0
	ranged := len(req.From) > 0 || len(req.To) > 0
	var info drift.ReferenceInfo
	var err error
	switch {
	case upload && ranged:
		api.WriteError(w, api.BadRequest("send either from and to (a stored time range) or features/prediction (a sample), not both"))
		return
	case ranged:
		from, ferr := parseTime("from", req.From)
		to, terr := parseTime("to", req.To)
		if ferr != nil || terr != nil {
			// Both named on one line: a JSON message holds no newlines;
			// the field member names the first.
			var msgs []string
			field := ""
			for _, e := range []struct {
				name string
				err  error
			}{{"from", ferr}, {"to", terr}} {
				if e.err != nil {
					msgs = append(msgs, e.err.Error())
					if field == "" {
						field = e.name
					}
				}
			}
			api.WriteError(w, api.BadField(field, -1, "%s", strings.Join(msgs, "; ")))
			return
		}
		if !to.After(from) {
			api.WriteError(w, api.BadField("to", -1, "field to must be after from"))
			return
		}
		info, err = a.drift.PinRange(r.Context(), model, req.Version, from, to)
		if errors.Is(err, drift.ErrNoObservations) {
			api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "%v", err))
			return
		}
	case upload:
		s, perr := parseSample(req, a.observe.Config(), a.drift.Config().MaxReferenceValues)
		if perr != nil {
			api.WriteError(w, perr)
			return
		}
		info, err = a.drift.PinSample(r.Context(), model, req.Version, s)
	default:
		api.WriteError(w, api.BadRequest("send from and to (a stored time range) or features/prediction (a sample); see docs/drift.md"))
		return
	}
	if err != nil {
		if r.Context().Err() == nil {
			a.logger.Error("drift reference not pinned", "model", model, "version", req.Version, "err", err)
		}
		api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "reference not pinned: %v", err))
		return
	}
	api.WriteJSON(w, http.StatusCreated, info)
}

// parseTime reads an RFC 3339 string or Unix milliseconds. A positive
// number below 1e11 (before March 1973 in milliseconds) is refused as Unix
// seconds sent by mistake, as observation timestamps are, rather than
// searched as a range in 1970 that can hold nothing; 0 stays "from the
// beginning".
func parseTime(field string, raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, fmt.Errorf("field %s is required", field)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("field %s: %q is not an RFC 3339 time", field, s)
		}
		return t, nil
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil || math.IsNaN(ms) || ms < 0 || ms > 1e15 {
		return time.Time{}, fmt.Errorf("field %s: want an RFC 3339 time or Unix milliseconds", field)
	}
	if ms > 0 && ms < 1e11 {
		return time.Time{}, fmt.Errorf("field %s: %s looks like Unix seconds: send Unix milliseconds", field, raw)
	}
	return time.UnixMilli(int64(ms)), nil
}

// parseValues reads a JSON array of numbers and strings (null: missing).
func parseValues(field string, raw json.RawMessage, cfg observe.Config, maxValues int, allowNull bool) ([]observe.Value, error) {
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, api.BadField(field, -1, "field %s: want an array of numbers or strings", field)
	}
	out := make([]observe.Value, 0, len(items))
	if len(items) > maxValues {
		return nil, api.BadField(field, -1, "field %s: %d values, more than drift.max_reference_values (%d)", field, len(items), maxValues)
	}
	for i, it := range items {
		var s string
		var f float64
		switch {
		case string(it) == "null":
			if !allowNull {
				return nil, api.BadField(field, i, "field %s[%d]: null is not a value", field, i)
			}
			out = append(out, observe.Value{})
		case json.Unmarshal(it, &s) == nil:
			if len(s) > cfg.MaxStringBytes {
				return nil, api.BadField(field, i, "field %s[%d]: string longer than observe.max_string_bytes (%d)", field, i, cfg.MaxStringBytes)
			}
			if observe.SpellsNonFinite(s) { // as observations do
				return nil, api.BadField(field, i, "field %s[%d]: must be a finite number, got %q (NaN and ±Infinity are rejected, as are numbers beyond float64's range)", field, i, s)
			}
			out = append(out, observe.Str(s))
		case json.Unmarshal(it, &f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0):
			out = append(out, observe.Num(f))
		default:
			return nil, api.BadField(field, i, "field %s[%d]: want a finite number or a string, got %s", field, i, truncate(string(it), 40))
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func parseSample(req referenceRequest, cfg observe.Config, maxValues int) (drift.Sample, error) {
	s := drift.Sample{Features: map[string][]observe.Value{}}
	names := make([]string, 0, len(req.Features))
	for f := range req.Features {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if f == "" || len(f) > cfg.MaxNameBytes {
			return s, api.BadField("features", -1, "field features: feature name %q must be 1 to %d bytes", f, cfg.MaxNameBytes)
		}
		vs, err := parseValues("features."+f, req.Features[f], cfg, maxValues, false)
		if err != nil {
			return s, err
		}
		if len(vs) == 0 {
			return s, api.BadField("features."+f, -1, "field features.%s: empty sample", f)
		}
		s.Features[f] = vs
	}
	if len(req.Prediction) > 0 {
		vs, err := parseValues("prediction", req.Prediction, cfg, maxValues, false)
		if err != nil {
			return s, err
		}
		s.Prediction = vs
	}
	if len(req.Label) > 0 {
		if s.Prediction == nil {
			return s, api.BadField("label", -1, "field label needs prediction: labels are compared with the predictions, item by item")
		}
		vs, err := parseValues("label", req.Label, cfg, maxValues, true)
		if err != nil {
			return s, err
		}
		if len(vs) != len(s.Prediction) {
			return s, api.BadField("label", -1, "field label: %d labels for %d predictions; use null for an unlabelled item", len(vs), len(s.Prediction))
		}
		s.Labels = vs
	}
	if len(s.Features) == 0 && len(s.Prediction) == 0 {
		return s, api.BadField("features", -1, "field features: the sample has no values")
	}
	return s, nil
}
