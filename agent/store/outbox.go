package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Cursor is a position in the store's append order, for a reader (such as
// the remote_write forwarder) that must see every sample once or more.
// Every record (the samples of one Append that share a partition) has a
// sequence number that grows with each commit; Off counts the samples of
// record Seq already read. The zero Cursor is the beginning.
type Cursor struct {
	Seq uint64
	Off uint32
}

// ReadFrom returns up to max samples that follow c in append order, and the
// cursor just after the last one returned. It returns no samples and c
// unchanged when nothing new was appended. Samples evicted since c was
// taken are skipped (and were counted as evicted-unforwarded for every
// saved cursor behind them).
//
// The contract is at-least-once: ReadFrom does not move any saved cursor.
// A forwarder reads, sends, and only after the upstream accepted the batch
// calls SaveCursor with next. After a crash it resumes from the last saved
// cursor, so a batch may be sent again, but an acknowledged sample is never
// skipped unless it was evicted first.
//
// Returned samples share their Labels slices with the store's index: do not
// modify them.
func (s *Store) ReadFrom(c Cursor, max int) ([]Sample, Cursor, error) {
	if max <= 0 {
		return nil, c, fmt.Errorf("%w: max must be positive", ErrBadQuery)
	}
	var out []Sample
	next := c
	err := s.view(func(tx *bolt.Tx) error {
		parts := tx.Bucket(bucketParts)
		// Records are ordered by seq within each partition; merge the
		// partitions (there are at most retention/partition of them).
		type head struct {
			cur *bolt.Cursor
			k   []byte
			v   []byte
		}
		var heads []*head
		from := u64key(c.Seq)
		err := parts.ForEachBucket(func(pk []byte) error {
			cur := parts.Bucket(pk).Cursor()
			k, v := cur.Seek(from)
			if k != nil {
				heads = append(heads, &head{cur, k, v})
			}
			return nil
		})
		if err != nil {
			return err
		}
		for len(out) < max && len(heads) > 0 {
			hi := 0
			for i, h := range heads[1:] {
				if bytes.Compare(h.k, heads[hi].k) < 0 {
					hi = i + 1
				}
			}
			h := heads[hi]
			seq := binary.BigEndian.Uint64(h.k)
			rh, err := readRecordHeader(h.v)
			if err != nil {
				return fmt.Errorf("record %d: %w", seq, err)
			}
			skip := 0
			if seq == c.Seq {
				skip = int(c.Off)
			}
			taken := skip
			err = rh.each(func(i int, e encSample) bool {
				if i < skip {
					return true
				}
				if len(out) == max {
					return false
				}
				out = append(out, s.toSample(e))
				taken = i + 1
				return true
			})
			if err != nil {
				return fmt.Errorf("record %d: %w", seq, err)
			}
			if taken < rh.count {
				next = Cursor{Seq: seq, Off: uint32(taken)}
				break
			}
			next = Cursor{Seq: seq + 1}
			if h.k, h.v = h.cur.Next(); h.k == nil {
				heads = append(heads[:hi], heads[hi+1:]...)
			}
		}
		return nil
	})
	if err != nil {
		return nil, c, err
	}
	return out, next, nil
}

func (s *Store) toSample(e encSample) Sample {
	smp := Sample{Time: time.UnixMilli(e.t), Value: e.v}
	if si := s.idx.get(e.id); si != nil {
		smp.Name, smp.Labels = si.name, si.labels
	}
	return smp
}

// SaveCursor durably records c under name (through the same group commit
// as Append). Saving a cursor also starts counting, per name, samples that
// are evicted before this cursor passed them.
func (s *Store) SaveCursor(ctx context.Context, name string, c Cursor) error {
	if name == "" {
		return fmt.Errorf("store: cursor name is empty")
	}
	v := binary.BigEndian.AppendUint64(nil, c.Seq)
	v = binary.BigEndian.AppendUint32(v, c.Off)
	return s.c.submit(ctx, func(tx *bolt.Tx) (func(), error) {
		return nil, tx.Bucket(bucketCursors).Put([]byte(name), v)
	}, 1)
}

// Hold tells the store that the reader saving its cursor under name holds
// the samples before c in memory (a batch read but not yet accepted, so
// its saved cursor is still behind it). Samples before c that are evicted
// from now on are not counted as evicted before that cursor read them: the
// reader sends them from memory, and counts them itself (sent, or given up
// on). Without it, a batch that is being retried through an outage and is
// evicted meanwhile would count both as evicted and as sent. A position
// at or behind the saved cursor changes nothing. Hold is not persisted.
func (s *Store) Hold(name string, c Cursor) {
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	if s.held == nil {
		s.held = map[string]Cursor{}
	}
	s.held[name] = c
}

// countingCursors returns the saved cursors that evictions are counted
// against, each moved up to the position its reader holds (Hold).
func (s *Store) countingCursors(tx *bolt.Tx) map[string]Cursor {
	m := loadCursors(tx)
	s.heldMu.Lock()
	defer s.heldMu.Unlock()
	for name, h := range s.held {
		if c, ok := m[name]; ok && (h.Seq > c.Seq || h.Seq == c.Seq && h.Off > c.Off) {
			m[name] = h
		}
	}
	return m
}

// LoadCursor returns the cursor saved under name; ok is false (and c the
// zero Cursor, the beginning) when none was saved.
func (s *Store) LoadCursor(name string) (c Cursor, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCursors).Get([]byte(name))
		if v == nil {
			return nil
		}
		var perr error
		c, perr = parseCursor(v)
		ok = perr == nil
		return perr
	})
	return c, ok, err
}

// DeleteCursor forgets the cursor saved under name.
func (s *Store) DeleteCursor(ctx context.Context, name string) error {
	return s.c.submit(ctx, func(tx *bolt.Tx) (func(), error) {
		return nil, tx.Bucket(bucketCursors).Delete([]byte(name))
	}, 1)
}

func parseCursor(v []byte) (Cursor, error) {
	if len(v) != 12 {
		return Cursor{}, corrupt("cursor value of %d bytes", len(v))
	}
	return Cursor{Seq: binary.BigEndian.Uint64(v), Off: binary.BigEndian.Uint32(v[8:])}, nil
}

func loadCursors(tx *bolt.Tx) map[string]Cursor {
	m := map[string]Cursor{}
	_ = tx.Bucket(bucketCursors).ForEach(func(k, v []byte) error {
		if c, err := parseCursor(v); err == nil {
			m[string(k)] = c
		}
		return nil
	})
	return m
}
