package store

import (
	"encoding/binary"
	"errors"
	"math"
)

// A record is the value stored under one sequence number in a partition:
// the samples of one Append that fall into that partition, in the order the
// caller gave them. Layout:
//
//	byte     format (recordFormat)
//	uvarint  count
//	varint   minT   (ms since the Unix epoch)
//	uvarint  maxT - minT
//	count × { uvarint series id; uvarint t - minT; 8 bytes IEEE-754 little endian }
//
// Values are stored bit-exactly, so NaN payloads (Prometheus stale markers)
// and ±Inf round-trip unchanged. A typical sample takes 11-14 bytes here.
const recordFormat = 1

// maxRecordSamples splits large appends so one value stays a few pages.
const maxRecordSamples = 1024

var errBadRecord = errors.New("malformed sample record")

type encSample struct {
	id uint64
	t  int64 // ms
	v  float64
}

func encodeRecord(buf []byte, ss []encSample) []byte {
	minT, maxT := ss[0].t, ss[0].t
	for _, s := range ss[1:] {
		minT = min(minT, s.t)
		maxT = max(maxT, s.t)
	}
	buf = append(buf[:0], recordFormat)
	buf = binary.AppendUvarint(buf, uint64(len(ss)))
	buf = binary.AppendVarint(buf, minT)
	buf = binary.AppendUvarint(buf, uint64(maxT-minT))
	for _, s := range ss {
		buf = binary.AppendUvarint(buf, s.id)
		buf = binary.AppendUvarint(buf, uint64(s.t-minT))
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(s.v))
	}
	return buf
}

type recordHeader struct {
	count      int
	minT, maxT int64
	body       []byte
}

func readRecordHeader(v []byte) (recordHeader, error) {
	if len(v) < 1 || v[0] != recordFormat {
		return recordHeader{}, errBadRecord
	}
	v = v[1:]
	n, w := binary.Uvarint(v)
	if w <= 0 || n > 1<<20 {
		return recordHeader{}, errBadRecord
	}
	v = v[w:]
	minT, w := binary.Varint(v)
	if w <= 0 {
		return recordHeader{}, errBadRecord
	}
	v = v[w:]
	span, w := binary.Uvarint(v)
	if w <= 0 {
		return recordHeader{}, errBadRecord
	}
	return recordHeader{count: int(n), minT: minT, maxT: minT + int64(span), body: v[w:]}, nil
}

// each calls fn for every sample of the record, stopping early when fn
// returns false.
func (h recordHeader) each(fn func(i int, s encSample) bool) error {
	b := h.body
	for i := 0; i < h.count; i++ {
		id, w := binary.Uvarint(b)
		if w <= 0 {
			return errBadRecord
		}
		b = b[w:]
		dt, w := binary.Uvarint(b)
		if w <= 0 || len(b)-w < 8 {
			return errBadRecord
		}
		b = b[w:]
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		if !fn(i, encSample{id: id, t: h.minT + int64(dt), v: v}) {
			return nil
		}
	}
	return nil
}

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
