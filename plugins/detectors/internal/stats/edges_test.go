package stats

import (
	"slices"
	"testing"
)

// A reference with ties at its minimum (a constant one, say) keeps a bin
// for values below its range, so a window that moved down is not binned
// with the reference's lowest value.
func TestQuantileEdgesBelowMinimum(t *testing.T) {
	ref := []float64{5, 5, 5, 5, 5, 5, 5, 5}
	edges := QuantileEdges(ref, 10)
	if len(edges) != 2 || !(edges[0] < 5) || edges[1] != 5 {
		t.Fatalf("edges of a constant reference = %v", edges)
	}
	same := BinCounts([]float64{5, 5, 5, 5}, edges)
	lower := BinCounts([]float64{4, 4, 4, 4}, edges)
	if !slices.Equal(same, []float64{0, 4, 0}) || !slices.Equal(lower, []float64{4, 0, 0}) {
		t.Errorf("counts: same %v, lower %v", same, lower)
	}
	r := BinCounts(ref, edges)
	if p := PSI(r, same, 1e-4); p != 0 {
		t.Errorf("PSI of the same constant = %v", p)
	}
	if p := PSI(r, lower, 1e-4); p < 1 {
		t.Errorf("PSI of a constant moved down = %v, want large", p)
	}
	if d := JensenShannon(r, lower); d != 1 {
		t.Errorf("Jensen-Shannon of a constant moved down = %v, want 1", d)
	}
	// A point mass at the minimum (30 % zeros) does the same; a reference
	// whose lowest tenth spans several values gets no extra edge.
	zeros := append(make([]float64, 30), []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70}...)
	if e := QuantileEdges(zeros, 10); !(e[0] < 0) || e[1] != 0 {
		t.Errorf("edges with a point mass at 0 = %v", e)
	}
	spread := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if e := QuantileEdges(spread, 10); len(e) != 9 || e[0] <= 1 {
		t.Errorf("edges of a spread reference = %v", e)
	}
}
