package fleet

import (
	"strings"
	"sync"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// gossipSink receives serf's and memberlist's go-metrics and keeps the few
// that tell how much gossip flows, as Prometheus counters. go-metrics is
// process-global, so there is one sink per process.
type gossipSink struct {
	bytes    *prometheus.CounterVec
	packets  *prometheus.CounterVec
	messages *prometheus.CounterVec
	probes   *prometheus.CounterVec
}

var (
	sinkOnce sync.Once
	sink     *gossipSink
)

// processSink installs the sink as go-metrics' global sink, once.
func processSink() *gossipSink {
	sinkOnce.Do(func() {
		sink = &gossipSink{
			bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "vigil_fleet_gossip_bytes_total", Help: "Bytes memberlist sent and received, by transport (udp, tcp) and direction.",
			}, []string{"transport", "direction"}),
			packets: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "vigil_fleet_gossip_packets_total", Help: "UDP packets and TCP streams memberlist sent and received, by transport and direction.",
			}, []string{"transport", "direction"}),
			messages: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "vigil_fleet_gossip_messages_total", Help: "Serf messages sent and received (membership intents, events, queries), by direction.",
			}, []string{"direction"}),
			probes: prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: "vigil_fleet_gossip_state_messages_total", Help: "memberlist alive, suspect and dead messages this node processed, by kind.",
			}, []string{"kind"}),
		}
		cfg := gometrics.DefaultConfig("")
		cfg.EnableHostname = false
		cfg.EnableRuntimeMetrics = false
		_, _ = gometrics.NewGlobal(cfg, sink)
	})
	return sink
}

func (s *gossipSink) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.bytes, s.packets, s.messages, s.probes}
}

func (s *gossipSink) count(key []string, val float32) {
	switch strings.Join(key, ".") {
	case "memberlist.udp.sent":
		s.bytes.WithLabelValues("udp", "sent").Add(float64(val))
		s.packets.WithLabelValues("udp", "sent").Inc()
	case "memberlist.udp.received":
		s.bytes.WithLabelValues("udp", "received").Add(float64(val))
		s.packets.WithLabelValues("udp", "received").Inc()
	case "memberlist.tcp.sent":
		s.bytes.WithLabelValues("tcp", "sent").Add(float64(val))
		s.packets.WithLabelValues("tcp", "sent").Inc()
	case "memberlist.tcp.accept":
		s.packets.WithLabelValues("tcp", "received").Inc()
	case "serf.msgs.sent":
		s.messages.WithLabelValues("sent").Inc()
	case "serf.msgs.received":
		s.messages.WithLabelValues("received").Inc()
	case "memberlist.msg.alive":
		s.probes.WithLabelValues("alive").Inc()
	case "memberlist.msg.suspect":
		s.probes.WithLabelValues("suspect").Inc()
	case "memberlist.msg.dead":
		s.probes.WithLabelValues("dead").Inc()
	}
}

func (s *gossipSink) SetGauge([]string, float32)                              {}
func (s *gossipSink) SetGaugeWithLabels([]string, float32, []gometrics.Label) {}
func (s *gossipSink) EmitKey([]string, float32)                               {}
func (s *gossipSink) IncrCounter(key []string, val float32)                   { s.count(key, val) }
func (s *gossipSink) AddSample(key []string, val float32)                     { s.count(key, val) }
func (s *gossipSink) IncrCounterWithLabels(key []string, val float32, _ []gometrics.Label) {
	s.count(key, val)
}
func (s *gossipSink) AddSampleWithLabels(key []string, val float32, _ []gometrics.Label) {
	s.count(key, val)
}
