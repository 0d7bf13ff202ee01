package agent

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/api"
	"github.com/vigilml/vigil/agent/store"
)

func (a *Agent) handleGPUs(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, a.telemetry.GPUs())
}

func (a *Agent) handleHost(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, a.telemetry.Host())
}

// QueryResult is the body of GET /v1/query.
type QueryResult struct {
	Start  time.Time     `json:"start"`
	End    time.Time     `json:"end"`
	Step   float64       `json:"step_seconds"`
	Agg    string        `json:"agg"`
	Series []QuerySeries `json:"series"`
}

// QuerySeries is one series of a query result. Points are
// [unix_seconds, "value"] pairs, the value a string as in Prometheus's API
// so that NaN and ±Inf survive JSON.
type QuerySeries struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Points [][2]any          `json:"points"`
}

// maxQueryRange bounds one query's time range; the store keeps at most its
// retention anyway.
const maxQueryRange = 31 * 24 * time.Hour

func (a *Agent) handleQuery(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	now := time.Now()
	for name := range q {
		switch name {
		case "series", "match[]", "start", "end", "step", "agg":
		case "match":
			api.WriteError(w, api.BadRequest("parameter match is not known: label matchers go in match[] (match[]=gpu=0)"))
			return
		default:
			api.WriteError(w, api.BadRequest("parameter %s is not known (want series, match[], start, end, step or agg)", name))
			return
		}
	}
	req := store.QueryRequest{Name: q.Get("series"), Agg: q.Get("agg")}
	if req.Name == "" {
		api.WriteError(w, api.BadRequest("parameter series is required (a metric name such as vigil_gpu_utilization_ratio)"))
		return
	}
	for _, m := range q["match[]"] {
		matcher, err := store.ParseMatcher(m)
		if err != nil {
			api.WriteError(w, api.BadRequest("parameter match[]=%q: %v", m, err))
			return
		}
		req.Matchers = append(req.Matchers, matcher)
	}
	var err error
	if req.End, err = parseQueryTime(q.Get("end"), now, now); err != nil {
		api.WriteError(w, api.BadRequest("parameter end: %v", err))
		return
	}
	if req.Start, err = parseQueryTime(q.Get("start"), req.End.Add(-time.Hour), now); err != nil {
		api.WriteError(w, api.BadRequest("parameter start: %v", err))
		return
	}
	if !req.Start.Before(req.End) {
		api.WriteError(w, api.BadRequest("parameter start must be before end"))
		return
	}
	if req.End.Sub(req.Start) > maxQueryRange {
		api.WriteError(w, api.BadRequest("the range from start to end is longer than %s", maxQueryRange))
		return
	}
	if s := q.Get("step"); s != "" {
		if req.Step, err = parseStep(s); err != nil {
			api.WriteError(w, api.BadRequest("parameter step: %v", err))
			return
		}
		if req.Agg == "" {
			req.Agg = store.DefaultAgg(req.Name)
		}
	}
	series, err := a.store.Query(r.Context(), req)
	switch {
	case errors.Is(err, store.ErrBadQuery), errors.Is(err, store.ErrQueryTooLarge):
		api.WriteError(w, api.BadRequest("%v", err))
		return
	case err != nil:
		a.logger.Error("query failed", "err", err)
		api.WriteError(w, err)
		return
	}
	res := QueryResult{Start: req.Start.UTC(), End: req.End.UTC(), Step: req.Step.Seconds(), Agg: req.Agg, Series: make([]QuerySeries, 0, len(series))}
	for _, s := range series {
		qs := QuerySeries{Name: s.Name, Labels: map[string]string{}, Points: make([][2]any, len(s.Points))}
		for _, l := range s.Labels {
			qs.Labels[l.Name] = l.Value
		}
		for i, p := range s.Points {
			qs.Points[i] = [2]any{float64(p.Time.UnixMilli()) / 1000, formatValue(p.Value)}
		}
		res.Series = append(res.Series, qs)
	}
	api.WriteJSON(w, http.StatusOK, res)
}

// parseQueryTime accepts RFC 3339, Unix seconds (with fractions), "now", or
// a negative duration relative to now ("-15m").
func parseQueryTime(s string, def, now time.Time) (time.Time, error) {
	switch {
	case s == "":
		return def, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "-"):
		d, err := time.ParseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return time.UnixMilli(int64(f * 1000)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-11-26T10:00:00Z), Unix seconds, now, or a relative time such as -1h")
	}
	return t, nil
}

// parseStep accepts a Go duration ("30s") or seconds ("30").
func parseStep(s string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, errors.New("must be positive")
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 30s or 5m")
	}
	return d, nil
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) // as Prometheus's API: 208767766528, not 2.08767766528e+11
}
