package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a settable clock for staleness tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// gpuOnly is a config with just the GPU collector.
func gpuOnly() Config {
	c := DefaultConfig()
	c.Host.Enabled = false
	return c
}

func newTel(t testing.TB, cfg Config, opts ...Option) *Telemetry {
	t.Helper()
	tel, err := New(cfg, testLogger(t), opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		for _, st := range tel.states {
			st.c.close()
		}
	})
	return tel
}

// tickAll runs one tick of every collector, synchronously.
func tickAll(t testing.TB, tel *Telemetry) {
	t.Helper()
	for _, st := range tel.states {
		tel.tick(context.Background(), st)
	}
}

// gather registers tel on a fresh registry and gathers, which also checks
// label consistency and duplicates.
func gather(t testing.TB, tel *Telemetry) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(tel)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// scrape serves tel through promhttp like the agent will and returns the
// text exposition.
func scrape(t testing.TB, tel *Telemetry) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(tel)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	return string(b)
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	panic("unexpected metric type")
}

// series finds the one series of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		l := labelsOf(m)
		for k, v := range want {
			if l[k] != v {
				continue next
			}
		}
		return valueOf(m), true
	}
	return 0, false
}

func count(mfs map[string]*dto.MetricFamily, name string) int {
	if mf := mfs[name]; mf != nil {
		return len(mf.GetMetric())
	}
	return 0
}

func mustSeries(t testing.TB, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := series(mfs, name, want)
	if !ok {
		t.Fatalf("no series %s%v; have %s", name, want, familyNames(mfs))
	}
	return v
}

func familyNames(mfs map[string]*dto.MetricFamily) string {
	var n []string
	for k := range mfs {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

func statusOf(t testing.TB, tel *Telemetry, name string) CollectorStatus {
	t.Helper()
	for _, s := range tel.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %q", name)
	return CollectorStatus{}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func gpuLabel(i int) map[string]string { return map[string]string{"gpu": fmt.Sprint(i)} }

// Short names for go-nvml types used in closures in the host tests.
type (
	nvmlProcessInfo = nvml.ProcessInfo
	nvmlReturn      = nvml.Return
)

const nvmlSuccess = nvml.SUCCESS
