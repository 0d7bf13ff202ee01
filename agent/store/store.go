package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// schemaVersion is the layout version written to the meta bucket. Bump it
// (and teach initFile to migrate) whenever the layout changes;
// TestGoldenEncoding fails when the bytes written change without a bump.
const schemaVersion uint32 = 1

// Top-level buckets of the sample file.
var (
	bucketMeta    = []byte("meta")    // schema -> uint32
	bucketSeries  = []byte("series")  // series key -> id (uint64 BE); sequence allocates ids
	bucketParts   = []byte("parts")   // partition start (ms, uint64 BE) -> bucket of seq -> record; sequence allocates seqs
	bucketCursors = []byte("cursors") // cursor name -> Cursor
	keySchema     = []byte("schema")
)

// maxFuture is how far ahead of the store's clock a sample may be stamped.
const maxFuture = 10 * time.Minute

const compactSuffix = ".compact"

// Sample is one value of one series at one time. Time is stored with
// millisecond precision (truncated).
type Sample struct {
	Name   string
	Labels Labels
	Time   time.Time
	Value  float64
}

// Store is the durable, bounded sample store. All methods are safe for
// concurrent use.
type Store struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	partMs   int64
	boltOpts bolt.Options

	mu sync.RWMutex // read: using db; write: swapping it (compaction, Close)
	db *bolt.DB

	idx seriesIndex
	c   *committer

	useBoltBatch bool // benchmark comparison only: DB.Batch instead of the committer

	// Owned by the writer goroutine.
	txNewSeries int
	lastTxSize  int64
	// damagedLogged: maintenance already logged a damaged file.
	damagedLogged bool

	// Log limiting for samples dropped at store.max_series.
	limitLogMu      sync.Mutex
	limitLogged     time.Time
	limitSuppressed int

	// held: per cursor name, the position up to which its reader holds
	// the samples in memory (see Hold).
	heldMu sync.Mutex
	held   map[string]Cursor

	partitions atomic.Int64
	m          *metrics
	notify     notifier // woken after each commit that appended samples

	ticker    *time.Ticker
	closeOnce sync.Once
	closeErr  error
}

// options are test and benchmark hooks that are not configuration.
type options struct {
	now           func() time.Time
	bolt          func(*bolt.Options)
	useBoltBatch  bool
	maintainEvery time.Duration
}

// Open opens (creating if needed) the store file cfg.Path. Zero fields of
// cfg take their defaults. A corrupt file is moved aside and replaced by an
// empty one (logged at ERROR); a file written by a newer schema is refused
// with a *SchemaError. Retention is applied before Open returns.
func Open(cfg Config, logger *slog.Logger) (*Store, error) {
	return open(cfg, logger, options{})
}

func open(cfg Config, logger *slog.Logger, o options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Path == "" {
		return nil, errors.New("store.path: empty; resolve it with Config.WithDataDir")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.maintainEvery == 0 {
		o.maintainEvery = 30 * time.Second
	}
	s := &Store{
		cfg:          cfg,
		log:          logger.With("component", "store"),
		now:          o.now,
		partMs:       cfg.Partition.Milliseconds(),
		useBoltBatch: o.useBoltBatch,
		m:            newMetrics(),
	}
	// A hard cap a little above max_bytes, so a burst between evictions
	// cannot fill the disk; hitting it fails the write with ErrDiskFull.
	headroom := max(int64(cfg.MaxBytes)/4, 4<<20)
	s.boltOpts = bolt.Options{
		FreelistType: bolt.FreelistMapType, // hashmap: fast with a fragmented freelist after evictions
		MaxSize:      int(int64(cfg.MaxBytes) + headroom),
	}
	if o.bolt != nil {
		o.bolt(&s.boltOpts)
	}
	db, err := openFile(cfg.Path, s.boltOpts, s.log, s.initFile)
	if err != nil {
		return nil, err
	}
	s.setDB(db)
	s.c = newCommitter(cfg.QueueSize, 64<<10, cfg.CommitDelay, func() *bolt.DB { return s.db })
	s.c.beginTx = func() { s.txNewSeries = 0 }
	s.c.onCommit = func(d time.Duration, _ int, err error) {
		if err == nil {
			s.m.commitDur.Observe(d.Seconds())
		}
	}
	s.c.idle = s.afterBatch
	s.ticker = time.NewTicker(o.maintainEvery)
	s.c.tick = s.ticker.C
	s.c.onTick = func() { s.maintain(s.now()) }
	s.maintain(s.now())
	go s.c.run()
	return s, nil
}

func (s *Store) setDB(db *bolt.DB) {
	db.MaxBatchDelay = 2 * time.Millisecond
	// Grow the file in steps that stay small against max_bytes.
	db.AllocSize = int(min(int64(16<<20), int64(s.cfg.MaxBytes)/16))
	s.mu.Lock()
	s.db = db
	s.mu.Unlock()
}

// initFile checks the schema (creating the layout in an empty file) and
// loads the series index. It runs again on a fresh file after a corrupt one
// was moved aside.
func (s *Store) initFile(db *bolt.DB) error {
	if s.cfg.CheckOnOpen {
		if err := checkFile(db); err != nil {
			return err
		}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return corrupt("no meta bucket (not a vigil store file?)")
			}
			meta, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, schemaVersion)); err != nil {
				return err
			}
		} else {
			v := meta.Get(keySchema)
			if len(v) != 4 {
				return corrupt("schema version missing or malformed")
			}
			if ver := binary.BigEndian.Uint32(v); ver > schemaVersion {
				return &SchemaError{Path: s.cfg.Path, Found: ver, Supported: schemaVersion}
			} else if ver == 0 {
				return corrupt("schema version 0")
			}
		}
		for _, b := range [][]byte{bucketSeries, bucketParts, bucketCursors} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.idx.reset()
	var loaded []*seriesInfo
	return db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSeries).ForEach(func(k, v []byte) error {
			name, ls, err := parseSeriesKey(k)
			if err != nil || len(v) != 8 {
				return corrupt("series index entry %x: malformed", k)
			}
			loaded = append(loaded, &seriesInfo{key: string(k), id: binary.BigEndian.Uint64(v), name: name, labels: ls})
			return nil
		})
		if err != nil {
			return err
		}
		var n int64
		newest := int64(math.MinInt64)
		err = tx.Bucket(bucketParts).ForEach(func(k, v []byte) error {
			if len(k) != 8 || v != nil {
				return corrupt("partition key %x: malformed", k)
			}
			n++
			newest = int64(binary.BigEndian.Uint64(k))
			return nil
		})
		if err != nil {
			return err
		}
		// Where a loaded series' data ends is not stored; assume the newest
		// partition, so series GC keeps it until that partition is dropped.
		for _, si := range loaded {
			si.lastPart.Store(newest)
			s.idx.add(si)
		}
		s.partitions.Store(n)
		return nil
	})
}

// Close commits what is queued, stops the writer and closes the file.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.c.stop()
		s.ticker.Stop()
		defer s.notify.wake()
		s.mu.Lock()
		if s.db != nil {
			s.closeErr = s.db.Close()
			s.db = nil
		}
		s.mu.Unlock()
	})
	return s.closeErr
}

// view runs fn in a read transaction on the current file.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	// bbolt panics on a damaged page that the checks at Open did not read
	// (data pages are read only by queries and maintenance).
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store file %s is damaged: reading it panicked: %v; %s", s.cfg.Path, p, damagedHint)
		}
	}()
	return s.db.View(fn)
}

// damagedHint says how to recover from a damaged page found after Open.
const damagedHint = "start the agent once with store.check_on_open: true, which moves a damaged file aside"

type newSeries struct {
	idx    int // first sample using it
	key    string
	name   string
	labels Labels
}

// Append stores samples and returns once they are committed and fsynced:
// after a nil return they survive a crash or power loss. Samples of one
// call are all stored or none is, with one exception: when the call brings
// new series and the index is full (store.max_series), the samples of the
// new series that do not fit are dropped (counted in
// vigil_store_dropped_samples_total{reason="series_limit"} and logged at
// most once a minute) and everything else is stored; Append still returns
// nil. Concurrent calls share commits.
//
// A sample is refused (with a *SampleError naming its index; nothing of the
// call is stored) when its name or labels are invalid, or its time is older
// than the retention or more than 10 minutes ahead of the store's clock.
// Values are stored bit-exactly: NaN (Prometheus' stale marker) and ±Inf
// are kept as given; rejecting them is the caller's policy.
//
// If ctx ends while the call waits for its commit, Append returns ctx.Err()
// and the samples may or may not have been stored.
func (s *Store) Append(ctx context.Context, samples []Sample) error {
	if len(samples) == 0 {
		return nil
	}
	b, serr := s.prepare(samples)
	if serr != nil {
		s.m.writeError(reasonInvalidSample)
		return serr
	}
	return s.submitBatch(ctx, samples, b)
}

// submitBatch commits a prepared batch (the second half of Append).
func (s *Store) submitBatch(ctx context.Context, samples []Sample, b *batch) error {
	fn := func(tx *bolt.Tx) (func(), error) {
		if b.gen != s.idx.gen.Load() {
			// Series GC ran since the ids were looked up: some may be
			// gone. Look them up again (rare: GC runs at maintenance).
			nb, serr := s.prepare(samples)
			if serr != nil {
				return nil, serr
			}
			b = nb
		}
		return s.appendTx(tx, b)
	}
	var err error
	if s.useBoltBatch {
		var after func()
		s.mu.RLock()
		db := s.db
		s.mu.RUnlock()
		if db == nil {
			return ErrClosed
		}
		err = db.Batch(func(tx *bolt.Tx) error {
			var ferr error
			after, ferr = fn(tx)
			return ferr
		})
		if err == nil && after != nil {
			after()
		}
	} else {
		err = s.c.submit(ctx, fn, len(samples))
	}
	if err != nil {
		var se *SampleError
		switch {
		case errors.Is(err, ErrDiskFull):
			s.m.writeError(reasonDiskFull)
		case errors.As(err, &se):
			s.m.writeError(reasonInvalidSample)
		case errors.Is(err, ErrWrite):
			s.m.writeError(reasonIO)
		}
		return err
	}
	return nil
}

// batch is one Append, validated and grouped by partition.
type batch struct {
	groups  []partGroup
	unknown []newSeries
	n       int
	gen     uint64 // series index generation the ids were looked up in
}

// prepare validates samples, looks up the ids of known series and groups
// the samples by partition. It also raises the last partition of every
// known series it sees, so series GC keeps them.
func (s *Store) prepare(samples []Sample) (*batch, *SampleError) {
	now := s.now()
	lo, hi := now.Add(-s.cfg.Retention).UnixMilli(), now.Add(maxFuture).UnixMilli()
	enc := make([]encSample, len(samples))
	var unknown []newSeries
	var seen map[string]bool
	var keyBuf []byte
	sameP, firstP := true, int64(0)

	s.idx.mu.RLock()
	gen := s.idx.gen.Load()
	for i := range samples {
		smp := &samples[i]
		t := smp.Time.UnixMilli()
		var serr *SampleError
		switch {
		case smp.Time.IsZero():
			serr = &SampleError{Field: "time", Reason: "zero"}
		case t < lo:
			serr = &SampleError{Field: "time", Reason: fmt.Sprintf("%s is older than the retention (%s)", smp.Time.UTC().Format(time.RFC3339), s.cfg.Retention)}
		case t > hi:
			serr = &SampleError{Field: "time", Reason: fmt.Sprintf("%s is more than %s in the future", smp.Time.UTC().Format(time.RFC3339), maxFuture)}
		}
		var key []byte
		var ls Labels
		if serr == nil {
			key, ls, serr = seriesKey(keyBuf, smp.Name, smp.Labels)
			keyBuf = key
		}
		if serr != nil {
			s.idx.mu.RUnlock()
			serr.Index = i
			return nil, serr
		}
		p := s.partOf(t)
		var id uint64
		if si, ok := s.idx.byKey[string(key)]; ok {
			id = si.id
			si.raiseLastPart(p)
		} else if !seen[string(key)] {
			if seen == nil {
				seen = map[string]bool{}
			}
			seen[string(key)] = true
			unknown = append(unknown, newSeries{idx: i, key: string(key), name: smp.Name, labels: slices.Clone(ls)})
		}
		enc[i] = encSample{id: id, t: t, v: smp.Value}
		if i == 0 {
			firstP = p
		} else if p != firstP {
			sameP = false
		}
	}
	s.idx.mu.RUnlock()

	var keys []string
	if len(unknown) > 0 {
		// Ids of new series are known only inside the transaction.
		keys = make([]string, len(samples))
		for _, u := range unknown {
			keys[u.idx] = u.key
		}
		for i := range samples {
			if keys[i] == "" && enc[i].id == 0 {
				k, _, _ := seriesKey(nil, samples[i].Name, samples[i].Labels)
				keys[i] = string(k)
			}
		}
	}

	// Group by partition, keeping the caller's order inside each group.
	var groups []partGroup
	if sameP {
		groups = []partGroup{{part: firstP, enc: enc}}
	} else {
		at := map[int64]int{}
		for i, e := range enc {
			p := s.partOf(e.t)
			g, ok := at[p]
			if !ok {
				g = len(groups)
				at[p] = g
				groups = append(groups, partGroup{part: p})
			}
			groups[g].enc = append(groups[g].enc, e)
			if keys != nil {
				groups[g].keys = append(groups[g].keys, keys[i])
			}
		}
	}
	if sameP && keys != nil {
		groups[0].keys = keys
	}
	// Encode now, outside the writer goroutine, when every id is known.
	if len(unknown) == 0 {
		for gi := range groups {
			groups[gi].records = encodeChunks(groups[gi].enc)
		}
	}
	return &batch{groups: groups, unknown: unknown, n: len(samples), gen: gen}, nil
}

type partGroup struct {
	part    int64
	enc     []encSample
	keys    []string // series key per sample when some ids are unknown
	records [][]byte // pre-encoded when every id was known
}

func encodeChunks(enc []encSample) [][]byte {
	var out [][]byte
	for len(enc) > 0 {
		n := min(len(enc), maxRecordSamples)
		out = append(out, encodeRecord(nil, enc[:n]))
		enc = enc[n:]
	}
	return out
}

func (s *Store) partOf(t int64) int64 {
	return t - ((t%s.partMs)+s.partMs)%s.partMs
}

// appendTx is the part of Append that runs inside the shared transaction.
// New series that do not fit under store.max_series are not created and
// their samples are left out; the rest is stored.
func (s *Store) appendTx(tx *bolt.Tx, b *batch) (func(), error) {
	s.lastTxSize = tx.Size()
	ser, parts := tx.Bucket(bucketSeries), tx.Bucket(bucketParts)
	var created []*seriesInfo
	var ids map[string]uint64
	var over []newSeries // new series refused for max_series
	if len(b.unknown) > 0 {
		ids = make(map[string]uint64, len(b.unknown))
	}
	for _, u := range b.unknown {
		if v := ser.Get([]byte(u.key)); v != nil {
			ids[u.key] = binary.BigEndian.Uint64(v)
			continue
		}
		if s.idx.len()+s.txNewSeries >= s.cfg.MaxSeries {
			over = append(over, u)
			continue
		}
		id, err := ser.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := ser.Put([]byte(u.key), u64key(id)); err != nil {
			return nil, err
		}
		s.txNewSeries++
		ids[u.key] = id
		created = append(created, &seriesInfo{key: u.key, id: id, name: u.name, labels: u.labels})
	}
	newParts, dropped := 0, 0
	var lastPart map[uint64]int64 // of the series created here
	if len(created) > 0 {
		lastPart = make(map[uint64]int64, len(created))
	}
	for _, g := range b.groups {
		records := g.records
		if records == nil {
			enc := make([]encSample, 0, len(g.enc))
			for i, e := range g.enc {
				if e.id == 0 {
					id, ok := ids[g.keys[i]]
					if !ok {
						dropped++ // a new series over max_series
						continue
					}
					e.id = id
					if lp, ok := lastPart[id]; !ok || g.part > lp {
						lastPart[id] = g.part
					}
				}
				enc = append(enc, e)
			}
			if len(enc) == 0 {
				continue
			}
			records = encodeChunks(enc)
		}
		pk := u64key(uint64(g.part))
		pb := parts.Bucket(pk)
		if pb == nil {
			var err error
			if pb, err = parts.CreateBucket(pk); err != nil {
				return nil, err
			}
			newParts++
		}
		pb.FillPercent = 1.0 // keys only ever grow: fill pages instead of splitting them half-empty
		for _, r := range records {
			seq, err := parts.NextSequence()
			if err != nil {
				return nil, err
			}
			if err := pb.Put(u64key(seq), r); err != nil {
				return nil, err
			}
		}
	}
	return func() {
		for _, si := range created {
			si.lastPart.Store(lastPart[si.id])
			s.idx.add(si)
		}
		s.partitions.Add(int64(newParts))
		s.m.appended.Add(uint64(b.n - dropped))
		if dropped > 0 {
			s.seriesLimitDropped(over, dropped)
		}
		if b.n > dropped {
			s.notify.wake()
		}
	}, nil
}

// seriesLimitDropped counts samples dropped because their new series did
// not fit under store.max_series, and logs it at most once a minute.
func (s *Store) seriesLimitDropped(over []newSeries, samples int) {
	s.m.dropped(reasonSeriesLimit, uint64(samples))
	now := s.now()
	s.limitLogMu.Lock()
	s.limitSuppressed += samples
	if !s.limitLogged.IsZero() && now.Sub(s.limitLogged) < time.Minute {
		s.limitLogMu.Unlock()
		return
	}
	n := s.limitSuppressed
	s.limitSuppressed = 0
	s.limitLogged = now
	s.limitLogMu.Unlock()
	u := over[0]
	s.log.Warn("store: too many series: samples of new series dropped; existing series are still stored",
		"max_series", s.cfg.MaxSeries, "example_series", u.name+u.labels.String(),
		"new_series_in_batch", len(over), "dropped_samples", n,
		"hint", "raise store.max_series, or drop the label whose values keep changing; series without data are removed when retention drops their last partition")
}

// seriesIndex is the in-memory copy of the series bucket. It is written only
// after the commit that created or removed a series.
type seriesIndex struct {
	mu    sync.RWMutex
	byKey map[string]*seriesInfo
	byID  map[uint64]*seriesInfo
	gen   atomic.Uint64 // bumped each time series GC removes series
}

type seriesInfo struct {
	key    string
	id     uint64
	name   string
	labels Labels
	// lastPart is the start (ms) of the newest partition that may hold a
	// sample of the series: raised before each append that uses it, so it
	// errs on the high side (series GC then keeps the series longer).
	lastPart atomic.Int64
}

// raiseLastPart sets lastPart to at least p.
func (si *seriesInfo) raiseLastPart(p int64) {
	for {
		cur := si.lastPart.Load()
		if cur >= p || si.lastPart.CompareAndSwap(cur, p) {
			return
		}
	}
}

func (x *seriesIndex) reset() {
	x.mu.Lock()
	x.byKey = map[string]*seriesInfo{}
	x.byID = map[uint64]*seriesInfo{}
	x.gen.Add(1)
	x.mu.Unlock()
}

func (x *seriesIndex) add(si *seriesInfo) {
	x.mu.Lock()
	x.byKey[si.key] = si
	x.byID[si.id] = si
	x.mu.Unlock()
}

func (x *seriesIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byKey)
}

func (x *seriesIndex) get(id uint64) *seriesInfo {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byID[id]
}
