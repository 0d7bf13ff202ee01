package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fakeClock is a settable clock for retention tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func testConfig(t testing.TB) Config {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "vigil.db")
	return cfg
}

func openTest(t testing.TB, cfg Config, o options) *Store {
	t.Helper()
	s, err := open(cfg, nil, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func gpuSample(gpu string, t time.Time, v float64) Sample {
	return Sample{Name: "gpu_util", Labels: Labels{{"gpu", gpu}, {"host", "h1"}}, Time: t, Value: v}
}

// countAll walks the whole store with ReadFrom and returns every sample.
func readAll(t testing.TB, s *Store) []Sample {
	t.Helper()
	var all []Sample
	var c Cursor
	for {
		got, next, err := s.ReadFrom(c, 1000)
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		if len(got) == 0 {
			return all
		}
		all = append(all, got...)
		c = next
	}
}

func TestAppendQueryRoundTrip(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := openTest(t, testConfig(t), options{now: clock.Now})
	base := clock.Now().Add(-time.Hour)
	var batch []Sample
	for i := 0; i < 120; i++ { // 120 samples 30s apart: one hour, crossing a partition boundary
		ts := base.Add(time.Duration(i) * 30 * time.Second)
		batch = append(batch, gpuSample("0", ts, float64(i)), gpuSample("1", ts, float64(100+i)))
	}
	batch = append(batch, Sample{Name: "gpu_util", Labels: Labels{{"host", "h1"}, {"gpu", "2"}}, Time: base, Value: math.NaN()}) // unsorted labels
	batch = append(batch, Sample{Name: "other", Time: base, Value: math.Inf(1)})
	if err := s.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// A late duplicate of gpu 0's first timestamp replaces it in queries.
	if err := s.Append(ctx, []Sample{gpuSample("0", base, -1)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		q      QueryRequest
		series int
		check  func(t *testing.T, out []Series)
	}{
		{"raw all gpus", QueryRequest{Name: "gpu_util"}, 3, func(t *testing.T, out []Series) {
			if out[0].Labels.Get("gpu") != "0" || len(out[0].Points) != 120 {
				t.Fatalf("gpu 0: %v %d points", out[0].Labels, len(out[0].Points))
			}
			if out[0].Points[0].Value != -1 {
				t.Errorf("duplicate timestamp: got %v, want the last appended -1", out[0].Points[0].Value)
			}
			for i := 1; i < len(out[0].Points); i++ {
				if !out[0].Points[i].Time.After(out[0].Points[i-1].Time) {
					t.Fatalf("points not in time order at %d", i)
				}
			}
			if !math.IsNaN(out[2].Points[0].Value) {
				t.Errorf("NaN not preserved: %v", out[2].Points[0].Value)
			}
		}},
		{"equal matcher", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}}, 1, nil},
		{"not equal", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchNotEqual, "gpu", "1"}}}, 2, nil},
		{"regexp", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchRegexp, "gpu", "[01]"}}}, 2, nil},
		{"not regexp", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchNotRegexp, "gpu", "0|1"}}}, 1, nil},
		{"missing label matches empty", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "pod", ""}}}, 3, nil},
		{"no such series", QueryRequest{Name: "nope"}, 0, nil},
		{"inf kept", QueryRequest{Name: "other"}, 1, func(t *testing.T, out []Series) {
			if !math.IsInf(out[0].Points[0].Value, 1) {
				t.Errorf("got %v, want +Inf", out[0].Points[0].Value)
			}
		}},
		{"time range", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base.Add(5 * time.Minute), End: base.Add(10 * time.Minute)}, 1, func(t *testing.T, out []Series) {
			if n := len(out[0].Points); n != 11 {
				t.Errorf("got %d points, want 11 (inclusive range)", n)
			}
		}},
		{"avg per 10m", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base, End: base.Add(time.Hour), Step: 10 * time.Minute, Agg: AggAvg}, 1, func(t *testing.T, out []Series) {
			p := out[0].Points
			if len(p) != 6 || p[0].Value != 109.5 || !p[1].Time.Equal(base.Add(10*time.Minute)) {
				t.Errorf("got %v", p)
			}
		}},
		{"max min last p95", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base, End: base.Add(time.Hour), Step: time.Hour, Agg: AggMax}, 1, func(t *testing.T, out []Series) {
			if v := out[0].Points[0].Value; v != 219 {
				t.Errorf("max = %v", v)
			}
		}},
		{"min", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base, Step: 2 * time.Hour, Agg: AggMin}, 1, func(t *testing.T, out []Series) {
			if v := out[0].Points[0].Value; v != 100 {
				t.Errorf("min = %v", v)
			}
		}},
		{"last", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base, Step: 2 * time.Hour, Agg: AggLast}, 1, func(t *testing.T, out []Series) {
			if v := out[0].Points[0].Value; v != 219 {
				t.Errorf("last = %v", v)
			}
		}},
		{"p95", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "1"}}, Start: base, Step: 2 * time.Hour, Agg: AggP95}, 1, func(t *testing.T, out []Series) {
			if v := out[0].Points[0].Value; v != 213 { // ceil(0.95*120)=114th smallest of 100..219
				t.Errorf("p95 = %v", v)
			}
		}},
		{"only NaN bucket yields nothing", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchEqual, "gpu", "2"}}, Start: base, Step: time.Hour, Agg: AggAvg}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := s.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != tc.series {
				t.Fatalf("got %d series, want %d: %v", len(out), tc.series, out)
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.QueryMaxPoints = 30
	cfg.QueryMaxSeries = 2
	s := openTest(t, cfg, options{})
	now := time.Now()
	var batch []Sample
	for i := 0; i < 60; i++ {
		batch = append(batch, gpuSample(fmt.Sprint(i%3), now.Add(-time.Duration(i)*time.Second), 1))
	}
	if err := s.Append(ctx, batch); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    QueryRequest
		want error
	}{
		{"no name", QueryRequest{}, ErrBadQuery},
		{"agg without step", QueryRequest{Name: "gpu_util", Agg: AggAvg}, ErrBadQuery},
		{"step without agg", QueryRequest{Name: "gpu_util", Step: time.Second}, ErrBadQuery},
		{"unknown agg", QueryRequest{Name: "gpu_util", Step: time.Second, Agg: "median"}, ErrBadQuery},
		{"end before start", QueryRequest{Name: "gpu_util", Start: now, End: now.Add(-time.Second)}, ErrBadQuery},
		{"bad regexp", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchRegexp, "gpu", "("}}}, ErrBadQuery},
		{"too many series", QueryRequest{Name: "gpu_util"}, ErrQueryTooLarge},
		{"too many points", QueryRequest{Name: "gpu_util", Matchers: []Matcher{{MatchRegexp, "gpu", "0|1"}}}, ErrQueryTooLarge},
		{"too many steps", QueryRequest{Name: "gpu_util", Start: now.Add(-time.Hour), End: now, Step: time.Second, Agg: AggAvg}, ErrQueryTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Query(ctx, tc.q)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in   string
		want Matcher
		bad  bool
	}{
		{"gpu=0", Matcher{MatchEqual, "gpu", "0"}, false},
		{"gpu!=0", Matcher{MatchNotEqual, "gpu", "0"}, false},
		{"gpu=~0|1", Matcher{MatchRegexp, "gpu", "0|1"}, false},
		{"gpu!~0", Matcher{MatchNotRegexp, "gpu", "0"}, false},
		{"gpu=", Matcher{MatchEqual, "gpu", ""}, false},
		{"=0", Matcher{}, true},
		{"gpu", Matcher{}, true},
		{"gpu!0", Matcher{}, true},
		{"gpu=~(", Matcher{}, true}, // a bad regexp is refused here, naming the matcher, not only by Query
		{"gpu!~[", Matcher{}, true},
	}
	for _, tc := range tests {
		got, err := ParseMatcher(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseMatcher(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestAppendRefusesInvalidSamples(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	s := openTest(t, testConfig(t), options{now: clock.Now})
	now := clock.Now()
	good := gpuSample("0", now, 1)
	tests := []struct {
		name  string
		bad   Sample
		field string
	}{
		{"empty name", Sample{Time: now}, "name"},
		{"zero time", Sample{Name: "x"}, "time"},
		{"older than retention", Sample{Name: "x", Time: now.Add(-25 * time.Hour)}, "time"},
		{"far future", Sample{Name: "x", Time: now.Add(time.Hour)}, "time"},
		{"duplicate label", Sample{Name: "x", Time: now, Labels: Labels{{"a", "1"}, {"a", "2"}}}, "labels"},
		{"empty label name", Sample{Name: "x", Time: now, Labels: Labels{{"", "1"}}}, "labels"},
		{"invalid utf8", Sample{Name: "x", Time: now, Labels: Labels{{"a", "\xff"}}}, "labels"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Append(ctx, []Sample{good, tc.bad})
			var se *SampleError
			if !errors.As(err, &se) || !errors.Is(err, ErrInvalidSample) || se.Index != 1 || se.Field != tc.field {
				t.Fatalf("got %v, want a SampleError for index 1 field %s", err, tc.field)
			}
		})
	}
	if n := len(readAll(t, s)); n != 0 {
		t.Fatalf("%d samples stored from refused batches, want 0", n)
	}
	if got := s.Stats().WriteErrors[reasonInvalidSample]; got != uint64(len(tests)) {
		t.Errorf("invalid_sample errors = %d, want %d", got, len(tests))
	}
}

func TestTooManySeries(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.MaxSeries = 3
	s := openTest(t, cfg, options{})
	now := time.Now()
	if err := s.Append(ctx, []Sample{gpuSample("0", now, 1), gpuSample("1", now, 1), gpuSample("2", now, 1)}); err != nil {
		t.Fatal(err)
	}
	// Over the limit: the existing series' sample is stored, the new one's
	// is dropped, and the call succeeds.
	if err := s.Append(ctx, []Sample{gpuSample("0", now, 2), gpuSample("3", now, 1)}); err != nil {
		t.Fatalf("a batch with one new series over the limit failed: %v", err)
	}
	if err := s.Append(ctx, []Sample{gpuSample("0", now.Add(time.Millisecond), 3)}); err != nil {
		t.Fatalf("existing series refused after the limit: %v", err)
	}
	st := s.Stats()
	if st.DroppedSamples[reasonSeriesLimit] != 1 || st.Series != 3 || st.SamplesAppended != 5 {
		t.Errorf("dropped %v, series %d, appended %d; want series_limit 1, 3, 5", st.DroppedSamples, st.Series, st.SamplesAppended)
	}
	if _, ok := st.WriteErrors[reasonSeriesLimit]; ok {
		t.Errorf("series_limit still counted as a write error: %v", st.WriteErrors)
	}
}

func TestConcurrentWritersShareCommits(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, testConfig(t), options{})
	const writers, appends, per = 16, 40, 10
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := 0; a < appends; a++ {
				batch := make([]Sample, per)
				for i := range batch {
					batch[i] = Sample{Name: "load", Labels: Labels{{"w", fmt.Sprint(w)}}, Time: now.Add(time.Duration(a*per+i) * time.Millisecond), Value: float64(a*per + i)}
				}
				if err := s.Append(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	all := readAll(t, s)
	if len(all) != writers*appends*per {
		t.Fatalf("stored %d samples, want %d", len(all), writers*appends*per)
	}
	seen := map[string]bool{}
	for _, smp := range all {
		seen[smp.Labels.Get("w")+"/"+fmt.Sprint(smp.Value)] = true
	}
	if len(seen) != writers*appends*per {
		t.Fatalf("%d distinct samples, want %d", len(seen), writers*appends*per)
	}
	st := s.Stats()
	if st.Commits >= writers*appends {
		t.Errorf("%d commits for %d Append calls: group commit did not group", st.Commits, writers*appends)
	}
	if st.SamplesAppended != writers*appends*per {
		t.Errorf("appended counter %d", st.SamplesAppended)
	}
	t.Logf("%d Append calls, %d commits", writers*appends, st.Commits)
}

func TestReadFromAndCursors(t *testing.T) {
	ctx := context.Background()
	clock := &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	cfg := testConfig(t)
	s := openTest(t, cfg, options{now: clock.Now})
	now := clock.Now()
	// Appends alternate between two partitions; ReadFrom must follow append order.
	var want []float64
	for i := 0; i < 30; i++ {
		ts := now.Add(-time.Duration(i%2) * time.Hour)
		batch := []Sample{gpuSample("0", ts.Add(time.Duration(i)*time.Second), float64(2*i)), gpuSample("1", ts.Add(time.Duration(i)*time.Second), float64(2*i+1))}
		want = append(want, float64(2*i), float64(2*i+1))
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	var got []float64
	var c Cursor
	for {
		batch, next, err := s.ReadFrom(c, 7) // 7 splits records in the middle
		if err != nil {
			t.Fatal(err)
		}
		if len(batch) == 0 {
			if next != c {
				t.Fatalf("empty read moved the cursor from %v to %v", c, next)
			}
			break
		}
		for _, smp := range batch {
			got = append(got, smp.Value)
			if smp.Name != "gpu_util" || smp.Labels.Get("host") != "h1" {
				t.Fatalf("sample lost its identity: %+v", smp)
			}
		}
		c = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("append order:\n got %v\nwant %v", got, want)
	}
	if _, ok, _ := s.LoadCursor("up"); ok {
		t.Fatal("unsaved cursor reported as saved")
	}
	if err := s.SaveCursor(ctx, "up", Cursor{Seq: 5, Off: 1}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, cfg, options{now: clock.Now})
	c, ok, err := s.LoadCursor("up")
	if err != nil || !ok || c != (Cursor{Seq: 5, Off: 1}) {
		t.Fatalf("LoadCursor after reopen = %v %v %v", c, ok, err)
	}
	rest, _, err := s.ReadFrom(c, 1000)
	if err != nil || len(rest) != 60-4*2-1 {
		t.Fatalf("ReadFrom(saved) = %d samples, %v; want %d", len(rest), err, 60-9)
	}
}

func TestRetentionByAge(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.Retention = 3 * time.Hour
	var logs logBuf
	s, err := open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), options{now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// One sample per 10 minutes for 6 hours, appended as the clock moves.
	for m := 0; m < 360; m += 10 {
		clock.Set(start.Add(time.Duration(m) * time.Minute))
		if err := s.Append(ctx, []Sample{gpuSample("0", clock.Now(), float64(m))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveCursor(ctx, "fwd", Cursor{Seq: 7}); err != nil { // forwarded the first 6 samples
		t.Fatal(err)
	}
	clock.Set(start.Add(6 * time.Hour))
	if err := s.c.exclusive(func() { s.maintain(clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	// Partitions ending at or before 03:00 are gone: 00:00-03:00, 18 samples.
	all := readAll(t, s)
	if len(all) != 18 || !all[0].Time.Equal(start.Add(3*time.Hour)) {
		t.Fatalf("kept %d samples from %v, want 18 from 03:00", len(all), all[0].Time)
	}
	st := s.Stats()
	if st.EvictedSamples != 18 || st.Partitions != 3 {
		t.Errorf("evicted %d, partitions %d; want 18, 3", st.EvictedSamples, st.Partitions)
	}
	if st.EvictedUnforwarded["fwd"] != 12 {
		t.Errorf("unforwarded evicted for fwd = %d, want 12", st.EvictedUnforwarded["fwd"])
	}
	if n := strings.Count(logs.String(), "store evicted old data"); n != 1 {
		t.Errorf("logged %d eviction lines for one episode, want 1:\n%s", n, logs.String())
	}
}

func TestRetentionByBytesAndCompaction(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: start}
	cfg := testConfig(t)
	cfg.MaxBytes = 2 << 20
	cfg.CompactMinBytes = 1 << 20
	cfg.Partition = 10 * time.Minute
	s := openTest(t, cfg, options{now: clock.Now, maintainEvery: time.Hour})
	// ~6MB of samples over 6 hours, far above the 2MiB cap.
	const perMinute = 1000
	for m := 0; m < 360; m++ {
		clock.Set(start.Add(time.Duration(m) * time.Minute))
		batch := make([]Sample, perMinute)
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
	all := readAll(t, s)
	if uint64(len(all))+st.EvictedSamples != 360*perMinute {
		t.Fatalf("kept %d + evicted %d != appended %d", len(all), st.EvictedSamples, 360*perMinute)
	}
	if last := all[len(all)-1]; last.Value != 359 {
		t.Fatalf("newest sample lost: last value %v", last.Value)
	}
	if first := all[0]; first.Value < 100 {
		t.Fatalf("oldest data kept (value %v) while newer was evicted", first.Value)
	}
	if used := s.usedBytes(); used > int64(cfg.MaxBytes) {
		t.Errorf("live data %d bytes > max_bytes %d", used, cfg.MaxBytes)
	}
	if st.SizeBytes > int64(cfg.MaxBytes)*3/2 {
		t.Errorf("file %d bytes, far over max_bytes %d", st.SizeBytes, cfg.MaxBytes)
	}

	// Now age everything but the newest hour out: the file must shrink.
	before := s.Stats().SizeBytes
	clock.Set(start.Add(24*time.Hour + 5*time.Hour))
	if err := s.c.exclusive(func() { s.maintain(clock.Now()) }); err != nil {
		t.Fatal(err)
	}
	after := s.Stats()
	if after.Compactions == 0 || after.SizeBytes >= before/2 {
		t.Fatalf("file %d -> %d bytes after %d compactions; want it to shrink by half", before, after.SizeBytes, after.Compactions)
	}
	// The compacted store still works.
	clock.Set(start.Add(30 * time.Hour))
	if err := s.Append(ctx, []Sample{gpuSample("0", clock.Now(), 42)}); err != nil {
		t.Fatal(err)
	}
	if out, err := s.Query(ctx, QueryRequest{Name: "gpu_util", End: clock.Now()}); err != nil || len(out) != 1 {
		t.Fatalf("query after compaction: %v %v", out, err)
	}
	t.Logf("file %d bytes before, %d after compaction", before, after.SizeBytes)
}

func TestSchemaTooNewRefused(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg, options{})
	s.Close()
	db, err := bolt.Open(cfg.Path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 99))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(cfg, nil)
	var se *SchemaError
	if !errors.Is(err, ErrSchemaTooNew) || !errors.As(err, &se) || se.Found != 99 || se.Supported != schemaVersion {
		t.Fatalf("got %v, want a SchemaError 99 > %d", err, schemaVersion)
	}
	if !strings.Contains(err.Error(), "99") || !strings.Contains(err.Error(), fmt.Sprint(schemaVersion)) {
		t.Errorf("message does not name both versions: %v", err)
	}
	if m, _ := filepath.Glob(cfg.Path + ".corrupt-*"); len(m) != 0 {
		t.Errorf("a newer file was moved aside: %v", m)
	}
}

func TestCorruptFileMovedAside(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			if err := os.WriteFile(path, bytes.Repeat([]byte("not a bolt file "), 1024), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			if err := os.Truncate(path, 100); err != nil {
				t.Fatal(err)
			}
		}},
		{"meta pages zeroed", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 2*4096), 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"foreign bolt file", func(t *testing.T, path string) {
			os.Remove(path)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err })
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			s := openTest(t, cfg, options{})
			if err := s.Append(context.Background(), []Sample{gpuSample("0", time.Now(), 1)}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			tc.corrupt(t, cfg.Path)
			var logs logBuf
			s2, err := Open(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("open after corruption: %v", err)
			}
			defer s2.Close()
			if m, _ := filepath.Glob(cfg.Path + ".corrupt-*"); len(m) != 1 {
				t.Fatalf("corrupt file not moved aside: %v", m)
			}
			if !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("not logged at ERROR: %s", logs.String())
			}
			if err := s2.Append(context.Background(), []Sample{gpuSample("0", time.Now(), 2)}); err != nil {
				t.Fatalf("fresh store does not work: %v", err)
			}
		})
	}
}

func TestOpenLockedIsNotCorrupt(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg, options{})
	_ = s
	start := time.Now()
	_, err := Open(cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "another agent") {
		t.Fatalf("second Open of a locked file: %v", err)
	}
	if m, _ := filepath.Glob(cfg.Path + ".corrupt-*"); len(m) != 0 {
		t.Fatalf("a locked file was moved aside: %v", m)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("lock wait too long")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring; "" means valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"zero means default", func(c *Config) { *c = Config{} }, ""},
		{"negative retention", func(c *Config) { c.Retention = -time.Hour }, "store.retention"},
		{"tiny retention", func(c *Config) { c.Retention = time.Second }, "store.retention"},
		{"tiny max_bytes", func(c *Config) { c.MaxBytes = 1000 }, "store.max_bytes"},
		{"partition not dividing a day", func(c *Config) { c.Partition = 7 * time.Hour }, "store.partition"},
		{"partition longer than retention", func(c *Config) { c.Retention = time.Hour; c.Partition = 2 * time.Hour }, "store.partition"},
		{"negative max_series", func(c *Config) { c.MaxSeries = -1 }, "store.max_series"},
		{"commit delay too long", func(c *Config) { c.CommitDelay = 2 * time.Second }, "store.commit_delay"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	if got := (Config{}).WithDataDir("/var/lib/vigil").Path; got != "/var/lib/vigil/vigil.db" {
		t.Errorf("WithDataDir: %q", got)
	}
	if got := (Config{Path: "/x.db"}).WithDataDir("/var/lib/vigil").Path; got != "/x.db" {
		t.Errorf("WithDataDir overrode an explicit path: %q", got)
	}
}
