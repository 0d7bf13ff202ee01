package store

import (
	"os"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	appended      atomic.Uint64
	evicted       atomic.Uint64
	compactions   atomic.Uint64
	seriesRemoved atomic.Uint64
	commitDur     prometheus.Histogram

	mu          sync.Mutex
	writeErrs   map[string]uint64
	droppedBy   map[string]uint64
	unforwarded map[string]uint64
}

func newMetrics() *metrics {
	m := &metrics{
		commitDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "vigil_store_commit_duration_seconds",
			Help:    "Time to commit and fsync one group commit of the sample store.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5},
		}),
		writeErrs:   map[string]uint64{},
		droppedBy:   map[string]uint64{reasonSeriesLimit: 0},
		unforwarded: map[string]uint64{},
	}
	for _, r := range []string{reasonDiskFull, reasonIO, reasonInvalidSample} {
		m.writeErrs[r] = 0
	}
	return m
}

func (m *metrics) dropped(reason string, n uint64) {
	m.mu.Lock()
	m.droppedBy[reason] += n
	m.mu.Unlock()
}

func (m *metrics) writeError(reason string) {
	m.mu.Lock()
	m.writeErrs[reason]++
	m.mu.Unlock()
}

func (m *metrics) addUnforwarded(cursor string, n uint64) {
	m.mu.Lock()
	m.unforwarded[cursor] += n
	m.mu.Unlock()
}

// Stats is a snapshot of the store's counters and gauges.
type Stats struct {
	SamplesAppended    uint64            // acknowledged samples since Open
	EvictedSamples     uint64            // samples dropped by retention or max_bytes since Open
	EvictedUnforwarded map[string]uint64 // per saved cursor: evicted before that cursor read them
	WriteErrors        map[string]uint64 // failed Append calls by reason
	DroppedSamples     map[string]uint64 // samples left out of successful Append calls, by reason
	SeriesRemoved      uint64            // series removed by series GC since Open
	Commits            uint64            // group commits (fsync rounds) since Open
	Compactions        uint64
	SizeBytes          int64 // file size on disk
	Partitions         int
	Series             int
}

// Stats returns the current counters.
func (s *Store) Stats() Stats {
	st := Stats{
		SamplesAppended: s.m.appended.Load(),
		EvictedSamples:  s.m.evicted.Load(),
		Commits:         s.c.commits.Load(),
		Compactions:     s.m.compactions.Load(),
		Partitions:      int(s.partitions.Load()),
		Series:          s.idx.len(),
		SeriesRemoved:   s.m.seriesRemoved.Load(),
	}
	if fi, err := os.Stat(s.cfg.Path); err == nil {
		st.SizeBytes = fi.Size()
	}
	s.m.mu.Lock()
	st.WriteErrors = make(map[string]uint64, len(s.m.writeErrs))
	for k, v := range s.m.writeErrs {
		st.WriteErrors[k] = v
	}
	st.DroppedSamples = make(map[string]uint64, len(s.m.droppedBy))
	for k, v := range s.m.droppedBy {
		st.DroppedSamples[k] = v
	}
	st.EvictedUnforwarded = make(map[string]uint64, len(s.m.unforwarded))
	for k, v := range s.m.unforwarded {
		st.EvictedUnforwarded[k] = v
	}
	s.m.mu.Unlock()
	return st
}

// EvictedSamples is the number of samples dropped by retention or
// store.max_bytes since Open.
func (s *Store) EvictedSamples() uint64 { return s.m.evicted.Load() }

var (
	descAppended    = prometheus.NewDesc("vigil_store_samples_appended_total", "Samples acknowledged (committed and fsynced) by the store.", nil, nil)
	descEvicted     = prometheus.NewDesc("vigil_store_evicted_samples_total", "Samples dropped by retention by age or by store.max_bytes.", nil, nil)
	descUnforwarded = prometheus.NewDesc("vigil_store_evicted_unforwarded_samples_total", "Samples evicted before the named forwarding cursor read them.", []string{"cursor"}, nil)
	descWriteErrs   = prometheus.NewDesc("vigil_store_write_errors_total", "Append calls that failed, by reason.", []string{"reason"}, nil)
	descDropped     = prometheus.NewDesc("vigil_store_dropped_samples_total", "Samples left out of an otherwise stored Append, by reason (series_limit: a new series over store.max_series).", []string{"reason"}, nil)
	descSeriesGC    = prometheus.NewDesc("vigil_store_series_removed_total", "Series removed from the index because retention or store.max_bytes dropped all their data.", nil, nil)
	descCommits     = prometheus.NewDesc("vigil_store_commits_total", "Group commits (each one fsync round) of the sample store.", nil, nil)
	descCompactions = prometheus.NewDesc("vigil_store_compactions_total", "Times the store file was compacted into a fresh file.", nil, nil)
	descSize        = prometheus.NewDesc("vigil_store_size_bytes", "Size of the store file on disk.", nil, nil)
	descPartitions  = prometheus.NewDesc("vigil_store_partitions", "Time partitions currently held.", nil, nil)
	descSeries      = prometheus.NewDesc("vigil_store_series", "Series in the store's index.", nil, nil)
)

// Describe implements prometheus.Collector, so a Store can be registered
// directly.
func (s *Store) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAppended, descEvicted, descUnforwarded, descWriteErrs, descDropped, descSeriesGC, descCommits, descCompactions, descSize, descPartitions, descSeries} {
		ch <- d
	}
	s.m.commitDur.Describe(ch)
}

// Collect implements prometheus.Collector.
func (s *Store) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	ch <- prometheus.MustNewConstMetric(descAppended, prometheus.CounterValue, float64(st.SamplesAppended))
	ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, float64(st.EvictedSamples))
	for name, n := range st.EvictedUnforwarded {
		ch <- prometheus.MustNewConstMetric(descUnforwarded, prometheus.CounterValue, float64(n), name)
	}
	for reason, n := range st.WriteErrors {
		ch <- prometheus.MustNewConstMetric(descWriteErrs, prometheus.CounterValue, float64(n), reason)
	}
	for reason, n := range st.DroppedSamples {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(descSeriesGC, prometheus.CounterValue, float64(st.SeriesRemoved))
	ch <- prometheus.MustNewConstMetric(descCommits, prometheus.CounterValue, float64(st.Commits))
	ch <- prometheus.MustNewConstMetric(descCompactions, prometheus.CounterValue, float64(st.Compactions))
	ch <- prometheus.MustNewConstMetric(descSize, prometheus.GaugeValue, float64(st.SizeBytes))
	ch <- prometheus.MustNewConstMetric(descPartitions, prometheus.GaugeValue, float64(st.Partitions))
	ch <- prometheus.MustNewConstMetric(descSeries, prometheus.GaugeValue, float64(st.Series))
	s.m.commitDur.Collect(ch)
}

var _ prometheus.Collector = (*Store)(nil)
