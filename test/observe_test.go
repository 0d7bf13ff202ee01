package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func postJSON(t *testing.T, url string, body any) (int, map[string]any) {
	t.Helper()
	b, ok := body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %d with undecodable body: %v", url, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

type versionStats struct {
	Version      string   `json:"version"`
	Requests     uint64   `json:"requests"`
	Errors       uint64   `json:"errors"`
	LatencyCount uint64   `json:"latency_count"`
	LatencyP50Ms *float64 `json:"latency_p50_ms"`
	LatencyP95Ms *float64 `json:"latency_p95_ms"`
	LatencyP99Ms *float64 `json:"latency_p99_ms"`
	Labelled     uint64   `json:"labelled"`
	Correct      uint64   `json:"correct"`
}

func modelStats(t *testing.T, base, model, query string) (int, []versionStats) {
	t.Helper()
	code, body := get(t, base+"/v1/models/"+model+"/stats?"+query, "")
	var out struct {
		Versions []versionStats `json:"versions"`
	}
	if code == 200 {
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
	}
	return code, out.Versions
}

func observeConfig(t *testing.T) string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
`)
	return cfg
}

// TestObservationsEndToEnd drives the real binary: a rejected batch names
// the item and field and stores nothing; accepted batches give latency
// percentiles within 1% of the exact ones on the API and /metrics
// (promtool-clean); labels give accuracy; then the agent is killed with
// SIGKILL while clients are sending, and after a restart every observation
// that was acknowledged is there, its request_id still matches a label,
// and the stats are the same.
func TestObservationsEndToEnd(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	cfg := observeConfig(t)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	// A bad item rejects the whole batch, naming index and field.
	code, body := postJSON(t, base+"/v1/observations", []byte(`{"observations":[{"model":"fraud","latency_ms":3},{"model":"fraud","features":{"age":1e999}}]}`))
	e, _ := body["error"].(map[string]any)
	if code != 400 || e["index"] != 1.0 || e["field"] != "features.age" || !strings.HasPrefix(fmt.Sprint(e["message"]), "observations[1].features.age: must be a finite number") {
		t.Fatalf("bad batch: %d %v", code, body)
	}
	if code, _ := modelStats(t, base, "fraud", ""); code != 404 {
		t.Fatalf("a rejected batch was stored: stats answered %d", code)
	}

	r := rand.New(rand.NewPCG(3, 4))
	var latencies []float64
	for b := range 20 {
		items := make([]map[string]any, 100)
		for i := range items {
			lat := math.Exp(r.NormFloat64() + 3)
			latencies = append(latencies, lat)
			items[i] = map[string]any{
				"model": "fraud", "version": "v1", "latency_ms": lat,
				"status": []int{200, 200, 200, 503}[i%4], "prediction": i % 2,
				"request_id": fmt.Sprintf("seed-%d-%d", b, i),
				"features":   map[string]any{"amount": r.Float64() * 100, "country": "DE"},
			}
		}
		if code, body := postJSON(t, base+"/v1/observations", map[string]any{"observations": items}); code != 202 || body["accepted"] != 100.0 {
			t.Fatalf("batch %d: %d %v", b, code, body)
		}
	}
	slices.Sort(latencies)
	checkLatency := func(when string) {
		t.Helper()
		code, vs := modelStats(t, base, "fraud", "window=5m&version=v1")
		if code != 200 || len(vs) != 1 || vs[0].Requests != 2000 || vs[0].Errors != 500 || vs[0].LatencyCount != 2000 {
			t.Fatalf("%s: stats %d %+v", when, code, vs)
		}
		for i, got := range []*float64{vs[0].LatencyP50Ms, vs[0].LatencyP95Ms, vs[0].LatencyP99Ms} {
			q := []float64{0.5, 0.95, 0.99}[i]
			want := latencies[int(q*float64(len(latencies)-1))]
			if got == nil || math.Abs(*got-want) > 0.01*want {
				t.Errorf("%s: p%v = %v, exact %v: not within 1%%", when, q*100, got, want)
			}
		}
	}
	checkLatency("before restart")
	if code, _ := modelStats(t, base, "fraud", "window=2m"); code != 400 {
		t.Errorf("window=2m answered %d, want 400", code)
	}
	if code, _ := modelStats(t, base, "nope", ""); code != 404 {
		t.Errorf("unknown model answered %d, want 404", code)
	}

	// Labels: seed-0-i predicted i%2; label 0 for every one: half right.
	var labels []map[string]any
	for i := range 10 {
		labels = append(labels, map[string]any{"request_id": fmt.Sprintf("seed-0-%d", i), "label": 0})
	}
	labels = append(labels, map[string]any{"request_id": "never-sent", "label": 1})
	code, body = postJSON(t, base+"/v1/labels", map[string]any{"labels": labels})
	if code != 202 || body["matched"] != 10.0 || body["unknown_request_id"] != 1.0 {
		t.Fatalf("labels: %d %v", code, body)
	}

	_, metrics := get(t, base+"/metrics", "")
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{
		`vigil_model_requests_total{model="fraud",version="v1"} 2000`,
		`vigil_model_errors_total{model="fraud",version="v1"} 500`,
		`vigil_model_error_ratio{model="fraud",version="v1",window="1m"} 0.25`,
		`vigil_model_accuracy_ratio{model="fraud",version="v1",window="5m"} 0.5`,
		`vigil_model_latency_seconds_count{model="fraud",version="v1",window="1h"} 2000`,
		`vigil_model_latency_seconds{model="fraud",version="v1",window="5m",quantile="0.99"}`,
	} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Kill -9 while 4 clients are sending; remember what was acknowledged.
	var (
		mu    sync.Mutex
		acked []string // request IDs of acknowledged observations
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; !stop.Load(); b++ {
				items := make([]map[string]any, 50)
				ids := make([]string, 50)
				for i := range items {
					ids[i] = fmt.Sprintf("kill-%d-%d-%d", c, b, i)
					items[i] = map[string]any{"model": "fraud", "version": "v2", "latency_ms": 5, "prediction": "x", "request_id": ids[i]}
				}
				buf, _ := json.Marshal(items)
				resp, err := http.Post(base+"/v1/observations", "application/json", bytes.NewReader(buf))
				if err != nil {
					return // the agent is gone
				}
				resp.Body.Close()
				if resp.StatusCode == 202 {
					mu.Lock()
					acked = append(acked, ids...)
					mu.Unlock()
				}
			}
		}()
	}
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(acked) >= 2000 }, "2000 acknowledged observations")
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.waitExit(t, 10*time.Second)
	stop.Store(true)
	wg.Wait()

	b := startAgent(t, nil, "-config", cfg)
	base = "http://" + b.addr
	waitHealthy(t, base, "")
	checkLatency("after SIGKILL and restart")
	_, vs := modelStats(t, base, "fraud", "window=1h&version=v2")
	if len(vs) != 1 || vs[0].Requests < uint64(len(acked)) {
		t.Fatalf("after restart %+v observations of v2, but %d were acknowledged", vs, len(acked))
	}
	t.Logf("%d observations acknowledged before SIGKILL, %d found after restart", len(acked), vs[0].Requests)
	// Every acknowledged request_id is known again: labels match.
	labels = labels[:0]
	for _, id := range acked {
		labels = append(labels, map[string]any{"request_id": id, "label": "x"})
	}
	for len(labels) > 0 {
		n := min(len(labels), 5000)
		code, body := postJSON(t, base+"/v1/labels", labels[:n])
		if code != 202 || body["matched"] != float64(n) {
			t.Fatalf("labels for acknowledged observations after restart: %d matched=%v unknown=%v of %d", code, body["matched"], body["unknown_request_id"], n)
		}
		labels = labels[n:]
	}
	// The labels sent before the kill are kept: a second one is refused.
	code, body = postJSON(t, base+"/v1/labels", []map[string]any{{"request_id": "seed-0-1", "label": 1}})
	if code != 202 || body["already_labelled"] != 1.0 {
		t.Errorf("label after restart: %d %v", code, body)
	}

	// The CLI shows the table.
	out, err := exec.Command(vigilBin, "models", "-http-addr", b.addr, "-window", "1h").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("fraud")) || !bytes.Contains(out, []byte("P99 MS")) {
		t.Errorf("vigil models: %v\n%s", err, out)
	}
}
