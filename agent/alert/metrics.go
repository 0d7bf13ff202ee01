package alert

import (
	"github.com/prometheus/client_golang/prometheus"
)

var descActive = prometheus.NewDesc("vigil_alert_active",
	"1 for each (rule, model, version, severity) with at least one firing alert; absent otherwise. Drift alerts of several features of one model version share a series.",
	[]string{"rule", "model", "version", "severity"}, nil)

type metrics struct {
	notifications     *prometheus.CounterVec
	queue             *prometheus.GaugeVec
	stateSaveFailures prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_alert_notifications_total",
			Help: "Alert notifications by receiver and result: sent, retried (an attempt failed and will be retried), failed (every attempt failed, or the receiver refused it), dropped (the receiver's queue was full).",
		}, []string{"receiver", "result"}),
		queue: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_alert_notification_queue_length",
			Help: "Notifications waiting to be sent, per receiver (at most alerts.delivery.queue_size).",
		}, []string{"receiver"}),
		stateSaveFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_alert_state_save_failures_total",
			Help: "Times the alert state could not be written to the data directory (it is kept across restarts).",
		}),
	}
}

func (m *metrics) initReceiver(name string) {
	for _, r := range []string{resultSent, resultRetried, resultFailed, resultDropped} {
		m.notifications.WithLabelValues(name, r)
	}
	m.queue.WithLabelValues(name)
}

// forgetReceiver drops the series of a receiver that a reload removed.
func (m *metrics) forgetReceiver(name string) {
	m.notifications.DeletePartialMatch(prometheus.Labels{"receiver": name})
	m.queue.DeleteLabelValues(name)
}

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- descActive
	m.metrics.notifications.Describe(ch)
	m.metrics.queue.Describe(ch)
	m.metrics.stateSaveFailures.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	type key struct{ rule, model, version, severity string }
	seen := map[key]bool{}
	m.mu.Lock()
	for _, t := range m.alerts {
		if t.State == StateFiring {
			seen[key{t.Rule, t.labels["model"], t.labels["version"], string(t.Severity)}] = true
		}
	}
	m.mu.Unlock()
	for k := range seen {
		ch <- prometheus.MustNewConstMetric(descActive, prometheus.GaugeValue, 1, k.rule, k.model, k.version, k.severity)
	}
	m.metrics.notifications.Collect(ch)
	m.metrics.queue.Collect(ch)
	m.metrics.stateSaveFailures.Collect(ch)
}
