package observe

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// counterValues gathers s's per-version counters of model m, version v:
// metric name -> value (for the latency summary, its _count and _sum
// under window="1h").
func counterValues(t *testing.T, s *Service, m, v string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(s); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range mt.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["model"] != m || l["version"] != v {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()] = mt.GetCounter().GetValue()
			case dto.MetricType_SUMMARY:
				if l["window"] == "1h" {
					out[mf.GetName()+"_count"] = float64(mt.GetSummary().GetSampleCount())
					out[mf.GetName()+"_sum"] = mt.GetSummary().GetSampleSum()
				}
			}
		}
	}
	return out
}

// TestMetricCountersCountSinceStart: the per-version counters on /metrics
// count what this process received, from 0 at start. Starting them from the
// observations kept in the store (as the API's totals do) made them fall
// after a restart that followed an eviction, to a value that Prometheus
// takes for a reset and adds whole to rate() and increase(): a spike of
// every stored observation.
func TestMetricCountersCountSinceStart(t *testing.T) {
	c := newClock()
	cfg := Config{Path: filepath.Join(t.TempDir(), "obs.db")}
	s := openTest(t, cfg, c)
	send := func(s *Service, n int, tag string) {
		batch := make([]Observation, n)
		for i := range batch {
			batch[i] = obsAt(c, "m", "v1", 10)
			batch[i].Error = i%4 == 0
			batch[i].RequestID = fmt.Sprintf("%s-%d", tag, i)
			batch[i].Prediction = Num(1)
		}
		ingest(t, s, batch...)
	}
	send(s, 40, "old")
	c.add(23 * time.Hour)
	send(s, 20, "new")
	if _, err := s.AddLabels(context.Background(), []Label{{"new-0", Num(1)}, {"new-1", Num(0)}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"vigil_model_requests_total": 60, "vigil_model_errors_total": 15,
		"vigil_model_labelled_predictions_total": 2, "vigil_model_correct_predictions_total": 1,
		"vigil_model_latency_seconds_count": 60, "vigil_model_latency_seconds_sum": 0.6,
	}
	checkCounters(t, "before the restart", counterValues(t, s, "m", "v1"), want)
	// Retention drops the first 40; the API's totals then start from
	// the 20 kept, but no counter may fall to a value above 0.
	c.add(2 * time.Hour)
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, cfg, c)
	if ms := s2.Models(0); len(ms) != 1 || len(ms[0].Versions) != 1 || ms[0].Versions[0].Observations != 20 {
		t.Fatalf("API totals after restart: %+v, want the 20 observations kept", ms)
	}
	zero := map[string]float64{}
	for k := range want {
		zero[k] = 0
	}
	checkCounters(t, "after the restart", counterValues(t, s2, "m", "v1"), zero)
	send(s2, 8, "later")
	checkCounters(t, "after 8 more", counterValues(t, s2, "m", "v1"), map[string]float64{
		"vigil_model_requests_total": 8, "vigil_model_errors_total": 2,
		"vigil_model_labelled_predictions_total": 0, "vigil_model_correct_predictions_total": 0,
		"vigil_model_latency_seconds_count": 8, "vigil_model_latency_seconds_sum": 0.08,
	})
}

func checkCounters(t *testing.T, when string, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok || g < w-1e-9 || g > w+1e-9 {
			t.Errorf("%s: %s = %v (present %v), want %v", when, k, g, ok, w)
		}
	}
}
