package observe

import (
	"encoding/binary"
	"errors"
	"math"
)

// On disk, one accepted batch is one record in bucket "obs", keyed by
// (receive time in ms, sequence) big-endian, so keys sort by arrival and
// retention deletes a prefix. A record starts with a summary per (model,
// version) (counts and timestamp range) so that start-up can rebuild totals
// without decoding every feature, then holds the observations:
//
//	format byte (1)
//	uvarint pairs; per pair: model, version, uvarint count, uvarint errors,
//	  varint min and max UnixMs, uvarint inline labels, uvarint correct ones,
//	  uvarint latencies, float64 their sum
//	uvarint n; per observation:
//	  uvarint pair index, varint UnixMs, flags byte,
//	  [float64 latency] [uvarint status] [request_id] [prediction] [label]
//	  uvarint features; per feature: name, value
//
// Strings are uvarint length + bytes; a value is a kind byte, then 8 bytes
// of float64 or a string. Label records (bucket "labels", same keys) hold
// each label with what it was matched to.

const recordFormat = 1

const (
	flLatency = 1 << iota
	flError
	flStatus
	flRequestID
	flPrediction
	flLabel
)

var errRecord = errors.New("observe: malformed record")

type enc struct{ b []byte }

func (e *enc) uv(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) sv(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string) {
	e.uv(uint64(len(s)))
	e.b = append(e.b, s...)
}
func (e *enc) f64(f float64) { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(f)) }
func (e *enc) val(v Value) {
	e.b = append(e.b, byte(v.Kind))
	switch v.Kind {
	case KindNumber:
		e.f64(v.Num)
	case KindString:
		e.str(v.Str)
	}
}

type pairKey struct{ model, version string }

// pairSummary is one (model, version)'s share of a record.
type pairSummary struct {
	key            pairKey
	count, errors  uint64
	minMs, maxMs   int64
	labelled, good uint64  // items carrying their own label, and correct ones
	latCount       uint64  // items with latency_ms
	latSum         float64 // their sum, ms
}

func summarize(obs []Observation) []pairSummary {
	var out []pairSummary
	for i := range obs {
		o := &obs[i]
		k := pairKey{o.Model, o.Version}
		j := len(out) - 1
		if j < 0 || out[j].key != k {
			for j = 0; j < len(out) && out[j].key != k; j++ {
			}
			if j == len(out) {
				out = append(out, pairSummary{key: k, minMs: o.UnixMs, maxMs: o.UnixMs})
			}
		}
		s := &out[j]
		s.count++
		if o.Error {
			s.errors++
		}
		s.minMs, s.maxMs = min(s.minMs, o.UnixMs), max(s.maxMs, o.UnixMs)
		if o.HasLatency {
			s.latCount++
			s.latSum += o.LatencyMs
		}
		if !o.Label.IsNone() && !o.Prediction.IsNone() {
			s.labelled++
			if o.Prediction.Equal(o.Label) {
				s.good++
			}
		}
	}
	return out
}

func encodeObservations(buf []byte, sums []pairSummary, obs []Observation) []byte {
	e := enc{b: buf}
	e.b = append(e.b, recordFormat)
	e.uv(uint64(len(sums)))
	for _, s := range sums {
		e.str(s.key.model)
		e.str(s.key.version)
		e.uv(s.count)
		e.uv(s.errors)
		e.sv(s.minMs)
		e.sv(s.maxMs)
		e.uv(s.labelled)
		e.uv(s.good)
		e.uv(s.latCount)
		e.f64(s.latSum)
	}
	e.uv(uint64(len(obs)))
	last := 0
	for i := range obs {
		o := &obs[i]
		k := pairKey{o.Model, o.Version}
		if sums[last].key != k {
			for last = 0; sums[last].key != k; last++ {
			}
		}
		e.uv(uint64(last))
		e.sv(o.UnixMs)
		var fl byte
		if o.HasLatency {
			fl |= flLatency
		}
		if o.Error {
			fl |= flError
		}
		if o.Status != 0 {
			fl |= flStatus
		}
		if o.RequestID != "" {
			fl |= flRequestID
		}
		if !o.Prediction.IsNone() {
			fl |= flPrediction
		}
		if !o.Label.IsNone() {
			fl |= flLabel
		}
		e.b = append(e.b, fl)
		if o.HasLatency {
			e.f64(o.LatencyMs)
		}
		if o.Status != 0 {
			e.uv(uint64(o.Status))
		}
		if o.RequestID != "" {
			e.str(o.RequestID)
		}
		if !o.Prediction.IsNone() {
			e.val(o.Prediction)
		}
		if !o.Label.IsNone() {
			e.val(o.Label)
		}
		e.uv(uint64(len(o.Features)))
		for _, f := range o.Features {
			e.str(f.Name)
			e.val(f.Value)
		}
	}
	return e.b
}

type dec struct {
	b   []byte
	err error
	// names interns repeated strings (feature names) across a decode.
	names map[string]string
}

func (d *dec) uv() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errRecord, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) sv() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = errRecord, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) byte1() byte {
	if len(d.b) < 1 {
		d.err = errRecord
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *dec) raw() []byte {
	n := d.uv()
	if uint64(len(d.b)) < n {
		d.err, d.b = errRecord, nil
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *dec) str() string { return string(d.raw()) }

func (d *dec) name() string {
	b := d.raw()
	if d.names == nil {
		return string(b)
	}
	if s, ok := d.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.names) < 4096 {
		d.names[s] = s
	}
	return s
}

func (d *dec) f64() float64 {
	if len(d.b) < 8 {
		d.err, d.b = errRecord, nil
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *dec) val() Value {
	switch Kind(d.byte1()) {
	case KindNone:
		return Value{}
	case KindNumber:
		return Num(d.f64())
	case KindString:
		return Str(d.str())
	}
	d.err = errRecord
	return Value{}
}

// skipVal steps over a value.
func (d *dec) skipVal() {
	switch Kind(d.byte1()) {
	case KindNone:
	case KindNumber:
		if len(d.b) < 8 {
			d.err, d.b = errRecord, nil
			return
		}
		d.b = d.b[8:]
	case KindString:
		d.raw()
	default:
		d.err = errRecord
	}
}

// decodeSummary reads only a record's per-pair summary.
func decodeSummary(v []byte) ([]pairSummary, *dec, error) {
	d := &dec{b: v}
	if d.byte1() != recordFormat {
		return nil, nil, errRecord
	}
	n := d.uv()
	if n > 1<<20 {
		return nil, nil, errRecord
	}
	sums := make([]pairSummary, 0, n)
	for range n {
		s := pairSummary{key: pairKey{d.str(), d.str()}}
		s.count, s.errors = d.uv(), d.uv()
		s.minMs, s.maxMs = d.sv(), d.sv()
		s.labelled, s.good = d.uv(), d.uv()
		s.latCount, s.latSum = d.uv(), d.f64()
		sums = append(sums, s)
	}
	return sums, d, d.err
}

// decodeObservations reads a whole record. names, when not nil, interns
// feature names across calls.
func decodeObservations(v []byte, names map[string]string) ([]Observation, error) {
	return decodeRecord(v, names, false)
}

// decodeRecord reads a record, without the features when skipFeatures
// (start-up needs only what the windows and the label index keep).
func decodeRecord(v []byte, names map[string]string, skipFeatures bool) ([]Observation, error) {
	sums, d, err := decodeSummary(v)
	if err != nil {
		return nil, err
	}
	d.names = names
	n := d.uv()
	if n > uint64(len(v)) {
		return nil, errRecord
	}
	out := make([]Observation, n)
	for i := range out {
		o := &out[i]
		pi := d.uv()
		if pi >= uint64(len(sums)) {
			return nil, errRecord
		}
		o.Model, o.Version = sums[pi].key.model, sums[pi].key.version
		o.UnixMs = d.sv()
		fl := d.byte1()
		if fl&flLatency != 0 {
			o.LatencyMs, o.HasLatency = d.f64(), true
		}
		o.Error = fl&flError != 0
		if fl&flStatus != 0 {
			o.Status = int(d.uv())
		}
		if fl&flRequestID != 0 {
			o.RequestID = d.str()
		}
		if fl&flPrediction != 0 {
			o.Prediction = d.val()
		}
		if fl&flLabel != 0 {
			o.Label = d.val()
		}
		nf := d.uv()
		if nf > uint64(len(d.b)) {
			return nil, errRecord
		}
		if skipFeatures {
			for range nf {
				d.raw()
				d.skipVal()
			}
		} else if nf > 0 {
			o.Features = make([]Feature, nf)
			for j := range o.Features {
				o.Features[j].Name = d.name()
				o.Features[j].Value = d.val()
			}
		}
		if d.err != nil {
			return nil, d.err
		}
	}
	return out, d.err
}

// labelOutcome is one label as stored: what it matched, if anything.
type labelOutcome struct {
	Label
	matched bool
	key     pairKey
	correct bool
}

func encodeLabels(outs []labelOutcome) []byte {
	e := enc{}
	e.b = append(e.b, recordFormat)
	e.uv(uint64(len(outs)))
	for _, l := range outs {
		e.str(l.RequestID)
		e.val(l.Value)
		var fl byte
		if l.matched {
			fl = 1
			if l.correct {
				fl |= 2
			}
		}
		e.b = append(e.b, fl)
		if l.matched {
			e.str(l.key.model)
			e.str(l.key.version)
		}
	}
	return e.b
}

func decodeLabels(v []byte) ([]labelOutcome, error) {
	d := &dec{b: v}
	if d.byte1() != recordFormat {
		return nil, errRecord
	}
	n := d.uv()
	if n > uint64(len(v)) {
		return nil, errRecord
	}
	out := make([]labelOutcome, n)
	for i := range out {
		l := &out[i]
		l.RequestID = d.str()
		l.Value = d.val()
		fl := d.byte1()
		l.matched, l.correct = fl&1 != 0, fl&2 != 0
		if l.matched {
			l.key = pairKey{d.str(), d.str()}
		}
	}
	return out, d.err
}

// recordKey is (receive time ms, sequence), both big-endian.
func recordKey(ms int64, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(ms))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func keyTime(k []byte) int64 {
	if len(k) < 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k))
}
