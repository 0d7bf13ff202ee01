// Package store is the agent's durable, bounded local storage, built on
// bbolt (go.etcd.io/bbolt).
//
// It holds time series samples (Store) for local queries and for the
// remote_write forwarder, and offers small durable key-value files (KV) for
// the other subsystems: observations, plugin catalog, canary and retrain
// state, LLM cache. Each KV lives in its own bbolt file with its own writer,
// so one subsystem's writes never wait for another's.
//
// # Guarantees
//
// Durable before acknowledged: Append (and KV.Put, KV.Apply, SaveCursor)
// returns nil only after the bbolt transaction holding the data committed
// and was fsynced. An acknowledged sample survives kill -9 and power loss
// (as far as the disk honours fsync). Concurrent callers share commits
// (group commit): one goroutine per file runs everything that queued during
// the previous fsync in one transaction (waiting up to store.commit_delay
// for callers that the previous commit served and that are about to come
// back), so N writers cost about one fsync round, not N.
//
// Atomic per call: the samples of one Append are all stored or none is.
// One invalid sample refuses the call with a *SampleError naming it. The
// one exception is the series bound: when an Append brings new series and
// the index is full (store.max_series), the samples of the new series that
// do not fit are dropped, counted in
// vigil_store_dropped_samples_total{reason="series_limit"} and logged at
// most once a minute; the rest of the call (existing series, new series
// that fit) is stored in the same commit and Append returns nil, so a
// collector tick is never refused as a whole for one new series.
//
// Bounded: samples older than store.retention are dropped with their
// partition (a partition goes once all of it is past the retention, so
// data is kept at least that long); when live data passes store.max_bytes
// the oldest partitions are dropped first, and within the newest partition
// its oldest records. A hard file size cap a little above max_bytes (25%,
// at least 4MiB) stops a burst between evictions from filling the disk.
// Evicted samples are counted (vigil_store_evicted_samples_total, and per
// forwarding cursor the ones it never read) and each eviction run logs one
// line. bbolt files never shrink by themselves; when more than half of the
// file is free and it is at least store.compact_min_bytes, the store copies
// the live data into a fresh file and renames it over the old one, blocking
// writers (not readers) for the copy.
//
// Series GC: a series with no sample left (retention or max_bytes dropped
// every partition holding it) is removed from the series index at the next
// maintenance, after the eviction committed, in its own transaction: a
// crash before that commit leaves the entry for a later run, never loses a
// retained sample. The store tracks, per series, the newest partition that
// may hold one of its samples (raised before each append, so it errs late)
// and removes the series once that partition is older than the oldest one
// held. Series ids come from a bbolt sequence that compaction preserves and
// are never reused: a series that comes back gets a new id, and no retained
// record refers to a removed id. Forwarding cursors are record positions
// (seq, offset), so series GC does not move them. An Append whose ids were
// looked up before a GC run looks them up again inside its transaction.
//
// Ordering: every record (the samples of one Append falling in one time
// partition) gets a sequence number in commit order; ReadFrom walks records
// in that order, which is what forwarding cursors follow. Query returns
// points in time order whatever the append order was.
//
// Failure: a write that fails (disk full, I/O error, hard size cap) returns
// an error wrapping ErrDiskFull or ErrWrite, is counted in
// vigil_store_write_errors_total{reason}, stores nothing, and leaves reads
// working. A file that bbolt refuses or whose own structures are damaged is
// renamed to <path>.corrupt-<UTC time> and replaced by an empty one, logged
// at ERROR, at most once per Open: never a crash loop. A file written by a
// newer schema is not touched: Open fails with a *SchemaError
// (ErrSchemaTooNew) naming both versions.
//
// # Layout
//
// One bbolt file per Store: bucket "meta" (schema version), "series"
// (canonical name+labels key -> uint64 id), "parts" (one nested bucket per
// time partition, keyed by its start in ms, holding seq -> record) and
// "cursors". A record encodes its samples as series id, time delta and the
// 8-byte value: about 11-14 bytes per sample before bbolt's page overhead.
//
// # Changing an encoding
//
// A downgrade is safe only because an older agent refuses a file stamped
// with a newer schema version (SchemaError) instead of misreading it. So
// every change of the bytes written, by the store itself or by a
// subsystem into its KV file (a JSON field name, a byte order, a key
// layout), must bump the version: schemaVersion (store.go) for the sample
// file, KVSchemaVersion (kv.go) for KV files, or a version the subsystem
// keeps inside its own values where it has one (the alert snapshot's).
// Golden encoding tests guard this: each writes fixed input through the
// real write path at a fixed clock, dumps every bucket
// (testutil.DumpBolt) and compares the dump with testdata/golden/*.txt in
// its package, which records the versions it was made with. A different
// dump under the same versions fails with "the on-disk encoding of ...
// changed but its schema version is still N: bump it"; after a bump,
// regenerate with
//
//	go test ./agent/store -run TestGoldenEncoding -update
//
// (and likewise in agent, agent/gateway, agent/observe, agent/drift and
// agent/pluginhost, for alerts.db, llm-cache.db, llm-spend.db,
// observations.db, drift.db and plugins.db). Regenerate without a
// bump only when the test's input changed, not the encoding. Note for the
// first bump: Open stamps the version only when it creates a file, so a
// file created by an older version keeps its older stamp after a newer
// agent writes to it; the bump must also restamp such files on open, or
// a downgrade after the upgrade misreads them.
//
// # Not guaranteed
//
// Samples are not deduplicated on write; Query keeps the last appended of
// equal timestamps, ReadFrom returns them all. Cancelling the context of an
// Append that is already queued leaves its outcome unknown. After a restart
// the store does not know where each loaded series' data ends: it keeps
// them until the partition that was newest at Open is dropped (series GC
// is late, never early). A series whose data max_bytes evicted record by
// record from the newest partition stays until that partition goes. The
// store keeps no copy of the latest values
// for fast reads; the caller's cache serves those. Durability depends on
// the filesystem honouring fdatasync.
package store
