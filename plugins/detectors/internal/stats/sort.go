package stats

import (
	"math"
	"slices"
)

// sortedCopy returns xs sorted ascending in a new slice. xs must hold no
// NaN. Large inputs are sorted by an LSD radix sort on the IEEE 754 bit
// patterns (mapped so that unsigned order is numeric order), which is
// several times faster than a comparison sort at 10^4..10^6 values; -0
// sorts before +0, which compare equal anyway.
func sortedCopy(xs []float64) []float64 {
	if len(xs) < 512 {
		out := slices.Clone(xs)
		slices.Sort(out)
		return out
	}
	keys := make([]uint64, len(xs))
	for i, x := range xs {
		b := math.Float64bits(x)
		if b>>63 == 1 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		keys[i] = b
	}
	tmp := make([]uint64, len(xs))
	var counts [256]int
	for shift := uint(0); shift < 64; shift += 8 {
		clear(counts[:])
		for _, k := range keys {
			counts[(k>>shift)&0xff]++
		}
		if counts[(keys[0]>>shift)&0xff] == len(keys) {
			continue // every key has the same digit here
		}
		pos := 0
		for d, c := range counts {
			counts[d] = pos
			pos += c
		}
		for _, k := range keys {
			d := (k >> shift) & 0xff
			tmp[counts[d]] = k
			counts[d]++
		}
		keys, tmp = tmp, keys
	}
	out := make([]float64, len(xs))
	for i, b := range keys {
		if b>>63 == 1 {
			b &^= 1 << 63
		} else {
			b = ^b
		}
		out[i] = math.Float64frombits(b)
	}
	return out
}
