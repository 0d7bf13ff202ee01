package store

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// ForEachFrom calls fn for each key of bucket from the first key >= start,
// in key order, inside one read transaction. As with ForEach, k and v are
// valid only during the call and an error from fn stops the walk and is
// returned. Callers walking a large range should stop after a chunk and
// resume from the next key, so that no read transaction stays open long
// (a long one keeps bbolt from growing the file for writers).
func (k *KV) ForEachFrom(bucket string, start []byte, fn func(key, value []byte) error) error {
	return k.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for key, v := c.Seek(start); key != nil; key, v = c.Next() {
			if err := fn(key, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// ForEachBefore calls fn for each key of bucket below end (all keys when
// end is nil), newest first: in reverse key order. Otherwise as
// ForEachFrom.
func (k *KV) ForEachBefore(bucket string, end []byte, fn func(key, value []byte) error) error {
	return k.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var key, v []byte
		if end == nil {
			key, v = c.Last()
		} else {
			key, v = c.Seek(end)
			if key == nil {
				key, v = c.Last()
			}
			for key != nil && bytes.Compare(key, end) >= 0 {
				key, v = c.Prev()
			}
		}
		for ; key != nil; key, v = c.Prev() {
			if err := fn(key, v); err != nil {
				return err
			}
		}
		return nil
	})
}
