package drift

import (
	"math/rand/v2"

	"github.com/vigilml/vigil/agent/observe"
)

// window is the current window of one feature. It is not safe for
// concurrent use; the version state's mutex guards it.
type window interface {
	// add records one value observed at tMs (Unix milliseconds).
	add(tMs int64, v observe.Value)
	// sample returns a copy of the window's values as of nowMs.
	sample(nowMs int64) []observe.Value
}

// ring is the count window: the last n values. Its buffer grows as values
// arrive, so an idle feature costs little.
type ring struct {
	n    int
	buf  []observe.Value
	next int
	full bool
}

func newRing(n int) *ring { return &ring{n: n} }

func (w *ring) add(_ int64, v observe.Value) {
	if !w.full {
		if len(w.buf) == cap(w.buf) {
			nb := make([]observe.Value, len(w.buf), min(w.n, max(64, 2*cap(w.buf))))
			copy(nb, w.buf)
			w.buf = nb
		}
		w.buf = append(w.buf, v)
		w.full = len(w.buf) == w.n
		return
	}
	w.buf[w.next] = v
	w.next = (w.next + 1) % w.n
}

func (w *ring) sample(int64) []observe.Value {
	out := make([]observe.Value, 0, len(w.buf))
	out = append(out, w.buf[w.next:]...)
	return append(out, w.buf[:w.next]...)
}

// timeSlots is how many sub-intervals a time window is cut into.
const timeSlots = 8

// timeWindow is the time window: the values of the last span, kept as a
// uniform random sample of at most capacity values.
//
// The span is cut into timeSlots sub-intervals; each keeps a reservoir of
// up to capacity values by Vitter's Algorithm R (the k-th value of the
// slot replaces a random element with probability capacity/k) and counts
// the values it saw. A slot is dropped once its whole sub-interval is older
// than span, so the window covers between span and span + span/timeSlots.
// sample draws from each live slot a share proportional to the values that
// slot saw (largest-remainder rounding), without replacement, so every value
// seen in the window is equally likely to be in the sample whatever the
// traffic pattern. Memory: at most timeSlots x capacity values.
type timeWindow struct {
	span     int64 // ms
	slotLen  int64 // ms
	capacity int
	slots    [timeSlots]slot
	rng      *rand.Rand
}

type slot struct {
	start int64 // ms, multiple of slotLen; 0 when unused
	seen  int
	res   []observe.Value
}

func newTimeWindow(spanMs int64, capacity int, rng *rand.Rand) *timeWindow {
	sl := max(1, spanMs/timeSlots)
	return &timeWindow{span: spanMs, slotLen: sl, capacity: capacity, rng: rng}
}

func (w *timeWindow) add(tMs int64, v observe.Value) {
	start := tMs - tMs%w.slotLen
	i := int((start / w.slotLen) % timeSlots)
	s := &w.slots[i]
	if s.start != start {
		if s.start > start && s.seen > 0 {
			return // older than what the slot holds now: outside the window
		}
		s.start, s.seen, s.res = start, 0, s.res[:0]
	}
	s.seen++
	if len(s.res) < w.capacity {
		s.res = append(s.res, v)
		return
	}
	if j := w.rng.IntN(s.seen); j < w.capacity {
		s.res[j] = v
	}
}

func (w *timeWindow) live(s *slot, nowMs int64) bool {
	return s.seen > 0 && s.start+w.slotLen > nowMs-w.span && s.start <= nowMs
}

func (w *timeWindow) sample(nowMs int64) []observe.Value {
	total, held := 0, 0
	for i := range w.slots {
		if s := &w.slots[i]; w.live(s, nowMs) {
			total += s.seen
			held += len(s.res)
		}
	}
	n := min(w.capacity, held)
	if n == 0 {
		return nil
	}
	// Largest-remainder allocation of n draws in proportion to seen.
	type share struct {
		i    int
		k    int
		frac float64
	}
	var shares []share
	given := 0
	for i := range w.slots {
		s := &w.slots[i]
		if !w.live(s, nowMs) {
			continue
		}
		exact := float64(n) * float64(s.seen) / float64(total)
		k := int(exact)
		shares = append(shares, share{i, k, exact - float64(k)})
		given += k
	}
	for given < n {
		best := -1
		for j := range shares {
			if shares[j].k < len(w.slots[shares[j].i].res) && (best < 0 || shares[j].frac > shares[best].frac) {
				best = j
			}
		}
		if best < 0 {
			break
		}
		shares[best].k++
		shares[best].frac = -1
		given++
	}
	out := make([]observe.Value, 0, n)
	for _, sh := range shares {
		res := w.slots[sh.i].res
		k := min(sh.k, len(res))
		if k == len(res) {
			out = append(out, res...)
			continue
		}
		// Partial Fisher-Yates on a copy: k distinct elements.
		cp := append([]observe.Value(nil), res...)
		for j := 0; j < k; j++ {
			r := j + w.rng.IntN(len(cp)-j)
			cp[j], cp[r] = cp[r], cp[j]
		}
		out = append(out, cp[:k]...)
	}
	return out
}
