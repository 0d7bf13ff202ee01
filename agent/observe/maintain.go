package observe

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

// MaintainInterval is how often Run enforces retention and max_bytes.
const MaintainInterval = 30 * time.Second

// Run enforces retention and observe.max_bytes every MaintainInterval
// until ctx ends.
func (s *Service) Run(ctx context.Context) {
	t := time.NewTicker(MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Maintain(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("observation maintenance failed; retrying next round", "err", err)
			}
		}
	}
}

const deleteChunk = 2048

// Maintain deletes records past observe.retention, then the oldest
// observation records while the stored bytes exceed observe.max_bytes,
// and forgets (model, version) pairs not seen for a retention.
func (s *Service) Maintain(ctx context.Context) error {
	now := s.now()
	cutoff := recordKey(now.Add(-s.cfg.Retention).UnixMilli(), 0)
	var errs []error
	for _, b := range []string{bucketObs, bucketLabels} {
		if err := s.deleteOldest(ctx, b, func(k []byte) bool { return bytes.Compare(k, cutoff) < 0 }); err != nil {
			errs = append(errs, err)
		}
	}
	if err := s.deleteOldest(ctx, bucketObs, func([]byte) bool { return s.liveBytes.Load() > int64(s.cfg.MaxBytes) }); err != nil {
		errs = append(errs, err)
	}
	// Forget pairs not seen for a retention, except those a batch is
	// being stored for (reserved within the retention).
	old := now.Add(-s.cfg.Retention).UnixMilli()
	var gone []store.KVOp
	s.mu.Lock()
	for k, p := range s.pairs {
		p.mu.Lock()
		idle := max(p.lastMs, p.reservedMs.Load()) < old
		p.mu.Unlock()
		if idle {
			delete(s.pairs, k)
			s.idx.mu.Lock()
			s.idx.forget(p)
			s.idx.mu.Unlock()
			gone = append(gone, store.KVOp{Bucket: bucketModels, Key: modelKey(k), Delete: true})
		}
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		s.log.Info("forgot idle model versions", "count", len(gone))
		if err := s.kv.Apply(ctx, gone...); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteOldest deletes records from the start of bucket while del says so
// (it is asked again for every record).
func (s *Service) deleteOldest(ctx context.Context, bucket string, del func(k []byte) bool) error {
	stop := errors.New("stop")
	for {
		var ops []store.KVOp
		var freed int64
		var evicted uint64
		err := s.kv.ForEachFrom(bucket, nil, func(k, v []byte) error {
			if len(ops) >= deleteChunk || !del(k) {
				return stop
			}
			ops = append(ops, store.KVOp{Bucket: bucket, Key: append([]byte{}, k...), Delete: true})
			n := int64(len(k) + len(v))
			freed += n
			s.liveBytes.Add(-n) // provisional, so del sees the effect
			if bucket == bucketObs {
				if sums, _, err := decodeSummary(v); err == nil {
					for _, sm := range sums {
						evicted += sm.count
					}
				}
			}
			return nil
		})
		if err != nil && err != stop {
			s.liveBytes.Add(freed)
			return err
		}
		if len(ops) == 0 {
			return nil
		}
		if err := s.kv.Apply(ctx, ops...); err != nil {
			s.liveBytes.Add(freed)
			return err
		}
		s.m.evicted.Add(evicted)
		if len(ops) < deleteChunk {
			return nil
		}
	}
}
