package store

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSeries is a realistic label set: 8 GPUs × 60 metrics.
func benchBatch(w, n int, base time.Time, k int) []Sample {
	batch := make([]Sample, n)
	for i := range batch {
		batch[i] = Sample{
			Name:   fmt.Sprintf("vigil_gpu_metric_%d", (i/8)%60),
			Labels: Labels{{"gpu", fmt.Sprint(i % 8)}, {"host", "node-1"}, {"writer", fmt.Sprint(w)}},
			Time:   base.Add(time.Duration(k) * time.Millisecond),
			Value:  float64(k*n + i),
		}
	}
	return batch
}

// BenchmarkAppend measures acknowledged (committed and fsynced) samples per
// second and the latency of each Append, with the store's own group-commit
// writer ("committer") and with bbolt's DB.Batch ("boltbatch") for
// comparison. Each Append carries per samples (100, or 480: one tick of 8
// GPUs × 60 metrics); b.N counts Append calls.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 3s ./agent/store
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []string{"committer", "boltbatch"} {
		for _, per := range []int{100, 480} {
			for _, writers := range []int{1, 4, 16} {
				b.Run(fmt.Sprintf("%s/per=%d/writers=%d", mode, per, writers), func(b *testing.B) {
					benchAppend(b, mode == "boltbatch", writers, per)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, boltBatch bool, writers, per int) {
	ctx := context.Background()
	cfg := testConfig(b)
	if d, err := time.ParseDuration(os.Getenv("VIGIL_BENCH_COMMIT_DELAY")); err == nil {
		cfg.CommitDelay = d
	}
	s := openTest(b, cfg, options{useBoltBatch: boltBatch})
	base := time.Now()
	for w := 0; w < writers; w++ { // create the series outside the timing
		if err := s.Append(ctx, benchBatch(w, per, base, 0)); err != nil {
			b.Fatal(err)
		}
	}
	commits0 := s.c.commits.Load()
	var next atomic.Int64
	lat := make([][]time.Duration, writers)
	// Label sets are built once per writer, as a sampler keeps its series;
	// each Append gets fresh timestamps and values.
	tmpl := make([][]Sample, writers)
	for w := range tmpl {
		tmpl[w] = benchBatch(w, per, base, 0)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1)
				if k > int64(b.N) {
					return
				}
				batch := slices.Clone(tmpl[w])
				for i := range batch {
					batch[i].Time = base.Add(time.Duration(k) * time.Millisecond)
					batch[i].Value = float64(k)
				}
				t0 := time.Now()
				if err := s.Append(ctx, batch); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 {
		return
	}
	q := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000 }
	b.ReportMetric(float64(b.N*per)/elapsed.Seconds(), "samples/s")
	b.ReportMetric(q(0.50), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	if !boltBatch {
		b.ReportMetric(float64(b.N)/float64(max(1, s.c.commits.Load()-commits0)), "appends/commit")
	}
}

// BenchmarkBytesPerSample reports the bytes one sample takes on disk: live
// pages (used) and the whole file (file), after appending b.N batches of
// 1000 samples over 480 series, as a telemetry sampler would.
//
//	go test -run '^$' -bench BenchmarkBytesPerSample -benchtime 300x ./agent/store
func BenchmarkBytesPerSample(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, testConfig(b), options{})
	base := time.Now().Add(-time.Hour)
	for i := 0; b.Loop(); i++ {
		batch := benchBatch(0, 480, base.Add(time.Duration(i)*time.Second), 0)
		if err := s.Append(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * 480)
	var used int64
	_ = s.c.exclusive(func() { used = s.usedBytes() })
	fi, err := os.Stat(s.cfg.Path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(used)/n, "used_bytes/sample")
	b.ReportMetric(float64(fi.Size())/n, "file_bytes/sample")
}
