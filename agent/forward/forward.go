package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/agent/version"
)

// States of an upstream, as Status reports them.
const (
	StateStarting = "starting" // Run has not read the store yet
	StateIdle     = "idle"     // caught up: everything in the store was sent
	StateSending  = "sending"  // a batch is being sent
	StateRetrying = "retrying" // the last request failed; waiting to retry
	StateError    = "error"    // the store could not be read; retrying
	StateStopped  = "stopped"  // Run returned
)

// Reasons, the values of the reason label.
var (
	retryReasons   = []string{"http_5xx", "http_429", "network", "timeout"}
	failureReasons = []string{"http_5xx", "http_429", "http_4xx", "http_other", "network", "timeout"}
	dropReasons    = []string{reasonRejected, reasonInvalid, reasonEvicted}
)

const (
	reasonRejected = "rejected" // the receiver answered 4xx (not 429)
	reasonInvalid  = "invalid"  // name or label names Prometheus would refuse
	reasonEvicted  = "evicted"  // evicted from the store before it was sent
)

// idlePoll is how often an idle upstream looks at the store even without a
// notification from it (a safety net: Store.Notify wakes it at once).
const idlePoll = 5 * time.Second

// saveTimeout bounds saving a cursor after a 2xx, which is done even when
// the forwarder is stopping so an accepted batch is not sent again.
const saveTimeout = 10 * time.Second

// Forwarder ships the store's samples to every configured upstream.
type Forwarder struct {
	st       *store.Store
	log      *slog.Logger
	ups      []*upstream
	running  atomic.Bool
	batchDur *prometheus.HistogramVec
}

// UpstreamStatus is one upstream's state, for /v1/status and health checks.
type UpstreamStatus struct {
	Name  string `json:"name"`
	URL   string `json:"url"` // without query string
	State string `json:"state"`
	// Up is true when the last request was accepted (2xx).
	Up              bool      `json:"up"`
	LastError       string    `json:"last_error,omitempty"`
	LastErrorTime   time.Time `json:"last_error_time,omitzero"`
	LastSuccessTime time.Time `json:"last_success_time,omitzero"`
	// LagSeconds is the age of the oldest sample not yet accepted; 0 when
	// caught up.
	LagSeconds float64 `json:"lag_seconds"`
	// SamplesSent counts samples accepted by the upstream since start.
	SamplesSent uint64 `json:"samples_sent"`
	// SamplesDropped counts samples given up on since start, by reason:
	// rejected (4xx), invalid (names Prometheus refuses), evicted (dropped
	// by the store's retention or size cap before they were sent).
	SamplesDropped map[string]uint64 `json:"samples_dropped"`
	// PendingSamples estimates the samples in the store not yet sent; nil
	// until the upstream has caught up once since start (before that the
	// backlog is not known without walking the store).
	PendingSamples *int64 `json:"pending_samples"`
}

// New prepares a forwarder for every cfg.RemoteWrite entry. It validates
// cfg, reads the secret and TLS files (a missing one is an error) and
// registers the forwarder's metrics with reg (when reg is not nil). Nothing
// is sent until Run.
func New(cfg Config, st *store.Store, logger *slog.Logger, reg prometheus.Registerer) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("forward: nil store")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &Forwarder{
		st:  st,
		log: logger.With("component", "forward"),
		batchDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_forward_batch_duration_seconds",
			Help:    "Duration of one remote_write request, whatever its outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"upstream"}),
	}
	ua := "vigil/" + userAgentVersion()
	var ext []label
	for _, k := range slices.Sorted(maps.Keys(cfg.ExternalLabels)) {
		ext = append(ext, label{k, cfg.ExternalLabels[k]})
	}
	for i, rw := range cfg.RemoteWrite {
		rw = rw.withDefaults()
		c, err := newClient(rw, ua)
		if err != nil {
			return nil, fmt.Errorf("forward.remote_write[%d] (%s): %w", i, rw.Name, err)
		}
		u := newUpstream(rw, c, st, f.log, f.batchDur.WithLabelValues(rw.Name))
		u.ext = ext
		f.ups = append(f.ups, u)
	}
	if reg != nil {
		if err := reg.Register(f); err != nil {
			return nil, fmt.Errorf("forward: register metrics: %w", err)
		}
	}
	return f, nil
}

func userAgentVersion() string {
	if v := version.Get().Version; v != "" {
		return v
	}
	return "dev"
}

// Run forwards until ctx ends, one goroutine per upstream, and returns nil
// once all of them stopped. A batch in flight when ctx ends is abandoned
// (its cursor not advanced) and sent again by the next Run. Run may be
// called once at a time.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("forward: Run is already running")
	}
	defer f.running.Store(false)
	var wg sync.WaitGroup
	for _, u := range f.ups {
		wg.Go(func() { u.run(ctx) })
	}
	wg.Wait()
	return nil
}

// Status returns every upstream's state in configuration order.
func (f *Forwarder) Status() []UpstreamStatus {
	st := f.st.Stats()
	out := make([]UpstreamStatus, 0, len(f.ups))
	for _, u := range f.ups {
		out = append(out, u.status(time.Now(), st))
	}
	return out
}

// upstream is the state of one remote_write target. run owns the cursor
// and the batch; the fields behind mu and the atomics are read by Status
// and the metrics collector.
type upstream struct {
	cfg        RemoteWrite
	ext        []label // forward.external_labels, sorted
	cursorName string
	displayURL string
	c          *client
	st         *store.Store
	log        *slog.Logger
	batchDur   prometheus.Observer
	now        func() time.Time

	sent       atomic.Uint64
	up         atomic.Bool
	oldestMs   atomic.Int64 // oldest unsent sample's time in ms; 0 when caught up
	retries    map[string]*atomic.Uint64
	failures   map[string]*atomic.Uint64
	dropped    map[string]*atomic.Uint64 // rejected, invalid (evicted comes from the store)
	handled    atomic.Uint64             // sent + rejected + invalid, for the pending estimate
	baseKnown  atomic.Bool
	baseAppend atomic.Uint64 // store appends when the upstream last caught up
	baseHandle atomic.Uint64 // handled at that moment
	baseEvict  atomic.Uint64 // evicted-unforwarded at that moment

	mu          sync.Mutex
	state       string
	lastErr     string
	lastErrTime time.Time
	lastOK      time.Time

	// Owned by run: episode bookkeeping for "log once per episode".
	retryEpisode  int // failed attempts in the current episode
	retryStart    time.Time
	rejectEpisode int // batches rejected since the last accepted one
	rejectSamples int
	invalidLogged bool
	saveFailing   bool
	secretFailing bool
	part          *batch // the part of a refused batch sendNewest sends
}

func newUpstream(rw RemoteWrite, c *client, st *store.Store, log *slog.Logger, dur prometheus.Observer) *upstream {
	u := &upstream{
		cfg:        rw,
		cursorName: cursorNamePrefix + rw.Name,
		displayURL: displayURL(rw.URL),
		c:          c,
		st:         st,
		batchDur:   dur,
		now:        time.Now,
		retries:    counters(retryReasons),
		failures:   counters(failureReasons),
		dropped:    counters([]string{reasonRejected, reasonInvalid}),
		state:      StateStarting,
	}
	u.log = log.With("upstream", rw.Name, "url", u.displayURL)
	return u
}

func counters(reasons []string) map[string]*atomic.Uint64 {
	m := make(map[string]*atomic.Uint64, len(reasons))
	for _, r := range reasons {
		m[r] = new(atomic.Uint64)
	}
	return m
}

// displayURL drops the query string and fragment, which may carry tokens.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

func (u *upstream) setState(s string) {
	u.mu.Lock()
	u.state = s
	u.mu.Unlock()
}

func (u *upstream) setError(s string, err error) {
	u.mu.Lock()
	u.state = s
	u.lastErr = err.Error()
	u.lastErrTime = u.now()
	u.mu.Unlock()
}

func (u *upstream) run(ctx context.Context) {
	defer u.setState(StateStopped)
	var cur store.Cursor
	for attempt := 0; ; attempt++ {
		c, saved, err := u.st.LoadCursor(u.cursorName)
		if err == nil {
			cur = c
			if !saved {
				// A new upstream starts from the beginning. Save that now:
				// the store counts the samples it evicts before a saved
				// cursor read them, and an upstream that is down from the
				// start would otherwise have none to count against, so
				// everything evicted before its first accepted batch would
				// be lost without a trace in vigil_forward_dropped_samples_total.
				u.saveCursor(cur)
			}
			break
		}
		u.setError(StateError, fmt.Errorf("load cursor: %w", err))
		if attempt == 0 {
			u.log.Error("cannot load the forwarding cursor; retrying", "cursor", u.cursorName, "err", err)
		}
		if errors.Is(err, store.ErrClosed) || !sleep(ctx, u.backoff(attempt)) {
			return
		}
	}
	u.log.Info("forwarding", "cursor", u.cursorName, "from_seq", cur.Seq, "from_off", cur.Off)
	replay := u.replayCount(cur)

	b := newBatch()
	b.ext = u.ext
	readErrs := 0
	for ctx.Err() == nil {
		wake := u.st.Notify()
		appended := u.st.Stats()
		n := u.cfg.BatchMaxSamples
		if replay > 0 {
			n = replay
		}
		next, invalid, short, err := u.read(cur, n, b)
		if err != nil {
			if errors.Is(err, store.ErrClosed) {
				return
			}
			u.setError(StateError, fmt.Errorf("read store: %w", err))
			if readErrs == 0 {
				u.log.Error("cannot read the store; retrying", "err", err)
			}
			if !sleep(ctx, u.backoff(readErrs)) {
				return
			}
			readErrs++
			continue
		}
		if readErrs > 0 {
			u.log.Info("reading the store works again", "failed_reads", readErrs)
			readErrs = 0
		}
		if invalid > 0 {
			u.countDropped(reasonInvalid, invalid)
		}
		if next == cur { // caught up
			replay = 0
			u.oldestMs.Store(0)
			u.baseAppend.Store(appended.SamplesAppended)
			u.baseHandle.Store(u.handled.Load())
			u.baseEvict.Store(appended.EvictedUnforwarded[u.cursorName])
			u.baseKnown.Store(true)
			u.setState(StateIdle)
			select {
			case <-ctx.Done():
				return
			case <-wake:
			case <-time.After(idlePoll):
			}
			continue
		}
		if b.samples > 0 {
			if short && replay == 0 {
				// A read from cur would return more samples after a restart
				// than this batch holds: record where it ends so a restart
				// sends exactly this batch again (see replayCount).
				u.saveCursorAs(u.cursorName+inflightSuffix, next)
			}
			u.oldestMs.Store(b.minT)
			// The batch is in memory from here on: if the store evicts it
			// while it is retried, it is still sent (and counted as sent),
			// so the store must not count it as evicted too.
			u.st.Hold(u.cursorName, next)
			if !u.send(ctx, b) {
				return // ctx ended: the batch is sent again next time
			}
		}
		replay = 0
		u.saveCursor(next)
		cur = next
	}
}

// inflightSuffix names the cursor saved before sending a batch that a
// later read would not reproduce: "forward/<name>.inflight" is where that
// batch ends.
const inflightSuffix = ".inflight"

// replayCount returns how many samples after cur the batch in flight when
// the agent last stopped held, or 0 when there is none to reproduce.
//
// Why: a receiver like Prometheus refuses a whole request with 400 "out of
// order" when any sample in it is older than what it already has for the
// series. If the agent died after such a batch was accepted but before its
// cursor was saved, sending it again is answered 400 and dropped, which is
// right; but if the first batch after the restart also carried samples
// appended since, those would be dropped with it. Sending exactly the old
// batch first avoids that. Batches that were full (batch_max_samples) or
// cut by batch_max_bytes are reproduced by any read from cur; only a short
// batch (the newest samples) needs its end saved before it is sent.
func (u *upstream) replayCount(cur store.Cursor) int {
	end, ok, err := u.st.LoadCursor(u.cursorName + inflightSuffix)
	if err != nil || !ok || !after(end, cur) {
		return 0
	}
	nextAt := func(k int) (store.Cursor, bool) {
		_, next, err := u.st.ReadFrom(cur, k)
		return next, err == nil
	}
	hi := u.cfg.BatchMaxSamples
	for {
		next, ok := nextAt(hi)
		if !ok {
			return 0
		}
		if !after(end, next) {
			break
		}
		if hi >= maxBatchSamples {
			return 0 // evicted or rewritten: nothing to reproduce
		}
		hi = min(hi*2, maxBatchSamples)
	}
	lo := 1 // smallest k whose read reaches end lies in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		next, ok := nextAt(mid)
		if !ok {
			return 0
		}
		if after(end, next) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if next, ok := nextAt(lo); !ok || next != end {
		return 0
	}
	u.log.Info("sending the batch that was in flight when the agent stopped exactly as it was", "samples", lo)
	return lo
}

// after reports whether a is past b in the store's append order.
func after(a, b store.Cursor) bool {
	return a.Seq > b.Seq || a.Seq == b.Seq && a.Off > b.Off
}

// read fills b with up to n samples after cur, bounded by batch_max_bytes,
// and returns the cursor after them. When the byte bound cuts a read short
// it reads again with the smaller count, to learn the cursor just after
// the last sample that fits. short reports a batch that a later read from
// cur could make longer: fewer than n samples and not cut by bytes.
func (u *upstream) read(cur store.Cursor, n int, b *batch) (next store.Cursor, invalid int, short bool, err error) {
	maxBytes := int(u.cfg.BatchMaxBytes)
	cutByBytes := false
	for {
		samples, next, err := u.st.ReadFrom(cur, n)
		if err != nil {
			return cur, 0, false, err
		}
		b.reset()
		invalid = 0
		cut := -1
		for i, s := range samples {
			ok, bad := b.add(s, maxBytes)
			if !ok {
				cut = i
				break
			}
			if bad {
				invalid++
				if !u.invalidLogged {
					u.invalidLogged = true
					u.log.Warn("dropping samples whose metric or label names Prometheus refuses (logged once)", "series", s.Name+s.Labels.String())
				}
			}
		}
		if cut < 0 {
			return next, invalid, !cutByBytes && len(samples) < n, nil
		}
		n = cut // at least 1: the first sample always fits
		cutByBytes = true
	}
}

// send posts b until it is accepted or rejected for good (true), or ctx
// ends (false). When Prometheus refuses it for holding samples older than
// its head block, the newest part of it that it takes is delivered (see
// sendNewest); the rest is counted as rejected.
func (u *upstream) send(ctx context.Context, b *batch) bool {
	n := b.samples
	u.setState(StateSending)
	res, ok := u.deliver(ctx, b.encode())
	if !ok {
		return false
	}
	if res.outcome == outcomeSent {
		u.accepted(n)
		return true
	}
	u.refused(res)
	sent := 0
	if tooOld(res) {
		if sent, ok = u.sendNewest(ctx, b); !ok {
			return false
		}
	}
	rejected := n - sent
	if u.rejectEpisode == 0 {
		u.log.Warn("upstream rejected a batch; dropping it (further rejections are counted, not logged, until a batch is accepted)",
			"status", res.status, "samples", n, "delivered_newest", sent, "err", res.err)
	}
	u.countDropped(reasonRejected, rejected)
	u.rejectEpisode++
	u.rejectSamples += rejected
	if sent > 0 {
		u.accepted(sent)
	}
	return true
}

// tooOld reports Prometheus' answer to a request holding a sample older
// than its head block accepts: 400 "out of bounds".
func tooOld(res result) bool {
	return res.status == http.StatusBadRequest && res.err != nil && strings.Contains(res.err.Error(), "out of bounds")
}

// searchMaxAge bounds the batches sendNewest searches: Prometheus takes
// samples up to half its 2h head block (1h) behind the newest sample it
// has, which for a receiver that other nodes keep writing to is about
// now, so a refused batch whose newest sample is older than that (plus a
// minute for clocks that disagree) holds nothing it would take.
const searchMaxAge = time.Hour + time.Minute

// maxSearchProbes bounds the requests sendNewest spends on one batch.
const maxSearchProbes = 16

// sendNewest delivers the newest part of b that the receiver takes after
// it refused b as too old (Prometheus refuses a whole request when one
// sample in it is, rolling the rest back). Prometheus' bound is one time
// for every series, so the refused samples are the batch's oldest: it
// sends b again from its second-oldest sample time on, then from the
// third ..., oldest first, until a request is accepted (at most
// maxSearchProbes requests, spread evenly over b's sample times when it
// has more). It cannot bisect: an accepted request is stored, and the
// older samples of its series could never be added after it (Prometheus
// refuses them as out of order), so only refusals may be used to probe.
// Only a batch whose newest sample is younger than searchMaxAge is
// searched, so a long run of batches that are entirely too old still
// costs one request each. It returns the samples delivered, and false
// when ctx ended.
func (u *upstream) sendNewest(ctx context.Context, b *batch) (int, bool) {
	ts := b.times()
	if len(ts) < 2 || u.now().Sub(time.UnixMilli(ts[len(ts)-1])) > searchMaxAge {
		return 0, true
	}
	step := (len(ts) - 2 + maxSearchProbes) / maxSearchProbes // ceil((len-1)/max)
	if u.part == nil {
		u.part = newBatch()
	}
	for i := step; i < len(ts); i += step {
		b.since(ts[i], u.part)
		res, ok := u.deliver(ctx, u.part.encode())
		if !ok {
			return 0, false
		}
		if res.outcome == outcomeSent {
			return u.part.samples, true
		}
		u.refused(res)
		if !tooOld(res) {
			return 0, true
		}
	}
	return 0, true
}

// deliver posts body, retrying 5xx, 429, network errors and timeouts with
// backoff, until the receiver accepts or refuses it for good (res.outcome
// is outcomeSent or outcomeDrop), or ctx ends (false).
func (u *upstream) deliver(ctx context.Context, body []byte) (result, bool) {
	for attempt := 0; ; attempt++ {
		start := u.now()
		res, secretErr := u.c.post(ctx, body, start)
		u.batchDur.Observe(time.Since(start).Seconds())
		if secretErr != nil && !u.secretFailing {
			u.log.Warn("cannot re-read a secret file; using its last good value (logged once until it works again)", "err", secretErr)
		}
		u.secretFailing = secretErr != nil
		if ctx.Err() != nil && res.outcome != outcomeSent {
			return res, false
		}
		if res.outcome != outcomeRetry {
			return res, true
		}
		u.up.Store(false)
		u.failures[res.reason].Add(1)
		wait := u.backoff(attempt)
		if res.retryAfter > 0 {
			wait = min(res.retryAfter, max(maxRetryAfter, u.cfg.MaxBackoff))
		}
		u.setError(StateRetrying, res.err)
		if u.retryEpisode == 0 {
			u.retryStart = start
			u.log.Warn("sending failed; retrying with backoff (logged once until it recovers)",
				"status", res.status, "reason", res.reason, "err", res.err, "retry_in", wait.Round(time.Millisecond))
		}
		u.retryEpisode++
		if !sleep(ctx, wait) {
			return res, false
		}
		u.retries[res.reason].Add(1)
		u.setState(StateSending)
	}
}

// accepted counts n samples taken by the receiver.
func (u *upstream) accepted(n int) {
	u.up.Store(true)
	u.sent.Add(uint64(n))
	u.handled.Add(uint64(n))
	u.mu.Lock()
	u.lastOK = u.now()
	u.mu.Unlock()
	u.endEpisodes()
}

// refused records a request the receiver refused for good.
func (u *upstream) refused(res result) {
	u.up.Store(false)
	u.failures[res.reason].Add(1)
	u.setError(StateSending, res.err)
}

// endEpisodes logs the end of retry and rejection episodes after a 2xx.
func (u *upstream) endEpisodes() {
	if u.retryEpisode > 0 {
		u.log.Info("upstream accepts samples again", "failed_attempts", u.retryEpisode, "after", u.now().Sub(u.retryStart).Round(time.Millisecond))
		u.retryEpisode = 0
	}
	if u.rejectEpisode > 0 {
		u.log.Info("upstream accepts samples again after rejecting batches", "rejected_batches", u.rejectEpisode, "dropped_samples", u.rejectSamples)
		u.rejectEpisode, u.rejectSamples = 0, 0
	}
	u.invalidLogged = false
	u.setState(StateSending)
}

func (u *upstream) countDropped(reason string, n int) {
	u.dropped[reason].Add(uint64(n))
	u.handled.Add(uint64(n))
}

// saveCursor records next durably. A failure is logged (once per episode)
// and otherwise ignored: the in-memory cursor moves on, and after a
// restart the batches since the last saved cursor are sent again, which
// at-least-once allows.
func (u *upstream) saveCursor(next store.Cursor) { u.saveCursorAs(u.cursorName, next) }

func (u *upstream) saveCursorAs(name string, next store.Cursor) {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	err := u.st.SaveCursor(ctx, name, next)
	switch {
	case err != nil && !u.saveFailing:
		u.saveFailing = true
		u.log.Warn("cannot save the forwarding cursor; batches since the last saved one will be sent again after a restart", "err", err)
	case err == nil && u.saveFailing:
		u.saveFailing = false
		u.log.Info("saving the forwarding cursor works again")
	}
}

// backoff is exponential with full jitter: a uniformly random wait in
// [0, min(max_backoff, min_backoff·2^attempt)], but at least min_backoff/2
// so a failing upstream is never hammered in a tight loop.
func (u *upstream) backoff(attempt int) time.Duration {
	ceil := u.cfg.MinBackoff
	for i := 0; i < attempt && ceil < u.cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, u.cfg.MaxBackoff)
	floor := u.cfg.MinBackoff / 2
	if ceil <= floor {
		return ceil
	}
	return floor + rand.N(ceil-floor+1)
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (u *upstream) lag(now time.Time) float64 {
	ms := u.oldestMs.Load()
	if ms == 0 {
		return 0
	}
	return max(0, float64(now.UnixMilli()-ms)/1000)
}

func (u *upstream) status(now time.Time, st store.Stats) UpstreamStatus {
	s := UpstreamStatus{
		Name:        u.cfg.Name,
		URL:         u.displayURL,
		Up:          u.up.Load(),
		LagSeconds:  u.lag(now),
		SamplesSent: u.sent.Load(),
		SamplesDropped: map[string]uint64{
			reasonRejected: u.dropped[reasonRejected].Load(),
			reasonInvalid:  u.dropped[reasonInvalid].Load(),
			reasonEvicted:  st.EvictedUnforwarded[u.cursorName],
		},
	}
	u.mu.Lock()
	s.State, s.LastError, s.LastErrorTime, s.LastSuccessTime = u.state, u.lastErr, u.lastErrTime, u.lastOK
	u.mu.Unlock()
	if u.baseKnown.Load() {
		p := int64(st.SamplesAppended) - int64(u.baseAppend.Load()) -
			(int64(u.handled.Load()) - int64(u.baseHandle.Load())) -
			(int64(st.EvictedUnforwarded[u.cursorName]) - int64(u.baseEvict.Load()))
		p = max(p, 0)
		s.PendingSamples = &p
	}
	return s
}

var (
	descSent     = prometheus.NewDesc("vigil_forward_samples_sent_total", "Samples accepted (2xx) by the upstream.", []string{"upstream"}, nil)
	descLag      = prometheus.NewDesc("vigil_forward_lag_seconds", "Age of the oldest sample not yet accepted by the upstream; 0 when caught up.", []string{"upstream"}, nil)
	descRetries  = prometheus.NewDesc("vigil_forward_retries_total", "Requests sent again after a retryable failure, by the failure's reason.", []string{"upstream", "reason"}, nil)
	descFailures = prometheus.NewDesc("vigil_forward_failures_total", "Requests that failed, by reason (http_5xx, http_429, http_4xx, http_other, network, timeout).", []string{"upstream", "reason"}, nil)
	descDropped  = prometheus.NewDesc("vigil_forward_dropped_samples_total", "Samples that will never reach the upstream, by reason: rejected (4xx answer), invalid (names Prometheus refuses), evicted (dropped by the store before they were sent).", []string{"upstream", "reason"}, nil)
	descUp       = prometheus.NewDesc("vigil_forward_up", "1 when the last request to the upstream was accepted (2xx), else 0.", []string{"upstream"}, nil)
)

// Describe implements prometheus.Collector.
func (f *Forwarder) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSent, descLag, descRetries, descFailures, descDropped, descUp} {
		ch <- d
	}
	f.batchDur.Describe(ch)
}

// Collect implements prometheus.Collector.
func (f *Forwarder) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	var evicted map[string]uint64
	if len(f.ups) > 0 {
		evicted = f.st.Stats().EvictedUnforwarded
	}
	for _, u := range f.ups {
		name := u.cfg.Name
		ch <- prometheus.MustNewConstMetric(descSent, prometheus.CounterValue, float64(u.sent.Load()), name)
		ch <- prometheus.MustNewConstMetric(descLag, prometheus.GaugeValue, u.lag(now), name)
		up := 0.0
		if u.up.Load() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, name)
		for _, r := range retryReasons {
			ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(u.retries[r].Load()), name, r)
		}
		for _, r := range failureReasons {
			ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(u.failures[r].Load()), name, r)
		}
		for _, r := range dropReasons {
			v := evicted[u.cursorName]
			if r != reasonEvicted {
				v = u.dropped[r].Load()
			}
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(v), name, r)
		}
	}
	f.batchDur.Collect(ch)
}

var _ prometheus.Collector = (*Forwarder)(nil)
