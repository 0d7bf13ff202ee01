package observe

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

// TestGoldenEncoding guards the observation file: an older agent must
// refuse it (KV schema version) rather than misread observations, the
// models index or labels. Observations parsed from a fixed body (every
// kind of field: numeric and string features, prediction, label, status,
// error, latency, request id) and a label batch are stored at a fixed
// clock; record keys carry that clock.
func TestGoldenEncoding(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.db")
	c := newClock()
	s := openTest(t, Config{Path: path}, c)
	body := `{"observations": [
	  {"model": "fraud", "version": "v2", "timestamp": "2026-11-27T11:59:00.5Z", "latency_ms": 12.25,
	   "status": 503, "features": {"age": 41, "country": "DE", "score": -0.5e-3, "esc": "a\u00e9\"\ud83d\ude00"},
	   "prediction": "fraud", "request_id": "r-1", "label": "ok"},
	  {"model": "fraud", "timestamp": 1795780740000, "status": 404, "prediction": 1, "version": null, "label": null, "request_id": "r-2"},
	  {"model": "fraud", "error": true, "features": null},
	  {"model": "churn", "error": false, "status": 200, "latency_ms": 1e9, "prediction": "yes"}
	]}`
	obs, err := ParseObservations([]byte(body), false, DefaultConfig(), c.now())
	if err != nil {
		t.Fatal(err)
	}
	ingest(t, s, obs[:2]...)
	c.add(1500 * time.Millisecond)
	ingest(t, s, obs[2:]...)
	labels, err := ParseLabels([]byte(`[{"request_id": "r-2", "label": 1}, {"request_id": "r-9", "label": "x"}]`), false, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddLabels(context.Background(), labels); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "the observation store (observations, models, labels)",
		File:     filepath.Join("testdata", "golden", "observe.txt"),
		Versions: []testutil.Version{{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(store.KVSchemaVersion)}},
		Regen:    "go test ./agent/observe -run TestGoldenEncoding -update",
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}
