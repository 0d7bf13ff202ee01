package observe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *clock {
	// Mid-bucket, so that "now" is not on a bucket edge.
	return &clock{t: time.Date(2026, 11, 27, 12, 0, 5, 0, time.UTC)}
}

func openTest(t testing.TB, cfg Config, c *clock) *Service {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "obs.db")
	}
	s, err := Open(cfg, Options{Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ingest(t testing.TB, s *Service, obs ...Observation) {
	t.Helper()
	if err := s.Ingest(context.Background(), obs); err != nil {
		t.Fatal(err)
	}
}

func obsAt(c *clock, model, version string, latency float64) Observation {
	return Observation{Model: model, Version: version, UnixMs: c.now().UnixMilli(), LatencyMs: latency, HasLatency: true}
}

func stats(t testing.TB, s *Service, model, version string, w time.Duration) WindowStats {
	t.Helper()
	st, ok := s.Stats(model, version, w)
	if !ok || len(st) != 1 {
		t.Fatalf("stats of %s/%s: ok=%v %+v", model, version, ok, st)
	}
	return st[0]
}

// exactQuantile is the element a DDSketch quantile approximates: rank
// q*(n-1), rounded down, of the sorted values.
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Floor(q*float64(len(sorted)-1)))]
}

// TestSketchAccuracy: the percentiles reported for a window are within 1%
// of the exact percentiles of the latencies sent, for several shapes.
func TestSketchAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	shapes := map[string]func() float64{
		"lognormal":    func() float64 { return math.Exp(r.NormFloat64()*1.2 + 3) },
		"uniform":      func() float64 { return 1 + r.Float64()*500 },
		"heavy tail":   func() float64 { return 5 / math.Pow(r.Float64()+1e-9, 0.8) },
		"bimodal":      func() float64 { return []float64{2, 250}[r.IntN(2)] * (1 + r.Float64()/10) },
		"with zeros":   func() float64 { return float64(r.IntN(3)) * r.Float64() * 40 },
		"sub-ms":       func() float64 { return r.Float64() * 0.9 },
		"few distinct": func() float64 { return float64(1 + r.IntN(5)) },
	}
	for name, gen := range shapes {
		t.Run(name, func(t *testing.T) {
			c := newClock()
			s := openTest(t, Config{}, c)
			var sent []float64
			for b := range 20 {
				batch := make([]Observation, 500)
				for i := range batch {
					batch[i] = obsAt(c, "m", "v", gen())
					sent = append(sent, batch[i].LatencyMs)
				}
				ingest(t, s, batch...)
				if b%5 == 4 {
					c.add(10 * time.Second) // spread over several buckets
				}
			}
			slices.Sort(sent)
			for _, w := range []time.Duration{time.Minute, 5 * time.Minute, time.Hour} {
				st := stats(t, s, "m", "v", w)
				if st.LatencyCount != uint64(len(sent)) {
					t.Fatalf("%s: latency count %d, want %d", WindowName(w), st.LatencyCount, len(sent))
				}
				for i, got := range []*float64{st.LatencyP50Ms, st.LatencyP95Ms, st.LatencyP99Ms} {
					want := exactQuantile(sent, Quantiles[i])
					if got == nil {
						t.Fatalf("%s q%v: no value", WindowName(w), Quantiles[i])
					}
					if math.Abs(*got-want) > 0.01*math.Abs(want) {
						t.Errorf("%s q%v: sketch %v, exact %v: relative error %.4f > 1%%", WindowName(w), Quantiles[i], *got, want, math.Abs(*got-want)/want)
					}
				}
			}
		})
	}
}

func TestWindowsSlideOut(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	batch := []Observation{obsAt(c, "m", "v", 10), obsAt(c, "m", "v", 20), obsAt(c, "m", "v", 30)}
	batch[2].Error = true
	ingest(t, s, batch...)
	check := func(when string, want map[time.Duration]uint64) {
		t.Helper()
		for w, n := range want {
			st := stats(t, s, "m", "v", w)
			if st.Requests != n {
				t.Errorf("%s: %s window has %d requests, want %d", when, WindowName(w), st.Requests, n)
			}
			if n == 0 && (st.ErrorRate != nil || st.LatencyP50Ms != nil || st.RequestsPerSecond != 0) {
				t.Errorf("%s: empty %s window reports %+v", when, WindowName(w), st)
			}
			if n == 3 {
				if st.Errors != 1 || st.ErrorRate == nil || math.Abs(*st.ErrorRate-1.0/3) > 1e-12 {
					t.Errorf("%s: %s errors %d rate %v", when, WindowName(w), st.Errors, st.ErrorRate)
				}
			}
		}
	}
	check("at once", map[time.Duration]uint64{time.Minute: 3, 5 * time.Minute: 3, time.Hour: 3})
	c.add(55 * time.Second) // still inside: the 1m window spans 60-70 s
	check("after 55s", map[time.Duration]uint64{time.Minute: 3, 5 * time.Minute: 3, time.Hour: 3})
	c.add(20 * time.Second)
	check("after 75s", map[time.Duration]uint64{time.Minute: 0, 5 * time.Minute: 3, time.Hour: 3})
	c.add(5 * time.Minute)
	check("after 6m15s", map[time.Duration]uint64{time.Minute: 0, 5 * time.Minute: 0, time.Hour: 3})
	c.add(56 * time.Minute)
	check("after 62m15s", map[time.Duration]uint64{time.Minute: 0, 5 * time.Minute: 0, time.Hour: 0})
	// Totals stay.
	if m := s.Models(0); len(m) != 1 || m[0].Versions[0].Observations != 3 || m[0].Versions[0].Errors != 1 {
		t.Errorf("models: %+v", m)
	}
	// A window reused by new data forgets the old.
	ingest(t, s, obsAt(c, "m", "v", 99))
	if st := stats(t, s, "m", "v", time.Hour); st.Requests != 1 || *st.LatencyP99Ms < 98 {
		t.Errorf("new data after the slide: %+v", st)
	}
}

func TestThroughput(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	// 600 observations spread over the last 60 s, then read at +60 s.
	for range 60 {
		batch := make([]Observation, 10)
		for i := range batch {
			batch[i] = obsAt(c, "m", "v", 1)
		}
		ingest(t, s, batch...)
		c.add(time.Second)
	}
	st := stats(t, s, "m", "v", time.Minute)
	// The first observation came 60 s ago: 600 / 60 s.
	if math.Abs(st.RequestsPerSecond-10) > 0.5 {
		t.Errorf("rps %v, want about 10 (%+v)", st.RequestsPerSecond, st)
	}
}

// TestThroughputFutureFirst: a version whose first observation is stamped
// ahead of the agent's clock (within observe.max_future_skew) counts it as
// now for throughput too, instead of reporting 0 requests per second for a
// window that holds requests; a burst just received divides by 1 s.
func TestThroughputFutureFirst(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	o := obsAt(c, "m", "v", 1)
	o.UnixMs += (2 * time.Minute).Milliseconds()
	ingest(t, s, o, obsAt(c, "m", "v", 1))
	st := stats(t, s, "m", "v", time.Minute)
	if st.Requests != 2 || st.RequestsPerSecond != 2 {
		t.Errorf("requests %d, rps %v; want 2 and 2 (%+v)", st.Requests, st.RequestsPerSecond, st)
	}
	c.add(4 * time.Second)
	if st := stats(t, s, "m", "v", time.Minute); st.RequestsPerSecond != 0.5 {
		t.Errorf("4 s later: rps %v, want 0.5 (%+v)", st.RequestsPerSecond, st)
	}
}

func TestLabelsAndAccuracy(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	var batch []Observation
	for i := range 10 {
		o := obsAt(c, "clf", "v1", 5)
		o.RequestID = fmt.Sprint("r", i)
		o.Prediction = Str("cat")
		if i >= 5 {
			o.Prediction = Num(1)
		}
		batch = append(batch, o)
	}
	inline := obsAt(c, "clf", "v1", 5)
	inline.Prediction, inline.Label = Str("dog"), Str("dog")
	batch = append(batch, inline)
	noPred := obsAt(c, "clf", "v1", 5)
	noPred.RequestID = "nopred"
	batch = append(batch, noPred)
	ingest(t, s, batch...)

	res, err := s.AddLabels(context.Background(), []Label{
		{"r0", Str("cat")}, {"r1", Str("dog")}, {"r5", Num(1)}, {"r6", Str("1")}, {"r7", Num(0)},
		{"r0", Str("dog")}, {"unknown", Num(1)}, {"nopred", Num(1)},
	})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus := []string{LabelMatched, LabelMatched, LabelMatched, LabelMatched, LabelMatched, LabelDuplicate, LabelUnknown, LabelUnknown}
	wantCorrect := []bool{true, false, true, true, false}
	for i, r := range res {
		if r.Status != wantStatus[i] || r.Index != i {
			t.Errorf("result %d: %+v, want status %s", i, r, wantStatus[i])
		}
		if i < len(wantCorrect) && (r.Correct == nil || *r.Correct != wantCorrect[i] || r.Model != "clf" || r.Version != "v1") {
			t.Errorf("result %d: %+v, want correct %v", i, r, wantCorrect[i])
		}
	}
	// 5 labels + 1 inline, 4 correct.
	for _, w := range Windows {
		st := stats(t, s, "clf", "v1", w)
		if st.Labelled != 6 || st.Correct != 4 || st.Accuracy == nil || math.Abs(*st.Accuracy-4.0/6) > 1e-12 {
			t.Errorf("%s: %+v", WindowName(w), st)
		}
	}
	// Accuracy windows follow label arrival.
	c.add(2 * time.Minute)
	if st := stats(t, s, "clf", "v1", time.Minute); st.Labelled != 0 || st.Accuracy != nil {
		t.Errorf("labels slid out of 1m: %+v", st)
	}
	if _, err := s.AddLabels(context.Background(), []Label{{"r8", Str("cat")}}); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s, "clf", "v1", time.Minute); st.Labelled != 1 || *st.Accuracy != 0 {
		t.Errorf("a late label counts when it arrives: %+v", st)
	}
	if v := s.Models(0)[0].Versions[0]; v.Labelled != 7 || v.Correct != 4 {
		t.Errorf("totals: %+v", v)
	}
}

func TestLabelIndexIsBounded(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{LabelIndexSize: 3}, c)
	for i := range 5 {
		o := obsAt(c, "m", "v", 1)
		o.RequestID, o.Prediction = fmt.Sprint("r", i), Num(1)
		ingest(t, s, o)
	}
	res, err := s.AddLabels(context.Background(), []Label{{"r0", Num(1)}, {"r1", Num(1)}, {"r2", Num(1)}, {"r4", Num(1)}})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{res[0].Status, res[1].Status, res[2].Status, res[3].Status}
	if !slices.Equal(got, []string{LabelUnknown, LabelUnknown, LabelMatched, LabelMatched}) {
		t.Errorf("statuses %v: the two oldest request IDs should be forgotten", got)
	}
}

func TestMaxModels(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{MaxModels: 2}, c)
	ingest(t, s, obsAt(c, "a", "1", 1), obsAt(c, "a", "2", 1))
	err := s.Ingest(context.Background(), []Observation{obsAt(c, "a", "1", 1), obsAt(c, "b", "1", 1)})
	var le *LimitError
	if !errors.As(err, &le) || le.Index != 1 || le.Field != "version" {
		t.Fatalf("got %v", err)
	}
	if _, ok := s.Stats("b", "", time.Minute); ok {
		t.Error("refused pair is tracked")
	}
	if st := stats(t, s, "a", "1", time.Minute); st.Requests != 1 {
		t.Errorf("refused batch was half-written: %+v", st)
	}
	// Once a pair is idle for a retention it is forgotten and room is made.
	c.add(25 * time.Hour)
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	ingest(t, s, obsAt(c, "b", "1", 1))
	if len(s.Models(0)) != 1 {
		t.Errorf("models after forgetting: %+v", s.Models(0))
	}
}

// TestRestartKeepsStats: totals, windows, accuracy and the label index
// come back from the file.
func TestRestartKeepsStats(t *testing.T) {
	c := newClock()
	cfg := Config{Path: filepath.Join(t.TempDir(), "obs.db")}
	s := openTest(t, cfg, c)
	r := rand.New(rand.NewPCG(1, 1))
	for b := range 30 {
		batch := make([]Observation, 50)
		for i := range batch {
			batch[i] = obsAt(c, "m", fmt.Sprint("v", i%2), r.ExpFloat64()*30)
			batch[i].Error = i%10 == 0
			batch[i].RequestID = fmt.Sprintf("r%d-%d", b, i)
			batch[i].Prediction = Num(float64(i % 3))
			batch[i].Features = []Feature{{"x", Num(float64(i))}, {"c", Str("k")}}
		}
		ingest(t, s, batch...)
		c.add(7 * time.Second)
	}
	if _, err := s.AddLabels(context.Background(), []Label{{"r0-0", Num(0)}, {"r0-1", Num(0)}}); err != nil {
		t.Fatal(err)
	}
	before := map[string]WindowStats{}
	for _, v := range []string{"v0", "v1"} {
		for _, w := range Windows {
			before[v+WindowName(w)] = stats(t, s, "m", v, w)
		}
	}
	models := s.Models(0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, cfg, c)
	if got := s2.Models(0); jsonText(t, got) != jsonText(t, models) {
		t.Errorf("models after restart:\n%+v\nwant\n%+v", got, models)
	}
	for _, v := range []string{"v0", "v1"} {
		for _, w := range Windows {
			got, want := stats(t, s2, "m", v, w), before[v+WindowName(w)]
			got.To, want.To = time.Time{}, time.Time{}
			if g, wj := jsonText(t, got), jsonText(t, want); g != wj {
				t.Errorf("%s %s after restart:\n%+v\nwant\n%+v", v, WindowName(w), g, wj)
			}
		}
	}
	res, err := s2.AddLabels(context.Background(), []Label{{"r0-0", Num(0)}, {"r29-3", Num(0)}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != LabelDuplicate || res[1].Status != LabelMatched || !*res[1].Correct {
		t.Errorf("label index after restart: %+v", res)
	}
}

func jsonText(t testing.TB, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScanAndSubscribe(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	var got []Observation
	cancel := s.Subscribe(func(obs []Observation) {
		got = append(got, obs...)
	})
	start := c.now()
	for i := range 300 {
		o := obsAt(c, "m", fmt.Sprint("v", i%2), float64(i))
		o.Features = []Feature{{"i", Num(float64(i))}}
		other := obsAt(c, "other", "v0", 1)
		ingest(t, s, o, other)
		c.add(time.Second)
	}
	cancel()
	ingest(t, s, obsAt(c, "m", "v0", 1))
	if len(got) != 600 {
		t.Fatalf("subscriber saw %d observations, want 600", len(got))
	}
	var seen []float64
	err := s.Scan(context.Background(), "m", "v1", start.Add(100*time.Second), start.Add(200*time.Second), func(o *Observation) bool {
		seen = append(seen, o.Feature("i").Num)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for i := 101; i < 200; i += 2 {
		want = append(want, float64(i))
	}
	if !slices.Equal(seen, want) {
		t.Errorf("scan: %v, want %v", seen, want)
	}
	vals, err := s.FeatureValues(context.Background(), "m", "v0", "i", start, c.now(), 3)
	if err != nil || fmt.Sprint(vals) != "[0 2 4]" {
		t.Errorf("feature values: %v %v", vals, err)
	}
	preds, _ := s.FeatureValues(context.Background(), "m", "v0", "", start, c.now(), 0)
	if len(preds) != 0 {
		t.Errorf("predictions of observations without one: %v", preds)
	}
	n := 0
	_ = s.Scan(context.Background(), "m", "", start, c.now().Add(time.Second), func(*Observation) bool { n++; return n < 5 })
	if n != 5 {
		t.Errorf("scan did not stop when told: %d", n)
	}
}

func TestRetentionAndMaxBytes(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{MaxBytes: 1 << 20}, c)
	for range 3 {
		ingest(t, s, obsAt(c, "m", "v", 1))
	}
	c.add(23 * time.Hour)
	ingest(t, s, obsAt(c, "m", "v", 1))
	c.add(2 * time.Hour)
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.m.evicted.Load(); n != 3 {
		t.Errorf("retention evicted %d, want 3", n)
	}
	n := 0
	_ = s.Scan(context.Background(), "m", "", c.now().Add(-48*time.Hour), c.now(), func(*Observation) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d observations left, want 1", n)
	}
	// Fill past max_bytes: the oldest go first.
	big := make([]Observation, 1000)
	for i := range big {
		big[i] = obsAt(c, "m", "v", 1)
		big[i].Features = []Feature{{"blob", Str(fmt.Sprintf("%0200d", i))}}
	}
	for range 10 {
		ingest(t, s, big...)
	}
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b := s.liveBytes.Load(); b > 1<<20 {
		t.Errorf("%d bytes stored after maintenance, over max_bytes", b)
	}
	if s.m.evicted.Load() < 3+1000 {
		t.Errorf("max_bytes evicted only %d", s.m.evicted.Load())
	}
}

func TestRecordRoundTrip(t *testing.T) {
	obs := []Observation{
		{Model: "a", Version: "1", UnixMs: 5, LatencyMs: 1.5, HasLatency: true, Status: 503, Error: true,
			Features: []Feature{{"x", Num(-2)}, {"y", Str("é")}}, Prediction: Str("p"), RequestID: "r", Label: Num(3)},
		{Model: "b", Version: "2", UnixMs: -1},
		{Model: "a", Version: "1", UnixMs: 7, Prediction: Num(0.25)},
	}
	sums := summarize(obs)
	got, err := decodeObservations(encodeObservations(nil, sums, obs), nil)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(obs) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", got, obs)
	}
	if len(sums) != 2 || sums[0].count != 2 || sums[0].errors != 1 || sums[0].minMs != 5 || sums[0].maxMs != 7 || sums[0].latCount != 1 {
		t.Errorf("summary %+v", sums)
	}
	if _, err := decodeObservations([]byte{1, 5}, nil); err == nil {
		t.Error("truncated record decoded")
	}
}

// TestMaintainKeepsReservedPairs: Maintain running while a batch is being
// stored (between reserve and apply) must not forget the batch's pair,
// neither a fresh one (no observation applied yet) nor an idle one being
// revived; otherwise the batch is durable but missing from the stats
// until a restart.
func TestMaintainKeepsReservedPairs(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	ingest(t, s, obsAt(c, "m", "idle", 1))
	c.add(25 * time.Hour)
	for _, version := range []string{"fresh", "idle"} {
		obs := []Observation{obsAt(c, "m", version, 1)}
		sums := summarize(obs)
		states, _, err := s.reserve(sums, obs, c.now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Maintain(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.apply(c.now().UnixMilli(), sums, states, obs, true)
		st := stats(t, s, "m", version, time.Minute)
		if st.Requests != 1 {
			t.Errorf("%s: a batch stored while Maintain ran is missing from the stats: %d requests, want 1", version, st.Requests)
		}
	}
	// A pair that nothing reserved for a retention is still forgotten.
	c.add(25 * time.Hour)
	if err := s.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := s.Tracked(); n != 0 {
		t.Errorf("%d pairs tracked after a whole idle retention, want 0", n)
	}
}

// TestRefusedBatchAddsNoPairs: a batch refused for observe.max_models
// stores nothing and tracks none of the new pairs it named before the one
// over the limit (they used to stay, empty, filling the table so that
// every new model was refused).
func TestRefusedBatchAddsNoPairs(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{MaxModels: 3}, c)
	ingest(t, s, obsAt(c, "a", "1", 1))
	err := s.Ingest(context.Background(), []Observation{obsAt(c, "b", "1", 1), obsAt(c, "b", "2", 1), obsAt(c, "b", "3", 1)})
	var le *LimitError
	if !errors.As(err, &le) || le.Index != 2 {
		t.Fatalf("got %v, want a limit error at item 2", err)
	}
	if n := s.Tracked(); n != 1 {
		t.Errorf("%d pairs tracked after the refused batch, want 1", n)
	}
	if _, ok := s.Stats("b", "", time.Minute); ok {
		t.Error("model b of the refused batch is listed")
	}
	ingest(t, s, obsAt(c, "c", "1", 1), obsAt(c, "c", "2", 1))
}

// TestFailedWriteLeavesNoReservation: a batch whose write failed leaves
// the pair it added to the next Maintain (which forgets it, as nothing of
// it was stored) instead of keeping it reserved for a retention.
func TestFailedWriteLeavesNoReservation(t *testing.T) {
	c := newClock()
	s := openTest(t, Config{}, c)
	ingest(t, s, obsAt(c, "a", "1", 1))
	s.kv.Close()
	if err := s.Ingest(context.Background(), []Observation{obsAt(c, "z", "1", 1)}); err == nil {
		t.Fatal("write to a closed store succeeded")
	}
	_ = s.Maintain(context.Background()) // its deletes fail on the closed store
	if _, ok := s.Stats("z", "", time.Minute); ok {
		t.Error("the pair of a batch that was not stored is still tracked after Maintain")
	}
	if _, ok := s.Stats("a", "", time.Minute); !ok {
		t.Error("a stored pair was forgotten")
	}
}
