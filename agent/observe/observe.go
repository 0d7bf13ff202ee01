package observe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

const (
	bucketObs    = "obs"
	bucketLabels = "labels"
	bucketModels = "models"
)

// Service ingests observations and labels, keeps them durably in their own
// store file, and keeps per-(model, version) sliding-window stats in
// memory. It is safe for concurrent use.
type Service struct {
	cfg Config
	kv  *store.KV
	log *slog.Logger
	now func() time.Time

	seq atomic.Uint64

	mu    sync.RWMutex
	pairs map[pairKey]*pairState

	idx labelIndex

	subMu sync.RWMutex
	subs  map[uint64]func([]Observation)
	subN  uint64

	liveBytes atomic.Int64
	m         counters
}

// pairState is everything known about one (model, version).
type pairState struct {
	key pairKey

	mu                sync.Mutex
	firstMs, lastMs   int64
	total, errors     uint64
	labelled, correct uint64
	latCount          uint64
	latSum            float64 // ms
	// run counts only what this process received (batches stored and
	// labels matched since Open): the counters on /metrics. The totals
	// above also count the records the store held at start, for the API;
	// as counters they would fall after a restart that followed an
	// eviction, which Prometheus takes for a reset and adds whole to rate().
	run           runCounts
	win           pairWindows
	rebuiltTotals bool
	labelID       uint32 // see labelIndex.byID; guarded by its mu
	// reservedMs is the agent's clock when a batch last reserved the pair
	// (stored under Service.mu, read or write), so that Maintain does not
	// forget a pair whose batch is being stored: a fresh one has no
	// lastMs yet, and an idle one is being revived.
	reservedMs atomic.Int64
}

type runCounts struct {
	total, errors, labelled, correct, latCount uint64
	latSum                                     float64 // ms
}

type counters struct {
	batches, observations atomic.Uint64
	rejected              sync.Map // reason -> *atomic.Uint64
	evicted               atomic.Uint64
	labelsMatched         atomic.Uint64
	labelsUnmatched       atomic.Uint64
	labelsDuplicate       atomic.Uint64
}

// Reject counts a refused request by reason (invalid, limit, store).
func (s *Service) Reject(reason string) {
	v, _ := s.m.rejected.LoadOrStore(reason, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
}

// Options are what Open needs besides the configuration.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
}

// Open opens (creating if needed) the observation file at cfg.Path and
// rebuilds totals, windows and the label index from it.
func Open(cfg Config, opts Options) (*Service, error) {
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, errors.New("observe: path is empty")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	kv, err := store.OpenKV(cfg.Path, opts.Logger)
	if err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	s := &Service{
		cfg:   cfg,
		kv:    kv,
		log:   opts.Logger,
		now:   opts.Now,
		pairs: map[pairKey]*pairState{},
		idx:   newLabelIndex(cfg.LabelIndexSize),
		subs:  map[uint64]func([]Observation){},
	}
	start := time.Now()
	if err := s.rebuild(); err != nil {
		kv.Close()
		return nil, fmt.Errorf("observe: rebuild from %s: %w", cfg.Path, err)
	}
	s.log.Info("observations loaded", "models", len(s.pairs), "bytes", s.liveBytes.Load(), "took", time.Since(start).Round(time.Millisecond).String())
	return s, nil
}

// Close flushes and closes the file.
func (s *Service) Close() error { return s.kv.Close() }

// Tracked returns how many (model, version) pairs are tracked.
func (s *Service) Tracked() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.pairs)
}

// Config returns the effective configuration (defaults applied).
func (s *Service) Config() Config { return s.cfg }

func modelKey(k pairKey) []byte { return []byte(k.model + "\x00" + k.version) }

// Ingest stores obs durably (one atomic record) and only then folds them
// into the stats, the label index and the subscribers. obs must have been
// validated (ParseObservations). A batch that would add a (model, version)
// past observe.max_models fails with a *LimitError and stores nothing.
func (s *Service) Ingest(ctx context.Context, obs []Observation) error {
	if len(obs) == 0 {
		return nil
	}
	now := s.now()
	sums := summarize(obs)
	states, fresh, err := s.reserve(sums, obs, now.UnixMilli())
	if err != nil {
		return err
	}
	key := recordKey(now.UnixMilli(), s.seq.Add(1))
	// KV.Apply copies the value before queueing it, so the buffer can be
	// reused as soon as Apply returns.
	bp := encodePool.Get().(*[]byte)
	val := encodeObservations((*bp)[:0], sums, obs)
	defer func() {
		if cap(val) <= 4<<20 {
			*bp = val
			encodePool.Put(bp)
		}
	}()
	ops := make([]store.KVOp, 0, 1+len(fresh))
	ops = append(ops, store.KVOp{Bucket: bucketObs, Key: key, Value: val})
	for _, p := range fresh {
		ops = append(ops, store.KVOp{Bucket: bucketModels, Key: modelKey(p.key), Value: binary.AppendVarint(nil, sums[p.idx].minMs)})
	}
	if err := s.kv.Apply(ctx, ops...); err != nil {
		// Let Maintain forget the pairs this batch added, unless another
		// batch reserved them since.
		for _, f := range fresh {
			states[f.idx].reservedMs.CompareAndSwap(now.UnixMilli(), 0)
		}
		return fmt.Errorf("store observations: %w", err)
	}
	s.liveBytes.Add(int64(len(key) + len(val)))
	s.apply(now.UnixMilli(), sums, states, obs, true)
	s.m.batches.Add(1)
	s.m.observations.Add(uint64(len(obs)))
	s.subMu.RLock()
	for _, fn := range s.subs {
		fn(obs)
	}
	s.subMu.RUnlock()
	return nil
}

var encodePool = sync.Pool{New: func() any { b := make([]byte, 0, 32<<10); return &b }}

type freshPair struct {
	key pairKey
	idx int
}

// reserve finds or creates the state of every pair in sums and marks
// them reserved at nowMs.
func (s *Service) reserve(sums []pairSummary, obs []Observation, nowMs int64) ([]*pairState, []freshPair, error) {
	states := make([]*pairState, len(sums))
	missing := false
	s.mu.RLock()
	for i, sum := range sums {
		states[i] = s.pairs[sum.key]
		if states[i] == nil {
			missing = true
		} else {
			states[i].reservedMs.Store(nowMs)
		}
	}
	s.mu.RUnlock()
	if !missing {
		return states, nil, nil
	}
	var fresh []freshPair
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, sum := range sums {
		if states[i] = s.pairs[sum.key]; states[i] != nil {
			states[i].reservedMs.Store(nowMs)
			continue
		}
		if len(s.pairs) >= s.cfg.MaxModels {
			// Nothing of the batch is stored: untrack the pairs it
			// added (no one else has seen them, s.mu is held).
			for _, f := range fresh {
				delete(s.pairs, f.key)
			}
			at := 0
			for at < len(obs) && (pairKey{obs[at].Model, obs[at].Version}) != sum.key {
				at++
			}
			return nil, nil, &LimitError{&ItemError{List: "observations", Index: at, Field: "version",
				Msg: fmt.Sprintf("model %q version %q would be one (model, version) more than observe.max_models (%d); versions not seen for observe.retention (%s) are forgotten", sum.key.model, sum.key.version, s.cfg.MaxModels, s.cfg.Retention)}}
		}
		p := newPairState(sum.key)
		p.reservedMs.Store(nowMs)
		s.pairs[sum.key] = p
		states[i] = p
		fresh = append(fresh, freshPair{key: sum.key, idx: i})
	}
	return states, fresh, nil
}

func newPairState(k pairKey) *pairState {
	return &pairState{key: k, win: newPairWindows(), firstMs: -1}
}

// apply folds a stored batch into the stats. live: a batch just received,
// not one read back by the rebuild: its request IDs go into the label index
// (the rebuild fills it itself) and it counts in the since-start counters.
func (s *Service) apply(nowMs int64, sums []pairSummary, states []*pairState, obs []Observation, live bool) {
	cur := -1
	var p *pairState
	var toIndex []indexed
	for i := range obs {
		o := &obs[i]
		k := pairKey{o.Model, o.Version}
		if cur < 0 || sums[cur].key != k {
			if p != nil {
				p.mu.Unlock()
			}
			for cur = 0; sums[cur].key != k; cur++ {
			}
			p = states[cur]
			p.mu.Lock()
		}
		if !p.rebuiltTotals {
			p.total++
			if o.Error {
				p.errors++
			}
			if p.firstMs < 0 || o.UnixMs < p.firstMs {
				p.firstMs = o.UnixMs
			}
			p.lastMs = max(p.lastMs, o.UnixMs)
			if o.HasLatency {
				p.latCount++
				p.latSum += o.LatencyMs
			}
			if !o.Label.IsNone() && !o.Prediction.IsNone() {
				p.labelled++
				if o.Prediction.Equal(o.Label) {
					p.correct++
				}
			}
		}
		if live {
			p.run.total++
			if o.Error {
				p.run.errors++
			}
			if o.HasLatency {
				p.run.latCount++
				p.run.latSum += o.LatencyMs
			}
			if !o.Label.IsNone() && !o.Prediction.IsNone() {
				p.run.labelled++
				if o.Prediction.Equal(o.Label) {
					p.run.correct++
				}
			}
		}
		p.win.add(min(o.UnixMs, nowMs), o)
		if live && o.RequestID != "" && !o.Prediction.IsNone() {
			toIndex = append(toIndex, indexed{i, p})
		}
	}
	if p != nil {
		p.mu.Unlock()
	}
	if len(toIndex) > 0 {
		s.idx.mu.Lock()
		for _, x := range toIndex {
			o := &obs[x.i]
			s.idx.put(o.RequestID, x.p, o.Prediction, !o.Label.IsNone())
		}
		s.idx.mu.Unlock()
	}
}

type indexed struct {
	i int
	p *pairState
}

// Subscribe registers fn to receive every batch once it is durable, in
// the goroutine that stored it, in no particular order across concurrent
// batches. fn must return quickly and must not modify or keep the slice
// (copy what it needs). The returned function unsubscribes.
func (s *Service) Subscribe(fn func([]Observation)) (cancel func()) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.subN++
	id := s.subN
	s.subs[id] = fn
	return func() {
		s.subMu.Lock()
		defer s.subMu.Unlock()
		delete(s.subs, id)
	}
}

// Scan calls fn with each stored observation of model (and of version,
// unless it is empty) whose timestamp lies in [from, to), in the order the
// agent received them, until fn returns false or ctx ends. Observations
// older than observe.retention are gone. Reads go in short transactions,
// so a long scan does not hold up writers.
func (s *Service) Scan(ctx context.Context, model, version string, from, to time.Time, fn func(*Observation) bool) error {
	fromMs, toMs := from.UnixMilli(), to.UnixMilli()
	// An observation is received no earlier than its timestamp minus the
	// allowed skew and no later than its timestamp plus the retention.
	next := recordKey(max(0, fromMs-s.cfg.MaxFutureSkew.Milliseconds()), 0)
	stopMs := toMs + s.cfg.Retention.Milliseconds()
	names := map[string]string{}
	errChunk := errors.New("chunk")
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var batch [][]Observation
		done, visited := true, 0
		err := s.kv.ForEachFrom(bucketObs, next, func(k, v []byte) error {
			if keyTime(k) > stopMs {
				done = true
				return errChunk
			}
			if visited == 256 || len(batch) == 64 {
				next, done = append([]byte{}, k...), false
				return errChunk
			}
			visited++
			sums, _, err := decodeSummary(v)
			if err != nil {
				return nil // skip a damaged record
			}
			want := false
			for _, sm := range sums {
				if sm.key.model == model && (version == "" || sm.key.version == version) && sm.maxMs >= fromMs && sm.minMs < toMs {
					want = true
				}
			}
			if !want {
				return nil
			}
			obs, err := decodeObservations(v, names)
			if err == nil {
				batch = append(batch, obs)
			}
			return nil
		})
		if err != nil && err != errChunk {
			return err
		}
		for _, obs := range batch {
			for i := range obs {
				o := &obs[i]
				if o.Model != model || (version != "" && o.Version != version) || o.UnixMs < fromMs || o.UnixMs >= toMs {
					continue
				}
				if !fn(o) {
					return nil
				}
			}
		}
		if done {
			return nil
		}
	}
}

// FeatureValues returns the values of one feature of model/version (the
// prediction when feature is "" ) from observations with timestamps in
// [from, to), oldest arrival first, at most max of them (max <= 0: all).
// Observations without the feature are skipped. For a drift reference
// window, pass a stored time range, or the version's first_seen and N.
func (s *Service) FeatureValues(ctx context.Context, model, version, feature string, from, to time.Time, max int) ([]Value, error) {
	var out []Value
	err := s.Scan(ctx, model, version, from, to, func(o *Observation) bool {
		v := o.Prediction
		if feature != "" {
			v = o.Feature(feature)
		}
		if !v.IsNone() {
			out = append(out, v)
		}
		return max <= 0 || len(out) < max
	})
	return out, err
}

// ModelInfo is one line of GET /v1/models.
type ModelInfo struct {
	Model    string        `json:"model"`
	Versions []VersionInfo `json:"versions"`
}

// VersionInfo describes one monitored version. Counts cover the
// observations kept (observe.retention) plus those received since start.
type VersionInfo struct {
	Version      string       `json:"version"`
	FirstSeen    *time.Time   `json:"first_seen"`
	LastSeen     *time.Time   `json:"last_seen"`
	Observations uint64       `json:"observations"`
	Errors       uint64       `json:"errors"`
	Labelled     uint64       `json:"labelled"`
	Correct      uint64       `json:"correct"`
	Stats        *WindowStats `json:"stats,omitempty"`
}

func msTime(ms int64) *time.Time {
	if ms <= 0 {
		return nil
	}
	t := time.UnixMilli(ms).UTC()
	return &t
}

func (s *Service) snapshot() []*pairState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*pairState, 0, len(s.pairs))
	for _, p := range s.pairs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].key.model != out[j].key.model {
			return out[i].key.model < out[j].key.model
		}
		return out[i].key.version < out[j].key.version
	})
	return out
}

func (p *pairState) info(win time.Duration, now time.Time) VersionInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	v := VersionInfo{
		Version: p.key.version, FirstSeen: msTime(p.firstMs), LastSeen: msTime(p.lastMs),
		Observations: p.total, Errors: p.errors, Labelled: p.labelled, Correct: p.correct,
	}
	if win > 0 {
		st := p.win.stats(win, now, p.firstMs)
		st.Model, st.Version = p.key.model, p.key.version
		v.Stats = &st
	}
	return v
}

// Models lists every monitored model and its versions; with win > 0 each
// version carries its stats over that window.
func (s *Service) Models(win time.Duration) []ModelInfo {
	now := s.now()
	var out []ModelInfo
	for _, p := range s.snapshot() {
		if len(out) == 0 || out[len(out)-1].Model != p.key.model {
			out = append(out, ModelInfo{Model: p.key.model})
		}
		m := &out[len(out)-1]
		m.Versions = append(m.Versions, p.info(win, now))
	}
	return out
}

// Stats returns the stats of model over win, one entry per version (only
// version when it is not empty); ok is false when nothing is known of it.
func (s *Service) Stats(model, version string, win time.Duration) (stats []WindowStats, ok bool) {
	now := s.now()
	for _, p := range s.snapshot() {
		if p.key.model != model || (version != "" && p.key.version != version) {
			continue
		}
		p.mu.Lock()
		st := p.win.stats(win, now, p.firstMs)
		p.mu.Unlock()
		st.Model, st.Version = p.key.model, p.key.version
		stats = append(stats, st)
	}
	return stats, len(stats) > 0
}

// LabelResult says what became of one label.
type LabelResult struct {
	Index     int    `json:"index"`
	RequestID string `json:"request_id"`
	// Status: matched, unknown_request_id (no remembered prediction with
	// this request_id), or already_labelled (the first label stands).
	Status  string `json:"status"`
	Model   string `json:"model,omitempty"`
	Version string `json:"version,omitempty"`
	Correct *bool  `json:"correct,omitempty"`
}

// Label statuses.
const (
	LabelMatched   = "matched"
	LabelUnknown   = "unknown_request_id"
	LabelDuplicate = "already_labelled"
)

// AddLabels stores labels durably, every one of them, matched or not, and
// then counts the matched ones towards accuracy (by the time they arrive).
func (s *Service) AddLabels(ctx context.Context, labels []Label) ([]LabelResult, error) {
	if len(labels) == 0 {
		return nil, nil
	}
	now := s.now()
	outs := make([]labelOutcome, len(labels))
	res := make([]LabelResult, len(labels))
	marked := make([]*labelEntry, 0, len(labels))
	states := make([]*pairState, len(labels))
	s.idx.mu.Lock()
	for i, l := range labels {
		outs[i].Label = l
		res[i] = LabelResult{Index: i, RequestID: l.RequestID, Status: LabelUnknown}
		e, p := s.idx.get(l.RequestID)
		if e == nil {
			continue
		}
		res[i].Model, res[i].Version = p.key.model, p.key.version
		if e.labelled {
			res[i].Status = LabelDuplicate
			continue
		}
		e.labelled = true
		marked = append(marked, e)
		ok := s.idx.matches(e, l.Value)
		outs[i].matched, outs[i].key, outs[i].correct = true, p.key, ok
		states[i] = p
		res[i].Status, res[i].Correct = LabelMatched, &ok
	}
	s.idx.mu.Unlock()
	key := recordKey(now.UnixMilli(), s.seq.Add(1))
	val := encodeLabels(outs)
	if err := s.kv.Put(ctx, bucketLabels, key, val); err != nil {
		s.idx.mu.Lock()
		for _, e := range marked {
			e.labelled = false
		}
		s.idx.mu.Unlock()
		return nil, fmt.Errorf("store labels: %w", err)
	}
	s.liveBytes.Add(int64(len(key) + len(val)))
	for i, p := range states {
		switch res[i].Status {
		case LabelMatched:
			s.m.labelsMatched.Add(1)
		case LabelDuplicate:
			s.m.labelsDuplicate.Add(1)
		default:
			s.m.labelsUnmatched.Add(1)
		}
		if p == nil {
			continue
		}
		p.mu.Lock()
		p.labelled++
		p.run.labelled++
		if outs[i].correct {
			p.correct++
			p.run.correct++
		}
		p.win.addLabel(now.UnixMilli(), outs[i].correct)
		p.mu.Unlock()
	}
	return res, nil
}

// stateFor returns the pair's state, creating it (during the rebuild).
func (s *Service) stateFor(k pairKey) *pairState {
	p := s.pairs[k]
	if p == nil {
		p = newPairState(k)
		s.pairs[k] = p
	}
	return p
}

// rebuild restores totals, windows and the label index from the file. It
// runs before anything is served, so one read transaction per bucket is
// fine.
func (s *Service) rebuild() error {
	now := s.now()
	nowMs := now.UnixMilli()
	// Records received before this cannot hold observations in the 1h
	// window (timestamps may lead arrival by max_future_skew at most).
	winCutoff := nowMs - time.Hour.Milliseconds() - coarseStep - s.cfg.MaxFutureSkew.Milliseconds()
	var maxSeq uint64
	// First-seen times outlive the records (retention); pairs come back
	// only if records of them remain.
	firstSeen := map[pairKey]int64{}
	err := s.kv.ForEach(bucketModels, func(k, v []byte) error {
		model, version, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return nil
		}
		if first, n := binary.Varint(v); n > 0 {
			firstSeen[pairKey{model, version}] = first
		}
		return nil
	})
	if err != nil {
		return err
	}
	type idEntry struct {
		id       string
		key      pairKey
		pred     Value
		labelled bool
	}
	var ids []idEntry
	seen := map[string]bool{}
	names := map[string]string{}
	err = s.kv.ForEachBefore(bucketObs, nil, func(k, v []byte) error {
		recv := keyTime(k)
		if len(k) == 16 {
			maxSeq = max(maxSeq, binary.BigEndian.Uint64(k[8:]))
		}
		s.liveBytes.Add(int64(len(k) + len(v)))
		sums, _, err := decodeSummary(v)
		if err != nil {
			s.log.Warn("skipping a damaged observation record", "key", fmt.Sprintf("%x", k), "err", err)
			return nil
		}
		for _, sm := range sums {
			p := s.stateFor(sm.key)
			p.total += sm.count
			p.errors += sm.errors
			if p.firstMs < 0 || sm.minMs < p.firstMs {
				p.firstMs = sm.minMs
			}
			p.lastMs = max(p.lastMs, sm.maxMs)
			p.labelled += sm.labelled
			p.correct += sm.good
			p.latCount += sm.latCount
			p.latSum += sm.latSum
		}
		if recv < winCutoff && len(ids) >= s.idx.capacity() {
			// Inline labels of old records still count in the totals.
			return nil
		}
		obs, err := decodeRecord(v, names, true)
		if err != nil {
			return nil
		}
		states := make([]*pairState, len(sums))
		for i, sm := range sums {
			states[i] = s.pairs[sm.key]
			states[i].rebuiltTotals = true
		}
		if recv >= winCutoff {
			s.apply(nowMs, sums, states, obs, false)
		}
		for i := len(obs) - 1; i >= 0 && len(ids) < s.idx.capacity(); i-- {
			o := &obs[i]
			if o.RequestID == "" || o.Prediction.IsNone() || seen[o.RequestID] {
				continue
			}
			seen[o.RequestID] = true
			ids = append(ids, idEntry{o.RequestID, pairKey{o.Model, o.Version}, o.Prediction, !o.Label.IsNone()})
		}
		for _, p := range states {
			p.rebuiltTotals = false
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.idx.mu.Lock()
	for i := len(ids) - 1; i >= 0; i-- {
		e := ids[i]
		s.idx.put(e.id, s.pairs[e.key], e.pred, e.labelled)
	}
	s.idx.mu.Unlock()
	err = s.kv.ForEachBefore(bucketLabels, nil, func(k, v []byte) error {
		recv := keyTime(k)
		if len(k) == 16 {
			maxSeq = max(maxSeq, binary.BigEndian.Uint64(k[8:]))
		}
		s.liveBytes.Add(int64(len(k) + len(v)))
		outs, err := decodeLabels(v)
		if err != nil {
			return nil
		}
		for _, l := range outs {
			if !l.matched || s.pairs[l.key] == nil {
				continue
			}
			p := s.pairs[l.key]
			p.labelled++
			if l.correct {
				p.correct++
			}
			if recv >= winCutoff {
				p.win.addLabel(min(recv, nowMs), l.correct)
			}
			s.idx.mu.Lock()
			if e, _ := s.idx.get(l.RequestID); e != nil {
				e.labelled = true
			}
			s.idx.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, p := range s.pairs {
		if first, ok := firstSeen[k]; ok && first < p.firstMs {
			p.firstMs = first
		}
	}
	s.seq.Store(maxSeq)
	return nil
}
