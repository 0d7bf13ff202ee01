// Package observe keeps what model servers report about their predictions
// (observations) and the ground truth that arrives later (labels), and
// turns them into per-(model, version) figures: latency percentiles from a
// DDSketch (1% relative accuracy), request and error counts, error rate,
// throughput and accuracy over sliding windows of 1m, 5m and 1h.
//
// # Guarantees
//
// Validated: ParseObservations and ParseLabels refuse a batch at its
// first invalid item with an *ItemError naming the item's index and field
// (observations[3].features.age); non-finite numbers are refused in every
// form clients send them (NaN and Infinity literals, 1e999, "NaN").
//
// Durable before acknowledged, and atomic: Ingest and AddLabels return
// nil only after the batch is committed and fsynced, as one record, in the
// service's own bbolt file (store.KV with group commit). A batch is stored
// whole or not at all; nothing is counted before it is stored.
//
// Bounded: at most observe.max_models (model, version) pairs are tracked
// (a batch adding one more fails with a *LimitError; pairs idle for a
// retention are forgotten); each pair holds two rings of buckets
// (31 x 10 s and 61 x 1 min) with one sketch each, capped at 2048 bins;
// the request-ID index for labels holds observe.label_index_size entries;
// records are deleted past observe.retention and observe.max_bytes.
//
// Restart-safe: Open rebuilds totals, windows and the label index from the
// file, so the stats survive a restart or kill -9.
//
// # For consumers (drift detection, alerts)
//
// Subscribe delivers every batch once it is durable; Scan and
// FeatureValues read stored observations by time range (a reference
// window); Stats and Models give the windowed figures; Windows lists the
// window lengths. The service is safe for concurrent use.
package observe
