package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// eviction totals of one maintenance run: one log line per run, however
// many partitions it dropped.
type eviction struct {
	partitions  int
	records     int
	samples     uint64
	unforwarded map[string]uint64
}

func (e *eviction) any() bool { return e.partitions > 0 || e.records > 0 }

// afterBatch runs on the writer goroutine after each commit: a cheap size
// check, with eviction when the live data passed max_bytes.
func (s *Store) afterBatch() {
	if s.lastTxSize < int64(s.cfg.MaxBytes) {
		return // the whole file, free pages included, is under the cap
	}
	if s.usedBytes() > int64(s.cfg.MaxBytes) {
		s.maintain(s.now())
	}
}

// usedBytes is the size of the pages holding live data.
func (s *Store) usedBytes() int64 {
	st := s.db.Stats()
	var size int64
	_ = s.db.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
	return size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
}

// maintain applies retention by age, then by bytes, then compacts the file
// if free pages dominate it. It runs on the writer goroutine (at Open, on a
// timer, after a commit that passed max_bytes), so writers wait for it.
func (s *Store) maintain(now time.Time) {
	if s.db == nil {
		return
	}
	// A damaged data page makes bbolt panic (its transactions roll back).
	// Crashing here would crash the agent at every start once the page is
	// due for retention; log it (once) instead and keep serving.
	defer func() {
		if p := recover(); p != nil && !s.damagedLogged {
			s.damagedLogged = true
			s.log.Error("store: maintenance failed: the file is damaged; retention and max_bytes are not applied until it is fixed: "+damagedHint,
				"path", s.cfg.Path, "panic", fmt.Sprint(p))
		}
	}()
	var ev eviction
	cutoff := now.Add(-s.cfg.Retention).UnixMilli()
	err := s.db.Update(func(tx *bolt.Tx) error {
		parts := tx.Bucket(bucketParts)
		var old [][]byte
		c := parts.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			// A partition goes once all of it is older than the retention,
			// so data is kept for at least the retention.
			if int64(binary.BigEndian.Uint64(k))+s.partMs > cutoff {
				break
			}
			old = append(old, k)
		}
		if len(old) == 0 {
			return nil
		}
		cursors := s.countingCursors(tx)
		for _, k := range old {
			if err := s.dropPartition(tx, parts, k, cursors, &ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("store: applying retention failed", "err", err)
	}
	ageEv := ev
	ev = eviction{}
	if used := s.usedBytes(); used > int64(s.cfg.MaxBytes) {
		// Evict down to 90% so that eviction does not run on every commit.
		need := used - int64(s.cfg.MaxBytes)*9/10
		if err := s.db.Update(func(tx *bolt.Tx) error { return s.evictBytes(tx, need, &ev) }); err != nil {
			s.log.Error("store: evicting for store.max_bytes failed", "err", err)
		}
	}
	s.commitEviction(ageEv, "retention", now)
	s.commitEviction(ev, "max_bytes", now)
	s.gcSeries()
	s.maybeCompact()
}

// gcSeries removes from the series index the series that have no sample
// left in the file: those whose last partition is older than the oldest
// partition still held (partitions are dropped oldest first, by retention
// and by max_bytes). It runs on the writer goroutine after the evictions
// committed, deletes the index entries in one transaction (a crash before
// it commits only leaves them for a later run) and then drops them from
// memory. Series ids are never reused, so a series that comes back gets a
// new id; no retained record refers to the old one.
func (s *Store) gcSeries() {
	oldest := int64(math.MaxInt64) // no partition: no series has data
	if err := s.db.View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bucketParts).Cursor().First(); k != nil {
			oldest = int64(binary.BigEndian.Uint64(k))
		}
		return nil
	}); err != nil {
		return
	}
	var gone []*seriesInfo
	s.idx.mu.RLock()
	for _, si := range s.idx.byID {
		if si.lastPart.Load() < oldest {
			gone = append(gone, si)
		}
	}
	s.idx.mu.RUnlock()
	if len(gone) == 0 {
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		ser := tx.Bucket(bucketSeries)
		for _, si := range gone {
			if err := ser.Delete([]byte(si.key)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("store: removing series without data failed; they stay in the index", "err", err)
		return
	}
	// Wait for reads that started before the partitions were dropped (they
	// hold s.mu and may still see records of these series).
	s.mu.Lock()
	s.idx.mu.Lock()
	for _, si := range gone {
		delete(s.idx.byKey, si.key)
		delete(s.idx.byID, si.id)
	}
	s.idx.gen.Add(1)
	s.idx.mu.Unlock()
	s.mu.Unlock()
	s.m.seriesRemoved.Add(uint64(len(gone)))
	s.log.Info("store removed series without data", "series", len(gone), "example_series", gone[0].name+gone[0].labels.String(), "series_left", s.idx.len())
}

func (s *Store) commitEviction(ev eviction, reason string, now time.Time) {
	if !ev.any() {
		return
	}
	s.partitions.Add(-int64(ev.partitions))
	s.m.evicted.Add(ev.samples)
	attrs := []any{"reason", reason, "partitions", ev.partitions, "samples", ev.samples}
	if ev.records > 0 {
		attrs = append(attrs, "records_from_newest_partition", ev.records)
	}
	for name, n := range ev.unforwarded {
		s.m.addUnforwarded(name, n)
		attrs = append(attrs, "unforwarded_"+name, n)
	}
	if reason == "retention" {
		s.log.Info("store evicted old data", attrs...)
	} else {
		s.log.Warn("store evicted data to stay under store.max_bytes", attrs...)
	}
}

// evictBytes drops oldest partitions until about need bytes are freed. When
// only the newest partition is left, it drops that partition's oldest
// records instead, so the store keeps its most recent data.
func (s *Store) evictBytes(tx *bolt.Tx, need int64, ev *eviction) error {
	parts := tx.Bucket(bucketParts)
	pageSize := int64(s.db.Info().PageSize)
	cursors := s.countingCursors(tx)
	var keys [][]byte
	_ = parts.ForEachBucket(func(k []byte) error { keys = append(keys, k); return nil })
	for len(keys) > 1 && need > 0 {
		st := parts.Bucket(keys[0]).Stats()
		need -= int64(st.BranchPageN+st.BranchOverflowN+st.LeafPageN+st.LeafOverflowN) * pageSize
		if err := s.dropPartition(tx, parts, keys[0], cursors, ev); err != nil {
			return err
		}
		keys = keys[1:]
	}
	if need <= 0 || len(keys) == 0 {
		return nil
	}
	pb := parts.Bucket(keys[0])
	var drop [][]byte
	c := pb.Cursor()
	for k, v := c.First(); k != nil && need > 0; k, v = c.Next() {
		need -= int64(len(k) + len(v) + 16)
		drop = append(drop, k)
		s.countRecord(k, v, cursors, ev)
		ev.records++
	}
	for _, k := range drop {
		if err := pb.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) dropPartition(tx *bolt.Tx, parts *bolt.Bucket, k []byte, cursors map[string]Cursor, ev *eviction) error {
	k = append([]byte(nil), k...)
	err := parts.Bucket(k).ForEach(func(rk, v []byte) error {
		s.countRecord(rk, v, cursors, ev)
		return nil
	})
	if err != nil {
		return err
	}
	ev.partitions++
	return parts.DeleteBucket(k)
}

// countRecord adds an evicted record to ev, including the samples that a
// saved cursor had not yet read (evicted before being forwarded).
func (s *Store) countRecord(k, v []byte, cursors map[string]Cursor, ev *eviction) {
	h, err := readRecordHeader(v)
	if err != nil {
		return
	}
	n := uint64(h.count)
	ev.samples += n
	seq := binary.BigEndian.Uint64(k)
	for name, c := range cursors {
		var un uint64
		switch {
		case seq > c.Seq:
			un = n
		case seq == c.Seq && uint64(c.Off) < n:
			un = n - uint64(c.Off)
		}
		if un > 0 {
			if ev.unforwarded == nil {
				ev.unforwarded = map[string]uint64{}
			}
			ev.unforwarded[name] += un
		}
	}
}

// maybeCompact compacts when the file is at least CompactMinBytes and more
// than half of it is free (free pages plus bbolt's preallocated tail).
func (s *Store) maybeCompact() {
	fi, err := os.Stat(s.cfg.Path)
	if err != nil || fi.Size() < int64(s.cfg.CompactMinBytes) {
		return
	}
	used := s.usedBytes()
	if (fi.Size()-used)*2 <= fi.Size() {
		return
	}
	if err := s.compact(fi.Size(), used); err != nil {
		s.log.Error("store: compaction failed; keeping the current file", "err", err)
	}
}

// compact copies the live data into a fresh file (bbolt's Compact, pages
// filled completely) and renames it over the current one. It runs on the
// writer goroutine, so writers wait; readers continue during the copy and
// wait only for the swap.
func (s *Store) compact(before, used int64) error {
	start := time.Now()
	dir := filepath.Dir(s.cfg.Path)
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		if avail := int64(st.Bavail) * int64(st.Bsize); avail < used+used/4+(1<<20) {
			return fmt.Errorf("not enough free disk space for a copy: %d bytes free, about %d needed", avail, used+used/4)
		}
	}
	tmp := s.cfg.Path + compactSuffix
	_ = os.Remove(tmp)
	dst, err := boltOpen(tmp, s.boltOpts)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := bolt.Compact(dst, s.db, 32<<20); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("copy: %w", err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close before swap: %w", err)
	}
	renameErr := os.Rename(tmp, s.cfg.Path)
	if renameErr == nil {
		syncDir(dir)
	} else {
		_ = os.Remove(tmp)
	}
	db, err := boltOpen(s.cfg.Path, s.boltOpts)
	if err != nil {
		// Leave the store closed for writes and reads rather than guess.
		s.db = nil
		return fmt.Errorf("reopen after compaction: %w", err)
	}
	db.MaxBatchDelay = 2 * time.Millisecond
	db.AllocSize = int(min(int64(16<<20), int64(s.cfg.MaxBytes)/16))
	s.db = db
	if renameErr != nil {
		return fmt.Errorf("rename: %w", renameErr)
	}
	var after int64
	if fi, err := os.Stat(s.cfg.Path); err == nil {
		after = fi.Size()
	}
	s.m.compactions.Add(1)
	s.log.Info("store compacted", "before_bytes", before, "after_bytes", after, "took", time.Since(start).Round(time.Millisecond))
	return nil
}
