package detector

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// fixed is a method whose statistic (and p-value) the test chooses.
func fixed(hasP bool, value float64) Method {
	return Method{
		Name: "fixed", DataTypes: Both, HasPValue: hasP, DefaultThreshold: 0.5,
		Params: []Param{{Name: "n", Kind: Int, Default: 3, Min: 1, Max: 10}, {Name: "on", Kind: Bool, Default: true}},
		Run: func(_ context.Context, in Input) (Output, error) {
			if in.Params["n"].(int) < 1 || in.Params["on"] == nil {
				return Output{}, errors.New("parameters not filled in")
			}
			if hasP {
				return Output{Statistic: 1, PValue: Ptr(value)}, nil
			}
			return Output{Statistic: value}, nil
		},
	}
}

func req(thr *float64) *sdk.DetectRequest {
	return &sdk.DetectRequest{Method: "fixed", DataType: pb.DataType_NUMERIC, Threshold: thr, ReferenceNumeric: []float64{1}, CurrentNumeric: []float64{2}}
}

// TestDriftedAtTheBoundary: "drifted" is strict in both directions, so a
// value equal to the threshold is not drift.
func TestDriftedAtTheBoundary(t *testing.T) {
	for _, tc := range []struct {
		hasP    bool
		value   float64
		drifted bool
	}{
		{true, 0.5, false}, {true, 0.4999, true}, {true, 0.9, false},
		{false, 0.5, false}, {false, 0.5001, true}, {false, 0.1, false},
	} {
		resp, err := New(fixed(tc.hasP, tc.value)).Detect(context.Background(), req(nil))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetDrifted() != tc.drifted || resp.GetThreshold() != 0.5 {
			t.Errorf("hasP=%v value=%v: drifted %v threshold %v", tc.hasP, tc.value, resp.GetDrifted(), resp.GetThreshold())
		}
		wantDir := pb.Direction_STATISTIC_ABOVE
		if tc.hasP {
			wantDir = pb.Direction_P_VALUE_BELOW
		}
		if resp.GetDirection() != wantDir || (resp.PValue != nil) != tc.hasP {
			t.Errorf("hasP=%v: direction %v p %v", tc.hasP, resp.GetDirection(), resp.PValue)
		}
	}
	thr := 0.95
	resp, _ := New(fixed(true, 0.9)).Detect(context.Background(), req(&thr))
	if !resp.GetDrifted() || resp.GetThreshold() != 0.95 {
		t.Errorf("threshold override: %v", resp)
	}
}

func TestDescribeDefaults(t *testing.T) {
	d, err := New(fixed(true, 0)).Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := d.GetMethods()[0]
	if m.GetParams()[0].GetDefaultValue().GetNumberValue() != 3 || !m.GetParams()[1].GetDefaultValue().GetBoolValue() || len(m.GetDataTypes()) != 2 {
		t.Errorf("describe: %v", m)
	}
}

func TestParamConversion(t *testing.T) {
	for _, tc := range []struct {
		params map[string]any
		field  string
	}{
		{map[string]any{"n": 2.0, "on": false}, ""},
		{map[string]any{"n": 11.0}, "params.n"},
		{map[string]any{"n": 2.5}, "params.n"},
		{map[string]any{"n": "2"}, "params.n"},
		{map[string]any{"on": "yes"}, "params.on"},
		{map[string]any{"x": 1.0}, "params.x"},
	} {
		r := req(nil)
		r.Params = tc.params
		_, err := New(fixed(false, 0)).Detect(context.Background(), r)
		var se *sdk.Error
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%v: %v", tc.params, err)
		case tc.field != "" && (!errors.As(err, &se) || se.Field != tc.field || se.Class != sdk.InvalidRequest):
			t.Errorf("%v: err %v, want field %s", tc.params, err, tc.field)
		}
	}
}

func TestOverflowIsAnError(t *testing.T) {
	_, err := New(fixed(false, math.Inf(1))).Detect(context.Background(), req(nil))
	var se *sdk.Error
	if !errors.As(err, &se) || se.Class != sdk.InvalidRequest {
		t.Errorf("err = %v", err)
	}
}
