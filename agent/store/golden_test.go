package store

import (
	"context"
	"flag"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

// updateGolden regenerates the golden encodings under testdata/golden.
var updateGolden = flag.Bool("update", false, "rewrite the golden encodings in testdata/golden")

// goldenNow is the fixed clock of the golden tests.
var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestGoldenEncoding guards downgrades: a Store file written by a newer
// schema is refused, so every change of what the store writes must bump
// schemaVersion. It writes fixed samples (two series, two partitions, a
// series without labels, a NaN, a negative and a huge value, an append
// older than the one before) and a cursor, and compares every bucket of
// the file with testdata/golden/store.txt. Nothing in the file depends on
// the wall clock: the store's clock is fixed, and samples carry their own
// times.
func TestGoldenEncoding(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "vigil.db")
	s := openTest(t, cfg, options{now: func() time.Time { return goldenNow }})
	ctx := context.Background()
	base := goldenNow.Add(-90 * time.Minute).Truncate(time.Hour) // two partitions
	batches := [][]Sample{
		{gpuSample("0", base.Add(time.Second), 1), gpuSample("1", base.Add(time.Second), 2.5)},
		{gpuSample("0", base.Add(time.Hour+1500*time.Millisecond), math.NaN()), {Name: "up", Time: base.Add(time.Hour), Value: -1}},
		{gpuSample("0", base.Add(2*time.Second), 1e300)}, // older than the previous append
	}
	for _, b := range batches {
		if err := s.Append(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveCursor(ctx, "remote_write/prom", Cursor{Seq: 2, Off: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "the metrics store (vigil.db: series, records, cursors)",
		File:     filepath.Join("testdata", "golden", "store.txt"),
		Versions: []testutil.Version{{Name: "schemaVersion in agent/store/store.go", Value: int(schemaVersion)}},
		Regen:    "go test ./agent/store -run TestGoldenEncoding -update",
	}.Check(t, testutil.DumpBolt(t, cfg.Path, nil), *updateGolden)
}

// TestGoldenEncodingKV guards the frame every KV file shares (its meta
// bucket, buckets created on first write, deletes); what each subsystem
// stores in it has its own golden test in that subsystem's package.
func TestGoldenEncodingKV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	kv, err := OpenKV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = kv.Apply(ctx,
		KVOp{Bucket: "b", Key: []byte("k1"), Value: []byte("v1")},
		KVOp{Bucket: "b", Key: []byte("k2"), Value: []byte{0, 1, 2}},
		KVOp{Bucket: "a", Key: []byte{0xff}, Value: nil},
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "b", []byte("k1")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "a KV file's frame (store.OpenKV)",
		File:     filepath.Join("testdata", "golden", "kv.txt"),
		Versions: []testutil.Version{{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(KVSchemaVersion)}},
		Regen:    "go test ./agent/store -run TestGoldenEncoding -update",
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}
