package drift

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/internal/testutil"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestBuildRequestCategoryText: one string makes a feature categorical,
// and its numbers become the text docs/drift.md documents (Go's shortest
// round-trip form), so 1 = "1" but 1000000 is "1e+06", not "1000000".
func TestBuildRequestCategoryText(t *testing.T) {
	p := &featurePlan{
		name: "zip",
		ref:  []observe.Value{observe.Num(1), observe.Num(0.25), observe.Num(1000000), observe.Num(1.5e-7)},
		cur:  []observe.Value{observe.Str("1"), observe.Str("1000000")},
	}
	req := buildRequest(p)
	if req.DataType != pb.DataType_CATEGORICAL {
		t.Fatalf("data type %v; want categorical", req.DataType)
	}
	if want := []string{"1", "0.25", "1e+06", "1.5e-07"}; !slices.Equal(req.ReferenceCategorical, want) {
		t.Errorf("reference categories %q; want %q", req.ReferenceCategorical, want)
	}
	if want := []string{"1", "1000000"}; !slices.Equal(req.CurrentCategorical, want) {
		t.Errorf("current categories %q; want %q", req.CurrentCategorical, want)
	}
}

// TestEngineWarnsOfStringsInNumericFeature: a feature of numbers with a
// "missing" marker is categorical (and would be tested as categories);
// the engine logs that once per feature, naming it, and says nothing of a
// feature that is categories throughout.
func TestEngineWarnsOfStringsInNumericFeature(t *testing.T) {
	ctx := context.Background()
	var logBuf testutil.SyncBuffer
	det := &lenientDetectors{}
	models := Models{"fraud": {Features: map[string]FeatureConfig{
		"amount":  {Detector: "mean-shift", Method: "any"},
		"country": {Detector: "mean-shift", Method: "any"},
	}}}
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	e := smallEngine(t, models, Options{Detectors: det, Logger: log})
	sample := Sample{Features: map[string][]observe.Value{}}
	var obs []observe.Observation
	for i := range 20 {
		country := observe.Str([]string{"DE", "FR"}[i%2])
		sample.Features["amount"] = append(sample.Features["amount"], observe.Num(float64(i)))
		sample.Features["country"] = append(sample.Features["country"], country)
		amount := observe.Num(float64(i) + 5)
		if i == 3 {
			amount = observe.Str("missing")
		}
		obs = append(obs, observe.Observation{Model: "fraud", Version: "v1", UnixMs: time.Now().UnixMilli(), Features: []observe.Feature{
			{Name: "amount", Value: amount}, {Name: "country", Value: country}}})
	}
	if _, err := e.PinSample(ctx, "fraud", "v1", sample); err != nil {
		t.Fatal(err)
	}
	e.Add(obs)
	for range 2 {
		evs, err := e.Evaluate(ctx, "", "")
		if err != nil {
			t.Fatal(err)
		}
		// Every evaluation's result carries the warning, for those who
		// read the API rather than the log.
		for _, f := range evs[0].Features {
			if mixed := f.Feature == "amount"; mixed != (f.Warning != "") ||
				mixed && !strings.Contains(f.Warning, `strings such as "missing", though 39 of its 40 values are numbers`) {
				t.Errorf("feature %s: warning %q", f.Feature, f.Warning)
			}
		}
	}
	out := logBuf.String()
	if n := strings.Count(out, "categorical though most of its values are numbers"); n != 1 {
		t.Fatalf("warned %d times, want once; log:\n%s", n, out)
	}
	for _, want := range []string{"feature=amount", "numbers=39", "values=40", "first_string=missing", "model=fraud", "version=v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "feature=country") {
		t.Errorf("warned of a categorical feature:\n%s", out)
	}
}
