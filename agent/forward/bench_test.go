package forward

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

// BenchmarkForwardToPrometheus measures forwarding throughput from a real
// store to a real Prometheus (remote-write receiver) on this machine: each
// iteration appends a backlog of 1000 series × 200 samples (untimed), then
// times a forwarder from start until Prometheus accepted all of it.
// Reports samples/s. Both ends share the machine's CPUs.
func BenchmarkForwardToPrometheus(b *testing.B) {
	prom := newPrometheus(b)
	for _, batch := range []int{500, 2000, 10000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) { benchForward(b, prom, batch) })
	}
}

var benchRun int

func benchForward(b *testing.B, prom *promServer, batchSamples int) {
	st := openStore(b, b.TempDir())
	const series, points = 1000, 200
	base := time.Now().Add(-20 * time.Minute).Truncate(time.Second)
	var sent uint64
	var elapsed time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		// New series each iteration, so nothing is out of order for Prometheus.
		benchRun++ // unique across runs: Prometheus outlives one b.N round
		iter := strconv.Itoa(benchRun)
		buf := make([]store.Sample, 0, series)
		for p := range points {
			buf = buf[:0]
			ts := base.Add(time.Duration(p) * time.Second)
			for s := range series {
				buf = append(buf, store.Sample{Name: "vigil_bench_value", Labels: store.Labels{
					{Name: "gpu", Value: strconv.Itoa(s % 8)}, {Name: "iter", Value: iter}, {Name: "series", Value: strconv.Itoa(s)},
				}, Time: ts, Value: float64(p)})
			}
			if err := st.Append(context.Background(), buf); err != nil {
				b.Fatal(err)
			}
		}
		f, err := New(Config{RemoteWrite: []RemoteWrite{{Name: "bench", URL: prom.writeURL(), BatchMaxSamples: batchSamples}}}, st, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		go func() { done <- f.Run(ctx) }()
		for {
			s := f.Status()[0]
			if s.State == StateIdle {
				if s.SamplesSent != series*points || s.SamplesDropped["rejected"] != 0 {
					b.Fatalf("status %+v", s)
				}
				break
			}
			time.Sleep(time.Millisecond)
		}
		elapsed += time.Since(start)
		b.StopTimer()
		sent += series * points
		cancel()
		<-done
	}
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "samples/s")
}
