package drift

import (
	"context"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// refusingDetectors refuses every Detect call with a field error, as a
// plugin refuses a parameter its method does not take.
type refusingDetectors struct{}

func (refusingDetectors) Describe(context.Context, string) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Methods: []*pb.MethodInfo{
		{Name: "shift", DataTypes: []pb.DataType{pb.DataType_NUMERIC}, DefaultThreshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE},
	}}, nil
}

func (refusingDetectors) Detect(context.Context, string, *sdk.DetectRequest) (*pb.DetectResponse, error) {
	return nil, sdk.FieldErrorf("params.scael", "unknown parameter for method shift (it takes parameters: scale)")
}

// TestEngineErrorNamesPluginField: a detector's field error reaches the
// feature's result with the field it names (here the mistyped parameter,
// the key to fix under models.<model>.features.<feature>.params).
func TestEngineErrorNamesPluginField(t *testing.T) {
	ctx := context.Background()
	models := Models{"fraud": {Features: map[string]FeatureConfig{
		"amount": {Detector: "mean-shift", Method: "shift", Params: map[string]any{"scael": 2.0}},
	}}}
	e := smallEngine(t, models, Options{Detectors: refusingDetectors{}})
	sample := Sample{Features: map[string][]observe.Value{}}
	var obs []observe.Observation
	for i := range 20 {
		v := observe.Num(float64(i))
		sample.Features["amount"] = append(sample.Features["amount"], v)
		obs = append(obs, observe.Observation{Model: "fraud", Version: "v1", UnixMs: time.Now().UnixMilli(),
			Features: []observe.Feature{{Name: "amount", Value: v}}})
	}
	if _, err := e.PinSample(ctx, "fraud", "v1", sample); err != nil {
		t.Fatal(err)
	}
	e.Add(obs)
	evs, err := e.Evaluate(ctx, "", "")
	if err != nil || len(evs) != 1 {
		t.Fatalf("%v %+v", err, evs)
	}
	want := "detector mean-shift: invalid_request (params.scael): unknown parameter for method shift (it takes parameters: scale)"
	if got := evs[0].Features[0].Error; got != want {
		t.Errorf("error:\n got %q\nwant %q", got, want)
	}
}
