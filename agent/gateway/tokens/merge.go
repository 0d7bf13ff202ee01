package tokens

import "math"

// Byte-pair merging, as tiktoken's _byte_pair_merge does it: start from
// single bytes and repeatedly merge the adjacent pair whose concatenation
// has the lowest rank (the leftmost one on a tie) until no adjacent pair is
// in the vocabulary. Every single byte is in both vocabularies, so every
// final part is a token.

const noRank = math.MaxInt

// heapFrom is the piece length from which merge uses a heap: the scan is
// quadratic in the piece length, which a long run of letters (one piece)
// would make an easy way to burn CPU.
const heapFrom = 64

func (b *bpe) merge(piece string, yield func(int)) {
	if len(piece) == 1 {
		yield(b.ranks[piece])
		return
	}
	if len(piece) < heapFrom {
		b.mergeScan(piece, yield)
		return
	}
	b.mergeHeap(piece, yield)
}

// mergeScan finds each merge with a linear scan: O(n²), fast for the short
// pieces that make up nearly all text.
func (b *bpe) mergeScan(piece string, yield func(int)) {
	type part struct{ start, rank int }
	var stack [heapFrom + 1]part
	parts := stack[:0]
	for i := 0; i <= len(piece); i++ {
		parts = append(parts, part{i, noRank})
	}
	rank := func(i int) int { // rank of parts i and i+1 merged
		if i+2 < len(parts) {
			if r, ok := b.ranks[piece[parts[i].start:parts[i+2].start]]; ok {
				return r
			}
		}
		return noRank
	}
	for i := 0; i+2 < len(parts); i++ {
		parts[i].rank = rank(i)
	}
	for len(parts) > 2 {
		best, at := noRank, -1
		for i, p := range parts[:len(parts)-1] {
			if p.rank < best {
				best, at = p.rank, i
			}
		}
		if at < 0 {
			break
		}
		parts = append(parts[:at+1], parts[at+2:]...)
		parts[at].rank = rank(at)
		if at > 0 {
			parts[at-1].rank = rank(at - 1)
		}
	}
	for i := 0; i+1 < len(parts); i++ {
		yield(b.ranks[piece[parts[i].start:parts[i+1].start]])
	}
}

// mergeHeap does the same merges in O(n log n): the parts are a linked
// list of boundaries, candidate pairs sit in a min-heap by (rank, start),
// and a candidate whose boundary changed since it was pushed is skipped.
func (b *bpe) mergeHeap(piece string, yield func(int)) {
	n := len(piece)
	next := make([]int32, n+1) // next boundary, -1 after the last
	prev := make([]int32, n+1)
	rank := make([]int, n+1) // rank of the pair starting at a live boundary
	for i := range next {
		next[i], prev[i], rank[i] = int32(i+1), int32(i-1), noRank
	}
	next[n] = -1
	pairRank := func(i int32) int {
		j := next[i]
		if j < 0 || next[j] < 0 {
			return noRank
		}
		if r, ok := b.ranks[piece[i:next[j]]]; ok {
			return r
		}
		return noRank
	}
	h := make(candHeap, 0, n)
	for i := int32(0); int(i)+2 <= n; i++ {
		if r := pairRank(i); r != noRank {
			rank[i] = r
			h = append(h, cand{r, i})
		}
	}
	h.init()
	for len(h) > 0 {
		c := h.pop()
		if rank[c.at] != c.rank {
			continue // stale: the pair changed after this was pushed
		}
		i := c.at
		j := next[i]
		k := next[j]
		rank[j] = noRank // j is no longer a boundary
		next[i] = k
		if k >= 0 {
			prev[k] = i
		}
		for _, at := range [2]int32{i, prev[i]} {
			if at < 0 {
				continue
			}
			rank[at] = pairRank(at)
			if rank[at] != noRank {
				h.push(cand{rank[at], at})
			}
		}
	}
	for i := int32(0); next[i] >= 0; i = next[i] {
		yield(b.ranks[piece[i:next[i]]])
	}
}

type cand struct {
	rank int
	at   int32
}

// candHeap is a min-heap by rank, then position (leftmost first).
type candHeap []cand

func (h candHeap) less(a, b int) bool {
	if h[a].rank != h[b].rank {
		return h[a].rank < h[b].rank
	}
	return h[a].at < h[b].at
}

func (h candHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candHeap) push(c cand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *candHeap) pop() cand {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	*h = s[:len(s)-1]
	h.down(0)
	return top
}

func (h candHeap) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if r := c + 1; r < len(h) && h.less(r, c) {
			c = r
		}
		if !h.less(c, i) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
