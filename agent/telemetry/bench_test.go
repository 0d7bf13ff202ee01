package telemetry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// BenchmarkCollect8GPUs measures one GPU sampling tick plus one /metrics
// scrape (gather and text encoding) with 8 simulated GPUs and DCGM names on:
// the agent's per-second work on a DGX-class host, minus the real driver's
// own cost. Run: go test -run '^$' -bench Collect8GPUs -benchmem ./agent/telemetry/
func BenchmarkCollect8GPUs(b *testing.B) {
	cfg := gpuOnly()
	cfg.GPU.DCGMCompatibleNames = true
	tel := newTel(b, cfg, withNVML(newMockNVML(8, time.Now)), WithHostname("bench"))
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	st := tel.states[0]
	ctx := context.Background()
	tel.tick(ctx, st)
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for b.Loop() {
		tel.tick(ctx, st)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("scrape: %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkHostTick measures one host (gopsutil) tick on this machine.
func BenchmarkHostTick(b *testing.B) {
	tel := newTel(b, hostOnly())
	st := tel.states[0]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		tel.tick(ctx, st)
	}
}
