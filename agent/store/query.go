package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Aggregations accepted in QueryRequest.Agg.
const (
	AggRaw  = ""
	AggAvg  = "avg"
	AggMin  = "min"
	AggMax  = "max"
	AggLast = "last"
	AggP95  = "p95"
)

// DefaultAgg is the aggregation per step for a query that names none:
// last for a counter, avg for anything else. The store keeps no metric
// types, so a counter is known by its name, as Prometheus and OpenMetrics
// name them: a counter ends in _total, and the series a histogram or a
// summary is exposed as end in _count and _sum (and a histogram's in
// _bucket, one per le bound), which are cumulative too; the exposition
// formats reserve these suffixes for them (promtool flags a gauge named
// so). The average of a cumulative series over a step is a value between
// two readings, which answers no question; its last value is the count at
// the end of the step, and the difference between two steps is what
// happened in between.
//
// Today the store holds the agent's own GPU, host and model-server process
// samples, among which only _total names are cumulative; the other
// suffixes are here so that a histogram or summary stored later is read
// the same way.
func DefaultAgg(name string) string {
	for _, suffix := range counterSuffixes {
		if strings.HasSuffix(name, suffix) {
			return AggLast
		}
	}
	return AggAvg
}

// counterSuffixes end the names of cumulative series (see DefaultAgg).
var counterSuffixes = []string{"_total", "_count", "_sum", "_bucket"}

// QueryRequest selects series by name and label matchers over [Start, End].
//
// With Step 0 the raw points are returned and Agg must be "". With Step > 0
// Agg is required: the range is cut into buckets [Start+k·Step,
// Start+(k+1)·Step) and each non-empty bucket yields one point stamped at
// its start. NaN values (stale markers) are skipped by every aggregation; a
// bucket holding only NaN yields no point.
//
// A zero End means now; a zero Start means End minus the retention.
type QueryRequest struct {
	Name     string
	Matchers []Matcher
	Start    time.Time
	End      time.Time
	Step     time.Duration
	Agg      string
}

// Point is one value at one time.
type Point struct {
	Time  time.Time
	Value float64
}

// Series is one query result. Labels are shared with the store's index: do
// not modify them.
type Series struct {
	Name   string
	Labels Labels
	Points []Point
}

type rawPoint struct {
	t   int64
	v   float64
	ord int // append order, to keep the last of duplicate timestamps
}

// Query returns the matching series in label order, each with its points in
// time order. Of several samples with the same timestamp, the last appended
// wins. Series without points in the range are left out.
//
// Work is bounded: more than Config.QueryMaxSeries matching series, or more
// than Config.QueryMaxPoints matching samples (or Step buckets), fail with
// ErrQueryTooLarge rather than use unbounded memory. The scan reads every
// record of the partitions overlapping the range (records whose time span
// misses the range are skipped by header), so a query's cost grows with the
// data appended in its range, not with the number of series it returns.
func (s *Store) Query(ctx context.Context, q QueryRequest) ([]Series, error) {
	if q.Name == "" {
		return nil, fmt.Errorf("%w: series name is required", ErrBadQuery)
	}
	if q.End.IsZero() {
		q.End = s.now()
	}
	if q.Start.IsZero() {
		q.Start = q.End.Add(-s.cfg.Retention)
	}
	if q.End.Before(q.Start) {
		return nil, fmt.Errorf("%w: end %s is before start %s", ErrBadQuery, q.End.Format(time.RFC3339), q.Start.Format(time.RFC3339))
	}
	switch {
	case q.Step < 0:
		return nil, fmt.Errorf("%w: step must not be negative", ErrBadQuery)
	case q.Step == 0 && q.Agg != AggRaw:
		return nil, fmt.Errorf("%w: agg %q needs a step", ErrBadQuery, q.Agg)
	case q.Step > 0 && q.Agg == AggRaw:
		return nil, fmt.Errorf("%w: step needs an agg (avg, max, min, last, p95)", ErrBadQuery)
	}
	if q.Step > 0 {
		if !slices.Contains([]string{AggAvg, AggMin, AggMax, AggLast, AggP95}, q.Agg) {
			return nil, fmt.Errorf("%w: unknown agg %q (want avg, max, min, last or p95)", ErrBadQuery, q.Agg)
		}
		if q.Step < time.Millisecond {
			return nil, fmt.Errorf("%w: step must be at least 1ms", ErrBadQuery)
		}
		if n := q.End.Sub(q.Start)/q.Step + 1; n > time.Duration(s.cfg.QueryMaxPoints) {
			return nil, fmt.Errorf("%w: %d steps, at most %d (store.query_max_points)", ErrQueryTooLarge, n, s.cfg.QueryMaxPoints)
		}
	}
	ms, err := compileMatchers(q.Matchers)
	if err != nil {
		return nil, err
	}

	// Select series from the in-memory index.
	sel := map[uint64][]rawPoint{}
	s.idx.mu.RLock()
	for id, si := range s.idx.byID {
		if si.name != q.Name {
			continue
		}
		ok := true
		for _, m := range ms {
			if !m.matches(si.labels) {
				ok = false
				break
			}
		}
		if ok {
			sel[id] = nil
		}
	}
	s.idx.mu.RUnlock()
	if len(sel) > s.cfg.QueryMaxSeries {
		return nil, fmt.Errorf("%w: %d series match, at most %d (store.query_max_series); add matchers", ErrQueryTooLarge, len(sel), s.cfg.QueryMaxSeries)
	}
	if len(sel) == 0 {
		return []Series{}, nil
	}

	start, end := q.Start.UnixMilli(), q.End.UnixMilli()
	total, ord := 0, 0
	err = s.view(func(tx *bolt.Tx) error {
		parts := tx.Bucket(bucketParts)
		c := parts.Cursor()
		// Records sit in the partition of their samples' times, so only
		// partitions overlapping [start, end] are read.
		for k, _ := c.Seek(u64key(uint64(max(s.partOf(start), 0)))); k != nil; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k)) > end {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			err := parts.Bucket(k).ForEach(func(_, v []byte) error {
				h, err := readRecordHeader(v)
				if err != nil {
					return err
				}
				if h.maxT < start || h.minT > end {
					return nil
				}
				var tooMany bool
				err = h.each(func(_ int, e encSample) bool {
					pts, ok := sel[e.id]
					if !ok || e.t < start || e.t > end {
						return true
					}
					if total++; total > s.cfg.QueryMaxPoints {
						tooMany = true
						return false
					}
					ord++
					sel[e.id] = append(pts, rawPoint{t: e.t, v: e.v, ord: ord})
					return true
				})
				if tooMany {
					return fmt.Errorf("%w: more than %d points (store.query_max_points); narrow the range or add matchers", ErrQueryTooLarge, s.cfg.QueryMaxPoints)
				}
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	out := make([]Series, 0, len(sel))
	for id, pts := range sel {
		if len(pts) == 0 {
			continue
		}
		slices.SortFunc(pts, func(a, b rawPoint) int { return cmp.Or(cmp.Compare(a.t, b.t), cmp.Compare(a.ord, b.ord)) })
		// Keep the last appended of equal timestamps.
		w := 0
		for i := range pts {
			if w > 0 && pts[w-1].t == pts[i].t {
				pts[w-1] = pts[i]
				continue
			}
			pts[w] = pts[i]
			w++
		}
		pts = pts[:w]
		si := s.idx.get(id)
		if si == nil {
			continue // removed by series GC after the read: its data was evicted
		}
		ser := Series{Name: si.name, Labels: si.labels}
		if q.Step == 0 {
			ser.Points = make([]Point, len(pts))
			for i, p := range pts {
				ser.Points[i] = Point{time.UnixMilli(p.t), p.v}
			}
		} else {
			ser.Points = aggregate(pts, start, q.Step.Milliseconds(), q.Agg)
		}
		if len(ser.Points) > 0 {
			out = append(out, ser)
		}
	}
	slices.SortFunc(out, func(a, b Series) int { return cmp.Compare(a.Labels.String(), b.Labels.String()) })
	return out, nil
}

// aggregate folds time-sorted points into step buckets.
func aggregate(pts []rawPoint, start, step int64, agg string) []Point {
	var out []Point
	var vals []float64
	for i := 0; i < len(pts); {
		b := (pts[i].t - start) / step
		vals = vals[:0]
		j := i
		for ; j < len(pts) && (pts[j].t-start)/step == b; j++ {
			if !math.IsNaN(pts[j].v) {
				vals = append(vals, pts[j].v)
			}
		}
		i = j
		if len(vals) == 0 {
			continue
		}
		var v float64
		switch agg {
		case AggAvg:
			for _, x := range vals {
				v += x
			}
			v /= float64(len(vals))
		case AggMin:
			v = slices.Min(vals)
		case AggMax:
			v = slices.Max(vals)
		case AggLast:
			v = vals[len(vals)-1]
		case AggP95:
			// Nearest rank: the smallest value with at least 95% of the
			// bucket at or below it.
			slices.Sort(vals)
			v = vals[int(math.Ceil(0.95*float64(len(vals))))-1]
		}
		out = append(out, Point{time.UnixMilli(start + b*step), v})
	}
	return out
}
