package telemetry

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample is one value of one series at one time, the unit handed to the
// durable store through WithSampleSink. Labels with empty values are left out.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Time   time.Time         `json:"time"`
	Value  float64           `json:"value"`
}

const (
	gaugeT   = prometheus.GaugeValue
	counterT = prometheus.CounterValue
	untypedT = prometheus.UntypedValue
)

// metricDef is one metric family: it knows its Prometheus Desc and also its
// name and label names, which a Desc does not reveal, so that the same values
// can become both /metrics output and Samples.
type metricDef struct {
	name   string
	typ    prometheus.ValueType
	labels []string
	desc   *prometheus.Desc
}

// allDefs lists every family this package can emit, for Describe.
var allDefs []*metricDef

func newDef(name, help string, typ prometheus.ValueType, labels ...string) *metricDef {
	d := &metricDef{name: name, typ: typ, labels: labels, desc: prometheus.NewDesc(name, help, labels, nil)}
	allDefs = append(allDefs, d)
	return d
}

// point is one series value; labels are in the order of def.labels.
type point struct {
	def    *metricDef
	value  float64
	labels []string
}

func pt(def *metricDef, value float64, labels ...string) point {
	return point{def: def, value: value, labels: labels}
}

func (p point) metric() (prometheus.Metric, error) {
	return prometheus.NewConstMetric(p.def.desc, p.def.typ, p.value, p.labels...)
}

func (p point) sample(t time.Time) Sample {
	s := Sample{Name: p.def.name, Time: t, Value: p.value}
	for i, l := range p.def.labels {
		if i < len(p.labels) && p.labels[i] != "" {
			if s.Labels == nil {
				s.Labels = make(map[string]string, len(p.labels))
			}
			s.Labels[l] = p.labels[i]
		}
	}
	return s
}

func samplesOf(pts []point, t time.Time) []Sample {
	out := make([]Sample, 0, len(pts))
	for _, p := range pts {
		out = append(out, p.sample(t))
	}
	return out
}

// SortedLabels returns the sample's labels as sorted name/value pairs, the
// order remote_write and most stores want.
func (s Sample) SortedLabels() [][2]string {
	out := make([][2]string, 0, len(s.Labels))
	for k, v := range s.Labels {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// Self-metrics, one series per collector.
var (
	mCollectorUp = newDef("vigil_collector_up",
		"Whether the collector's latest tick succeeded (1) or failed (0); see the agent status for the reason.",
		prometheus.GaugeValue, "collector")
	mCollectorDuration = newDef("vigil_collector_duration_seconds",
		"How long the collector's latest tick took.",
		prometheus.GaugeValue, "collector")
	mCollectorErrors = newDef("vigil_collector_errors_total",
		"Ticks that failed or partly failed, since the agent started.",
		prometheus.CounterValue, "collector")
	mCollectorLastSuccess = newDef("vigil_collector_last_success_timestamp_seconds",
		"Unix time of the collector's latest successful tick (0 if none yet).",
		prometheus.GaugeValue, "collector")
	mCollectorStale = newDef("vigil_collector_stale",
		"1 when the collector's latest successful snapshot is older than 3 intervals; its values are then left out of /metrics.",
		prometheus.GaugeValue, "collector")
	mSinkErrors = newDef("vigil_telemetry_sink_errors_total",
		"Ticks whose samples the sample sink (durable store) refused.",
		prometheus.CounterValue, "collector")
)
