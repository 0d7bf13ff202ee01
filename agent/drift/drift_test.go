package drift

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestAutoMethod(t *testing.T) {
	for _, tc := range []struct {
		cat    bool
		nr, nc int
		want   string
	}{
		{true, 5, 5, "chisquare"},
		{true, 1e6, 1e6, "chisquare"},
		{false, 1, 1, "ks"},
		{false, 10000, 10000, "ks"},
		{false, 10001, 10, "psi"},
		{false, 10, 10001, "psi"},
	} {
		if got := AutoMethod(tc.cat, tc.nr, tc.nc); got != tc.want {
			t.Errorf("AutoMethod(%v, %d, %d) = %s, want %s", tc.cat, tc.nr, tc.nc, got, tc.want)
		}
	}
}

func TestBonferroni(t *testing.T) {
	adj, rej := Adjust(Bonferroni, []float64{0.01, 0.04, 0.3, 0.0001}, 0.05)
	want := []float64{0.04, 0.16, 1, 0.0004}
	wantRej := []bool{true, false, false, true}
	for i := range adj {
		if math.Abs(adj[i]-want[i]) > 1e-15 || rej[i] != wantRej[i] {
			t.Errorf("%d: adjusted %v reject %v, want %v %v", i, adj[i], rej[i], want[i], wantRej[i])
		}
	}
}

// TestBenjaminiHochbergWorkedExample: ten p-values at alpha 0.05; the
// step-up rule's largest k with p_(k) <= k*0.005 is 4 (p = 0.02 <= 0.02),
// although p_(3) = 0.016 > 0.015 on its own.
func TestBenjaminiHochbergWorkedExample(t *testing.T) {
	p := []float64{0.02, 0.001, 0.3, 0.016, 0.04, 0.008, 0.5, 0.9, 0.07, 0.6}
	adj, rej := Adjust(BenjaminiHochberg, p, 0.05)
	wantRej := map[float64]bool{0.001: true, 0.008: true, 0.016: true, 0.02: true}
	for i := range p {
		if rej[i] != wantRej[p[i]] {
			t.Errorf("p=%v: reject %v", p[i], rej[i])
		}
	}
	// Adjusted: sorted p 0.001 .008 .016 .02 .04 .07 .3 .5 .6 .9 ->
	// m*p/rank = .01 .04 .0533 .05 .08 .1167 .4286 .625 .6667 .9, then
	// the running minimum from the top.
	want := map[float64]float64{0.001: 0.01, 0.008: 0.04, 0.016: 0.05, 0.02: 0.05, 0.04: 0.08, 0.07: 0.7 / 6, 0.3: 3.0 / 7, 0.5: 0.625, 0.6: 6.0 / 9, 0.9: 0.9}
	for i := range p {
		if math.Abs(adj[i]-want[p[i]]) > 1e-12 {
			t.Errorf("p=%v: adjusted %v, want %v", p[i], adj[i], want[p[i]])
		}
	}
}

// TestBenjaminiHochbergDefinition checks random p-value sets against the
// rule's definition: reject exactly the tests with adjusted p <= alpha,
// adjusted p monotone in p, and never below the raw p.
func TestBenjaminiHochbergDefinition(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 500; trial++ {
		m := 1 + r.IntN(30)
		p := make([]float64, m)
		for i := range p {
			p[i] = math.Pow(r.Float64(), 1+4*r.Float64())
			if r.IntN(10) == 0 && i > 0 {
				p[i] = p[i-1] // ties
			}
		}
		alpha := 0.01 + 0.2*r.Float64()
		adj, rej := Adjust(BenjaminiHochberg, p, alpha)
		for i := range p {
			if rej[i] != (adj[i] <= alpha) {
				t.Fatalf("trial %d: p=%v adj=%v alpha=%v reject=%v", trial, p[i], adj[i], alpha, rej[i])
			}
			if adj[i] < p[i] || adj[i] > 1 {
				t.Fatalf("trial %d: adj %v for p %v", trial, adj[i], p[i])
			}
			for j := range p {
				if p[i] < p[j] && adj[i] > adj[j]+1e-15 {
					t.Fatalf("trial %d: not monotone", trial)
				}
			}
		}
	}
}

func TestParseCorrection(t *testing.T) {
	for in, want := range map[string]Correction{"": Bonferroni, "bonferroni": Bonferroni, "bh": BenjaminiHochberg, "benjamini-hochberg": BenjaminiHochberg, "none": None} {
		if got, err := ParseCorrection(in); err != nil || got != want {
			t.Errorf("ParseCorrection(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCorrection("holm"); err == nil {
		t.Error("holm accepted")
	}
}
