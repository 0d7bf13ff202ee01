package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// DumpBolt returns a canonical text form of everything in the bbolt file
// at path: every bucket (nested ones recursively) with its sequence, and
// every key and value, in bbolt's byte order. Keys and values that are
// printable UTF-8 are written quoted, others in hex, so a diff of two
// dumps reads. omit, when not nil, leaves out the keys (or nested
// buckets) for which it returns true: what the caller cannot make
// deterministic, such as a value that embeds the wall clock.
//
// The file must not be open elsewhere (bbolt locks it).
func DumpBolt(t testing.TB, path string, omit func(buckets []string, key []byte) bool) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open %s to dump it: %v", path, err)
	}
	defer db.Close()
	var b strings.Builder
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			if omit != nil && omit(nil, name) {
				return nil
			}
			dumpBucket(&b, []string{string(name)}, bk, omit)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("dump %s: %v", path, err)
	}
	return b.String()
}

func dumpBucket(b *strings.Builder, path []string, bk *bolt.Bucket, omit func([]string, []byte) bool) {
	indent := strings.Repeat("  ", len(path)-1)
	fmt.Fprintf(b, "%sbucket %s seq=%d\n", indent, quoteBytes([]byte(path[len(path)-1])), bk.Sequence())
	c := bk.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if omit != nil && omit(path, k) {
			continue
		}
		if v == nil { // a nested bucket
			dumpBucket(b, append(path[:len(path):len(path)], string(k)), bk.Bucket(k), omit)
			continue
		}
		fmt.Fprintf(b, "%s  %s = %s\n", indent, quoteBytes(k), quoteBytes(v))
	}
}

// quoteBytes writes p as a Go string literal when it is printable UTF-8
// (raw, so that JSON reads as it is stored, when it can be), else as hex
// with an x prefix.
func quoteBytes(p []byte) string {
	if len(p) > 0 && utf8.Valid(p) && !bytes.ContainsFunc(p, func(r rune) bool { return !strconv.IsPrint(r) }) {
		if strconv.CanBackquote(string(p)) {
			return "`" + string(p) + "`"
		}
		return strconv.Quote(string(p))
	}
	return fmt.Sprintf("x%x", p)
}

// Golden describes one golden encoding: the dump of a data file written
// from fixed input, checked in under a package's testdata.
type Golden struct {
	// What names the file kind in messages ("the metrics store").
	What string
	// File is the golden file, e.g. testdata/golden/store.txt.
	File string
	// Versions are the schema versions that guard this encoding, as the
	// code writes them now: the file's own, and any version the
	// subsystem writes inside its values.
	Versions []Version
	// Regen is the command that regenerates the golden.
	Regen string
}

// Version is one schema version: Name says where it is defined
// ("schemaVersion in agent/store/store.go").
type Version struct {
	Name  string
	Value int
}

const goldenHeader = "# vigil golden encoding; schema: "

func (g Golden) versions() string {
	var parts []string
	for _, v := range g.Versions {
		parts = append(parts, fmt.Sprintf("%s = %d", v.Name, v.Value))
	}
	return strings.Join(parts, "; ")
}

// Check compares dump with the golden file. With update it writes the
// golden instead. It fails when the dump differs while the schema
// versions are the ones the golden was made with (the encoding changed
// without a bump), and when a version changed (regenerate the golden, so
// that it guards the new encoding).
func (g Golden) Check(t testing.TB, dump string, update bool) {
	t.Helper()
	want := fmt.Sprintf("%s%s\n# %s; regenerate with: %s\n%s", goldenHeader, g.versions(), g.What, g.Regen, dump)
	if update {
		if err := os.MkdirAll(filepath.Dir(g.File), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(g.File, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (schema: %s)", g.File, g.versions())
		return
	}
	raw, err := os.ReadFile(g.File)
	if err != nil {
		t.Fatalf("golden encoding of %s: %v; create it with `%s`", g.What, err, g.Regen)
	}
	first, rest, _ := strings.Cut(string(raw), "\n")
	made, ok := strings.CutPrefix(first, goldenHeader)
	if !ok {
		t.Fatalf("%s: first line %q does not record the schema versions; regenerate with `%s`", g.File, first, g.Regen)
	}
	_, old, _ := strings.Cut(rest, "\n")
	switch {
	case made != g.versions():
		t.Fatalf("the schema version changed (now %s; %s was made with %s): regenerate it with `%s` so that it guards the new encoding",
			g.versions(), g.File, made, g.Regen)
	case old != dump:
		bump := "bump it"
		if len(g.Versions) > 1 {
			bump = "bump the one that covers what changed"
		}
		t.Fatalf("the on-disk encoding of %s changed but its schema version is still %s: %s "+
			"(older agents then refuse the data instead of misreading it) and regenerate with `%s`. "+
			"If only this test's input changed, regenerate without a bump.\nfirst difference (%s):\n%s",
			g.What, g.versions(), bump, g.Regen, g.File, firstDiff(old, dump))
	}
}

// firstDiff shows the first line where want and got differ; a long line
// is cut to the neighbourhood of its first differing byte.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			at := 0
			for at < min(len(wl), len(gl)) && wl[at] == gl[at] {
				at++
			}
			return fmt.Sprintf("  golden: %s\n  now:    %s", around(wl, at), around(gl, at))
		}
	}
	return "(none)"
}

// around cuts line to at most 80 bytes before at and 120 from it.
func around(line string, at int) string {
	from, to := max(at-80, 0), min(at+120, len(line))
	out := line[from:to]
	if from > 0 {
		out = "..." + out
	}
	if to < len(line) {
		out += "..."
	}
	return out
}
