package gateway

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/observe"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file turns every gateway request that named a known alias into a
// monitoring observation (model "llm:<alias>", version = the upstream
// model), so that the latency, error and drift machinery built for model
// servers covers LLM traffic too.
//
// Observations are best effort: a request never waits for them. They go
// through a bounded queue to one goroutine that hands them to the
// observation service in batches (every FlushInterval or FlushItems,
// whichever comes first), so many requests share one fsync. When the queue
// is full an observation is dropped and counted
// (vigil_llm_observations_dropped_total{reason="queue_full"}); unlike
// POST /v1/observations nothing is acknowledged to anyone.

// ObservationsConfig is gateway.observations.
type ObservationsConfig struct {
	// Enabled records each request as an observation of model
	// llm:<alias>. Default true.
	Enabled bool `yaml:"enabled"`
	// QueueSize bounds the observations waiting to be written; more are
	// dropped and counted. Default 4096.
	QueueSize int `yaml:"queue_size"`
}

// ObservationPrefix starts the model name of a gateway alias's
// observations.
const ObservationPrefix = "llm:"

// Ingester stores observations; *observe.Service is one.
type Ingester interface {
	Ingest(ctx context.Context, obs []observe.Observation) error
}

const (
	// obsFlushInterval and obsFlushItems bound how long an observation
	// waits and how many share one write.
	obsFlushInterval = 100 * time.Millisecond
	obsFlushItems    = 256
	// obsWriteTimeout bounds one batch write.
	obsWriteTimeout = 10 * time.Second
)

// obsQueue is the one writer of the gateway's observations. Requests
// append to a buffer under a mutex (no channel send, so no goroutine is
// woken per request); the writer is woken when the buffer gets its first
// observation or fills a batch, waits out the flush interval, swaps the
// buffer for a spare and writes.
type obsQueue struct {
	sink    Ingester
	logger  *slog.Logger
	dropped *prometheus.CounterVec
	// fullDrops is the queue_full child, resolved once: the hot path only
	// increments it.
	fullDrops prometheus.Counter
	// size bounds buf; flushItems is how many observations make a batch
	// worth writing at once.
	size, flushItems int

	mu  sync.Mutex
	buf []observe.Observation

	kick     chan struct{} // capacity 1: "there is work"
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newObsQueue(size, flushItems int, sink Ingester, logger *slog.Logger, dropped *prometheus.CounterVec) *obsQueue {
	q := &obsQueue{
		sink: sink, logger: logger, dropped: dropped, fullDrops: dropped.WithLabelValues("queue_full"),
		size: size, flushItems: min(flushItems, size),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	go q.run()
	return q
}

// add queues o, or drops and counts it when the queue is full.
func (q *obsQueue) add(o observe.Observation) {
	q.mu.Lock()
	if len(q.buf) >= q.size {
		q.mu.Unlock()
		q.fullDrops.Inc()
		return
	}
	q.buf = append(q.buf, o)
	n := len(q.buf)
	q.mu.Unlock()
	if n == 1 || n == q.flushItems {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// take swaps the buffer for spare and returns what was queued.
func (q *obsQueue) take(spare []observe.Observation) []observe.Observation {
	q.mu.Lock()
	out := q.buf
	q.buf = spare[:0]
	q.mu.Unlock()
	return out
}

func (q *obsQueue) run() {
	defer close(q.done)
	var spare []observe.Observation
	timer := time.NewTimer(obsFlushInterval)
	timer.Stop()
	for {
		select {
		case <-q.kick:
		case <-q.stop:
			// Whatever is queued goes out before the agent closes the
			// observation store.
			q.writeAll(q.take(nil))
			return
		}
		// Give the batch up to the flush interval to fill, unless it is
		// full already.
		q.mu.Lock()
		full := len(q.buf) >= q.flushItems
		q.mu.Unlock()
		if !full {
			timer.Reset(obsFlushInterval)
			select {
			case <-timer.C:
			case <-q.kick: // a batch filled up
				timer.Stop()
			case <-q.stop:
				timer.Stop()
				q.writeAll(q.take(nil))
				return
			}
		}
		batch := q.take(spare)
		q.writeAll(batch)
		clear(batch)
		spare = batch
	}
}

// writeAll writes batch in writes of at most flushItems.
func (q *obsQueue) writeAll(batch []observe.Observation) {
	for len(batch) > 0 {
		n := min(len(batch), q.flushItems)
		q.write(batch[:n])
		batch = batch[n:]
	}
}

func (q *obsQueue) write(batch []observe.Observation) {
	ctx, cancel := context.WithTimeout(context.Background(), obsWriteTimeout)
	defer cancel()
	err := q.sink.Ingest(ctx, batch)
	if err != nil {
		reason := "store"
		var ie *observe.ItemError
		if errors.As(err, &ie) {
			reason = "rejected" // observe.max_models reached, say
		}
		q.dropped.WithLabelValues(reason).Add(float64(len(batch)))
		q.logger.Warn("gateway observations not stored", "count", len(batch), "reason", reason, "err", err)
	}
}

// close writes what is queued and stops the writer. Observations added
// afterwards stay in the buffer, unwritten.
func (q *obsQueue) close() {
	q.stopOnce.Do(func() { close(q.stop) })
	<-q.done
}

// RecordObservations makes every later request an observation handed to
// sink (the agent's observation service), when gateway.observations is
// enabled. Close flushes and stops the writer.
func (g *Gateway) RecordObservations(sink Ingester) {
	if !g.cfg.Observations.Enabled || sink == nil || g.obs != nil {
		return
	}
	g.obs = newObsQueue(g.cfg.Observations.QueueSize, g.obsFlushItems, sink, g.logger, g.m.obsDropped)
}

// exchange gathers what one request learns on its way (tokens, cost, the
// cache's verdict, time to first token) for its observation. It lives in
// the request's context and is touched only by the request's goroutine.
type exchange struct {
	cache                      string
	hasUsage                   bool
	prompt, completion, cached int64
	priced                     bool
	usd                        float64
	ttft                       time.Duration
	hasTTFT                    bool
}

type exchangeKey struct{}

// exchangeOf returns the request's exchange, nil when it has none.
func exchangeOf(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

func (ex *exchange) addUsage(u *pb.Usage) {
	if ex == nil || u == nil {
		return
	}
	ex.hasUsage = true
	ex.prompt += int64(max(u.GetPromptTokens(), 0))
	ex.completion += int64(max(u.GetCompletionTokens(), 0))
	ex.cached += int64(max(u.GetCachedPromptTokens(), 0))
}

func (ex *exchange) addCost(usd float64) {
	if ex != nil {
		ex.usd += usd
		ex.priced = true
	}
}

func (ex *exchange) setCache(label string) {
	if ex != nil {
		ex.cache = label
	}
}

func (ex *exchange) firstToken(d time.Duration) {
	if ex != nil && !ex.hasTTFT {
		ex.ttft, ex.hasTTFT = d, true
	}
}

// codeStreamError counts a stream that failed after it began.
const codeStreamError = "stream_error"

// record queues the observation of a finished request. code is the HTTP
// status returned, or stream_error for a stream that failed after it
// began (status 200, error true).
func (g *Gateway) record(o outcome, code string, elapsed time.Duration) {
	if g.obs == nil || o.alias == "" {
		return // no alias: nothing to file it under
	}
	a, ok := g.aliases[o.alias]
	if !ok {
		return
	}
	ob := observe.Observation{
		Model: ObservationPrefix + a.name, UnixMs: time.Now().UnixMilli(),
		LatencyMs: float64(elapsed.Microseconds()) / 1000, HasLatency: true,
	}
	provider := ""
	switch {
	case o.target != nil:
		ob.Version, provider = o.target.model, o.target.provider
	case len(a.targets) > 0:
		ob.Version = a.targets[0].model
	}
	if ob.Version == "" {
		ob.Version = "unknown"
	}
	if code == codeStreamError {
		ob.Status, ob.Error = http.StatusOK, true
	} else {
		ob.Status, _ = strconv.Atoi(code)
		ob.Error = ob.Status >= 500
	}
	f := make([]observe.Feature, 0, 8)
	f = append(f, observe.Feature{Name: "attempts", Value: observe.Num(float64(o.attempts))})
	if provider != "" {
		f = append(f, observe.Feature{Name: "provider", Value: observe.Str(provider)})
	}
	if ex := o.ex; ex != nil {
		if ex.cache != "" {
			f = append(f, observe.Feature{Name: "cache", Value: observe.Str(ex.cache)})
		}
		if ex.hasUsage {
			f = append(f,
				observe.Feature{Name: "prompt_tokens", Value: observe.Num(float64(ex.prompt))},
				observe.Feature{Name: "completion_tokens", Value: observe.Num(float64(ex.completion))},
				observe.Feature{Name: "cached_tokens", Value: observe.Num(float64(ex.cached))})
		}
		if ex.hasTTFT {
			f = append(f, observe.Feature{Name: "time_to_first_token_ms", Value: observe.Num(float64(ex.ttft.Microseconds()) / 1000)})
		}
		if ex.priced && !math.IsNaN(ex.usd) && !math.IsInf(ex.usd, 0) {
			f = append(f, observe.Feature{Name: "cost_usd", Value: observe.Num(ex.usd)})
		}
	}
	ob.Features = f
	g.obs.add(ob)
}
