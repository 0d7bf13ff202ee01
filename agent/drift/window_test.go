package drift

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vigilml/vigil/agent/observe"
)

func nums(vs []observe.Value) []float64 {
	out := make([]float64, len(vs))
	for i, v := range vs {
		out[i] = v.Num
	}
	return out
}

func TestRingKeepsTheLastN(t *testing.T) {
	for _, tc := range []struct{ n, add int }{{5, 0}, {5, 3}, {5, 5}, {5, 6}, {5, 23}, {1000, 2500}, {1, 7}} {
		w := newRing(tc.n)
		for i := range tc.add {
			w.add(0, observe.Num(float64(i)))
		}
		got := nums(w.sample(0))
		want := min(tc.n, tc.add)
		if len(got) != want {
			t.Fatalf("n=%d add=%d: %d values, want %d", tc.n, tc.add, len(got), want)
		}
		for i, v := range got {
			if v != float64(tc.add-want+i) {
				t.Fatalf("n=%d add=%d: value %d is %v, want %d (oldest first)", tc.n, tc.add, i, v, tc.add-want+i)
			}
		}
	}
}

func TestTimeWindowExpiresAndBounds(t *testing.T) {
	const span = 80_000 // ms: 8 slots of 10 s
	w := newTimeWindow(span, 100, rand.New(rand.NewPCG(1, 2)))
	// 1000 values at t in [0, 10 s): one slot, reservoir of 100.
	for i := range 1000 {
		w.add(int64(i*10), observe.Num(float64(i)))
	}
	if got := w.sample(10_000); len(got) != 100 {
		t.Fatalf("sample of a full slot: %d values, want the capacity 100", len(got))
	}
	// Values older than the window are gone once their slot ends > span ago.
	if got := w.sample(10_000 + span); len(got) != 0 {
		t.Fatalf("after the span: %d values, want 0", len(got))
	}
	if got := w.sample(9_999 + span); len(got) != 100 {
		t.Fatalf("slot still partly inside the span: %d values, want 100", len(got))
	}
	// A late value for a slot reused by newer values is ignored.
	w.add(int64(span+5_000), observe.Num(-1))
	w.add(5_000, observe.Num(-2))
	for _, v := range nums(w.sample(span + 6_000)) {
		if v == -2 {
			t.Fatal("a value older than the slot's current interval was kept")
		}
	}
}

// TestTimeWindowIsUniform checks the reservoir sample's proportions: two
// slots with 9,000 and 1,000 values give a 1,000-value sample in which
// the first slot's values are 90% (largest-remainder allocation: exactly
// 900), and within a slot every value is equally likely (a chi-square
// goodness of fit over deciles, fixed seed).
func TestTimeWindowIsUniform(t *testing.T) {
	counts := make([]int, 10)
	for rep := range 200 {
		w := newTimeWindow(80_000, 1000, rand.New(rand.NewPCG(uint64(rep), 7)))
		for i := range 9000 {
			w.add(int64(i%10_000), observe.Num(float64(i)))
		}
		for i := range 1000 {
			w.add(int64(10_000+i), observe.Num(float64(100_000+i)))
		}
		s := nums(w.sample(20_000))
		if len(s) != 1000 {
			t.Fatalf("sample size %d, want 1000", len(s))
		}
		first := 0
		for _, v := range s {
			if v < 100_000 {
				first++
				counts[int(v)/900]++
			}
		}
		if first != 900 {
			t.Fatalf("rep %d: %d values from the busy slot, want 900", rep, first)
		}
	}
	// 180,000 draws over 10 deciles: expected 18,000 each.
	chi2 := 0.0
	for _, c := range counts {
		d := float64(c) - 18_000
		chi2 += d * d / 18_000
	}
	// 9 degrees of freedom: P(chi2 > 27.88) = 0.001.
	if chi2 > 27.88 || math.IsNaN(chi2) {
		t.Fatalf("reservoir not uniform over the slot: deciles %v, chi2 %.1f", counts, chi2)
	}
}
