package drift

import (
	"github.com/prometheus/client_golang/prometheus"
)

type engineMetrics struct {
	evaluations *prometheus.CounterVec
	errors      *prometheus.CounterVec
	duration    prometheus.Histogram
}

func newEngineMetrics() engineMetrics {
	return engineMetrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_drift_evaluations_total",
			Help: "Drift evaluations of one model version, by result: ok (every evaluated feature got an answer) or error (a detector failed for at least one feature).",
		}, []string{"result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_drift_detector_errors_total",
			Help: "Detector calls that gave no answer (plugin missing, crashed, timed out or rejected the input), by detector plugin.",
		}, []string{"detector"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_drift_evaluation_duration_seconds",
			Help:    "Time to evaluate drift for one model version, detector plugin calls included.",
			Buckets: []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30},
		}),
	}
}

func (m *engineMetrics) observe(ev *Evaluation) {
	result := "ok"
	for _, f := range ev.Features {
		if f.Error != "" {
			result = "error"
			m.errors.WithLabelValues(f.Detector).Inc()
		}
	}
	m.evaluations.WithLabelValues(result).Inc()
	m.duration.Observe(ev.DurationSeconds)
}

var (
	descStatistic = prometheus.NewDesc("vigil_drift_statistic",
		"The detector's statistic in the latest drift evaluation of a feature (KS D, PSI, normalised Wasserstein-1, Jensen-Shannon distance, chi-square).",
		[]string{"model", "version", "feature", "method"}, nil)
	descPValue = prometheus.NewDesc("vigil_drift_p_value",
		"The raw p-value in the latest drift evaluation of a feature, for methods that have one (ks, chisquare).",
		[]string{"model", "version", "feature", "method"}, nil)
	descSeverity = prometheus.NewDesc("vigil_drift_severity",
		"Severity of a feature's drift in the latest evaluation: 0 ok, 1 warning, 2 critical; absent while a window has too few values or the detector failed.",
		[]string{"model", "version", "feature"}, nil)
	descFeatures = prometheus.NewDesc("vigil_drift_features",
		"Features of a model version by severity in its latest drift evaluation (ok, warning, critical, insufficient_data, error).",
		[]string{"model", "version", "severity"}, nil)
)

// Describe implements prometheus.Collector.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStatistic
	ch <- descPValue
	ch <- descSeverity
	ch <- descFeatures
	e.m.evaluations.Describe(ch)
	e.m.errors.Describe(ch)
	e.m.duration.Describe(ch)
}

// Collect implements prometheus.Collector: the latest evaluations'
// figures, and the engine's counters.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	sev := map[string]float64{SeverityOK: 0, SeverityWarning: 1, SeverityCritical: 2}
	for _, ev := range e.Latest() {
		if ev.Verdict == VerdictNoReference {
			continue
		}
		counts := map[string]int{SeverityOK: 0, SeverityWarning: 0, SeverityCritical: 0, SeverityInsufficientData: 0, SeverityError: 0}
		for _, f := range ev.Features {
			counts[f.Severity]++
			s, ok := sev[f.Severity]
			if !ok {
				continue
			}
			ch <- prometheus.MustNewConstMetric(descStatistic, prometheus.GaugeValue, f.Statistic, ev.Model, ev.Version, f.Feature, f.Method)
			if f.PValue != nil {
				ch <- prometheus.MustNewConstMetric(descPValue, prometheus.GaugeValue, *f.PValue, ev.Model, ev.Version, f.Feature, f.Method)
			}
			ch <- prometheus.MustNewConstMetric(descSeverity, prometheus.GaugeValue, s, ev.Model, ev.Version, f.Feature)
		}
		for s, n := range counts {
			ch <- prometheus.MustNewConstMetric(descFeatures, prometheus.GaugeValue, float64(n), ev.Model, ev.Version, s)
		}
	}
	e.m.evaluations.Collect(ch)
	e.m.errors.Collect(ch)
	e.m.duration.Collect(ch)
}
