package drift

import (
	"context"
	"flag"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/internal/testutil"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// updateGolden regenerates the golden encodings under testdata/golden.
var updateGolden = flag.Bool("update", false, "rewrite the golden encodings in testdata/golden")

// fixedDetectors answer every feature with the same drifted result.
type fixedDetectors struct{}

func (fixedDetectors) Describe(context.Context, string) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Methods: []*pb.MethodInfo{
		{Name: "any", DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE},
	}}, nil
}

func (fixedDetectors) Detect(_ context.Context, _ string, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	p := 0.01
	return &pb.DetectResponse{Method: req.Method, Statistic: 0.75, PValue: &p, Threshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE, Drifted: true}, nil
}

// durationRE matches the evaluation's duration_seconds, measured with the
// wall clock (time.Since in evaluate): the one value of the drift file the
// test cannot fix, so the dump shows its field name but not its value.
var durationRE = regexp.MustCompile(`"duration_seconds":[0-9.e+-]+`)

// TestGoldenEncoding guards the drift engine's file: an older agent must
// refuse it (KV schema version) rather than misread a pinned reference
// or the evaluation history. It pins an uploaded reference (numeric and
// categorical features, predictions and labels), evaluates it against
// current windows filled at a fixed clock, and unpins another version
// (which stores when the automatic reference restarts). The current
// windows themselves are not stored (Refill rebuilds them from the
// observation store at start), so they are not in the file.
func TestGoldenEncoding(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "drift.db")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	models := Models{"fraud": {Features: map[string]FeatureConfig{
		"amount":  {Detector: "fixed", Method: "any"},
		"country": {Detector: "fixed", Method: "any"},
	}}}
	e, err := Open(Config{Path: path, MinSamples: 10, CurrentWindow: 100}, models,
		Options{Detectors: fixedDetectors{}, Seed: 1, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sample := Sample{Features: map[string][]observe.Value{}}
	var obs []observe.Observation
	for i := range 12 {
		country := observe.Str([]string{"DE", "FR", "NO"}[i%3])
		sample.Features["amount"] = append(sample.Features["amount"], observe.Num(float64(i)*1.5))
		sample.Features["country"] = append(sample.Features["country"], country)
		sample.Prediction = append(sample.Prediction, observe.Num(float64(i%2)))
		sample.Labels = append(sample.Labels, observe.Num(float64(i%3%2)))
		obs = append(obs, observe.Observation{Model: "fraud", Version: "v1", UnixMs: now.Add(-time.Duration(i) * time.Second).UnixMilli(),
			Features: []observe.Feature{{Name: "amount", Value: observe.Num(float64(i) + 20)}, {Name: "country", Value: observe.Str("DE")}}})
	}
	if _, err := e.PinSample(ctx, "fraud", "v1", sample); err != nil {
		t.Fatal(err)
	}
	e.Add(obs)
	if evs, err := e.Evaluate(ctx, "fraud", "v1"); err != nil || len(evs) != 1 || evs[0].Verdict != "critical" {
		t.Fatalf("evaluate: %v %+v", err, evs)
	}
	if _, err := e.Unpin(ctx, "fraud", "v2"); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	dump := durationRE.ReplaceAllString(testutil.DumpBolt(t, path, nil), `"duration_seconds":<wall clock, left out>`)
	testutil.Golden{
		What:     "the drift engine's state (references, evaluation history)",
		File:     filepath.Join("testdata", "golden", "drift.txt"),
		Versions: []testutil.Version{{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(store.KVSchemaVersion)}},
		Regen:    "go test ./agent/drift -run TestGoldenEncoding -update",
	}.Check(t, dump, *updateGolden)
}
