package observe

import (
	"strconv"
	"testing"
)

// The index grows as IDs arrive, never past its size, and once full
// forgets the oldest IDs first, as a preallocated ring would.
func TestLabelIndexGrowsThenRings(t *testing.T) {
	const size = 2500
	x := newLabelIndex(size)
	if len(x.slots) != 0 || x.capacity() != size {
		t.Fatalf("new index: %d slots allocated, capacity %d", len(x.slots), x.capacity())
	}
	p := &pairState{}
	for i := range size + 700 {
		x.put("req-"+strconv.Itoa(i), p, Value{Kind: KindNumber, Num: float64(i)}, false)
		if cap(x.slots) > size {
			t.Fatalf("after %d IDs the slots' capacity is %d, more than the size %d", i+1, cap(x.slots), size)
		}
	}
	for i := range size + 700 {
		e, _ := x.get("req-" + strconv.Itoa(i))
		switch {
		case i < 700 && e != nil:
			t.Fatalf("req-%d should have been forgotten (oldest of %d in a ring of %d)", i, size+700, size)
		case i >= 700 && (e == nil || !x.matches(e, Value{Kind: KindNumber, Num: float64(i)})):
			t.Fatalf("req-%d: entry %+v, want its prediction %d", i, e, i)
		}
	}
	if len(x.m) != size {
		t.Fatalf("map holds %d IDs, want %d", len(x.m), size)
	}
}
