package fleet

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	f               *Fleet
	members         *prometheus.Desc
	tagBytes        *prometheus.Desc
	healthScore     *prometheus.Desc
	events          *prometheus.CounterVec
	joins           *prometheus.CounterVec
	tagUpdates      prometheus.Counter
	keyringOps      *prometheus.CounterVec
	decryptFailures prometheus.Counter
	queries         *prometheus.CounterVec
	queryTimeouts   prometheus.Counter
	sink            *gossipSink
}

func newMetrics(f *Fleet) *metrics {
	return &metrics{
		f:           f,
		sink:        processSink(),
		members:     prometheus.NewDesc("vigil_fleet_members", "Fleet members this node knows, by serf status (alive, leaving, left, failed).", []string{"status"}, nil),
		tagBytes:    prometheus.NewDesc("vigil_fleet_health_tag_bytes", "Encoded size of this node's gossip tags (serf's limit is 512 bytes).", nil, nil),
		healthScore: prometheus.NewDesc("vigil_fleet_awareness_score", "memberlist's local health score: 0 is healthy, higher means this node is slow to answer probes.", nil, nil),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_fleet_events_total", Help: "Serf events this node received, by type (member-join, member-leave, member-failed, member-update, member-reap, user, query).",
		}, []string{"type"}),
		joins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_fleet_joins_total", Help: "Join attempts, by result (ok, failed).",
		}, []string{"result"}),
		tagUpdates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_fleet_tag_updates_total", Help: "Times this node published new gossip tags.",
		}),
		keyringOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_fleet_keyring_operations_total", Help: "Keyring operations started on this node, by operation.",
		}, []string{"op"}),
		decryptFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_fleet_decrypt_failures_total", Help: "Gossip messages or join attempts that failed because the encryption keys did not match.",
		}),
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_fleet_queries_total", Help: "Fleet queries this node started, by name.",
		}, []string{"name"}),
		queryTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_fleet_query_timeouts_total", Help: "Nodes that did not answer a fleet query before its timeout.",
		}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return append([]prometheus.Collector{m.events, m.joins, m.tagUpdates, m.keyringOps, m.decryptFailures, m.queries, m.queryTimeouts}, m.sink.collectors()...)
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.members
	ch <- m.tagBytes
	ch <- m.healthScore
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	f := m.f
	if f.serf != nil {
		counts := map[string]int{"alive": 0, "leaving": 0, "left": 0, "failed": 0}
		for _, mem := range f.serf.Members() {
			counts[mem.Status.String()]++
		}
		for s, n := range counts {
			ch <- prometheus.MustNewConstMetric(m.members, prometheus.GaugeValue, float64(n), s)
		}
		if score, err := strconv.Atoi(f.serf.Stats()["health_score"]); err == nil {
			ch <- prometheus.MustNewConstMetric(m.healthScore, prometheus.GaugeValue, float64(score))
		}
	}
	f.mu.Lock()
	size := f.tagBytes
	f.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.tagBytes, prometheus.GaugeValue, float64(size))
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}
