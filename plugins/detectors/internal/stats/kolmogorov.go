package stats

import "math"

// KolmogorovSF is Pr(D_n >= x) for the two-sided one-sample KS statistic
// D_n: scipy.stats.kstwo.sf(x, n), which ks_2samp uses for its asymptotic
// p-value. It follows Simard and L'Ecuyer's choice of method as scipy's
// _kolmogn does: Ruben-Gambino closed forms at the ends, the exact
// Durbin matrix (Marsaglia-Tsang-Wang) for small n*x^2, twice the exact
// one-sided Smirnov tail for large n*x^2, and the Pelz-Good approximation
// in between for large n. Where scipy uses Pomeranz's recursion (n <= 140,
// 0.754693 < n*x^2 <= 4) this uses the Durbin matrix, which computes the
// same exact probability.
func KolmogorovSF(n int, x float64) float64 {
	if n <= 0 || math.IsNaN(x) {
		return math.NaN()
	}
	if x >= 1 {
		return 0
	}
	if x <= 0 {
		return 1
	}
	t := float64(n) * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var prob float64
		if n <= 140 {
			prob = 1
			for i := 1; i <= n; i++ {
				prob *= float64(i) * (1 / float64(n)) * (2*t - 1)
			}
		} else {
			prob = math.Exp(logNFactorialDivNPowN(n) + float64(n)*math.Log(2*t-1))
		}
		return clip01(1 - prob)
	}
	if t >= float64(n-1) {
		return clip01(2 * math.Pow(1-x, float64(n)))
	}
	if x >= 0.5 {
		return clip01(2 * SmirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		if nx2 <= 4 {
			return clip01(1 - durbinCDF(n, x))
		}
		return clip01(2 * SmirnovSF(n, x))
	}
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clip01(2 * SmirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nx2 >= 18:
		cdf = 1
	case n <= 100000 && float64(n)*math.Pow(x, 1.5) <= 1.4:
		cdf = durbinCDF(n, x)
	default:
		cdf = pelzGoodCDF(n, x)
	}
	return clip01(1 - cdf)
}

var stirlingCoeffs = []float64{-2.955065359477124183e-2, 6.4102564102564102564e-3,
	-1.9175269175269175269e-3, 8.4175084175084175084e-4,
	-5.952380952380952381e-4, 7.9365079365079365079e-4,
	-2.7777777777777777778e-3, 8.3333333333333333333e-2}

// logNFactorialDivNPowN is log(n!/n^n) by Stirling's series.
func logNFactorialDivNPowN(n int) float64 {
	rn := 1 / float64(n)
	poly := 0.0
	for _, c := range stirlingCoeffs {
		poly = poly*(rn/float64(n)) + c
	}
	return math.Log(float64(n))/2 - float64(n) + math.Log(2*math.Pi)/2 + rn*poly
}

// durbinCDF is Pr(D_n <= d), exactly, by Durbin's matrix method as
// evaluated by Marsaglia, Tsang and Wang: the k-th diagonal entry of
// H^n * n!/n^n with H of size 2k-1, k = ceil(n*d). Intermediate powers are
// rescaled by 2^128 to stay in range.
func durbinCDF(n int, d float64) float64 {
	if d >= 1 {
		return 1
	}
	nd := float64(n) * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1
	H := newMat(m)
	v := make([]float64, m)
	w := make([]float64, m)
	fac := 1.0
	for j := 1; j <= m; j++ {
		w[j-1] = fac
		fac /= float64(j)
		v[j-1] = (1 - math.Pow(h, float64(j))) * fac
	}
	tt := math.Pow(math.Max(2*h-1, 0), float64(m)) - 2*math.Pow(h, float64(m))
	v[m-1] = (1 + tt) * fac
	for i := 1; i < m; i++ {
		for r := i - 1; r < m; r++ {
			H.set(r, i, w[r-i+1])
		}
	}
	for r := 0; r < m; r++ {
		H.set(r, 0, v[r])
	}
	for c := 0; c < m; c++ {
		H.set(m-1, c, v[m-1-c])
	}
	const e128 = 128
	ep128 := math.Ldexp(1, e128)
	em128 := math.Ldexp(1, -e128)
	P := identity(m)
	expnt, hexpnt := 0, 0
	for nn := n; nn > 0; nn /= 2 {
		if nn%2 == 1 {
			P = P.mul(H)
			expnt += hexpnt
		}
		H = H.mul(H)
		hexpnt *= 2
		if math.Abs(H.at(k-1, k-1)) > ep128 {
			H.scale(1 / ep128)
			hexpnt += e128
		}
	}
	p := P.at(k-1, k-1)
	for i := 1; i <= n; i++ {
		p = float64(i) * p / float64(n)
		if math.Abs(p) < em128 {
			p *= ep128
			expnt -= e128
		}
	}
	if expnt != 0 {
		p = math.Ldexp(p, expnt)
	}
	return clip01(p)
}

type mat struct {
	n int
	a []float64
}

func newMat(n int) mat                { return mat{n: n, a: make([]float64, n*n)} }
func (m mat) at(r, c int) float64     { return m.a[r*m.n+c] }
func (m mat) set(r, c int, v float64) { m.a[r*m.n+c] = v }
func (m mat) scale(f float64) {
	for i := range m.a {
		m.a[i] *= f
	}
}
func identity(n int) mat {
	m := newMat(n)
	for i := 0; i < n; i++ {
		m.set(i, i, 1)
	}
	return m
}

func (m mat) mul(o mat) mat {
	out := newMat(m.n)
	for r := 0; r < m.n; r++ {
		row := out.a[r*m.n : (r+1)*m.n]
		for k := 0; k < m.n; k++ {
			f := m.a[r*m.n+k]
			if f == 0 {
				continue
			}
			orow := o.a[k*m.n : (k+1)*m.n]
			for c := range row {
				row[c] += f * orow[c]
			}
		}
	}
	return out
}

// pelzGoodCDF is the Pelz-Good approximation of Pr(D_n <= x), evaluated
// term by term as scipy's _kolmogn_PelzGood (it is an approximation, so
// matching scipy means matching its arithmetic).
func pelzGoodCDF(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	const minLog = -708
	pi2 := math.Pi * math.Pi
	pi4 := pi2 * pi2
	pi6 := pi4 * pi2
	z := math.Sqrt(float64(n)) * x
	z2, z3, z4, z6 := z*z, z*z*z, math.Pow(z, 4), math.Pow(z, 6)
	qlog := -pi2 / 8 / z2
	if qlog < minLog {
		return 0
	}
	q := math.Exp(qlog)
	k1a := -z2
	k1b := pi2 / 4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*math.Pow(z, 8)

	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k > 0; k-- {
		m := float64(2*k - 1)
		m2, m4, m6 := m*m, math.Pow(m, 4), math.Pow(m, 6)
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{1, k1a + k1b*m2, k2a + k2b*m2 + k2c*m4, k3a + k3b*m2 + k3c*m4 + k3d*m6}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	div := [4]float64{z, 6 * z4, 72 * math.Pow(z, 7), 6480 * math.Pow(z, 10)}
	for i := range K {
		K[i] = K[i] * q * sqrt2pi / div[i]
	}
	q = math.Exp(-pi2 / 2 / z2)
	sqrt3z := math.Sqrt(3) * z
	var k2extra, k3extra float64
	for k := maxk; k > 0; k-- {
		kf := float64(k)
		ks2 := kf * kf
		qp := math.Pow(q, ks2)
		kspi := math.Pi * kf
		k2extra += ks2 * qp
		k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	sum := 0.0
	for i := range K {
		sum += K[i] / math.Pow(float64(n), float64(i)/2)
	}
	return sum
}

// SmirnovSF is Pr(D_n^+ >= x) for the one-sided one-sample KS statistic
// (scipy.special.smirnov), by the Birnbaum-Tingey sum of positive terms,
// each computed in logarithms and summed with a running scale.
func SmirnovSF(n int, x float64) float64 {
	if n <= 0 || !(x >= 0 && x <= 1) {
		return math.NaN()
	}
	if n == 1 {
		return 1 - x
	}
	if x == 0 {
		return 1
	}
	if x == 1 {
		return 0
	}
	nf := float64(n)
	if x <= 1/nf {
		// Pr(D+ < x) = x (1+x)^(n-1) for x <= 1/n.
		return 1 - x*math.Pow(1+x, nf-1)
	}
	const minLog = -7.08396418532264106224e2
	if -2*nf*x*x < minLog {
		return 0
	}
	if nf*x >= nf-1 {
		return math.Pow(1-x, nf)
	}
	if n > 1000000 {
		logp := -math.Pow(6*nf*x+1, 2) / 18 / nf
		if logp < -math.Ln2 {
			return math.Exp(logp)
		}
		return 1 + math.Expm1(logp)
	}
	// sf = x * sum_{j=0}^{floor(n(1-x))} C(n,j) (1-x-j/n)^(n-j) (x+j/n)^(j-1)
	// log C(n, j), updated term by term with compensated (Neumaier)
	// summation: the sum reaches ~n and tens of thousands of terms, so plain
	// accumulation (or Lgamma(n+1)) would lose ~1e-9 relative.
	logC, logCComp := 0.0, 0.0
	maxLog := math.Inf(-1)
	sum := 0.0
	last := int(math.Floor(nf * (1 - x)))
	for j := 0; j <= last; j++ {
		jf := float64(j)
		s := jf/nf + x // 1 - s is the other base
		if s >= 1 {
			break
		}
		if j > 0 {
			v := math.Log((nf - jf + 1) / jf)
			t := logC + v
			if math.Abs(logC) >= math.Abs(v) {
				logCComp += (logC - t) + v
			} else {
				logCComp += (v - t) + logC
			}
			logC = t
		}
		lt := (logC + logCComp) + (nf-jf)*math.Log1p(-s) + (jf-1)*math.Log(s)
		if lt > maxLog {
			sum = sum*math.Exp(maxLog-lt) + 1
			maxLog = lt
		} else {
			term := math.Exp(lt - maxLog)
			sum += term
			if 4*float64(last-j)*term < 0x1p-52*sum && j > 0 {
				break
			}
		}
	}
	return math.Min(math.Exp(math.Log(x)+maxLog+math.Log(sum)), 1)
}
