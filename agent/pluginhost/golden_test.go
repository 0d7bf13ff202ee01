package pluginhost

import (
	"context"
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/internal/testutil"
)

// updateGolden regenerates the golden encodings under testdata/golden.
var updateGolden = flag.Bool("update", false, "rewrite the golden encodings in testdata/golden")

// TestGoldenEncoding guards the plugin catalog (plugins.db): an older
// agent must refuse it (KV schema version) rather than misread a
// registered plugin's path or checksum. Register stamps its entry with
// the wall clock and the checksum of a real binary, so the test writes
// fixed entries through catalog.put and remove, the functions Register
// and Unregister write with.
func TestGoldenEncoding(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "plugins.db")
	c, err := openCatalog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	entries := []Entry{
		{Name: "ks", Kind: "detector", Path: "/usr/lib/vigil/plugins/ks", SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			Version: "1.2.0", Args: []string{"--fast"}, Env: []string{"KS_MODE=exact"}, RegisteredAt: at, Source: "registered"},
		{Name: "openai", Kind: "provider", Path: "/opt/openai", SHA256: "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
			RegisteredAt: at.Add(time.Second), Source: "registered"},
		{Name: "gone", Kind: "vectorstore", Path: "/opt/gone", SHA256: "00", RegisteredAt: at, Source: "registered"},
	}
	for _, e := range entries {
		if err := c.put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.remove(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := c.close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "the plugin catalog (plugins.db)",
		File:     filepath.Join("testdata", "golden", "catalog.txt"),
		Versions: []testutil.Version{{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(store.KVSchemaVersion)}},
		Regen:    "go test ./agent/pluginhost -run TestGoldenEncoding -update",
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}
