package stats

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSortedCopy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 5, 511, 512, 513, 10000, 100000} {
		xs := make([]float64, n)
		for i := range xs {
			switch i % 7 {
			case 0:
				xs[i] = r.NormFloat64() * 1e300
			case 1:
				xs[i] = math.Floor(r.NormFloat64() * 3) // ties
			case 2:
				xs[i] = -r.Float64() * 1e-310 // subnormals
			case 3:
				xs[i] = math.Copysign(0, -1)
			default:
				xs[i] = r.NormFloat64()
			}
		}
		orig := slices.Clone(xs)
		got := sortedCopy(xs)
		want := slices.Clone(xs)
		slices.Sort(want)
		if !slices.Equal(xs, orig) {
			t.Fatalf("n=%d: input modified", n)
		}
		if len(got) != n {
			t.Fatalf("n=%d: len %d", n, len(got))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d: at %d got %v want %v", n, i, got[i], want[i])
			}
		}
	}
}
