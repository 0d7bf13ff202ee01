package observe

import (
	"hash/maphash"
	"strconv"
	"sync"
)

// labelIndex remembers the newest request IDs with their predictions, so
// that labels arriving later can be matched. It is bounded (a ring of
// observe.label_index_size slots: the oldest entry goes when a new one
// needs its slot) and built to cost the garbage collector little: the map
// holds no pointers (64-bit hashes of request IDs to slot numbers) and a
// slot keeps the prediction as a number or a hash, which is all that
// comparing it with a label needs. Two different request IDs (or string
// predictions) with the same 64-bit hash would be confused; with 10^5
// entries the chance is about 10^-10.
type labelIndex struct {
	mu    sync.Mutex
	seed  maphash.Seed
	m     map[uint64]uint32
	slots []labelEntry // grows up to size as IDs arrive, then is reused as a ring
	size  int
	pos   int
	// byID maps pairState.labelID-1 to the pair, so that slots hold no
	// pointers; a forgotten pair's entry is nil.
	byID []*pairState
}

type labelEntry struct {
	id       uint64 // hash of the request ID; 0 for an empty slot
	pair     uint32 // pairState.labelID
	predKind Kind
	predNum  float64
	predHash uint64 // hash of a string prediction
	labelled bool
}

// newLabelIndex returns an empty index of n slots. The slots and the map
// grow as request IDs arrive instead of being allocated up front: at the
// default 100,000 slots that is about 6 MB of heap an agent that records
// few or no labelled requests never needs (and which, being live, also
// raised the garbage collector's heap goal by as much again).
func newLabelIndex(n int) labelIndex {
	return labelIndex{seed: maphash.MakeSeed(), m: make(map[uint64]uint32), size: n}
}

func (x *labelIndex) capacity() int { return x.size }

func (x *labelIndex) hash(s string) uint64 {
	h := maphash.String(x.seed, s)
	if h == 0 {
		h = 1
	}
	return h
}

// put records id; x.mu must be held.
func (x *labelIndex) put(id string, p *pairState, pred Value, labelled bool) {
	if x.pos == len(x.slots) { // still filling: the ring has not wrapped yet
		if len(x.slots) == cap(x.slots) {
			grown := make([]labelEntry, len(x.slots), min(max(2*cap(x.slots), 1024), x.size))
			copy(grown, x.slots)
			x.slots = grown
		}
		x.slots = x.slots[:x.pos+1]
	}
	slot := &x.slots[x.pos]
	if slot.id != 0 {
		if at, ok := x.m[slot.id]; ok && int(at) == x.pos {
			delete(x.m, slot.id)
		}
	}
	if p.labelID == 0 {
		x.byID = append(x.byID, p)
		p.labelID = uint32(len(x.byID))
	}
	*slot = labelEntry{id: x.hash(id), pair: p.labelID, predKind: pred.Kind, predNum: pred.Num, labelled: labelled}
	if pred.Kind == KindString {
		slot.predHash = x.hash(pred.Str)
	}
	x.m[slot.id] = uint32(x.pos)
	x.pos = (x.pos + 1) % x.size
}

// get returns id's entry and its pair, valid while x.mu is held; nil
// when unknown (or its pair was forgotten).
func (x *labelIndex) get(id string) (*labelEntry, *pairState) {
	at, ok := x.m[x.hash(id)]
	if !ok {
		return nil, nil
	}
	e := &x.slots[at]
	p := x.byID[e.pair-1]
	if p == nil {
		return nil, nil
	}
	return e, p
}

// forget drops a pair; x.mu must be held.
func (x *labelIndex) forget(p *pairState) {
	if p.labelID != 0 {
		x.byID[p.labelID-1] = nil
	}
}

// matches compares the remembered prediction with a label as Value.Equal
// does: numbers by value, anything else by canonical text.
func (x *labelIndex) matches(e *labelEntry, label Value) bool {
	switch {
	case e.predKind == KindNumber && label.Kind == KindNumber:
		return e.predNum == label.Num
	case e.predKind == KindNumber:
		return strconv.FormatFloat(e.predNum, 'g', -1, 64) == label.Str
	case e.predKind == KindString:
		return e.predHash == x.hash(label.String())
	}
	return false
}
