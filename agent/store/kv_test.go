package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestKV(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "canary.db")
	kv, err := OpenKV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		do   func() error
		want error
	}{
		{"put", func() error { return kv.Put(ctx, "plans", []byte("a"), []byte("1")) }, nil},
		{"put empty value", func() error { return kv.Put(ctx, "plans", []byte("e"), nil) }, nil},
		{"apply", func() error {
			return kv.Apply(ctx, KVOp{Bucket: "plans", Key: []byte("b"), Value: []byte("2")}, KVOp{Bucket: "plans", Key: []byte("c"), Value: []byte("3")}, KVOp{Bucket: "plans", Key: []byte("a"), Delete: true})
		}, nil},
		{"reserved bucket", func() error { return kv.Put(ctx, "__vigil_kv_meta", []byte("x"), nil) }, ErrBucketName},
		{"empty bucket", func() error { return kv.Put(ctx, "", []byte("x"), nil) }, ErrBucketName},
		{"empty key", func() error { return kv.Put(ctx, "plans", nil, nil) }, nil},
		{"delete missing", func() error { return kv.Delete(ctx, "plans", []byte("zz")) }, nil},
	}
	for _, st := range steps {
		err := st.do()
		if st.name == "empty key" {
			if err == nil {
				t.Errorf("%s: accepted", st.name)
			}
			continue
		}
		if !errors.Is(err, st.want) {
			t.Errorf("%s: got %v, want %v", st.name, err, st.want)
		}
	}
	// Concurrent puts share commits.
	before := kv.Commits()
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := kv.Put(ctx, "obs", []byte(fmt.Sprintf("%02d-%02d", w, i)), []byte("v")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := kv.Commits() - before; n >= 320 {
		t.Errorf("%d commits for 320 puts", n)
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}

	kv, err = OpenKV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	var keys []string
	if err := kv.ForEach("plans", func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil }); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(keys) != "[b=2 c=3 e=]" {
		t.Errorf("after reopen: %v", keys)
	}
	if v, ok, err := kv.Get("plans", []byte("e")); err != nil || !ok || len(v) != 0 {
		t.Errorf("empty value: %q %v %v", v, ok, err)
	}
	if _, ok, _ := kv.Get("plans", []byte("a")); ok {
		t.Error("deleted key still present")
	}
	if _, ok, _ := kv.Get("nobucket", []byte("a")); ok {
		t.Error("key in a missing bucket")
	}
	n := 0
	_ = kv.ForEach("obs", func(k, v []byte) error { n++; return nil })
	if n != 320 {
		t.Errorf("%d obs keys, want 320", n)
	}
}

func TestKVSchemaAndCorruption(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	db, err := bolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket(kvMetaBucket)
		return b.Put(keySchema, binary.BigEndian.AppendUint32(nil, 7))
	})
	db.Close()
	if _, err := OpenKV(newer, nil); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("newer KV: %v", err)
	}

	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, []byte("garbage garbage garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	kv, err := OpenKV(bad, nil)
	if err != nil {
		t.Fatalf("corrupt KV not replaced: %v", err)
	}
	defer kv.Close()
	if m, _ := filepath.Glob(bad + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("corrupt KV not moved aside: %v", m)
	}
}
