package observe

import (
	"fmt"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// Sliding windows are rings of time buckets, merged on read. The 1m and 5m
// windows read a ring of 10-second buckets; the 1h window a ring of
// 1-minute buckets. A window of length W read at time now covers the
// bucket holding now plus the W/step buckets before it, so it spans
// between W and W+step (1m: 60-70 s; 5m: 300-310 s; 1h: 60-61 min); the
// covered span is reported with the stats and used for throughput.
//
// Each bucket keeps counts and a DDSketch of latencies (1% relative
// accuracy, logarithmic mapping, dense store collapsing its lowest bins
// past 2048 bins, which only happens when latencies span more than 17
// orders of magnitude). Sketches are created on first use.

// Windows the API and /metrics offer.
var Windows = []time.Duration{time.Minute, 5 * time.Minute, time.Hour}

// WindowName is "1m", "5m" or "1h".
func WindowName(w time.Duration) string {
	switch w {
	case time.Minute:
		return "1m"
	case 5 * time.Minute:
		return "5m"
	case time.Hour:
		return "1h"
	}
	return w.String()
}

// ParseWindow accepts 1m, 5m and 1h.
func ParseWindow(s string) (time.Duration, error) {
	for _, w := range Windows {
		if WindowName(w) == s {
			return w, nil
		}
	}
	return 0, fmt.Errorf("%q is not one of 1m, 5m, 1h", s)
}

const (
	fineStep     = int64(10_000) // ms
	fineSlots    = 31            // 5m + the current bucket
	coarseStep   = int64(60_000)
	coarseSlots  = 61 // 1h + the current bucket
	sketchBins   = 2048
	relativeAccu = 0.01
)

// Quantiles reported for latency.
var Quantiles = []float64{0.5, 0.95, 0.99}

func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(relativeAccu, sketchBins)
	if err != nil {
		panic(err) // constant, valid arguments
	}
	return s
}

type bucket struct {
	start             int64 // ms; -1 when never used
	count, errors     uint64
	labelled, correct uint64
	sketch            *ddsketch.DDSketch
}

type ring struct {
	step  int64
	slots []bucket
}

func newRing(step int64, n int) ring {
	r := ring{step: step, slots: make([]bucket, n)}
	for i := range r.slots {
		r.slots[i].start = -1
	}
	return r
}

// at returns the bucket for time ms, recycling the slot when it holds an
// older bucket; nil when the slot already holds a newer one (ms is too old
// for the ring).
func (r *ring) at(ms int64) *bucket {
	if ms < 0 {
		return nil
	}
	start := ms - ms%r.step
	b := &r.slots[(ms/r.step)%int64(len(r.slots))]
	switch {
	case b.start == start:
		return b
	case b.start > start:
		return nil
	}
	b.start, b.count, b.errors, b.labelled, b.correct = start, 0, 0, 0, 0
	if b.sketch != nil {
		b.sketch.Clear()
	}
	return b
}

func (b *bucket) addLatency(ms float64) {
	if b.sketch == nil {
		b.sketch = newSketch()
	}
	_ = b.sketch.Add(ms) // finite and >= 0: validated on input
}

// pairWindows are the two rings of one (model, version).
type pairWindows struct {
	fine, coarse ring
}

func newPairWindows() pairWindows {
	return pairWindows{fine: newRing(fineStep, fineSlots), coarse: newRing(coarseStep, coarseSlots)}
}

// add folds one observation in at time ms (clamped to now by the caller).
func (w *pairWindows) add(ms int64, o *Observation) {
	for _, r := range []*ring{&w.fine, &w.coarse} {
		b := r.at(ms)
		if b == nil {
			continue
		}
		b.count++
		if o.Error {
			b.errors++
		}
		if o.HasLatency {
			b.addLatency(o.LatencyMs)
		}
		if !o.Label.IsNone() && !o.Prediction.IsNone() {
			b.labelled++
			if o.Prediction.Equal(o.Label) {
				b.correct++
			}
		}
	}
}

// addLabel counts a label matched at time ms.
func (w *pairWindows) addLabel(ms int64, correct bool) {
	for _, r := range []*ring{&w.fine, &w.coarse} {
		if b := r.at(ms); b != nil {
			b.labelled++
			if correct {
				b.correct++
			}
		}
	}
}

// WindowStats are one (model, version)'s figures over one window.
type WindowStats struct {
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Window  string    `json:"window"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	// Requests and Errors count observations by their timestamp.
	Requests uint64 `json:"requests"`
	Errors   uint64 `json:"errors"`
	// ErrorRate is Errors/Requests; nil without requests.
	ErrorRate *float64 `json:"error_rate"`
	// RequestsPerSecond is Requests over the covered span (from the later
	// of From and the pair's first observation, to To), at least 1 s.
	RequestsPerSecond float64 `json:"requests_per_second"`
	// Latency percentiles in milliseconds from the merged sketch; nil when
	// no observation in the window carried latency_ms.
	LatencyCount uint64   `json:"latency_count"`
	LatencyP50Ms *float64 `json:"latency_p50_ms"`
	LatencyP95Ms *float64 `json:"latency_p95_ms"`
	LatencyP99Ms *float64 `json:"latency_p99_ms"`
	// Labelled predictions in the window (by the time the label arrived)
	// and how many equalled their label; Accuracy is nil without labels.
	Labelled uint64   `json:"labelled"`
	Correct  uint64   `json:"correct"`
	Accuracy *float64 `json:"accuracy"`
	// Sketch is the merged latency sketch of the window (milliseconds),
	// for callers that merge further (fleet stats); nil without latencies.
	Sketch *ddsketch.DDSketch `json:"-"`
}

// stats merges the buckets of window w at now. firstMs is the pair's first
// observation, which shortens the span for throughput.
func (w *pairWindows) stats(win time.Duration, now time.Time, firstMs int64) WindowStats {
	r := &w.fine
	if win > time.Duration(fineStep*(fineSlots-1))*time.Millisecond {
		r = &w.coarse
	}
	nowMs := now.UnixMilli()
	cur := nowMs - nowMs%r.step
	from := cur - win.Milliseconds()
	st := WindowStats{Window: WindowName(win), From: time.UnixMilli(from).UTC(), To: now.UTC()}
	var merged *ddsketch.DDSketch
	for i := range r.slots {
		b := &r.slots[i]
		if b.start < from || b.start > cur {
			continue
		}
		st.Requests += b.count
		st.Errors += b.errors
		st.Labelled += b.labelled
		st.Correct += b.correct
		if b.sketch != nil && !b.sketch.IsEmpty() {
			if merged == nil {
				merged = b.sketch.Copy()
			} else {
				_ = merged.MergeWith(b.sketch)
			}
		}
	}
	if st.Requests > 0 {
		er := float64(st.Errors) / float64(st.Requests)
		st.ErrorRate = &er
	}
	// A first observation stamped ahead of the agent's clock (within
	// observe.max_future_skew) counts as now, as it does in the buckets;
	// the span is at least a second, so that a burst just received does
	// not read as thousands per second.
	start := max(from, min(firstMs, nowMs))
	if st.Requests > 0 {
		st.RequestsPerSecond = float64(st.Requests) / max(float64(nowMs-start)/1000, 1)
	}
	if merged != nil {
		st.Sketch = merged
		st.LatencyCount = uint64(merged.GetCount())
		qs, err := merged.GetValuesAtQuantiles(Quantiles)
		if err == nil {
			st.LatencyP50Ms, st.LatencyP95Ms, st.LatencyP99Ms = &qs[0], &qs[1], &qs[2]
		}
	}
	if st.Labelled > 0 {
		acc := float64(st.Correct) / float64(st.Labelled)
		st.Accuracy = &acc
	}
	return st
}
