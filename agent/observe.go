package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/observe"
)

// openObserve opens the observation file, rebuilds the model stats from it
// and registers the observation, label and model routes; Run starts its
// maintenance.
func (a *Agent) openObserve() error {
	cfg := a.cfg.Observe.WithDataDir(a.dir.Path)
	a.corrupt.watch(cfg.Path)
	s, err := observe.Open(cfg, observe.Options{Logger: a.logger.With("subsystem", "observe")})
	if err != nil {
		return err
	}
	a.observe = s
	if err := a.reg.Register(s); err != nil {
		s.Close()
		return fmt.Errorf("observe: register metrics: %w", err)
	}
	a.setStatus("observe", func() SubsystemStatus {
		return SubsystemStatus{Name: "observe", State: StateRunning,
			Reason: fmt.Sprintf("%d of at most %d model versions tracked", s.Tracked(), s.Config().MaxModels)}
	})
	a.api.HandleFunc("POST /v1/observations", api.Write, a.handleObservations)
	a.api.HandleFunc("POST /v1/labels", api.Write, a.handleLabels)
	// A body refused on its Content-Length counts as one refused while
	// read (readBatch) does.
	a.api.OnTooLarge(func() { s.Reject("invalid") }, "POST /v1/observations", "POST /v1/labels")
	a.api.HandleFunc("GET /v1/models", api.Read, a.handleModels)
	a.api.HandleFunc("GET /v1/models/{model}/stats", api.Read, a.handleModelStats)
	return nil
}

// Observe is the observation service, for the subsystems that consume
// observations (drift, alerts).
func (a *Agent) Observe() *observe.Service { return a.observe }

// bodyPool recycles request bodies: the parsers copy out every string they
// keep, so a body is garbage once parsed.
var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBatch reads a JSON or NDJSON request body; release returns its
// buffer once the body has been parsed.
func readBatch(r *http.Request) (body []byte, ndjson bool, release func(), err error) {
	if err := api.CheckContentEncoding(r); err != nil {
		return nil, false, nil, err
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, perr := mime.ParseMediaType(ct)
		switch {
		case perr != nil:
			return nil, false, nil, api.Errorf(http.StatusUnsupportedMediaType, api.CodeUnsupportedMedia, "Content-Type %q does not parse: %v", ct, perr)
		case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/ndjson":
			ndjson = true
		case mt == "application/json":
		default:
			return nil, false, nil, api.Errorf(http.StatusUnsupportedMediaType, api.CodeUnsupportedMedia, "Content-Type %q is not supported; send application/json or application/x-ndjson", ct)
		}
	}
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	buf.Grow(int(max(512, min(r.ContentLength+1, 1<<20))))
	_, err = buf.ReadFrom(r.Body)
	body = buf.Bytes()
	release = func() {
		if buf.Cap() <= 4<<20 {
			bodyPool.Put(buf)
		}
	}
	if err != nil {
		release()
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return nil, false, nil, api.Errorf(http.StatusRequestEntityTooLarge, api.CodePayloadTooLarge, "request body is larger than the limit of %d bytes (api.max_body_bytes); split the batch", maxErr.Limit)
		}
		return nil, false, nil, api.BadRequest("reading the request body: %v", err)
	}
	return body, ndjson, release, nil
}

// writeItemError answers a rejected batch: 400 (or 422 for a capacity
// limit) with the usual error body plus the item's index and field.
func (a *Agent) writeItemError(w http.ResponseWriter, err error) bool {
	var ie *observe.ItemError
	if !errors.As(err, &ie) {
		return false
	}
	status, code, reason := http.StatusBadRequest, api.CodeInvalidRequest, "invalid"
	var le *observe.LimitError
	if errors.As(err, &le) {
		status, code, reason = http.StatusUnprocessableEntity, "limit_exceeded", "limit"
	}
	a.observe.Reject(reason)
	e := api.Errorf(status, code, "%s", err.Error())
	e.Field = ie.Field
	if ie.Index >= 0 {
		e.Index = &ie.Index
	}
	api.WriteError(w, e)
	return true
}

func (a *Agent) writeStoreError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		// The client left; the outcome is unknown to it either way.
		return
	}
	a.observe.Reject("store")
	a.storeRefusals.refused(a.logger, what, err)
	api.WriteError(w, api.Errorf(http.StatusServiceUnavailable, api.CodeUnavailable, "%s were not stored: %v", what, err))
}

func (a *Agent) handleObservations(w http.ResponseWriter, r *http.Request) {
	body, ndjson, release, err := readBatch(r)
	if err != nil {
		a.observe.Reject("invalid")
		api.WriteError(w, err)
		return
	}
	obs, err := observe.ParseObservations(body, ndjson, a.observe.Config(), time.Now())
	release()
	if err != nil {
		a.writeItemError(w, err)
		return
	}
	if err := a.observe.Ingest(r.Context(), obs); err != nil {
		if !a.writeItemError(w, err) {
			a.writeStoreError(w, r, "observations", err)
		}
		return
	}
	a.storeRefusals.stored(a.logger)
	api.WriteJSON(w, http.StatusAccepted, map[string]int{"accepted": len(obs)})
}

// refusalLog logs the store's refusals of observations and labels once
// per episode: the first at error level, the rest at debug (each request
// still has its access-log line and its count in
// vigil_observe_rejected_requests_total{reason="store"}), and the end of
// the episode, with how many requests it refused, at info. A full disk
// would otherwise log a line per request.
type refusalLog struct {
	mu    sync.Mutex
	n     int // requests refused in the episode; 0: none going on
	first time.Time
}

func (l *refusalLog) refused(log *slog.Logger, what string, err error) {
	l.mu.Lock()
	n := l.n
	l.n++
	if n == 0 {
		l.first = time.Now()
	}
	l.mu.Unlock()
	if n == 0 {
		log.Error(what+" not stored; further refusals are logged at debug level until a write succeeds", "err", err)
		return
	}
	log.Debug(what+" not stored", "err", err)
}

func (l *refusalLog) stored(log *slog.Logger) {
	l.mu.Lock()
	n, since := l.n, l.first
	l.n = 0
	l.mu.Unlock()
	if n > 0 {
		log.Info("observations and labels are stored again", "refused_requests", n, "since", since.Format(time.RFC3339))
	}
}

// LabelsResponse is the body of a 202 from POST /v1/labels.
type LabelsResponse struct {
	Matched         int                   `json:"matched"`
	Unknown         int                   `json:"unknown_request_id"`
	AlreadyLabelled int                   `json:"already_labelled"`
	Results         []observe.LabelResult `json:"results"`
}

func (a *Agent) handleLabels(w http.ResponseWriter, r *http.Request) {
	body, ndjson, release, err := readBatch(r)
	if err != nil {
		a.observe.Reject("invalid")
		api.WriteError(w, err)
		return
	}
	labels, err := observe.ParseLabels(body, ndjson, a.observe.Config())
	release()
	if err != nil {
		a.writeItemError(w, err)
		return
	}
	res, err := a.observe.AddLabels(r.Context(), labels)
	if err != nil {
		a.writeStoreError(w, r, "labels", err)
		return
	}
	a.storeRefusals.stored(a.logger)
	out := LabelsResponse{Results: res}
	if out.Results == nil {
		out.Results = []observe.LabelResult{}
	}
	for _, l := range res {
		switch l.Status {
		case observe.LabelMatched:
			out.Matched++
		case observe.LabelDuplicate:
			out.AlreadyLabelled++
		default:
			out.Unknown++
		}
	}
	api.WriteJSON(w, http.StatusAccepted, out)
}

func windowParam(r *http.Request, def string) (time.Duration, error) {
	s := r.URL.Query().Get("window")
	if s == "" {
		if def == "" {
			return 0, nil
		}
		s = def
	}
	d, err := observe.ParseWindow(s)
	if err != nil {
		return 0, api.BadRequest("query parameter window: %v", err)
	}
	return d, nil
}

func (a *Agent) handleModels(w http.ResponseWriter, r *http.Request) {
	win, err := windowParam(r, "")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	models := a.observe.Models(win)
	if models == nil {
		models = []observe.ModelInfo{}
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"models": models})
}

func (a *Agent) handleModelStats(w http.ResponseWriter, r *http.Request) {
	win, err := windowParam(r, "5m")
	if err != nil {
		api.WriteError(w, err)
		return
	}
	model, version := r.PathValue("model"), r.URL.Query().Get("version")
	stats, ok := a.observe.Stats(model, version, win)
	if !ok {
		if _, known := a.observe.Stats(model, "", win); known {
			api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "model %q has no version %q; GET /v1/models lists them", model, version))
			return
		}
		api.WriteError(w, api.Errorf(http.StatusNotFound, api.CodeNotFound, "no observations of model %q; GET /v1/models lists the monitored models", model))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]any{"model": model, "window": observe.WindowName(win), "versions": stats})
}

// runObserve runs the observation maintenance until ctx ends.
func (a *Agent) runObserve(ctx context.Context) {
	a.observe.Run(ctx)
}
