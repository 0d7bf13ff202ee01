package stats

import "math"

// ChiSquareResult is the outcome of a chi-square contingency test.
type ChiSquareResult struct {
	Statistic float64
	PValue    float64
	DOF       int
	// Yates reports whether the continuity correction was applied.
	Yates bool
}

// ChiSquare2xK is scipy.stats.chi2_contingency([ref, cur]) with its
// defaults (correction=True, lambda_=None) on a 2 x k table of counts with
// no empty column: expected counts row_total*col_total/N, Yates'
// continuity correction (capped at the difference, as scipy) only when
// the table has one degree of freedom, and the p-value from the
// chi-square distribution with k-1 degrees of freedom.
func ChiSquare2xK(ref, cur []float64) ChiSquareResult {
	k := len(ref)
	dof := k - 1
	if dof <= 0 {
		return ChiSquareResult{Statistic: 0, PValue: 1, DOF: 0}
	}
	r0, r1 := sum(ref), sum(cur)
	n := r0 + r1
	// Terms in numpy's order (the reference row, then the current row).
	terms := make([]float64, 0, 2*k)
	for row, obsRow := range [2][]float64{ref, cur} {
		rt := r0
		if row == 1 {
			rt = r1
		}
		for i := 0; i < k; i++ {
			obs := obsRow[i]
			exp := rt * (ref[i] + cur[i]) / n
			if dof == 1 {
				diff := exp - obs
				obs += math.Copysign(math.Min(0.5, math.Abs(diff)), diff)
			}
			d := obs - exp
			terms = append(terms, d*d/exp)
		}
	}
	stat := sum(terms)
	return ChiSquareResult{Statistic: stat, PValue: Chi2SF(stat, float64(dof)), DOF: dof, Yates: dof == 1}
}

// Chi2SF is the survival function of the chi-square distribution with df
// degrees of freedom: the regularised upper incomplete gamma Q(df/2, x/2).
func Chi2SF(x, df float64) float64 {
	if x <= 0 {
		return 1
	}
	return GammaQ(df/2, x/2)
}

// GammaQ is the regularised upper incomplete gamma function Q(a, x),
// by the power series of P for x < a+1 and Lentz's continued fraction
// for Q otherwise.
func GammaQ(a, x float64) float64 {
	if x <= 0 {
		return 1
	}
	if math.IsInf(x, 1) {
		return 0
	}
	lg, _ := math.Lgamma(a)
	logPre := a*math.Log(x) - x - lg
	if x < a+1 {
		// P(a,x) = x^a e^-x / Gamma(a+1) * sum x^n / ((a+1)...(a+n))
		term := 1 / a
		s := term
		for n := 1; n < 100000; n++ {
			term *= x / (a + float64(n))
			s += term
			if math.Abs(term) < math.Abs(s)*1e-17 {
				break
			}
		}
		return 1 - s*math.Exp(logPre)
	}
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 100000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return math.Exp(logPre) * h
}

// MergeSparse applies the chi-square detector's expected-count rule to
// a 2 x k table (columns = categories). A category whose smaller expected
// count, col_total * min(row totals) / N, is below minExpected goes into
// one pooled "other" column. If that pooled column is itself still below
// minExpected and at least one other column remains, it is added to the
// remaining column with the smallest total (the first such, in order).
// minExpected <= 0 merges nothing. It returns the new table and, for each
// output column, the indices of the input columns it holds.
func MergeSparse(ref, cur []float64, minExpected float64) (r, c []float64, groups [][]int) {
	if minExpected <= 0 {
		for i := range ref {
			groups = append(groups, []int{i})
		}
		return append([]float64(nil), ref...), append([]float64(nil), cur...), groups
	}
	r0, r1 := sum(ref), sum(cur)
	n := r0 + r1
	small := math.Min(r0, r1)
	var otherR, otherC float64
	var other []int
	for i := range ref {
		col := ref[i] + cur[i]
		if col*small/n < minExpected {
			otherR += ref[i]
			otherC += cur[i]
			other = append(other, i)
			continue
		}
		r = append(r, ref[i])
		c = append(c, cur[i])
		groups = append(groups, []int{i})
	}
	if len(other) == 0 {
		return r, c, groups
	}
	if (otherR+otherC)*small/n < minExpected && len(r) > 0 {
		best := 0
		for i := range r {
			if r[i]+c[i] < r[best]+c[best] {
				best = i
			}
		}
		r[best] += otherR
		c[best] += otherC
		groups[best] = append(groups[best], other...)
		return r, c, groups
	}
	return append(r, otherR), append(c, otherC), append(groups, other)
}
