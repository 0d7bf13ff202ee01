// Package drift evaluates drift per model version inside the agent. It
// keeps, per (model, version, feature), a reference window and a current
// window, hands both to a detector plugin (through agent/pluginhost, the
// same binaries `vigil drift compare` runs), corrects the p-values across
// a version's features for multiple testing, and gives each feature a
// severity (ok, warning, critical, insufficient_data, error) and each
// version a verdict.
//
// # Guarantees
//
// Durable references: a pinned reference (automatic, from a stored time
// range, or uploaded) is committed and fsynced in the engine's own bbolt
// file (store.KV) before it is used, so a restart keeps it; Refill puts
// the recent stored observations back into the current windows at start.
//
// Bounded: a count window is a ring of drift.current_window values; a time
// window keeps at most 8 x current_window values (slot reservoirs by
// Algorithm R, sampled in proportion to each slot's traffic, see
// timeWindow); references hold at most max_reference_values per feature;
// the history is pruned to history_retention and history_max_entries per
// version; versions that observe forgets and that have no reference are
// dropped.
//
// Isolated failures: a detector that is missing, crashes, times out or
// rejects its input gives its feature an error; the other features are
// evaluated, the evaluation is stored, and Degraded says what went wrong.
//
// # For consumers (alerts, fleet)
//
// Latest returns the latest Evaluation of every (model, version), with a
// FeatureResult per feature and the reference window's accuracy (labels
// inline or joined later by request ID); Drifting counts the critical
// features. The
// Engine is safe for concurrent use.
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
