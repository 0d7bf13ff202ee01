package drift

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/internal/testutil"
)

// BenchmarkEvaluate20x10k measures one evaluation of a model version with
// 20 features (16 numeric, auto → ks with exact p-values; 4 categorical,
// auto → chisquare) whose reference and current windows hold 10,000
// values each, detector plugin calls included (real plugin processes,
// with drift.concurrency 1 and 4), the result stored in the history, as
// issue 5's benchmark asks.
func BenchmarkEvaluate20x10k(b *testing.B) {
	for _, c := range []int{1, 4} {
		b.Run(fmt.Sprintf("concurrency=%d", c), func(b *testing.B) { benchEvaluate(b, c) })
	}
}

func benchEvaluate(b *testing.B, concurrency int) {
	ctx := context.Background()
	rg := newRig(b)
	e := rg.open(b, Config{CurrentWindow: 10_000, AutoReference: new(bool), Concurrency: concurrency}, nil)
	r := rand.New(rand.NewPCG(1, 2))
	const n = 10_000
	name := func(i int) string { return fmt.Sprintf("f%02d", i) }
	sample := Sample{Features: map[string][]observe.Value{}}
	type pyFeature struct {
		Method string `json:"method"`
		Ref    []any  `json:"ref"`
		Cur    []any  `json:"cur"`
	}
	py := make([]pyFeature, 20)
	obs := make([]observe.Observation, n)
	now := time.Now().UnixMilli()
	for j := range obs {
		obs[j] = observe.Observation{Model: "m", Version: "v1", UnixMs: now}
	}
	for i := range 20 {
		for j := range n {
			var ref, cur observe.Value
			if i < 16 {
				ref, cur = observe.Num(r.NormFloat64()), observe.Num(r.NormFloat64()+0.01*float64(i))
			} else {
				cats := []string{"a", "b", "c", "d", "e", "f"}
				ref, cur = observe.Str(cats[r.IntN(6)]), observe.Str(cats[r.IntN(6)])
			}
			sample.Features[name(i)] = append(sample.Features[name(i)], ref)
			py[i].Ref, py[i].Cur = append(py[i].Ref, ref.Any()), append(py[i].Cur, cur.Any())
			obs[j].Features = append(obs[j].Features, observe.Feature{Name: name(i), Value: cur})
		}
	}
	if _, err := e.PinSample(ctx, "m", "v1", sample); err != nil {
		b.Fatal(err)
	}
	e.Add(obs)
	// Warm up: start the plugin processes.
	evs, err := e.Evaluate(ctx, "m", "v1")
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range evs[0].Features {
		if f.Error != "" || f.ReferenceN != n || f.CurrentN != n {
			b.Fatalf("%s: %+v", f.Feature, f)
		}
	}
	for i := range py {
		py[i].Method = evs[0].Features[i].Method
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := e.Evaluate(ctx, "m", "v1"); err != nil {
			b.Fatal(err)
		}
	}
	goMS := float64(time.Since(start).Microseconds()) / 1000 / float64(b.N)
	b.StopTimer()
	// The same computations in scipy 1.10 (Debian's /usr/bin/python3), with
	// the detectors benchmark's script: best of 5 rounds, data already in
	// numpy arrays.
	testutil.ReportScipy(b, "../../plugins/detectors/internal/methods/testdata/bench_scipy.py", py, goMS)
}

// BenchmarkAdd measures what the drift subscriber adds to each accepted
// observation batch (observe calls Add in the goroutine that stored it):
// batches of 100 observations with 10 features (8 numeric, 2 categorical)
// and a prediction, into count windows of 1,000.
func BenchmarkAdd(b *testing.B) {
	e, err := Open(Config{Path: filepath.Join(b.TempDir(), "drift.db")}, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	r := rand.New(rand.NewPCG(1, 2))
	obs := make([]observe.Observation, 100)
	for i := range obs {
		obs[i] = observe.Observation{Model: "m", Version: "v1", Prediction: observe.Num(1)}
		for f := range 10 {
			v := observe.Num(r.NormFloat64())
			if f >= 8 {
				v = observe.Str([]string{"a", "b", "c"}[r.IntN(3)])
			}
			obs[i].Features = append(obs[i].Features, observe.Feature{Name: fmt.Sprintf("f%d", f), Value: v})
		}
	}
	b.ResetTimer()
	for range b.N {
		e.Add(obs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(obs)), "ns/observation")
}
