// Package stats holds the numerical core of Vigil's detector plugins. It
// follows scipy 1.10's algorithms closely enough that statistics and
// p-values agree to about 1e-9 relative (see the numerical-truth tests).
// Functions take finite, non-empty samples; input checks are the caller's.
package stats

import (
	"math"
)

// KSMaxExactN is the largest sample size for which the two-sample KS test
// computes the exact p-value (scipy's MAX_AUTO_N for method="auto").
const KSMaxExactN = 10000

// KSResult is the outcome of a two-sample Kolmogorov-Smirnov test.
type KSResult struct {
	// D is the KS statistic: the largest distance between the two
	// empirical CDFs. In exact mode it is rounded to a multiple of
	// 1/lcm(n1, n2), as scipy does.
	D float64
	// PValue is the two-sided p-value.
	PValue float64
	// Exact reports whether the p-value is exact (true) or from the
	// asymptotic distribution of D with n = round(n1*n2/(n1+n2)).
	Exact bool
}

// KS2Samp is scipy.stats.ks_2samp(a, b, alternative="two-sided",
// method="auto"). a and b are not modified.
func KS2Samp(a, b []float64) KSResult {
	x := sortedCopy(a)
	y := sortedCopy(b)
	n1, n2 := len(x), len(y)

	// Walk the merged sorted values; at each distinct value the ECDFs
	// count every value <= it (scipy's searchsorted side="right").
	var maxS, minDiff float64
	first := true
	i, j := 0, 0
	for i < n1 || j < n2 {
		var v float64
		switch {
		case j >= n2 || (i < n1 && x[i] <= y[j]):
			v = x[i]
		default:
			v = y[j]
		}
		for i < n1 && x[i] <= v {
			i++
		}
		for j < n2 && y[j] <= v {
			j++
		}
		diff := float64(i)/float64(n1) - float64(j)/float64(n2)
		if first || diff > maxS {
			maxS = diff
		}
		if first || diff < minDiff {
			minDiff = diff
		}
		first = false
	}
	minS := math.Min(math.Max(-minDiff, 0), 1)
	d := maxS
	if minS > maxS {
		d = minS
	}

	g := gcd(n1, n2)
	if max(n1, n2) <= KSMaxExactN {
		ok, dd, p := exactKS2(n1, n2, g, d)
		d = dd
		if ok {
			return KSResult{D: d, PValue: clip01(p), Exact: true}
		}
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := m * n / (m + n)
	p := KolmogorovSF(int(math.RoundToEven(en)), d)
	return KSResult{D: d, PValue: clip01(p)}
}

// exactKS2 is scipy's _attempt_exact_2kssamp for the two-sided test.
func exactKS2(n1, n2, g int, d float64) (bool, float64, float64) {
	lcm := (n1 / g) * n2
	h := int(math.RoundToEven(d * float64(lcm)))
	d = float64(h) / float64(lcm)
	if h == 0 {
		return true, d, 1
	}
	var p float64
	if n1 == n2 {
		p = probOutsideSquare(n1, h)
	} else {
		p = outerProbInside(n1, n2, g, h)
	}
	if !(p >= 0 && p <= 1) {
		return false, d, p
	}
	return true, d, p
}

// probOutsideSquare is Pr(D_{n,n} >= h/n): the share of lattice paths that
// leave the band |x-y| < h, by the alternating series evaluated
// Horner-style as scipy's _compute_prob_outside_square.
func probOutsideSquare(n, h int) float64 {
	var P float64
	for k := n / h; k >= 0; k-- {
		p1 := 1.0
		for j := 0; j < h; j++ {
			p1 = float64(n-k*h-j) * p1 / float64(n+k*h+j+1)
		}
		P = p1 * (1 - P)
	}
	return 2 * P
}

// outerProbInside is the share of lattice paths from (0,0) to (m,n) that
// do not stay strictly inside |x/m - y/n| < h/lcm, computed directly as
// 1-p by Viehmann's recursion (scipy's _compute_outer_prob_inside_method).
// Work is O(m * window), window ~ 2*d*n.
func outerProbInside(m, n, g, h int) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	minj, maxj := 0, min(int(math.Ceil(float64(h)/float64(mg))), n+1)
	curlen := maxj - minj
	lenA := min(2*maxj+2, n+1)
	A := make([]float64, lenA)
	for k := range A {
		A[k] = 1
	}
	for k := minj; k < maxj; k++ {
		A[k] = 0
	}
	for i := 1; i <= m; i++ {
		lastminj, lastlen := minj, curlen
		minj = max(int(math.Floor(float64(ng*i-h)/float64(mg)))+1, 0)
		minj = min(minj, n)
		maxj = min(int(math.Ceil(float64(ng*i+h)/float64(mg))), n+1)
		if maxj <= minj {
			return 1
		}
		val := 1.0
		if minj == 0 {
			val = 0
		}
		for jj := 0; jj < maxj-minj; jj++ {
			j := jj + minj
			val = (A[jj+minj-lastminj]*float64(i) + val*float64(j)) / float64(i+j)
			A[jj] = val
		}
		curlen = maxj - minj
		if lastlen > curlen {
			for k := maxj - minj; k < maxj-minj+(lastlen-curlen) && k < len(A); k++ {
				A[k] = 1
			}
		}
	}
	return A[maxj-minj-1]
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func clip01(p float64) float64 {
	return math.Min(math.Max(p, 0), 1)
}
