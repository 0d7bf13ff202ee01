package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The numerical-truth tests compare every statistic with scipy 1.10, run
// once per test through Debian's /usr/bin/python3 with all cases in one
// JSON file.

const systemPython = "/usr/bin/python3"

type truthCase struct {
	Kind        string    `json:"kind"`
	Name        string    `json:"name"`
	A           []float64 `json:"a,omitempty"`
	B           []float64 `json:"b,omitempty"`
	Ref         []string  `json:"ref,omitempty"`
	Cur         []string  `json:"cur,omitempty"`
	Bins        int       `json:"bins,omitempty"`
	Eps         float64   `json:"eps,omitempty"`
	MinExpected float64   `json:"min_expected"`
	X           float64   `json:"x,omitempty"`
	N           int       `json:"n,omitempty"`
	DF          float64   `json:"df,omitempty"`
}

type truthResult struct {
	Statistic float64  `json:"statistic"`
	PValue    *float64 `json:"p_value"`
	DOF       int      `json:"dof"`
}

// scipyTruth runs testdata/scipy_truth.py on the cases.
func scipyTruth(t *testing.T, cases []truthCase) []truthResult {
	t.Helper()
	if err := exec.Command(systemPython, "-c", "import scipy").Run(); err != nil {
		t.Fatalf("%s cannot import scipy (%v): install Debian's python3-scipy (apt-get install python3-scipy), or run `make test-deps` as root", systemPython, err)
	}
	in := filepath.Join(t.TempDir(), "cases.json")
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemPython, "testdata/scipy_truth.py", in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scipy_truth.py: %v\n%s", err, stderr.String())
	}
	var res struct {
		Scipy   string        `json:"scipy"`
		Results []truthResult `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("scipy_truth.py output: %v", err)
	}
	if !strings.HasPrefix(res.Scipy, "1.10.") {
		t.Fatalf("scipy %s: the detectors follow scipy 1.10 (Debian bookworm's python3-scipy)", res.Scipy)
	}
	if len(res.Results) != len(cases) {
		t.Fatalf("scipy_truth.py returned %d results for %d cases", len(res.Results), len(cases))
	}
	return res.Results
}

// close reports whether got agrees with want to rel relative error (and
// to 1e-300 absolute, for values that underflow differently).
func closeTo(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Max(math.Abs(got), math.Abs(want)) || math.Abs(got-want) < 1e-300
}

const tol = 1e-9

// Generators of the data shapes the tests cover.

type gen struct{ r *rand.Rand }

func newGen(seed uint64) gen { return gen{rand.New(rand.NewPCG(seed, 0x5eed))} }

func (g gen) normal(n int, mean, sd float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + sd*g.r.NormFloat64()
	}
	return out
}

func (g gen) cauchy(n int, loc float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = loc + math.Tan(math.Pi*(g.r.Float64()-0.5))
	}
	return out
}

func (g gen) pareto(n int, alpha float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Pow(1-g.r.Float64(), -1/alpha)
	}
	return out
}

// discrete draws integers 0..k-1 (many ties), optionally tilted.
func (g gen) discrete(n, k int, tilt float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		u := math.Pow(g.r.Float64(), 1+tilt)
		out[i] = math.Floor(u * float64(k))
	}
	return out
}

func (g gen) cats(n, k int, skew float64) []string {
	out := make([]string, n)
	for i := range out {
		u := math.Pow(g.r.Float64(), skew)
		out[i] = fmt.Sprintf("c%03d", int(u*float64(k)))
	}
	return out
}

// numericPairs are the (reference, current) pairs shared by the numeric
// detectors: several sizes and shapes, ties, tiny and unequal samples.
func numericPairs() []truthCase {
	g := newGen(1)
	var out []truthCase
	add := func(name string, a, b []float64) {
		out = append(out, truthCase{Name: name, A: a, B: b})
	}
	for n := 1; n <= 5; n++ {
		for m := 1; m <= 5; m++ {
			add(fmt.Sprintf("tiny n=%d m=%d", n, m), g.normal(n, 0, 1), g.normal(m, 0.5, 1))
		}
	}
	add("identical", []float64{1, 2, 3, 4, 5}, []float64{1, 2, 3, 4, 5})
	add("disjoint", []float64{1, 2, 3}, []float64{10, 11, 12, 13})
	add("constant ref", []float64{2, 2, 2, 2, 2, 2}, g.normal(7, 2, 1))
	for _, n := range []int{10, 100, 1000, 10000} {
		add(fmt.Sprintf("normal same n=%d", n), g.normal(n, 0, 1), g.normal(n, 0, 1))
		add(fmt.Sprintf("normal shifted n=%d", n), g.normal(n, 0, 1), g.normal(n, 0.3, 1))
	}
	add("unequal 37/1000", g.normal(37, 0, 1), g.normal(1000, 0.2, 1.2))
	add("unequal 9999/10000 shifted", g.normal(9999, 0, 1), g.normal(10000, 0.1, 1))
	add("unequal 3000/7001 same", g.normal(3000, 0, 1), g.normal(7001, 0, 1))
	add("cauchy 2000/3000", g.cauchy(2000, 0), g.cauchy(3000, 0.2))
	add("pareto 5000/4000", g.pareto(5000, 1.5), g.pareto(4000, 1.2))
	add("ties k=5 n=200", g.discrete(200, 5, 0), g.discrete(300, 5, 0.2))
	add("ties k=3 n=10000", g.discrete(10000, 3, 0), g.discrete(10000, 3, 0.05))
	add("ties k=20 n=5000/6000", g.discrete(5000, 20, 0), g.discrete(6000, 20, 0))
	// Beyond 10,000 values: the asymptotic KS p-value over its regimes
	// (n = round(n1*n2/(n1+n2)) from 1 to 50,000).
	add("asymp 1/20000", g.normal(1, 0, 1), g.normal(20000, 0, 1))
	add("asymp 50/20000", g.normal(50, 0.5, 1), g.normal(20000, 0, 1))
	add("asymp 120/10001 shifted", g.normal(120, 0.6, 1), g.normal(10001, 0, 1))
	add("asymp 500/20000", g.normal(500, 0.05, 1), g.normal(20000, 0, 1))
	add("asymp 20000/15000 same", g.normal(20000, 0, 1), g.normal(15000, 0, 1))
	add("asymp 20000/15000 small shift", g.normal(20000, 0, 1), g.normal(15000, 0.03, 1))
	add("asymp 20000/15000 shifted", g.normal(20000, 0, 1), g.normal(15000, 0.1, 1))
	add("asymp 100000/100000 same", g.normal(100000, 0, 1), g.normal(100000, 0, 1))
	add("asymp 100000/50000 tiny shift", g.normal(100000, 0, 1), g.normal(50000, 0.01, 1))
	add("asymp cauchy 30000/30000", g.cauchy(30000, 0), g.cauchy(30000, 0.05))
	add("asymp ties 40000/12000", g.discrete(40000, 50, 0), g.discrete(12000, 50, 0.02))
	return out
}

func TestKSMatchesScipy(t *testing.T) {
	pairs := numericPairs()
	var cases []truthCase
	for _, p := range pairs {
		p.Kind = "ks"
		cases = append(cases, p)
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		got := KS2Samp(c.A, c.B)
		w := want[i]
		if !closeTo(got.D, w.Statistic, tol) || !closeTo(got.PValue, *w.PValue, tol) {
			t.Errorf("%s (n=%d, m=%d): D=%.17g p=%.17g (exact=%v); scipy D=%.17g p=%.17g (rel err %.2g)",
				c.Name, len(c.A), len(c.B), got.D, got.PValue, got.Exact, w.Statistic, *w.PValue, math.Abs(got.PValue-*w.PValue)/math.Max(*w.PValue, 1e-300))
		}
	}
}

// TestKolmogorovSFMatchesScipy checks kstwo.sf directly over a grid that
// reaches every branch: Ruben-Gambino ends, Durbin, Pelz-Good, Smirnov.
func TestKolmogorovSFMatchesScipy(t *testing.T) {
	var cases []truthCase
	for _, n := range []int{1, 2, 3, 7, 40, 140, 141, 500, 5000, 50000, 100001, 400000} {
		for _, z := range []float64{0.3, 0.6, 0.8, 0.85, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0} {
			x := z / math.Sqrt(float64(n))
			if x >= 1 {
				continue
			}
			cases = append(cases, truthCase{Kind: "kstwo_sf", Name: fmt.Sprintf("n=%d z=%g", n, z), N: n, X: x})
		}
		for _, x := range []float64{0.5 / float64(n) * 1.5, 0.55, 0.9} {
			cases = append(cases, truthCase{Kind: "kstwo_sf", Name: fmt.Sprintf("n=%d x=%g", n, x), N: n, X: x})
		}
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		got := KolmogorovSF(c.N, c.X)
		if !closeTo(got, want[i].Statistic, tol) {
			t.Errorf("kstwo.sf(%.17g, %d) = %.17g, scipy %.17g (rel err %.2g)", c.X, c.N, got, want[i].Statistic, math.Abs(got-want[i].Statistic)/want[i].Statistic)
		}
	}
}

func TestWassersteinMatchesScipy(t *testing.T) {
	pairs := numericPairs()
	var cases []truthCase
	for _, p := range pairs {
		p.Kind = "wasserstein"
		cases = append(cases, p)
		cases = append(cases, truthCase{Kind: "std", Name: p.Name + " std", A: p.A})
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		var got float64
		if c.Kind == "std" {
			_, got = MeanStd(c.A)
		} else {
			got = Wasserstein1(c.A, c.B)
		}
		if !closeTo(got, want[i].Statistic, tol) {
			t.Errorf("%s %s: %.17g, scipy %.17g", c.Kind, c.Name, got, want[i].Statistic)
		}
	}
}

func TestBinnedMatchesScipy(t *testing.T) {
	pairs := numericPairs()
	var cases []truthCase
	for _, p := range pairs {
		for _, bins := range []int{10, 4, 20} {
			if bins != 10 && len(p.A)+len(p.B) > 20000 {
				continue // the large pairs once, at the default bin count
			}
			q := p
			q.Kind, q.Bins = "js_num", bins
			cases = append(cases, q)
			q.Kind, q.Eps = "psi_num", 1e-4
			cases = append(cases, q)
		}
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		edges := QuantileEdges(c.A, c.Bins)
		r, cc := BinCounts(c.A, edges), BinCounts(c.B, edges)
		var got float64
		if c.Kind == "js_num" {
			got = JensenShannon(r, cc)
		} else {
			got = PSI(r, cc, c.Eps)
			// And the formula, written out here independently.
			if ref := psiFromFormula(c.A, c.B, c.Bins, c.Eps); !closeTo(got, ref, tol) {
				t.Errorf("psi %s bins=%d: %.17g, test's own formula %.17g", c.Name, c.Bins, got, ref)
			}
		}
		if !closeTo(got, want[i].Statistic, tol) {
			t.Errorf("%s %s bins=%d: %.17g, scipy/numpy %.17g", c.Kind, c.Name, c.Bins, got, want[i].Statistic)
		}
	}
}

// psiFromFormula computes PSI from its definition with none of the
// package's helpers: sort the reference, take its quantiles at k/bins by
// linear interpolation, drop repeated edges, add one just below the
// minimum when the first is the minimum, count each sample per bin
// (e_{i-1} < v <= e_i) by scanning, replace empty shares with eps, and sum
// (c - r) * ln(c / r).
func psiFromFormula(ref, cur []float64, bins int, eps float64) float64 {
	s := append([]float64(nil), ref...)
	sort.Float64s(s)
	var edges []float64
	for k := 1; k < bins; k++ {
		pos := float64(k) / float64(bins) * float64(len(s)-1)
		lo := int(pos)
		e := s[lo]
		if lo+1 < len(s) {
			e = s[lo] + (s[lo+1]-s[lo])*(pos-float64(lo))
		}
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	if edges[0] == s[0] { // ties at the minimum: values below it get a bin
		edges = append([]float64{math.Nextafter(s[0], math.Inf(-1))}, edges...)
	}
	share := func(xs []float64) []float64 {
		out := make([]float64, len(edges)+1)
		for _, v := range xs {
			b := 0
			for b < len(edges) && v > edges[b] {
				b++
			}
			out[b]++
		}
		for i := range out {
			out[i] /= float64(len(xs))
			if out[i] == 0 {
				out[i] = eps
			}
		}
		return out
	}
	r, c := share(ref), share(cur)
	psi := 0.0
	for i := range r {
		psi += (c[i] - r[i]) * math.Log(c[i]/r[i])
	}
	return psi
}

func categoricalPairs() []truthCase {
	g := newGen(2)
	var out []truthCase
	add := func(name string, ref, cur []string) {
		out = append(out, truthCase{Name: name, Ref: ref, Cur: cur})
	}
	add("tiny 1/1 same", []string{"a"}, []string{"a"})
	add("tiny 2/3", []string{"a", "b"}, []string{"a", "a", "b"})
	add("tiny disjoint", []string{"a", "a", "a"}, []string{"b", "b"})
	add("two cats 2x2 (Yates)", g.cats(200, 2, 1), g.cats(150, 2, 1.3))
	add("two cats 2x2 same", g.cats(5000, 2, 1), g.cats(5000, 2, 1))
	add("five cats same", g.cats(1000, 5, 1), g.cats(1200, 5, 1))
	add("five cats shifted", g.cats(1000, 5, 1), g.cats(1200, 5, 1.5))
	add("many rare cats", g.cats(300, 100, 3), g.cats(400, 100, 3))
	add("rare pooled into smallest", append(g.cats(500, 3, 1), "zz1", "zz2"), append(g.cats(500, 3, 1), "zz3"))
	add("new category in current", g.cats(2000, 8, 1), append(g.cats(2000, 8, 1), g.cats(300, 1, 1)...))
	add("large 100k", g.cats(100000, 30, 2), g.cats(100000, 30, 2.05))
	add("unequal 50/20000", g.cats(50, 6, 1), g.cats(20000, 6, 1))
	return out
}

func TestChiSquareMatchesScipy(t *testing.T) {
	var cases []truthCase
	for _, p := range categoricalPairs() {
		for _, me := range []float64{5, 0} {
			q := p
			q.Kind, q.MinExpected = "chisquare", me
			cases = append(cases, q)
		}
	}
	// Chi-square survival function far into both tails.
	for _, df := range []float64{1, 2, 3, 10, 99, 1000} {
		for _, f := range []float64{0.01, 0.5, 1, 2, 5, 20} {
			cases = append(cases, truthCase{Kind: "chi2_sf", Name: fmt.Sprintf("df=%g x=%g*df", df, f), X: f * df, DF: df})
		}
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		if c.Kind == "chi2_sf" {
			if got := Chi2SF(c.X, c.DF); !closeTo(got, want[i].Statistic, tol) {
				t.Errorf("chi2.sf %s: %.17g, scipy %.17g", c.Name, got, want[i].Statistic)
			}
			continue
		}
		_, r, cc := CategoryCounts(c.Ref, c.Cur)
		r, cc, _ = MergeSparse(r, cc, c.MinExpected)
		got := ChiSquare2xK(r, cc)
		w := want[i]
		if got.DOF != w.DOF || !closeTo(got.Statistic, w.Statistic, tol) || !closeTo(got.PValue, *w.PValue, tol) {
			t.Errorf("%s (min_expected %g): chi2=%.17g p=%.17g dof=%d; scipy chi2=%.17g p=%.17g dof=%d",
				c.Name, c.MinExpected, got.Statistic, got.PValue, got.DOF, w.Statistic, *w.PValue, w.DOF)
		}
	}
}

func TestCategoricalDistancesMatchScipy(t *testing.T) {
	var cases []truthCase
	for _, p := range categoricalPairs() {
		q := p
		q.Kind = "js_cat"
		cases = append(cases, q)
		q.Kind, q.Eps = "psi_cat", 1e-4
		cases = append(cases, q)
	}
	want := scipyTruth(t, cases)
	for i, c := range cases {
		_, r, cc := CategoryCounts(c.Ref, c.Cur)
		var got float64
		if c.Kind == "js_cat" {
			got = JensenShannon(r, cc)
		} else {
			got = PSI(r, cc, c.Eps)
		}
		if !closeTo(got, want[i].Statistic, tol) {
			t.Errorf("%s %s: %.17g, scipy %.17g", c.Kind, c.Name, got, want[i].Statistic)
		}
	}
}
