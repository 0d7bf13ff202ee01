package observe

import (
	"math"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descLatency = prometheus.NewDesc("vigil_model_latency_seconds",
		"Latency of a model version: quantiles over the sliding window named by the window label (DDSketch, 1% relative accuracy; NaN when no observation in the window carried latency_ms); _count and _sum are cumulative since the agent started, the same under every window label.",
		[]string{"model", "version", "window"}, nil)
	descRequests = prometheus.NewDesc("vigil_model_requests_total",
		"Observations of a model version received since the agent started (GET /v1/models also counts those kept in the store).",
		[]string{"model", "version"}, nil)
	descErrors = prometheus.NewDesc("vigil_model_errors_total",
		"Observations of a model version that were errors (error: true or status 500-599), counted like vigil_model_requests_total.",
		[]string{"model", "version"}, nil)
	descLabelled = prometheus.NewDesc("vigil_model_labelled_predictions_total",
		"Predictions of a model version that received a ground-truth label since the agent started.",
		[]string{"model", "version"}, nil)
	descCorrect = prometheus.NewDesc("vigil_model_correct_predictions_total",
		"Labelled predictions of a model version that equalled their label, since the agent started.",
		[]string{"model", "version"}, nil)
	descRate = prometheus.NewDesc("vigil_model_requests_per_second",
		"Observations per second of a model version over a sliding window.",
		[]string{"model", "version", "window"}, nil)
	descErrorRatio = prometheus.NewDesc("vigil_model_error_ratio",
		"Errors divided by observations of a model version over a sliding window; absent without observations.",
		[]string{"model", "version", "window"}, nil)
	descAccuracy = prometheus.NewDesc("vigil_model_accuracy_ratio",
		"Correct divided by labelled predictions of a model version over a sliding window (by label arrival); absent without labels.",
		[]string{"model", "version", "window"}, nil)
	descModels = prometheus.NewDesc("vigil_observe_tracked_models",
		"(model, version) pairs tracked in memory; at most observe.max_models.", nil, nil)
	descBatches = prometheus.NewDesc("vigil_observe_batches_total",
		"Observation batches stored durably since the agent started.", nil, nil)
	descObs = prometheus.NewDesc("vigil_observe_observations_total",
		"Observations stored durably since the agent started.", nil, nil)
	descRejected = prometheus.NewDesc("vigil_observe_rejected_requests_total",
		"Observation and label requests refused, by reason: invalid (400, 413, 415), limit (a capacity limit), store (the write failed).",
		[]string{"reason"}, nil)
	descEvicted = prometheus.NewDesc("vigil_observe_evicted_observations_total",
		"Stored observations deleted by retention or observe.max_bytes since the agent started.", nil, nil)
	descLabels = prometheus.NewDesc("vigil_observe_labels_total",
		"Labels received since the agent started, by outcome: matched, unknown_request_id, already_labelled.",
		[]string{"status"}, nil)
	descBytes = prometheus.NewDesc("vigil_observe_stored_bytes",
		"Bytes of observation and label records in the store (keys and values, before bbolt's page overhead).", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Service) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLatency, descRequests, descErrors, descLabelled, descCorrect, descRate, descErrorRatio, descAccuracy, descModels, descBatches, descObs, descRejected, descEvicted, descLabels, descBytes} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Service) Collect(ch chan<- prometheus.Metric) {
	now := s.now()
	pairs := s.snapshot()
	for _, p := range pairs {
		p.mu.Lock()
		m, v := p.key.model, p.key.version
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(p.run.total), m, v)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(p.run.errors), m, v)
		ch <- prometheus.MustNewConstMetric(descLabelled, prometheus.CounterValue, float64(p.run.labelled), m, v)
		ch <- prometheus.MustNewConstMetric(descCorrect, prometheus.CounterValue, float64(p.run.correct), m, v)
		for _, w := range Windows {
			st := p.win.stats(w, now, p.firstMs)
			wn := WindowName(w)
			ch <- prometheus.MustNewConstMetric(descRate, prometheus.GaugeValue, st.RequestsPerSecond, m, v, wn)
			if st.ErrorRate != nil {
				ch <- prometheus.MustNewConstMetric(descErrorRatio, prometheus.GaugeValue, *st.ErrorRate, m, v, wn)
			}
			if st.Accuracy != nil {
				ch <- prometheus.MustNewConstMetric(descAccuracy, prometheus.GaugeValue, *st.Accuracy, m, v, wn)
			}
			qs := make(map[float64]float64, len(Quantiles))
			for i, q := range []*float64{st.LatencyP50Ms, st.LatencyP95Ms, st.LatencyP99Ms} {
				qs[Quantiles[i]] = math.NaN()
				if q != nil {
					qs[Quantiles[i]] = *q / 1000
				}
			}
			ch <- prometheus.MustNewConstSummary(descLatency, p.run.latCount, p.run.latSum/1000, qs, m, v, wn)
		}
		p.mu.Unlock()
	}
	ch <- prometheus.MustNewConstMetric(descModels, prometheus.GaugeValue, float64(len(pairs)))
	ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(s.m.batches.Load()))
	ch <- prometheus.MustNewConstMetric(descObs, prometheus.CounterValue, float64(s.m.observations.Load()))
	for _, r := range []string{"invalid", "limit", "store"} {
		var n uint64
		if v, ok := s.m.rejected.Load(r); ok {
			n = v.(*atomic.Uint64).Load()
		}
		ch <- prometheus.MustNewConstMetric(descRejected, prometheus.CounterValue, float64(n), r)
	}
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(s.m.evicted.Load()))
	ch <- prometheus.MustNewConstMetric(descLabels, prometheus.CounterValue, float64(s.m.labelsMatched.Load()), LabelMatched)
	ch <- prometheus.MustNewConstMetric(descLabels, prometheus.CounterValue, float64(s.m.labelsUnmatched.Load()), LabelUnknown)
	ch <- prometheus.MustNewConstMetric(descLabels, prometheus.CounterValue, float64(s.m.labelsDuplicate.Load()), LabelDuplicate)
	ch <- prometheus.MustNewConstMetric(descBytes, prometheus.GaugeValue, float64(s.liveBytes.Load()))
}
