package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// staleAfter is how many intervals a snapshot may age before it is stale.
const staleAfter = 3

// collector is the one interface every collector implements. update is
// called from a single goroutine per collector, never concurrently with
// itself; the state it touches is owned by that goroutine.
type collector interface {
	name() string
	interval() time.Duration
	simulated() bool
	// update takes one sample. A *partialError means the points are usable
	// but something was missing; any other error means the tick failed.
	update(ctx context.Context, now time.Time) ([]point, error)
	// close releases resources once Run is over.
	close()
}

// liveCollector is a collector with values that do not come from ticks (XID
// event counters). They are served whether or not the ticks are fresh.
type liveCollector interface {
	live() []point
}

// partialError wraps problems of a tick that still produced values: a lost
// GPU among healthy ones, a host file system that could not be read.
type partialError struct{ err error }

func (e *partialError) Error() string { return e.err.Error() }
func (e *partialError) Unwrap() error { return e.err }

func partial(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return &partialError{errors.Join(errs...)}
}

// SampleSink receives each successful tick's values. It is called from the
// collector's goroutine, so it should be quick (buffer or group-commit); an
// error is logged and counted in vigil_telemetry_sink_errors_total.
type SampleSink func(ctx context.Context, samples []Sample) error

// Option changes how New builds a Telemetry.
type Option func(*options)

type options struct {
	sink     SampleSink
	hostname string
	now      func() time.Time
	nvml     nvmlLib
}

// WithSampleSink hands every successful tick's samples to sink.
func WithSampleSink(sink SampleSink) Option { return func(o *options) { o.sink = sink } }

// WithHostname sets the Hostname label of DCGM-compatible metrics (default
// os.Hostname()).
func WithHostname(name string) Option { return func(o *options) { o.hostname = name } }

// withNVML replaces the NVML library (tests).
func withNVML(lib nvmlLib) Option { return func(o *options) { o.nvml = lib } }

// withClock replaces time.Now for timestamps and staleness (tests).
func withClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Telemetry runs the collectors and serves their latest snapshots. Its
// methods are safe for concurrent use.
type Telemetry struct {
	log  *slog.Logger
	now  func() time.Time
	sink SampleSink

	states []*collectorState
	gpu    *gpuCollector
	host   *hostCollector
	procs  *processCollector

	running atomic.Bool
}

// collectorState is what Telemetry knows about one collector. mu guards
// everything below it; the collector's own goroutine writes, scrapes and API
// calls read.
type collectorState struct {
	c collector

	mu          sync.Mutex
	points      []point // from the latest successful tick
	ticked      bool
	up          bool
	reason      string
	lastSuccess time.Time
	duration    time.Duration
	errors      uint64
	sinkErrors  uint64
}

// New builds a Telemetry from cfg. It does not touch NVML or the host yet;
// that happens in Run. It fails only on an invalid configuration.
func New(cfg Config, logger *slog.Logger, opts ...Option) (*Telemetry, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.hostname == "" {
		o.hostname, _ = os.Hostname()
	}
	t := &Telemetry{log: logger, now: o.now, sink: o.sink}
	if cfg.GPU.Enabled {
		lib, sim := o.nvml, false
		if lib == nil && cfg.GPU.Simulate > 0 {
			lib, sim = newSimulatedNVML(cfg.GPU.Simulate), true
		}
		if lib == nil {
			lib = newRealNVML()
		}
		t.gpu = newGPUCollector(cfg.GPU, lib, sim, o.hostname, logger.With("collector", "gpu"))
		t.states = append(t.states, &collectorState{c: t.gpu})
	}
	if cfg.Host.Enabled {
		t.host = newHostCollector(cfg.Host, logger.With("collector", "host"))
		t.states = append(t.states, &collectorState{c: t.host})
	}
	if len(cfg.Host.Processes) > 0 {
		t.procs = newProcessCollector(cfg.Host, t.gpuProcesses, logger.With("collector", "process"))
		t.states = append(t.states, &collectorState{c: t.procs})
	}
	return t, nil
}

// Run ticks every collector on its own interval, the first tick at once,
// until ctx is done; then it stops the collectors (NVML shutdown, XID
// watcher) and returns nil. It may be called once.
func (t *Telemetry) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("telemetry: Run called more than once")
	}
	var wg sync.WaitGroup
	for _, st := range t.states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.loop(ctx, st)
		}()
	}
	wg.Wait()
	for _, st := range t.states {
		st.c.close()
	}
	return nil
}

func (t *Telemetry) loop(ctx context.Context, st *collectorState) {
	tick := time.NewTicker(st.c.interval())
	defer tick.Stop()
	for {
		t.tick(ctx, st)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// tick runs one update and records its outcome.
func (t *Telemetry) tick(ctx context.Context, st *collectorState) {
	now := t.now()
	start := time.Now()
	pts, err := safeUpdate(ctx, st.c, now, t.log)
	dur := time.Since(start)

	var pe *partialError
	ok := err == nil || errors.As(err, &pe)

	st.mu.Lock()
	wasUp, oldReason, first := st.up, st.reason, !st.ticked
	st.ticked = true
	st.duration = dur
	st.up = ok
	st.reason = ""
	if err != nil {
		st.errors++
		st.reason = err.Error()
	}
	if ok {
		st.points = pts
		st.lastSuccess = now
	}
	st.mu.Unlock()

	log := t.log.With("collector", st.c.name())
	switch {
	case !ok && (wasUp || first || oldReason != st.reason):
		log.Warn("collector down", "reason", err)
	case ok && err != nil && oldReason != err.Error():
		log.Warn("collector partly failed", "reason", err)
	case ok && err == nil && !first && (!wasUp || oldReason != ""):
		log.Info("collector recovered")
	}

	if !ok || t.sink == nil {
		return
	}
	if lc, isLive := st.c.(liveCollector); isLive {
		pts = append(pts[:len(pts):len(pts)], lc.live()...)
	}
	if err := t.sink(ctx, samplesOf(pts, now)); err != nil {
		st.mu.Lock()
		st.sinkErrors++
		n := st.sinkErrors
		st.mu.Unlock()
		if n == 1 || n%100 == 0 {
			log.Warn("sample sink failed", "err", err, "failures", n)
		}
	}
}

// safeUpdate turns a panic inside a collector into an error: the agent must
// never be the reason a host fails, and a driver or mock surprise is no
// reason to stop.
// The stack goes to the log only: the error becomes the collector's reason
// in /v1/status and /v1/health, which should stay one line.
func safeUpdate(ctx context.Context, c collector, now time.Time, log *slog.Logger) (pts []point, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("collector panicked", "collector", c.name(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("collector panicked: %v (stack trace in the agent's log)", r)
			pts = nil
		}
	}()
	return c.update(ctx, now)
}

// CollectorStatus is one collector's health, for /v1/status and /v1/health.
type CollectorStatus struct {
	Name string `json:"name"`
	// Up is true when the latest tick succeeded, fully or partly.
	Up bool `json:"up"`
	// Reason says why the collector is down or what partly failed; empty
	// when everything worked.
	Reason string `json:"reason,omitempty"`
	// LastSuccess is the time of the latest successful tick, zero if none.
	LastSuccess time.Time `json:"last_success"`
	// Stale is true when LastSuccess is older than 3 intervals.
	Stale     bool `json:"stale"`
	Simulated bool `json:"simulated"`
	// IntervalSeconds is the collector's tick interval.
	IntervalSeconds float64 `json:"interval_seconds"`
	// DurationSeconds is how long the latest tick took.
	DurationSeconds float64 `json:"duration_seconds"`
	// Errors counts failed or partly failed ticks since start.
	Errors uint64 `json:"errors"`
}

// Status reports every enabled collector, in a fixed order (gpu, host,
// process).
func (t *Telemetry) Status() []CollectorStatus {
	now := t.now()
	out := make([]CollectorStatus, 0, len(t.states))
	for _, st := range t.states {
		st.mu.Lock()
		cs := CollectorStatus{
			Name:            st.c.name(),
			Up:              st.up,
			Reason:          st.reason,
			LastSuccess:     st.lastSuccess,
			Stale:           st.staleLocked(now),
			Simulated:       st.c.simulated(),
			IntervalSeconds: st.c.interval().Seconds(),
			DurationSeconds: st.duration.Seconds(),
			Errors:          st.errors,
		}
		if !st.ticked {
			cs.Reason = "not collected yet"
		}
		st.mu.Unlock()
		out = append(out, cs)
	}
	return out
}

// Stale returns the names of collectors whose latest successful snapshot is
// older than 3 intervals. A collector that never succeeded is not stale (it
// has nothing to serve); it is down, see Status.
func (t *Telemetry) Stale() []string {
	now := t.now()
	var out []string
	for _, st := range t.states {
		st.mu.Lock()
		if st.staleLocked(now) {
			out = append(out, st.c.name())
		}
		st.mu.Unlock()
	}
	return out
}

func (st *collectorState) staleLocked(now time.Time) bool {
	return !st.lastSuccess.IsZero() && now.Sub(st.lastSuccess) > staleAfter*st.c.interval()
}

func (t *Telemetry) state(c collector) *collectorState {
	for _, st := range t.states {
		if st.c == c {
			return st
		}
	}
	return nil
}

// freshness returns, for one collector, whether its snapshot is stale and the
// reason it is not fully up.
func (t *Telemetry) freshness(c collector) (stale bool, reason string) {
	st := t.state(c)
	st.mu.Lock()
	defer st.mu.Unlock()
	reason = st.reason
	if !st.ticked {
		reason = "not collected yet"
	}
	return st.staleLocked(t.now()), reason
}

// Describe implements prometheus.Collector.
func (t *Telemetry) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDefs {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector: self-metrics for every collector,
// plus each collector's latest values unless they are stale.
func (t *Telemetry) Collect(ch chan<- prometheus.Metric) {
	now := t.now()
	for _, st := range t.states {
		name := st.c.name()
		st.mu.Lock()
		up, stale := 0.0, 0.0
		if st.up {
			up = 1
		}
		isStale := st.staleLocked(now)
		if isStale {
			stale = 1
		}
		var last float64
		if !st.lastSuccess.IsZero() {
			last = float64(st.lastSuccess.UnixNano()) / 1e9
		}
		self := []point{
			pt(mCollectorUp, up, name),
			pt(mCollectorDuration, st.duration.Seconds(), name),
			pt(mCollectorErrors, float64(st.errors), name),
			pt(mCollectorLastSuccess, last, name),
			pt(mCollectorStale, stale, name),
		}
		if t.sink != nil {
			self = append(self, pt(mSinkErrors, float64(st.sinkErrors), name))
		}
		pts := st.points
		st.mu.Unlock()

		for _, p := range self {
			send(ch, p)
		}
		if !isStale {
			for _, p := range pts {
				send(ch, p)
			}
		}
		if lc, ok := st.c.(liveCollector); ok {
			for _, p := range lc.live() {
				send(ch, p)
			}
		}
	}
}

func send(ch chan<- prometheus.Metric, p point) {
	m, err := p.metric()
	if err != nil {
		m = prometheus.NewInvalidMetric(p.def.desc, err)
	}
	ch <- m
}
