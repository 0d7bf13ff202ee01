package pluginhost

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	up       *prometheus.GaugeVec
	restarts *prometheus.CounterVec
	calls    *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_plugin_up",
			Help: "1 while the plugin process runs and answers its health check, 0 otherwise.",
		}, []string{"plugin", "kind"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_plugin_restarts_total",
			Help: "Times a plugin was started again after it crashed, hung or failed its health check.",
		}, []string{"plugin"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_plugin_call_duration_seconds",
			Help:    "Duration of calls into plugins, by plugin and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
		}, []string{"plugin", "method"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_plugin_call_errors_total",
			Help: "Calls into plugins that failed, by plugin, method and error class.",
		}, []string{"plugin", "method", "class"}),
	}
	if reg != nil {
		reg.MustRegister(m.up, m.restarts, m.calls, m.errors)
	}
	return m
}
