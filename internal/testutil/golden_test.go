package testutil

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// fatalTB records the message of Fatalf and stops the goroutine, as the
// testing package does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                   {}
func (f *fatalTB) Logf(string, ...any)       {}
func (f *fatalTB) Fatal(args ...any)         { f.Fatalf("%v", args...) }
func (f *fatalTB) Fatalf(s string, a ...any) { f.msg = fmt.Sprintf(s, a...); runtime.Goexit() }

// check runs g.Check and returns its failure message, "" when it passed.
func check(t *testing.T, g Golden, dump string, update bool) string {
	f := &fatalTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Check(f, dump, update)
	}()
	<-done
	return f.msg
}

// TestGoldenCheck: the golden passes on the same dump and versions, asks
// for a bump when the dump changed under the same versions, and for a
// regeneration when a version changed.
func TestGoldenCheck(t *testing.T) {
	g := Golden{What: "the thing", File: filepath.Join(t.TempDir(), "golden", "x.txt"),
		Versions: []Version{{Name: "thingVersion in thing.go", Value: 1}}, Regen: "go test ./thing -update"}
	if msg := check(t, g, "a\nb\n", false); !strings.Contains(msg, "create it with `go test ./thing -update`") {
		t.Fatalf("missing golden: %q", msg)
	}
	if msg := check(t, g, "a\nb\n", true); msg != "" {
		t.Fatalf("update: %q", msg)
	}
	if msg := check(t, g, "a\nb\n", false); msg != "" {
		t.Fatalf("same dump: %q", msg)
	}
	msg := check(t, g, "a\nc\n", false)
	for _, want := range []string{"the on-disk encoding of the thing changed but its schema version is still thingVersion in thing.go = 1: bump it",
		"regenerate with `go test ./thing -update`", "golden: b\n  now:    c"} {
		if !strings.Contains(msg, want) {
			t.Errorf("changed dump: %q lacks %q", msg, want)
		}
	}
	g.Versions[0].Value = 2
	if msg := check(t, g, "a\nc\n", false); !strings.Contains(msg, "the schema version changed (now thingVersion in thing.go = 2;") ||
		!strings.Contains(msg, "was made with thingVersion in thing.go = 1): regenerate it") {
		t.Errorf("bumped: %q", msg)
	}
}

// TestDumpBolt: nested buckets, sequences, and printable and binary keys
// and values, in a form that does not depend on the order of writes.
func TestDumpBolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("top"))
		_ = b.SetSequence(7)
		_ = b.Put([]byte("z"), []byte("has `backquote`"))
		_ = b.Put([]byte{0, 1}, []byte{0xff})
		n, _ := b.CreateBucket([]byte("nested"))
		_ = n.Put([]byte("k"), []byte(`{"a":1}`))
		_ = n.Put([]byte("skip"), []byte("x"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	got := DumpBolt(t, path, func(buckets []string, key []byte) bool { return string(key) == "skip" })
	want := "bucket `top` seq=7\n" +
		"  x0001 = xff\n" +
		"  bucket `nested` seq=0\n" +
		"    `k` = `{\"a\":1}`\n" +
		"  `z` = \"has `backquote`\"\n"
	if got != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", got, want)
	}
}
