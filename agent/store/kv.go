package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// KV is a small durable key-value file for one subsystem (observations,
// plugin catalog, canary/retrain state, LLM cache). Keys live in named
// buckets that are created on first write. Writes go through the same group
// commit as samples: they return after the commit is fsynced, and
// concurrent writers share a commit. Give each subsystem its own file
// (OpenKV with its own path) so that one subsystem's writes never wait for
// another's.
//
// KV files carry a schema version and are moved aside when corrupt, like
// the sample store. KV does not bound its size: the subsystem that owns it
// decides what to delete.
type KV struct {
	path string
	log  *slog.Logger

	mu sync.RWMutex
	db *bolt.DB
	c  *committer

	closeOnce sync.Once
	closeErr  error
}

// KVSchemaVersion is the layout version written to every KV file. It
// covers what the subsystems store in their KV files too: an older agent
// refuses a file stamped with a newer version (SchemaError) instead of
// misreading it, so bump it whenever the bytes a subsystem writes change
// meaning (each subsystem's golden test, TestGoldenEncoding, says when).
const KVSchemaVersion uint32 = 1

// kvMetaBucket holds the schema version; bucket names starting with "__"
// are reserved.
var kvMetaBucket = []byte("__vigil_kv_meta")

// ErrBucketName is returned for an empty bucket name or one starting
// with "__".
var ErrBucketName = errors.New("store: bucket name must be non-empty and not start with \"__\"")

// KVOp is one write of an atomic Apply: a Put, or a Delete when Delete is
// true.
type KVOp struct {
	Bucket string
	Key    []byte
	Value  []byte
	Delete bool
}

// OpenKV opens (creating if needed) the key-value file at path.
func OpenKV(path string, logger *slog.Logger) (*KV, error) {
	if path == "" {
		return nil, errors.New("store: KV path is empty")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	k := &KV{path: path, log: logger.With("component", "store", "file", path)}
	db, err := openFile(path, bolt.Options{FreelistType: bolt.FreelistMapType}, k.log, k.init)
	if err != nil {
		return nil, err
	}
	k.db = db
	k.c = newCommitter(1024, 4096, 0, func() *bolt.DB { return k.db })
	go k.c.run()
	return k, nil
}

func (k *KV) init(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(kvMetaBucket)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return corrupt("no %s bucket (not a vigil KV file?)", kvMetaBucket)
			}
			var err error
			if meta, err = tx.CreateBucket(kvMetaBucket); err != nil {
				return err
			}
			return meta.Put(keySchema, binary.BigEndian.AppendUint32(nil, KVSchemaVersion))
		}
		v := meta.Get(keySchema)
		if len(v) != 4 {
			return corrupt("schema version missing or malformed")
		}
		if ver := binary.BigEndian.Uint32(v); ver > KVSchemaVersion {
			return &SchemaError{Path: k.path, Found: ver, Supported: KVSchemaVersion}
		}
		return nil
	})
}

func checkBucket(name string) error {
	if name == "" || strings.HasPrefix(name, "__") {
		return fmt.Errorf("%w: %q", ErrBucketName, name)
	}
	return nil
}

// Put stores value under key in bucket, durably.
func (k *KV) Put(ctx context.Context, bucket string, key, value []byte) error {
	return k.Apply(ctx, KVOp{Bucket: bucket, Key: key, Value: value})
}

// Delete removes key from bucket, durably. Deleting a missing key is not an
// error.
func (k *KV) Delete(ctx context.Context, bucket string, key []byte) error {
	return k.Apply(ctx, KVOp{Bucket: bucket, Key: key, Delete: true})
}

// Apply runs ops atomically (all or none) and durably.
func (k *KV) Apply(ctx context.Context, ops ...KVOp) error {
	// Copy: if ctx ends while queued, the writer may still run the ops
	// after the caller has reused its buffers.
	ops = slices.Clone(ops)
	for i, op := range ops {
		ops[i].Key, ops[i].Value = slices.Clone(op.Key), append([]byte{}, op.Value...)
		if err := checkBucket(op.Bucket); err != nil {
			return err
		}
		if len(op.Key) == 0 || len(op.Key) > bolt.MaxKeySize {
			return fmt.Errorf("store: key length %d out of range 1..%d", len(op.Key), bolt.MaxKeySize)
		}
	}
	err := k.c.submit(ctx, func(tx *bolt.Tx) (func(), error) {
		for _, op := range ops {
			b, err := tx.CreateBucketIfNotExists([]byte(op.Bucket))
			if err != nil {
				return nil, err
			}
			if op.Delete {
				err = b.Delete(op.Key)
			} else {
				err = b.Put(op.Key, op.Value)
			}
			if err != nil {
				return nil, err
			}
		}
		return nil, nil
	}, len(ops))
	return err
}

// Get returns a copy of the value under key in bucket; ok is false when
// there is none.
func (k *KV) Get(bucket string, key []byte) (value []byte, ok bool, err error) {
	err = k.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			if v := b.Get(key); v != nil {
				value, ok = append([]byte{}, v...), true
			}
		}
		return nil
	})
	return value, ok, err
}

// ForEach calls fn for each key of bucket in key order, inside one read
// transaction (a consistent snapshot). k and v are valid only during the
// call. A non-nil error from fn stops the walk and is returned.
func (k *KV) ForEach(bucket string, fn func(key, value []byte) error) error {
	return k.view(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(fn)
	})
}

func (k *KV) view(fn func(tx *bolt.Tx) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.db == nil {
		return ErrClosed
	}
	return k.db.View(fn)
}

// Close commits queued writes and closes the file.
func (k *KV) Close() error {
	k.closeOnce.Do(func() {
		k.c.stop()
		k.mu.Lock()
		k.closeErr = k.db.Close()
		k.db = nil
		k.mu.Unlock()
	})
	return k.closeErr
}

// Commits reports how many group commits this KV has made.
func (k *KV) Commits() uint64 { return k.c.commits.Load() }
