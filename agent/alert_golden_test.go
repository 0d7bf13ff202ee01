package agent

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/internal/testutil"
)

// updateGolden regenerates the golden encodings under testdata/golden.
var updateGolden = flag.Bool("update", false, "rewrite the golden encodings in testdata/golden")

// goldenStats serves fixed window stats to the alert rules.
type goldenStats struct {
	mu sync.Mutex
	st map[[2]string]observe.WindowStats
}

func (g *goldenStats) set(model, version string, p95 float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	zero := 0.0
	g.st[[2]string{model, version}] = observe.WindowStats{Requests: 200, LatencyCount: 200, LatencyP95Ms: &p95, ErrorRate: &zero}
}

func (g *goldenStats) Models(time.Duration) []observe.ModelInfo {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []observe.ModelInfo
	for k, st := range g.st {
		out = append(out, observe.ModelInfo{Model: k[0], Versions: []observe.VersionInfo{{Version: k[1], Stats: &st}}})
	}
	return out
}

// TestGoldenEncodingAlerts guards alerts.db: the alert manager's snapshot
// (alert.StateStore) as alertState stores it. A pending and a firing
// critical alert, evaluated at a fixed clock; the snapshot's saved_at and
// the alerts' times come from that clock. Two versions guard it: the KV
// file's and the snapshot's own (an older agent drops a snapshot of
// another version and starts with no alerts).
func TestGoldenEncodingAlerts(t *testing.T) {
	path := filepath.Join(t.TempDir(), alertStateFile)
	kv, err := store.OpenKV(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := &goldenStats{st: map[[2]string]observe.WindowStats{}}
	m, err := alert.New(alert.Config{}, alert.Options{Stats: st, Now: func() time.Time { return now }, Instance: "node-1", State: alertState{kv}})
	if err != nil {
		t.Fatal(err)
	}
	st.set("fraud", "v1", 250)
	m.Evaluate()
	now = now.Add(time.Minute)
	st.set("fraud", "v2", 150)
	m.Evaluate()
	snap, ok, err := kv.Get("alerts", alertStateKey)
	if err != nil || !ok {
		t.Fatalf("no snapshot saved: %v", err)
	}
	var sv struct{ Version int }
	if err := json.Unmarshal(snap, &sv); err != nil {
		t.Fatal(err)
	}
	if err := kv.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What: "the alert state (alerts.db)",
		File: filepath.Join("testdata", "golden", "alerts.txt"),
		Versions: []testutil.Version{
			{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(store.KVSchemaVersion)},
			{Name: "snapshotVersion in agent/alert/persist.go", Value: sv.Version},
		},
		Regen: "go test ./agent -run TestGoldenEncoding -update",
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}
