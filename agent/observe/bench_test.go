package observe

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchBody is a batch as a model server sends it: n observations with
// 10 features (8 numeric, 2 categorical), latency, status, prediction and
// request_id.
func benchBody(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	items := make([]map[string]any, n)
	for j := range items {
		f := map[string]any{}
		for k := range 10 {
			if k%5 == 4 {
				f["cat_"+strconv.Itoa(k)] = []string{"red", "green", "blue"}[r.IntN(3)]
			} else {
				f["num_"+strconv.Itoa(k)] = float64(int(r.NormFloat64()*1e4)) / 1e3
			}
		}
		items[j] = map[string]any{"model": "fraud", "version": "v1", "latency_ms": r.ExpFloat64() * 20,
			"status": 200, "features": f, "prediction": r.IntN(2), "request_id": fmt.Sprintf("req-%d-%d", seed, j)}
	}
	b, _ := json.Marshal(map[string]any{"observations": items})
	return b
}

// BenchmarkParse measures decoding and validating a 100-item batch.
//
//	go test -run '^$' -bench BenchmarkParse ./agent/observe
func BenchmarkParse(b *testing.B) {
	body := benchBody(100, 1)
	cfg := DefaultConfig()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ParseObservations(body, false, cfg, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "obs/s")
}

// BenchmarkIngest measures Ingest of parsed 100-item batches (store commit
// with fsync, windows, label index) from 8 goroutines.
//
//	go test -run '^$' -bench BenchmarkIngest ./agent/observe
func BenchmarkIngest(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Path = filepath.Join(b.TempDir(), "obs.db")
	s, err := Open(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	obs, err := ParseObservations(benchBody(100, 1), false, cfg, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.Ingest(context.Background(), obs); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "obs/s")
}
