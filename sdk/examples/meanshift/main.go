// Command meanshift is the smallest complete detector plugin: the
// absolute difference of the sample means in units of the reference's
// standard deviation. docs/plugins.md walks through it, and the SDK's
// conformance tests run the kit against it.
package main

import (
	"context"
	"math"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const defaultThreshold = 0.5

type meanShift struct{}

func (meanShift) Describe(ctx context.Context) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Methods: []*pb.MethodInfo{{
		Name:             "mean_shift",
		DataTypes:        []pb.DataType{pb.DataType_NUMERIC},
		DefaultThreshold: defaultThreshold,
		Direction:        pb.Direction_STATISTIC_ABOVE,
	}}}, nil
}

func (meanShift) Detect(ctx context.Context, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	if req.Method != "mean_shift" {
		return nil, sdk.FieldErrorf("method", "unknown method %q", req.Method)
	}
	if req.DataType != pb.DataType_NUMERIC {
		return nil, sdk.FieldErrorf("data_type", "mean_shift takes numeric data")
	}
	mr, sd, err := meanStd("reference", req.ReferenceNumeric)
	if err != nil {
		return nil, err
	}
	mc, _, err := meanStd("current", req.CurrentNumeric)
	if err != nil {
		return nil, err
	}
	if sd == 0 {
		sd = 1 // a constant reference: report the raw shift
	}
	stat := math.Abs(mc-mr) / sd
	thr := defaultThreshold
	if req.Threshold != nil {
		thr = *req.Threshold
	}
	return &pb.DetectResponse{
		Method:    req.Method,
		Statistic: stat,
		Threshold: thr,
		Direction: pb.Direction_STATISTIC_ABOVE,
		Drifted:   stat > thr,
	}, nil
}

// meanStd returns the mean and population standard deviation of xs, or an
// invalid-request error naming field when xs is empty or not finite.
func meanStd(field string, xs []float64) (mean, std float64, err error) {
	if len(xs) == 0 {
		return 0, 0, sdk.FieldErrorf(field, "is empty")
	}
	for i, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, 0, sdk.FieldErrorf(field, "value %d is %v; values must be finite", i, x)
		}
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		std += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(std / float64(len(xs))), nil
}

func main() {
	sdk.ServeDetector(sdk.Info{Name: "mean-shift", Version: "1.0.0"}, meanShift{})
}
