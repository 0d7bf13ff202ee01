// Package drift will evaluate drift per model inside the agent: reference
// and current windows per (model, version, feature), the detector plugins
// called through agent/pluginhost, and a model-level verdict. What is here
// so far are its pure parts, shared with `vigil drift compare`: the
// automatic method choice and the multiple-testing corrections. It is not
// wired into the agent yet.
package drift

import (
	"fmt"
	"math"
	"sort"
)

// AutoKSMaxN is the largest sample size for which the automatic choice
// takes KS for a numeric feature: the size up to which KS's p-value is
// exact. Beyond it KS flags differences too small to matter, so PSI
// (with its 0.1/0.2 convention) is used instead.
const AutoKSMaxN = 10000

// AutoMethod is the detector method chosen when none is configured:
// categorical features get "chisquare"; numeric features "ks" when both
// samples have at most AutoKSMaxN values, else "psi".
func AutoMethod(categorical bool, nReference, nCurrent int) string {
	if categorical {
		return "chisquare"
	}
	if nReference <= AutoKSMaxN && nCurrent <= AutoKSMaxN {
		return "ks"
	}
	return "psi"
}

// Correction is a multiple-testing correction across the p-value tests of
// one model's features.
type Correction string

// The corrections.
const (
	// Bonferroni controls the family-wise error rate: a test rejects when
	// p < alpha/m; adjusted p = min(1, m*p). The default.
	Bonferroni Correction = "bonferroni"
	// BenjaminiHochberg controls the false discovery rate: with the
	// p-values sorted, p_(1) <= ... <= p_(m), the tests ranked 1..k reject,
	// k the largest rank with p_(k) <= k*alpha/m; adjusted
	// p_(i) = min over j >= i of min(1, m*p_(j)/j).
	BenjaminiHochberg Correction = "benjamini-hochberg"
	// None applies each test's own level.
	None Correction = "none"
)

// ParseCorrection accepts the config spellings of a correction.
func ParseCorrection(s string) (Correction, error) {
	switch s {
	case "bonferroni", "":
		return Bonferroni, nil
	case "benjamini-hochberg", "bh", "fdr":
		return BenjaminiHochberg, nil
	case "none":
		return None, nil
	}
	return "", fmt.Errorf("unknown correction %q (want bonferroni, benjamini-hochberg or none)", s)
}

// Adjust returns the adjusted p-values, in the input order, and which
// tests reject at level alpha. p-values must lie in [0, 1].
func Adjust(c Correction, pvalues []float64, alpha float64) (adjusted []float64, reject []bool) {
	m := len(pvalues)
	adjusted = make([]float64, m)
	reject = make([]bool, m)
	switch c {
	case None:
		copy(adjusted, pvalues)
		for i, p := range pvalues {
			reject[i] = p < alpha
		}
	case Bonferroni:
		for i, p := range pvalues {
			adjusted[i] = math.Min(1, float64(m)*p)
			reject[i] = p < alpha/float64(m)
		}
	case BenjaminiHochberg:
		order := make([]int, m)
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return pvalues[order[a]] < pvalues[order[b]] })
		k := 0
		for rank := 1; rank <= m; rank++ {
			if pvalues[order[rank-1]] <= float64(rank)*alpha/float64(m) {
				k = rank
			}
		}
		running := 1.0
		for rank := m; rank >= 1; rank-- {
			i := order[rank-1]
			scaled := pvalues[i] // rank m: m*p/m, without the rounding
			if rank < m {
				scaled = float64(m) * pvalues[i] / float64(rank)
			}
			running = math.Min(running, scaled)
			adjusted[i] = running
			reject[i] = rank <= k
		}
	default:
		panic("drift: unknown correction " + string(c))
	}
	return adjusted, reject
}
