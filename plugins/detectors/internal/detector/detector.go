// Package detector is the glue shared by Vigil's own detector plugins: it
// turns a list of methods into an sdk.Detector that checks every request
// (method, data type, samples, threshold, parameters) before a method runs,
// and decides "drifted" from the method's direction. It uses only the
// public SDK, as a third party's plugin would.
package detector

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/agent/version"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// ParamKind is the type of a method parameter.
type ParamKind int

// Parameter kinds.
const (
	Int ParamKind = iota
	Float
	Bool
)

// Param describes one method parameter. Numbers must lie in [Min, Max].
type Param struct {
	Name        string
	Description string
	Kind        ParamKind
	Default     any // int, float64 or bool, matching Kind
	Min, Max    float64
}

// Input is a checked request: samples of the method's data type, the
// effective threshold and every parameter (defaults filled in) as int,
// float64 or bool.
type Input struct {
	DataType             pb.DataType
	ReferenceNumeric     []float64
	CurrentNumeric       []float64
	ReferenceCategorical []string
	CurrentCategorical   []string
	Threshold            float64
	// ThresholdSet reports whether the caller chose the threshold.
	ThresholdSet bool
	Params       map[string]any
}

// Output is what a method computes.
type Output struct {
	Statistic float64
	// PValue is nil for methods without one.
	PValue  *float64
	Details map[string]any
}

// Method is one drift test offered by a plugin.
type Method struct {
	Name             string
	Description      string
	DataTypes        []pb.DataType
	HasPValue        bool
	DefaultThreshold float64
	Params           []Param
	Run              func(ctx context.Context, in Input) (Output, error)
}

// Direction is the method's drift direction: p-value below the threshold
// for tests with a p-value, statistic above it otherwise.
func (m Method) Direction() pb.Direction {
	if m.HasPValue {
		return pb.Direction_P_VALUE_BELOW
	}
	return pb.Direction_STATISTIC_ABOVE
}

// Detector serves a set of methods.
type Detector struct {
	methods []Method
}

// New returns a Detector offering methods.
func New(methods ...Method) *Detector { return &Detector{methods: methods} }

// Serve runs the plugin; call it from main.
func Serve(name string, methods ...Method) {
	sdk.ServeDetector(sdk.Info{Name: name, Version: version.Plugin()}, New(methods...))
}

// Describe lists the methods.
func (d *Detector) Describe(context.Context) (*pb.DescribeResponse, error) {
	out := &pb.DescribeResponse{}
	for _, m := range d.methods {
		mi := &pb.MethodInfo{
			Name: m.Name, Description: m.Description, DataTypes: m.DataTypes,
			HasPValue: m.HasPValue, DefaultThreshold: m.DefaultThreshold, Direction: m.Direction(),
		}
		for _, p := range m.Params {
			dv, err := structpb.NewValue(p.Default)
			if err != nil {
				return nil, sdk.Errorf(sdk.Internal, "parameter %s: %v", p.Name, err)
			}
			mi.Params = append(mi.Params, &pb.ParamInfo{Name: p.Name, Description: p.Description, DefaultValue: dv})
		}
		out.Methods = append(out.Methods, mi)
	}
	return out, nil
}

// Detect checks the request, runs the method and applies the threshold.
func (d *Detector) Detect(ctx context.Context, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	m, ok := d.method(req.Method)
	if !ok {
		var names []string
		for _, m := range d.methods {
			names = append(names, m.Name)
		}
		return nil, sdk.FieldErrorf("method", "unknown method %q (this plugin offers: %s)", req.Method, strings.Join(names, ", "))
	}
	in, err := check(m, req)
	if err != nil {
		return nil, err
	}
	out, err := m.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(out.Statistic) || (out.PValue != nil && math.IsNaN(*out.PValue)) {
		return nil, sdk.Errorf(sdk.Internal, "method %s produced NaN", m.Name)
	}
	if math.IsInf(out.Statistic, 0) {
		// Finite inputs near ±1.8e308 can overflow a distance.
		return nil, sdk.Errorf(sdk.InvalidRequest, "method %s overflowed: the values are too large (rescale the feature)", m.Name)
	}
	resp := &pb.DetectResponse{Method: m.Name, Statistic: out.Statistic, PValue: out.PValue, Threshold: in.Threshold, Direction: m.Direction()}
	if m.HasPValue {
		resp.Drifted = *out.PValue < in.Threshold
	} else {
		resp.Drifted = out.Statistic > in.Threshold
	}
	details := map[string]any{}
	for k, v := range out.Details {
		details[k] = v
	}
	details["n_reference"] = float64(len(req.ReferenceNumeric) + len(req.ReferenceCategorical))
	details["n_current"] = float64(len(req.CurrentNumeric) + len(req.CurrentCategorical))
	s, err := structpb.NewStruct(details)
	if err != nil {
		return nil, sdk.Errorf(sdk.Internal, "details: %v", err)
	}
	resp.Details = s
	return resp, nil
}

func (d *Detector) method(name string) (Method, bool) {
	for _, m := range d.methods {
		if m.Name == name {
			return m, true
		}
	}
	return Method{}, false
}

func dataTypeName(t pb.DataType) string { return strings.ToLower(t.String()) }

// check validates a request against the method.
func check(m Method, req *sdk.DetectRequest) (Input, error) {
	in := Input{DataType: req.DataType, Params: map[string]any{}}
	okType := false
	var names []string
	for _, t := range m.DataTypes {
		okType = okType || t == req.DataType
		names = append(names, dataTypeName(t))
	}
	if req.DataType == pb.DataType_DATA_TYPE_UNSPECIFIED {
		return in, sdk.FieldErrorf("data_type", "data type is not set; method %s takes %s data", m.Name, strings.Join(names, " or "))
	}
	if !okType {
		return in, sdk.FieldErrorf("data_type", "method %s takes %s data, not %s", m.Name, strings.Join(names, " or "), dataTypeName(req.DataType))
	}
	switch req.DataType {
	case pb.DataType_NUMERIC:
		if len(req.ReferenceCategorical)+len(req.CurrentCategorical) > 0 {
			return in, sdk.FieldErrorf("categorical", "numeric data type, but categorical values were sent")
		}
		if err := checkNumeric("reference", req.ReferenceNumeric); err != nil {
			return in, err
		}
		if err := checkNumeric("current", req.CurrentNumeric); err != nil {
			return in, err
		}
		in.ReferenceNumeric, in.CurrentNumeric = req.ReferenceNumeric, req.CurrentNumeric
	case pb.DataType_CATEGORICAL:
		if len(req.ReferenceNumeric)+len(req.CurrentNumeric) > 0 {
			return in, sdk.FieldErrorf("numeric", "categorical data type, but numeric values were sent")
		}
		if len(req.ReferenceCategorical) == 0 {
			return in, sdk.FieldErrorf("reference", "sample is empty")
		}
		if len(req.CurrentCategorical) == 0 {
			return in, sdk.FieldErrorf("current", "sample is empty")
		}
		in.ReferenceCategorical, in.CurrentCategorical = req.ReferenceCategorical, req.CurrentCategorical
	}

	in.Threshold = m.DefaultThreshold
	if req.Threshold != nil {
		t := *req.Threshold
		switch {
		case math.IsNaN(t) || math.IsInf(t, 0):
			return in, sdk.FieldErrorf("threshold", "threshold is %v; it must be a finite number", t)
		case m.HasPValue && (t <= 0 || t >= 1):
			return in, sdk.FieldErrorf("threshold", "threshold %v is a p-value level and must lie strictly between 0 and 1", t)
		case !m.HasPValue && t < 0:
			return in, sdk.FieldErrorf("threshold", "threshold %v must not be negative", t)
		}
		in.Threshold, in.ThresholdSet = t, true
	}

	known := map[string]Param{}
	var pnames []string
	for _, p := range m.Params {
		known[p.Name] = p
		pnames = append(pnames, p.Name)
		in.Params[p.Name] = p.Default
	}
	keys := make([]string, 0, len(req.Params))
	for k := range req.Params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, ok := known[k]
		field := "params." + k
		if !ok {
			takes := "no parameters"
			if len(pnames) > 0 {
				takes = "parameters: " + strings.Join(pnames, ", ")
			}
			return in, sdk.FieldErrorf(field, "unknown parameter for method %s (it takes %s)", m.Name, takes)
		}
		v, err := convert(p, req.Params[k])
		if err != nil {
			return in, sdk.FieldErrorf(field, "%v", err)
		}
		in.Params[k] = v
	}
	return in, nil
}

func convert(p Param, v any) (any, error) {
	switch p.Kind {
	case Bool:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("must be true or false, not %v", v)
		}
		return b, nil
	case Int, Float:
		f, ok := v.(float64)
		if !ok {
			return nil, fmt.Errorf("must be a number, not %v", v)
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("must be a finite number, not %v", f)
		}
		if f < p.Min || f > p.Max {
			return nil, fmt.Errorf("%v is out of range [%v, %v]", f, p.Min, p.Max)
		}
		if p.Kind == Int {
			if f != math.Trunc(f) {
				return nil, fmt.Errorf("must be a whole number, not %v", f)
			}
			return int(f), nil
		}
		return f, nil
	}
	return nil, fmt.Errorf("unsupported parameter kind")
}

func checkNumeric(which string, xs []float64) error {
	if len(xs) == 0 {
		return sdk.FieldErrorf(which, "sample is empty")
	}
	for i, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return sdk.FieldErrorf(fmt.Sprintf("%s[%d]", which, i), "value is %v; only finite numbers are accepted", x)
		}
	}
	return nil
}

// Numeric and Categorical are the data-type lists methods use.
var (
	Numeric     = []pb.DataType{pb.DataType_NUMERIC}
	Categorical = []pb.DataType{pb.DataType_CATEGORICAL}
	Both        = []pb.DataType{pb.DataType_NUMERIC, pb.DataType_CATEGORICAL}
)

// Ptr returns a pointer to v, for Output.PValue.
func Ptr(v float64) *float64 { return &v }
