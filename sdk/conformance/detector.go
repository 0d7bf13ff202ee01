package conformance

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// LargeSample is how many values the large-sample check sends in each of
// the reference and current samples: more than one chunk, so a plugin that
// does not reassemble chunks fails.
const LargeSample = 100_000

// Samples the detector checks use. They are deterministic, so a failure
// can be reproduced.
func normalSample(n int, mean float64, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + rng.NormFloat64()
	}
	return out
}

// categoricalSample draws n values from categories a, b, c, d with the
// given weights.
func categoricalSample(n int, weights [4]float64, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 0xca7))
	cats := [4]string{"a", "b", "c", "d"}
	out := make([]string, n)
	for i := range out {
		x := rng.Float64()
		j := 0
		for j < 3 && x >= weights[j] {
			x -= weights[j]
			j++
		}
		out[i] = cats[j]
	}
	return out
}

// request builds a Detect request for method on data type dt; shifted asks
// for a clearly different current sample.
func request(method string, dt pb.DataType, n int, shifted bool) *sdk.DetectRequest {
	req := &sdk.DetectRequest{Method: method, DataType: dt, Feature: "conformance"}
	if dt == pb.DataType_CATEGORICAL {
		ref := [4]float64{0.7, 0.1, 0.1, 0.1}
		req.ReferenceCategorical = categoricalSample(n, ref, 1)
		req.CurrentCategorical = slices.Clone(req.ReferenceCategorical)
		if shifted {
			req.CurrentCategorical = categoricalSample(n, [4]float64{0.1, 0.1, 0.1, 0.7}, 2)
		}
		return req
	}
	req.ReferenceNumeric = normalSample(n, 0, 1)
	req.CurrentNumeric = slices.Clone(req.ReferenceNumeric)
	if shifted {
		req.CurrentNumeric = normalSample(n, 5, 2)
	}
	return req
}

func (r *runner) detector(d sdk.DetectorClient) {
	var methods []*pb.MethodInfo
	r.check("detector/describe", func() error {
		c, cancel := r.call()
		defer cancel()
		resp, err := d.Describe(c)
		if err != nil {
			return fmt.Errorf("the Describe call failed: %v", err)
		}
		if len(resp.GetMethods()) == 0 {
			return errors.New("the Describe call lists no methods")
		}
		seen := map[string]bool{}
		for i, m := range resp.GetMethods() {
			where := fmt.Sprintf("methods[%d] (%q)", i, m.GetName())
			switch {
			case m.GetName() == "":
				return fmt.Errorf("methods[%d] has no name", i)
			case seen[m.GetName()]:
				return fmt.Errorf("%s is listed twice", where)
			case len(m.GetDataTypes()) == 0 || slices.Contains(m.GetDataTypes(), pb.DataType_DATA_TYPE_UNSPECIFIED):
				return fmt.Errorf("%s must list the data types it takes (NUMERIC, CATEGORICAL)", where)
			case m.GetDirection() == pb.Direction_DIRECTION_UNSPECIFIED:
				return fmt.Errorf("%s has no direction (P_VALUE_BELOW or STATISTIC_ABOVE)", where)
			case m.GetDirection() == pb.Direction_P_VALUE_BELOW && !m.GetHasPValue():
				return fmt.Errorf("%s is drifted when the p-value is below the threshold but says it has no p-value", where)
			case !finite(m.GetDefaultThreshold()) || m.GetDefaultThreshold() < 0:
				return fmt.Errorf("%s has default threshold %v; it must be a finite number, not negative", where, m.GetDefaultThreshold())
			case m.GetDirection() == pb.Direction_P_VALUE_BELOW && (m.GetDefaultThreshold() <= 0 || m.GetDefaultThreshold() >= 1):
				return fmt.Errorf("%s has p-value threshold %v; it must lie between 0 and 1", where, m.GetDefaultThreshold())
			}
			seen[m.GetName()] = true
		}
		methods = resp.GetMethods()
		return nil
	})
	if len(methods) == 0 {
		return
	}

	// Every method on every data type it takes: identical samples are not
	// drifted, clearly shifted ones are.
	for _, m := range methods {
		for _, dt := range m.GetDataTypes() {
			suffix := fmt.Sprintf("%s/%s", m.GetName(), dtName(dt))
			r.check("detector/identical/"+suffix, func() error {
				resp, err := r.detect(d, request(m.GetName(), dt, 2000, false), m)
				if err != nil {
					return err
				}
				if resp.GetDrifted() {
					return fmt.Errorf("identical samples reported as drifted (statistic %v, p-value %v, threshold %v)", resp.GetStatistic(), pval(resp), resp.GetThreshold())
				}
				return nil
			})
			r.check("detector/shifted/"+suffix, func() error {
				resp, err := r.detect(d, request(m.GetName(), dt, 2000, true), m)
				if err != nil {
					return err
				}
				if !resp.GetDrifted() {
					what := "a 5-standard-deviation shift of the mean"
					if dt == pb.DataType_CATEGORICAL {
						what = "category frequencies 70/10/10/10% against 10/10/10/70%"
					}
					return fmt.Errorf("%s not reported as drifted (statistic %v, p-value %v, threshold %v)", what, resp.GetStatistic(), pval(resp), resp.GetThreshold())
				}
				return nil
			})
			r.check("detector/empty-sample/"+suffix, func() error {
				req := request(m.GetName(), dt, 100, false)
				req.ReferenceNumeric, req.ReferenceCategorical = nil, nil
				c, cancel := r.call()
				defer cancel()
				_, err := d.Detect(c, req)
				return classed(err, "Detect with an empty reference sample", true, sdk.InvalidRequest)
			})
			if dt == pb.DataType_NUMERIC {
				for name, bad := range map[string]float64{"nan": math.NaN(), "inf": math.Inf(1)} {
					r.check(fmt.Sprintf("detector/%s-value/%s", name, suffix), func() error {
						req := request(m.GetName(), dt, 100, false)
						req.CurrentNumeric[17] = bad
						c, cancel := r.call()
						defer cancel()
						_, err := d.Detect(c, req)
						return classed(err, fmt.Sprintf("Detect with %v in the current sample", bad), true, sdk.InvalidRequest)
					})
				}
			}
		}
	}

	r.check("detector/unknown-method", func() error {
		m := methods[0]
		req := request("vigil-conformance-no-such-method", m.GetDataTypes()[0], 100, false)
		c, cancel := r.call()
		defer cancel()
		_, err := d.Detect(c, req)
		return classed(err, "Detect with an unknown method", true, sdk.InvalidRequest)
	})

	r.check("detector/large-sample", func() error {
		m := methods[0]
		dt := m.GetDataTypes()[0]
		if slices.Contains(m.GetDataTypes(), pb.DataType_NUMERIC) {
			dt = pb.DataType_NUMERIC
		}
		resp, err := r.detect(d, request(m.GetName(), dt, LargeSample, true), m)
		if err != nil {
			return fmt.Errorf("with %d values per sample (%d chunks each): %v", LargeSample, (LargeSample+sdk.ChunkValues-1)/sdk.ChunkValues, err)
		}
		if !resp.GetDrifted() {
			return fmt.Errorf("with %d values per sample a clear shift was not reported as drifted: was every chunk read?", LargeSample)
		}
		return nil
	})
}

// detect runs one valid Detect and checks the answer is well formed.
func (r *runner) detect(d sdk.DetectorClient, req *sdk.DetectRequest, m *pb.MethodInfo) (*pb.DetectResponse, error) {
	c, cancel := r.call()
	defer cancel()
	resp, err := d.Detect(c, req)
	if err != nil {
		return nil, fmt.Errorf("the Detect call failed: %v", err)
	}
	if !finite(resp.GetStatistic()) {
		return nil, fmt.Errorf("the statistic is %v; it must be a finite number", resp.GetStatistic())
	}
	if !finite(resp.GetThreshold()) {
		return nil, fmt.Errorf("the threshold is %v; it must be a finite number", resp.GetThreshold())
	}
	if m.GetHasPValue() {
		if resp.PValue == nil {
			return nil, fmt.Errorf("method %q says it yields a p-value but the response has none", m.GetName())
		}
		if p := resp.GetPValue(); !(p >= 0 && p <= 1) {
			return nil, fmt.Errorf("the p-value is %v; it must lie in [0, 1]", p)
		}
	}
	return resp, nil
}

func pval(r *pb.DetectResponse) any {
	if r.PValue == nil {
		return "none"
	}
	return r.GetPValue()
}

func dtName(dt pb.DataType) string {
	switch dt {
	case pb.DataType_NUMERIC:
		return "numeric"
	case pb.DataType_CATEGORICAL:
		return "categorical"
	}
	return dt.String()
}
