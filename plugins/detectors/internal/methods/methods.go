// Package methods defines the drift tests of Vigil's detector plugins on
// top of package stats; each plugin's main serves one of them.
package methods

import (
	"context"
	"math"

	"github.com/vigilml/vigil/plugins/detectors/internal/detector"
	"github.com/vigilml/vigil/plugins/detectors/internal/stats"
	"github.com/vigilml/vigil/sdk"
)

// Defaults, documented in each plugin's README.
const (
	KSThreshold            = 0.05
	PSIThreshold           = 0.2
	PSIWarning             = 0.1
	PSIBins                = 10
	PSIEpsilon             = 1e-4
	ChiSquareThreshold     = 0.05
	ChiSquareMinExpected   = 5.0
	WassersteinThreshold   = 0.1
	JensenShannonThreshold = 0.1
	JensenShannonBins      = 10
)

// KS is the two-sample Kolmogorov-Smirnov test.
func KS() detector.Method {
	return detector.Method{
		Name:             "ks",
		Description:      "two-sample Kolmogorov-Smirnov test, two-sided; exact p-value when both samples have at most 10,000 values, asymptotic otherwise (as scipy.stats.ks_2samp, method=auto)",
		DataTypes:        detector.Numeric,
		HasPValue:        true,
		DefaultThreshold: KSThreshold,
		Run: func(_ context.Context, in detector.Input) (detector.Output, error) {
			r := stats.KS2Samp(in.ReferenceNumeric, in.CurrentNumeric)
			mode := "asymptotic"
			if r.Exact {
				mode = "exact"
			}
			return detector.Output{Statistic: r.D, PValue: detector.Ptr(r.PValue), Details: map[string]any{"mode": mode}}, nil
		},
	}
}

var binsParam = func(def int) detector.Param {
	return detector.Param{Name: "bins", Description: "number of equal-mass bins cut at the reference's quantiles (numeric data; repeated edges are merged)", Kind: detector.Int, Default: def, Min: 2, Max: 1000}
}

// binned returns the two count vectors a binned method compares: the
// reference-quantile bins for numeric data, the categories otherwise.
func binned(in detector.Input) (ref, cur []float64, details map[string]any, err error) {
	if in.ReferenceNumeric != nil {
		edges := stats.QuantileEdges(in.ReferenceNumeric, in.Params["bins"].(int))
		for _, e := range edges {
			if math.IsNaN(e) || math.IsInf(e, 0) {
				return nil, nil, nil, sdk.FieldErrorf("reference", "values too large (near ±1.8e308) to interpolate bin edges; rescale the feature")
			}
		}
		ref, cur = stats.BinCounts(in.ReferenceNumeric, edges), stats.BinCounts(in.CurrentNumeric, edges)
		return ref, cur, map[string]any{"edges": toAny(edges), "reference_counts": toAny(ref), "current_counts": toAny(cur)}, nil
	}
	names, ref, cur := stats.CategoryCounts(in.ReferenceCategorical, in.CurrentCategorical)
	return ref, cur, map[string]any{"categories": float64(len(names))}, nil
}

// PSI is the population stability index.
func PSI() detector.Method {
	return detector.Method{
		Name:             "psi",
		Description:      "population stability index over reference-quantile bins (numeric) or categories; 0.1 is the usual warning level, 0.2 critical",
		DataTypes:        detector.Both,
		DefaultThreshold: PSIThreshold,
		Params: []detector.Param{
			binsParam(PSIBins),
			{Name: "epsilon", Description: "share used in place of 0 for an empty bin", Kind: detector.Float, Default: PSIEpsilon, Min: 1e-12, Max: 0.1},
		},
		Run: func(_ context.Context, in detector.Input) (detector.Output, error) {
			ref, cur, details, err := binned(in)
			if err != nil {
				return detector.Output{}, err
			}
			details["warning_threshold"] = PSIWarning
			return detector.Output{Statistic: stats.PSI(ref, cur, in.Params["epsilon"].(float64)), Details: details}, nil
		},
	}
}

// ChiSquare is the chi-square test of homogeneity for categorical data.
func ChiSquare() detector.Method {
	return detector.Method{
		Name:             "chisquare",
		Description:      "chi-square test on the 2 x k table of category counts (scipy.stats.chi2_contingency defaults: Yates' correction when the table has one degree of freedom); categories with an expected count below min_expected are pooled",
		DataTypes:        detector.Categorical,
		HasPValue:        true,
		DefaultThreshold: ChiSquareThreshold,
		Params: []detector.Param{
			{Name: "min_expected", Description: "pool categories whose smaller expected count is below this into one \"other\" category (0 pools nothing)", Kind: detector.Float, Default: ChiSquareMinExpected, Min: 0, Max: 1e6},
		},
		Run: func(_ context.Context, in detector.Input) (detector.Output, error) {
			_, ref, cur := stats.CategoryCounts(in.ReferenceCategorical, in.CurrentCategorical)
			mr, mc, groups := stats.MergeSparse(ref, cur, in.Params["min_expected"].(float64))
			res := stats.ChiSquare2xK(mr, mc)
			return detector.Output{Statistic: res.Statistic, PValue: detector.Ptr(res.PValue), Details: map[string]any{
				"dof": float64(res.DOF), "yates": res.Yates, "categories": float64(len(ref)), "columns_tested": float64(len(groups)),
			}}, nil
		},
	}
}

// Wasserstein is the first Wasserstein (earth mover's) distance.
func Wasserstein() detector.Method {
	return detector.Method{
		Name:             "wasserstein",
		Description:      "Wasserstein-1 distance between the empirical distributions (scipy.stats.wasserstein_distance), divided by the reference's standard deviation (ddof 0) unless normalize is false",
		DataTypes:        detector.Numeric,
		DefaultThreshold: WassersteinThreshold,
		Params: []detector.Param{
			{Name: "normalize", Description: "divide by the reference's population standard deviation (a constant reference divides by 1)", Kind: detector.Bool, Default: true},
		},
		Run: func(_ context.Context, in detector.Input) (detector.Output, error) {
			norm := in.Params["normalize"].(bool)
			if !norm && !in.ThresholdSet {
				return detector.Output{}, sdk.FieldErrorf("threshold", "with normalize=false the distance is in the feature's own units; set a threshold")
			}
			raw := stats.Wasserstein1(in.ReferenceNumeric, in.CurrentNumeric)
			_, sd := stats.MeanStd(in.ReferenceNumeric)
			if math.IsNaN(sd) || math.IsInf(sd, 0) || math.IsInf(raw, 0) {
				return detector.Output{}, sdk.FieldErrorf("reference", "values too large (near ±1.8e308) for the distance or the standard deviation; rescale the feature")
			}
			details := map[string]any{"raw": raw, "reference_std": sd}
			stat := raw
			if norm {
				// A constant reference has no spread to scale by: report
				// the raw distance (normalizer 1).
				normalizer := 1.0
				if sd > 0 {
					normalizer = sd
				}
				stat = raw / normalizer
				details["normalizer"] = normalizer
			}
			return detector.Output{Statistic: stat, Details: details}, nil
		},
	}
}

// JensenShannon is the Jensen-Shannon distance in bits.
func JensenShannon() detector.Method {
	return detector.Method{
		Name:             "jensenshannon",
		Description:      "Jensen-Shannon distance, base 2 (in [0, 1]), between category frequencies or reference-quantile bin frequencies (scipy.spatial.distance.jensenshannon)",
		DataTypes:        detector.Both,
		DefaultThreshold: JensenShannonThreshold,
		Params:           []detector.Param{binsParam(JensenShannonBins)},
		Run: func(_ context.Context, in detector.Input) (detector.Output, error) {
			ref, cur, details, err := binned(in)
			if err != nil {
				return detector.Output{}, err
			}
			return detector.Output{Statistic: stats.JensenShannon(ref, cur), Details: details}, nil
		},
	}
}

func toAny(xs []float64) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}
