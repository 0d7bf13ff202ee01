package forward

import (
	"math"
	"slices"
	"strings"

	"github.com/klauspost/compress/snappy"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vigilml/vigil/agent/store"
)

// The remote_write 1.0 message, written by hand with protowire (field
// numbers from prometheus/prompb types.proto and remote.proto):
//
//	message WriteRequest { repeated TimeSeries timeseries = 1; }
//	message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	message Label        { string name = 1; string value = 2; }
//	message Sample       { double value = 1; int64 timestamp = 2; }  // ms
//
// Metadata, exemplars and native histograms are not sent.
const (
	fieldTimeseries  protowire.Number = 1
	fieldTSLabels    protowire.Number = 1
	fieldTSSamples   protowire.Number = 2
	fieldLabelName   protowire.Number = 1
	fieldLabelValue  protowire.Number = 2
	fieldSampleValue protowire.Number = 1
	fieldSampleTime  protowire.Number = 2
)

const metricNameLabel = "__name__"

type label struct{ name, value string }

type rwSample struct {
	t int64 // ms
	v float64
}

// series is one TimeSeries of a batch.
type series struct {
	labels  []label
	samples []rwSample
	size    int // encoded size of the TimeSeries body
}

// batch accumulates store samples into a WriteRequest, grouping samples
// of one series and keeping the exact encoded size, so that a batch can
// be cut before it passes batch_max_bytes.
type batch struct {
	series  []*series
	index   map[string]int
	keyBuf  []byte
	size    int // encoded size of the WriteRequest
	samples int
	minT    int64 // oldest sample time, ms
	free    []*series

	raw, compressed []byte // reused encode buffers

	ext []label // external labels, sorted by name
}

func newBatch() *batch { return &batch{index: map[string]int{}} }

func (b *batch) reset() {
	for _, s := range b.series {
		s.labels, s.samples, s.size = s.labels[:0], s.samples[:0], 0
		b.free = append(b.free, s)
	}
	b.series = b.series[:0]
	clear(b.index)
	b.size, b.samples, b.minT = 0, 0, math.MaxInt64
}

func sizeField(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func labelSize(l label) int {
	return sizeField(len(l.name)) + sizeField(len(l.value))
}

func sampleSize(s rwSample) int {
	return 1 + 8 + 1 + protowire.SizeVarint(uint64(s.t))
}

// add appends smp. It returns false, adding nothing, when the sample would
// make the request larger than maxBytes (unless the batch is empty, so a
// batch always makes progress), and invalid when the sample's name or
// labels are not acceptable to Prometheus (it is then not added).
func (b *batch) add(smp store.Sample, maxBytes int) (ok, invalid bool) {
	key := append(b.keyBuf[:0], smp.Name...)
	for _, l := range smp.Labels {
		key = append(key, 0xff)
		key = append(key, l.Name...)
		key = append(key, 0xfe)
		key = append(key, l.Value...)
	}
	b.keyBuf = key
	rs := rwSample{t: smp.Time.UnixMilli(), v: smp.Value}
	ss := sampleSize(rs) + 1 + 1 // field tag and length (< 128) in TimeSeries

	i, known := b.index[string(key)]
	if known {
		s := b.series[i]
		grow := ss + protowire.SizeVarint(uint64(s.size+ss)) - protowire.SizeVarint(uint64(s.size))
		if b.samples > 0 && b.size+grow > maxBytes {
			return false, false
		}
		s.samples = append(s.samples, rs)
		s.size += ss
		b.size += grow
	} else {
		if !validMetricName(smp.Name) {
			return true, true
		}
		var s *series
		if n := len(b.free); n > 0 {
			s, b.free = b.free[n-1], b.free[:n-1]
		} else {
			s = &series{}
		}
		var ok bool
		s.labels, ok = promLabels(s.labels[:0], smp.Name, smp.Labels, b.ext)
		if !ok {
			b.free = append(b.free, s)
			return true, true
		}
		size := ss
		for _, l := range s.labels {
			size += 1 + protowire.SizeVarint(uint64(labelSize(l))) + labelSize(l)
		}
		grow := sizeField(size)
		if b.samples > 0 && b.size+grow > maxBytes {
			b.free = append(b.free, s)
			return false, false
		}
		s.samples = append(s.samples[:0], rs)
		s.size = size
		b.index[string(key)] = len(b.series)
		b.series = append(b.series, s)
		b.size += grow
	}
	b.samples++
	b.minT = min(b.minT, rs.t)
	return true, false
}

// times returns the batch's distinct sample times in ms, oldest first.
func (b *batch) times() []int64 {
	var ts []int64
	for _, s := range b.series {
		for _, smp := range s.samples {
			ts = append(ts, smp.t)
		}
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// since makes dst a copy of b holding only the samples at or after t (ms),
// series in the same order.
func (b *batch) since(t int64, dst *batch) {
	dst.reset()
	dst.ext = b.ext
	for _, s := range b.series {
		var d *series
		for _, smp := range s.samples {
			if smp.t < t {
				continue
			}
			if d == nil {
				if n := len(dst.free); n > 0 {
					d, dst.free = dst.free[n-1], dst.free[:n-1]
				} else {
					d = &series{}
				}
				d.labels = append(d.labels[:0], s.labels...)
				d.samples = d.samples[:0]
				d.size = 0
				for _, l := range d.labels {
					d.size += 1 + protowire.SizeVarint(uint64(labelSize(l))) + labelSize(l)
				}
				dst.series = append(dst.series, d)
			}
			d.samples = append(d.samples, smp)
			d.size += sampleSize(smp) + 1 + 1
			dst.samples++
			dst.minT = min(dst.minT, smp.t)
		}
	}
	for _, d := range dst.series {
		dst.size += sizeField(d.size)
	}
}

// promLabels returns the series' labels as Prometheus wants them: the
// metric name as __name__, labels with empty values left out (Prometheus
// treats them as absent), everything sorted by name. A __name__ label in
// the store's labels is ignored in favour of the sample's Name. ok is
// false when a label name is not a valid Prometheus label name.
func promLabels(dst []label, name string, ls store.Labels, ext []label) ([]label, bool) {
	dst = append(dst, label{metricNameLabel, name})
	for _, l := range ls {
		if l.Value == "" || l.Name == metricNameLabel {
			continue
		}
		if !validLabelName(l.Name) {
			return dst, false
		}
		dst = append(dst, label{l.Name, l.Value})
	}
	own := len(dst)
	for _, e := range ext {
		if !slices.ContainsFunc(dst[:own], func(l label) bool { return l.name == e.name }) {
			dst = append(dst, e)
		}
	}
	// The store keeps labels sorted, so only __name__ may be out of place
	// (it sorts after upper-case names).
	if !slices.IsSortedFunc(dst, cmpLabel) {
		slices.SortFunc(dst, cmpLabel)
	}
	return dst, true
}

func cmpLabel(a, b label) int { return strings.Compare(a.name, b.name) }

// encode returns the snappy-compressed WriteRequest. The returned slice is
// reused by the next encode.
func (b *batch) encode() []byte {
	buf := b.raw[:0]
	for _, s := range b.series {
		buf = protowire.AppendTag(buf, fieldTimeseries, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(s.size))
		for _, l := range s.labels {
			buf = protowire.AppendTag(buf, fieldTSLabels, protowire.BytesType)
			buf = protowire.AppendVarint(buf, uint64(labelSize(l)))
			buf = protowire.AppendTag(buf, fieldLabelName, protowire.BytesType)
			buf = protowire.AppendString(buf, l.name)
			buf = protowire.AppendTag(buf, fieldLabelValue, protowire.BytesType)
			buf = protowire.AppendString(buf, l.value)
		}
		for _, smp := range s.samples {
			buf = protowire.AppendTag(buf, fieldTSSamples, protowire.BytesType)
			buf = protowire.AppendVarint(buf, uint64(sampleSize(smp)))
			buf = protowire.AppendTag(buf, fieldSampleValue, protowire.Fixed64Type)
			buf = protowire.AppendFixed64(buf, math.Float64bits(smp.v))
			buf = protowire.AppendTag(buf, fieldSampleTime, protowire.VarintType)
			buf = protowire.AppendVarint(buf, uint64(smp.t))
		}
	}
	b.raw = buf
	b.compressed = snappy.Encode(b.compressed[:cap(b.compressed)], buf)
	return b.compressed
}

// validMetricName is Prometheus' metric name syntax: [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validLabelName is Prometheus' label name syntax: [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
