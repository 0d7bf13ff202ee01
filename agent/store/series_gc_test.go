package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"
)

func ifaceSample(iface string, t time.Time, v float64) Sample {
	return Sample{Name: "net_rx", Labels: Labels{{"iface", iface}}, Time: t, Value: v}
}

// queryValues returns, per label set, the values of name in [start, end].
func queryValues(t *testing.T, s *Store, name string, start, end time.Time) map[string][]float64 {
	t.Helper()
	out, err := s.Query(context.Background(), QueryRequest{Name: name, Start: start, End: end})
	if err != nil {
		t.Fatalf("query %s: %v", name, err)
	}
	got := map[string][]float64{}
	for _, ser := range out {
		for _, p := range ser.Points {
			got[ser.Labels.String()] = append(got[ser.Labels.String()], p.Value)
		}
	}
	return got
}

func seriesNames(s *Store) []string {
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	var out []string
	for _, si := range s.idx.byID {
		out = append(out, si.name+si.labels.String())
	}
	slices.Sort(out)
	return out
}

// The audit's case: the index is full and one tick brings a new series.
// The tick's existing series are stored, so are the new series that fit,
// only the samples of the new series over the limit are dropped, counted
// and logged (at most once a minute).
func TestSeriesLimitStoresWhatFits(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.MaxSeries = 4
	var logs logBuf
	s, err := open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), options{now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := clock.Now()
	if err := s.Append(ctx, []Sample{gpuSample("0", now, 1), gpuSample("1", now, 1), ifaceSample("eth0", now, 1)}); err != nil {
		t.Fatal(err)
	}
	// One slot left; the tick brings two new series (vgx1 fits, vgx2 does
	// not), the second with two samples, one in the previous partition.
	clock.Set(start.Add(time.Hour))
	now = clock.Now()
	tick := []Sample{
		gpuSample("0", now, 2),
		ifaceSample("vgx1", now, 2),
		ifaceSample("vgx2", now, 2),
		gpuSample("1", now, 2),
		ifaceSample("eth0", now, 2),
		ifaceSample("vgx2", now.Add(-time.Minute), 3),
	}
	if err := s.Append(ctx, tick); err != nil {
		t.Fatalf("tick over max_series failed as a whole: %v", err)
	}
	gpu := queryValues(t, s, "gpu_util", start, now)
	if !slices.Equal(gpu[`{gpu="0", host="h1"}`], []float64{1, 2}) || !slices.Equal(gpu[`{gpu="1", host="h1"}`], []float64{1, 2}) {
		t.Errorf("existing gpu series after the tick: %v", gpu)
	}
	net := queryValues(t, s, "net_rx", start, now)
	want := map[string][]float64{`{iface="eth0"}`: {1, 2}, `{iface="vgx1"}`: {2}}
	if fmt.Sprint(net) != fmt.Sprint(want) {
		t.Errorf("net_rx = %v, want %v", net, want)
	}
	st := s.Stats()
	if st.Series != 4 || st.DroppedSamples[reasonSeriesLimit] != 2 || st.SamplesAppended != 3+4 {
		t.Errorf("series %d, dropped %v, appended %d; want 4, 2, 7", st.Series, st.DroppedSamples, st.SamplesAppended)
	}
	if n := st.WriteErrors[reasonSeriesLimit] + st.WriteErrors[reasonInvalidSample]; n != 0 {
		t.Errorf("a partial store counted as a write error: %v", st.WriteErrors)
	}
	logged := logs.String()
	if strings.Count(logged, "too many series") != 1 || !strings.Contains(logged, `net_rx{iface=\"vgx2\"}`) || !strings.Contains(logged, "max_series=4") {
		t.Errorf("want one line naming net_rx{iface=\"vgx2\"} and max_series=4, got:\n%s", logged)
	}

	// Within the minute: counted, not logged again.
	clock.Set(start.Add(time.Hour + 30*time.Second))
	if err := s.Append(ctx, []Sample{gpuSample("0", clock.Now(), 3), ifaceSample("vgx3", clock.Now(), 3)}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "too many series"); n != 1 {
		t.Errorf("%d log lines within a minute, want 1", n)
	}
	// A minute later: logged again, with the samples dropped meanwhile.
	clock.Set(start.Add(time.Hour + 61*time.Second))
	if err := s.Append(ctx, []Sample{ifaceSample("vgx4", clock.Now(), 4)}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "too many series"); n != 2 || !strings.Contains(logs.String(), "dropped_samples=2") {
		t.Errorf("want a second line with dropped_samples=2 after a minute:\n%s", logs.String())
	}
	if got := s.Stats().DroppedSamples[reasonSeriesLimit]; got != 4 {
		t.Errorf("dropped = %d, want 4", got)
	}
	// A batch of only new series over the limit stores nothing and is not
	// an error either; ReadFrom sees exactly what was stored.
	if n := len(readAll(t, s)); n != 3+4+1 {
		t.Errorf("ReadFrom returned %d samples, want 8", n)
	}
}

// Series whose data retention dropped leave the index at maintenance, free
// their slot under max_series, come back with a new id, and the index
// survives a restart as it was.
func TestSeriesGCAfterRetention(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.Retention = 3 * time.Hour
	cfg.MaxSeries = 3
	var logs logBuf
	s, err := open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), options{now: clock.Now, maintainEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	// gpu 0 every 10 minutes for 6 hours; two veths only in the first hour.
	for m := 0; m < 360; m += 10 {
		clock.Set(start.Add(time.Duration(m) * time.Minute))
		batch := []Sample{gpuSample("0", clock.Now(), float64(m))}
		if m < 60 {
			batch = append(batch, ifaceSample("vgx1", clock.Now(), float64(m)), ifaceSample("vgx2", clock.Now(), float64(m)))
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	oldID := s.idx.byKey[mustKey(t, ifaceSample("vgx1", start, 0))].id
	// Full: a new series is dropped.
	if err := s.Append(ctx, []Sample{ifaceSample("vgx3", clock.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().DroppedSamples[reasonSeriesLimit]; got != 1 {
		t.Fatalf("dropped %d, want 1 with the index full", got)
	}

	clock.Set(start.Add(6 * time.Hour))
	if err := s.c.exclusive(func() { s.maintain(clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	if got, want := seriesNames(s), []string{`gpu_util{gpu="0", host="h1"}`}; !slices.Equal(got, want) {
		t.Fatalf("series after retention: %v, want %v", got, want)
	}
	if st := s.Stats(); st.SeriesRemoved != 2 || st.Series != 1 {
		t.Errorf("removed %d, series %d; want 2, 1", st.SeriesRemoved, st.Series)
	}
	if !strings.Contains(logs.String(), "store removed series without data") {
		t.Errorf("GC not logged:\n%s", logs.String())
	}
	// Queries over the retained range are unchanged.
	gpu := queryValues(t, s, "gpu_util", start, clock.Now())[`{gpu="0", host="h1"}`]
	if len(gpu) != 18 || gpu[0] != 180 || gpu[17] != 350 {
		t.Errorf("gpu_util after GC: %v, want 18 points 180..350", gpu)
	}
	if net := queryValues(t, s, "net_rx", start, clock.Now()); len(net) != 0 {
		t.Errorf("net_rx after its data was dropped: %v", net)
	}

	// The freed slots take new series; vgx1 comes back under a new id.
	now := clock.Now()
	if err := s.Append(ctx, []Sample{gpuSample("0", now, 360), ifaceSample("vgx1", now, 100), ifaceSample("vgx3", now, 300)}); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().DroppedSamples[reasonSeriesLimit]; got != 1 {
		t.Errorf("dropped %d after GC freed slots, want still 1", got)
	}
	newID := s.idx.byKey[mustKey(t, ifaceSample("vgx1", start, 0))].id
	if newID <= oldID {
		t.Errorf("re-created series got id %d, want > %d (ids are not reused)", newID, oldID)
	}
	wantNet := map[string][]float64{`{iface="vgx1"}`: {100}, `{iface="vgx3"}`: {300}}
	if net := queryValues(t, s, "net_rx", start, now); fmt.Sprint(net) != fmt.Sprint(wantNet) {
		t.Errorf("net_rx = %v, want %v", net, wantNet)
	}
	for _, smp := range readAll(t, s) {
		if smp.Name == "" {
			t.Fatalf("ReadFrom returned a sample of an unknown series: %+v", smp)
		}
	}

	// Restart: the same series set, the same data.
	wantSeries := seriesNames(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = open(cfg, nil, options{now: clock.Now, maintainEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := seriesNames(s); !slices.Equal(got, wantSeries) {
		t.Errorf("series after reopen %v, want %v", got, wantSeries)
	}
	if net := queryValues(t, s, "net_rx", start, now); fmt.Sprint(net) != fmt.Sprint(wantNet) {
		t.Errorf("net_rx after reopen = %v, want %v", net, wantNet)
	}
	if got := len(queryValues(t, s, "gpu_util", start, now)[`{gpu="0", host="h1"}`]); got != 19 {
		t.Errorf("gpu_util after reopen: %d points, want 19", got)
	}
	// After a restart the store does not know where a loaded series' data
	// ends: it keeps every loaded series until the partition that was
	// newest at Open is dropped, then removes those without new samples.
	clock.Set(start.Add(10*time.Hour + time.Minute))
	if err := s.Append(ctx, []Sample{gpuSample("0", clock.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.c.exclusive(func() { s.maintain(clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	if got, want := seriesNames(s), []string{`gpu_util{gpu="0", host="h1"}`}; !slices.Equal(got, want) {
		t.Errorf("series after the data present at Open aged out: %v, want %v", got, want)
	}
}

func mustKey(t *testing.T, smp Sample) string {
	t.Helper()
	k, _, err := seriesKey(nil, smp.Name, smp.Labels)
	if err != nil {
		t.Fatal(err)
	}
	return string(k)
}

// An Append whose ids were looked up before series GC removed its series
// must not write records under the removed id: it looks the series up again
// and creates it anew.
func TestAppendRacingSeriesGC(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.Retention = 2 * time.Hour
	s := openTest(t, cfg, options{now: clock.Now, maintainEvery: time.Hour})
	if err := s.Append(ctx, []Sample{ifaceSample("vgx1", start, 1)}); err != nil {
		t.Fatal(err)
	}
	// A late sample for vgx1 (01:30, inside the retention) is prepared
	// while vgx1 is still in the index.
	clock.Set(start.Add(3*time.Hour + 30*time.Minute))
	late := []Sample{ifaceSample("vgx1", start.Add(90*time.Minute), 2)}
	b, serr := s.prepare(late)
	if serr != nil {
		t.Fatal(serr)
	}
	if b.groups[0].enc[0].id == 0 {
		t.Fatal("vgx1 not resolved from the index")
	}
	// Retention drops partition 00:00 (vgx1's data) and GC removes vgx1,
	// although prepare raised its last partition to 01:00: that partition
	// does not exist, so the oldest held one is newer.
	if err := s.Append(ctx, []Sample{gpuSample("0", clock.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.c.exclusive(func() { s.maintain(clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	if s.Stats().SeriesRemoved != 1 {
		t.Fatalf("GC removed %d series, want 1 (vgx1)", s.Stats().SeriesRemoved)
	}
	if err := s.submitBatch(ctx, late, b); err != nil {
		t.Fatal(err)
	}
	net := queryValues(t, s, "net_rx", start, clock.Now())
	if want := map[string][]float64{`{iface="vgx1"}`: {2}}; fmt.Sprint(net) != fmt.Sprint(want) {
		t.Fatalf("net_rx = %v, want %v (the sample stored under a removed id?)", net, want)
	}
}

// Series whose data max_bytes evicted leave the index too.
func TestSeriesGCAfterMaxBytes(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.MaxBytes = 2 << 20
	cfg.CompactMinBytes = 1 << 20
	cfg.Partition = 10 * time.Minute
	s := openTest(t, cfg, options{now: clock.Now, maintainEvery: time.Hour})
	if err := s.Append(ctx, []Sample{ifaceSample("vgx1", start, 1)}); err != nil {
		t.Fatal(err)
	}
	for m := 1; m < 360; m++ {
		clock.Set(start.Add(time.Duration(m) * time.Minute))
		batch := make([]Sample, 1000)
		for i := range batch {
			batch[i] = Sample{Name: "m", Labels: Labels{{"i", fmt.Sprint(i % 100)}}, Time: clock.Now().Add(time.Duration(i) * time.Millisecond), Value: float64(m)}
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatalf("minute %d: %v", m, err)
		}
	}
	st := s.Stats()
	if st.EvictedSamples == 0 {
		t.Fatal("nothing evicted over max_bytes")
	}
	if st.Series != 100 || st.SeriesRemoved != 1 {
		t.Errorf("series %d, removed %d; want 100, 1 (vgx1's only partition was evicted)", st.Series, st.SeriesRemoved)
	}
	if got := len(queryValues(t, s, "m", start, clock.Now())); got != 100 {
		t.Errorf("query m: %d series, want 100", got)
	}
}
