package drift

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// lenientDetectors is a third party's detector plugin that checks nothing:
// method "shift" declares numeric data only, "any" declares none, and
// both answer "not drifted" to whatever they are sent.
type lenientDetectors struct {
	mu       sync.Mutex
	sent     []string // features sent to Detect
	describe int
}

func (d *lenientDetectors) Describe(context.Context, string) (*pb.DescribeResponse, error) {
	d.mu.Lock()
	d.describe++
	d.mu.Unlock()
	return &pb.DescribeResponse{Methods: []*pb.MethodInfo{
		{Name: "shift", DataTypes: []pb.DataType{pb.DataType_NUMERIC}, DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE},
		{Name: "any", DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE},
	}}, nil
}

func (d *lenientDetectors) Detect(_ context.Context, _ string, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	d.mu.Lock()
	d.sent = append(d.sent, req.Feature)
	d.mu.Unlock()
	return &pb.DetectResponse{Method: req.Method, Statistic: 0, Threshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE}, nil
}

// TestEngineRefusesUndeclaredDataType: a feature whose data type the
// configured detector's method does not declare is not sent; its result
// is an error naming the feature, the detector, the method, the types it
// takes and the key to change. A feature of a declared type, and a method
// that declares no types, are sent. The plugin is described once a pass.
func TestEngineRefusesUndeclaredDataType(t *testing.T) {
	ctx := context.Background()
	det := &lenientDetectors{}
	models := Models{"fraud": {Features: map[string]FeatureConfig{
		"amount":  {Detector: "mean-shift", Method: "shift"},
		"country": {Detector: "mean-shift", Method: "shift"},
		"channel": {Detector: "mean-shift", Method: "any"},
	}}}
	e := smallEngine(t, models, Options{Detectors: det})
	sample := Sample{Features: map[string][]observe.Value{}}
	var obs []observe.Observation
	for i := range 20 {
		amount, country, channel := observe.Num(float64(i)), observe.Str([]string{"DE", "FR"}[i%2]), observe.Str([]string{"web", "app"}[i%2])
		sample.Features["amount"] = append(sample.Features["amount"], amount)
		sample.Features["country"] = append(sample.Features["country"], country)
		sample.Features["channel"] = append(sample.Features["channel"], channel)
		obs = append(obs, observe.Observation{Model: "fraud", Version: "v1", UnixMs: time.Now().UnixMilli(), Features: []observe.Feature{
			{Name: "amount", Value: amount}, {Name: "country", Value: country}, {Name: "channel", Value: channel}}})
	}
	if _, err := e.PinSample(ctx, "fraud", "v1", sample); err != nil {
		t.Fatal(err)
	}
	e.Add(obs)
	evs, err := e.Evaluate(ctx, "", "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
	got := severities(evs[0])
	if got["amount"] != "ok" || got["channel"] != "ok" {
		t.Errorf("declared types: %v", got)
	}
	for _, want := range []string{"error: ", `feature "country" is categorical`, `detector "mean-shift" (method shift) takes numeric data only`, "models.fraud.features.country.detector"} {
		if !strings.Contains(got["country"], want) {
			t.Errorf("country: %q, want it to contain %q", got["country"], want)
		}
	}
	if strings.Join(det.sent, ",") != "amount,channel" && strings.Join(det.sent, ",") != "channel,amount" {
		t.Errorf("sent to the plugin: %v, want amount and channel only", det.sent)
	}
	if det.describe != 1 {
		t.Errorf("described %d times in one pass, want 1", det.describe)
	}
	if d := e.Degraded(); !strings.Contains(d, "country") {
		t.Errorf("degraded: %q", d)
	}
}

// TestEngineDataTypeThroughPluginHost: the check reads a real plugin's
// Describe through the plugin host: ks configured for a categorical
// feature is refused by the agent, with the agent's message.
func TestEngineDataTypeThroughPluginHost(t *testing.T) {
	ctx := context.Background()
	rg := newRig(t)
	models := Models{"fraud": {Features: map[string]FeatureConfig{"country": {Detector: "ks"}}}}
	e := rg.open(t, Config{ReferenceSize: 200, CurrentWindow: 200}, models)
	if err := rg.obs.Ingest(ctx, batch(rand.New(rand.NewPCG(7, 8)), 400, 0)); err != nil {
		t.Fatal(err)
	}
	evs, err := e.Evaluate(ctx, "", "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
	got := severities(evs[0])
	if want := `error: feature "country" is categorical, but detector "ks" (method ks) takes numeric data only`; !strings.HasPrefix(got["country"], want) {
		t.Errorf("country: %q, want %q...", got["country"], want)
	}
	if got["amount"] != "ok" {
		t.Errorf("amount: %q", got["amount"])
	}
}

// smallEngine opens an engine on a fresh file that evaluates from 10
// values a window (current windows of 100), with a fixed seed; it is
// closed when the test ends.
func smallEngine(t *testing.T, models Models, opts Options) *Engine {
	t.Helper()
	opts.Seed = 1
	e, err := Open(Config{Path: filepath.Join(t.TempDir(), "drift.db"), MinSamples: 10, CurrentWindow: 100}, models, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}
