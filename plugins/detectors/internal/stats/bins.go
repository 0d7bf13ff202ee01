package stats

import (
	"math"
	"slices"
	"sort"
)

// Quantile is numpy.quantile(sorted, q) with the default "linear" method:
// the value at position q*(n-1), interpolated between its neighbours.
// sorted must be sorted ascending and non-empty.
func Quantile(sorted []float64, q float64) float64 {
	n := len(sorted)
	pos := q * float64(n-1)
	lo := int(math.Floor(pos))
	if lo >= n-1 {
		return sorted[n-1]
	}
	frac := pos - float64(lo)
	a, b := sorted[lo], sorted[lo+1]
	// numpy's _lerp: a + (b-a)*t, computed from the nearer end.
	diff := b - a
	if frac >= 0.5 {
		return b - diff*(1-frac)
	}
	return a + diff*frac
}

// QuantileEdges returns the inner bin edges for bins equal-mass bins of
// the reference: its quantiles at 1/bins, ..., (bins-1)/bins, with
// repeated edges (from ties in the reference) kept once. The bins are
// (-inf, e1], (e1, e2], ..., (e_last, +inf), so there are
// len(edges)+1 bins, at least 2.
//
// When the first edge is the reference's minimum (ties at the minimum: a
// constant reference, or one with a point mass at its lowest value), the
// first bin would hold that value and everything below it alike, so a
// current window that moved below the reference would look unchanged. An
// edge just below the minimum is then added, giving values under the
// reference's range a bin of their own (empty in the reference), as values
// above it already have.
func QuantileEdges(ref []float64, bins int) []float64 {
	sorted := sortedCopy(ref)
	edges := make([]float64, 0, bins)
	if Quantile(sorted, 1/float64(bins)) == sorted[0] {
		edges = append(edges, math.Nextafter(sorted[0], math.Inf(-1)))
	}
	for k := 1; k < bins; k++ {
		e := Quantile(sorted, float64(k)/float64(bins))
		if len(edges) > 0 && e <= edges[len(edges)-1] {
			continue
		}
		edges = append(edges, e)
	}
	return edges
}

// BinCounts counts xs in the bins that edges define: bin i holds the
// values v with edges[i-1] < v <= edges[i].
func BinCounts(xs, edges []float64) []float64 {
	counts := make([]float64, len(edges)+1)
	for _, v := range xs {
		counts[sort.SearchFloat64s(edges, v)]++
	}
	return counts
}

// CategoryCounts counts the categories of ref and cur over the union of
// their values, sorted by name: the names and the two count vectors.
func CategoryCounts(ref, cur []string) (names []string, rc, cc []float64) {
	idx := map[string]int{}
	for _, s := range ref {
		if _, ok := idx[s]; !ok {
			idx[s] = 0
			names = append(names, s)
		}
	}
	for _, s := range cur {
		if _, ok := idx[s]; !ok {
			idx[s] = 0
			names = append(names, s)
		}
	}
	slices.Sort(names)
	for i, s := range names {
		idx[s] = i
	}
	rc = make([]float64, len(names))
	cc = make([]float64, len(names))
	for _, s := range ref {
		rc[idx[s]]++
	}
	for _, s := range cur {
		cc[idx[s]]++
	}
	return names, rc, cc
}

// PSI is the population stability index of two count vectors over the
// same bins: sum over bins of (c_i - r_i) * ln(c_i / r_i), where r_i and
// c_i are the bins' shares of each sample and a share of 0 is replaced by
// eps so that empty bins give a large but finite term.
func PSI(refCounts, curCounts []float64, eps float64) float64 {
	nr, nc := sum(refCounts), sum(curCounts)
	psi := 0.0
	for i := range refCounts {
		r, c := refCounts[i]/nr, curCounts[i]/nc
		if r == 0 {
			r = eps
		}
		if c == 0 {
			c = eps
		}
		psi += (c - r) * math.Log(c/r)
	}
	return psi
}

// JensenShannon is scipy.spatial.distance.jensenshannon(p, q, base=2):
// the square root of the Jensen-Shannon divergence of the two count
// vectors normalised to distributions, in bits, so it lies in [0, 1].
func JensenShannon(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	var left, right float64
	for i := range p {
		pi, qi := p[i]/sp, q[i]/sq
		m := (pi + qi) / 2
		left += relEntr(pi, m)
		right += relEntr(qi, m)
	}
	js := (left + right) / math.Log(2)
	return math.Sqrt(js / 2)
}

// relEntr is scipy.special.rel_entr: x*log(x/y), 0 at x == 0.
func relEntr(x, y float64) float64 {
	switch {
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	case x == 0 && y >= 0:
		return 0
	}
	return math.Inf(1)
}

// Wasserstein1 is scipy.stats.wasserstein_distance(u, v) with equal
// weights: the area between the two empirical CDFs.
func Wasserstein1(u, v []float64) float64 {
	a := sortedCopy(u)
	b := sortedCopy(v)
	na, nb := float64(len(a)), float64(len(b))
	i, j := 0, 0
	var total float64
	prev := math.Min(a[0], b[0])
	for i < len(a) || j < len(b) {
		var x float64
		if j >= len(b) || (i < len(a) && a[i] <= b[j]) {
			x = a[i]
		} else {
			x = b[j]
		}
		// Between prev and x both ECDFs are flat at their counts <= prev.
		total += math.Abs(float64(i)/na-float64(j)/nb) * (x - prev)
		for i < len(a) && a[i] <= x {
			i++
		}
		for j < len(b) && b[j] <= x {
			j++
		}
		prev = x
	}
	return total
}

// MeanStd returns the mean and the population standard deviation (ddof 0,
// numpy.std's default) of xs, by two passes.
func MeanStd(xs []float64) (mean, std float64) {
	mean = sum(xs) / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}

// sum adds xs pairwise, as numpy does, to keep rounding error at
// O(log n) for long vectors.
func sum(xs []float64) float64 {
	if len(xs) <= 8 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s
	}
	h := len(xs) / 2
	return sum(xs[:h]) + sum(xs[h:])
}
