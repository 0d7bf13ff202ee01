package test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type gpuSnapshot struct {
	Simulated bool   `json:"simulated"`
	Error     string `json:"error"`
	Devices   []struct {
		Index int    `json:"index"`
		UUID  string `json:"uuid"`
	} `json:"devices"`
}

type queryResult struct {
	Series []struct {
		Name   string            `json:"name"`
		Labels map[string]string `json:"labels"`
		Points [][2]any          `json:"points"`
	} `json:"series"`
}

func queryPoints(t *testing.T, base, series string, matchers ...string) int {
	t.Helper()
	q := url.Values{"series": {series}, "start": {"-1h"}}
	for _, m := range matchers {
		q.Add("match[]", m)
	}
	status, body := get(t, base+"/v1/query?"+q.Encode(), "")
	if status != 200 {
		t.Fatalf("query %s: %d %s", series, status, body)
	}
	var res queryResult
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range res.Series {
		n += len(s.Points)
	}
	return n
}

// TestSimulatedGPUsStoredAndQueried runs the agent with 8 simulated GPUs
// (go-nvml's mock behind telemetry.gpu.simulate: there is no GPU on CI),
// checks the snapshot, the metrics and the stored history, and that the
// history survives a restart.
func TestSimulatedGPUsStoredAndQueried(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    simulate: 8
    interval: 200ms
  host:
    interval: 500ms
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")
	if !strings.Contains(a.stdout.String(), "SIMULATED GPUs") {
		t.Errorf("banner does not say the GPUs are simulated:\n%s", a.stdout)
	}

	var snap gpuSnapshot
	waitFor(t, func() bool {
		_, body := get(t, base+"/v1/gpus", "")
		return json.Unmarshal(body, &snap) == nil && len(snap.Devices) == 8
	}, "8 GPUs in /v1/gpus")
	if !snap.Simulated {
		t.Error("/v1/gpus does not mark the simulated GPUs")
	}

	_, metrics := get(t, base+"/metrics", "")
	for _, want := range []string{`simulated="true"`, `vigil_collector_up{collector="gpu"} 1`, "vigil_gpu_power_watts{", "vigil_host_memory_total_bytes", "vigil_store_samples_appended_total"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	waitFor(t, func() bool { return queryPoints(t, base, "vigil_gpu_power_watts", "gpu=3") >= 3 }, "3 stored GPU samples")
	before := queryPoints(t, base, "vigil_gpu_power_watts", "gpu=3")

	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	// History survives the restart, and new samples join it.
	b := startAgent(t, nil, "-config", cfg)
	base = "http://" + b.addr
	waitHealthy(t, base, "")
	if got := queryPoints(t, base, "vigil_gpu_power_watts", "gpu=3"); got < before {
		t.Errorf("after restart %d points, before %d: history lost", got, before)
	}
	waitFor(t, func() bool { return queryPoints(t, base, "vigil_gpu_power_watts", "gpu=3") > before }, "new samples after restart")

	// vigil query and vigil gpu against the running agent.
	out, err := exec.Command(vigilBin, "query", "vigil_gpu_power_watts", "-match", "gpu=3", "-since", "10m", "-step", "1m", "-agg", "max", "-http-addr", b.addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `vigil_gpu_power_watts{gpu="3"`) {
		t.Errorf("vigil query: %v\n%s", err, out)
	}
	out, err = exec.Command(vigilBin, "gpu", "-http-addr", b.addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SIMULATED") || strings.Count(string(out), "NVIDIA H100") != 8 {
		t.Errorf("vigil gpu: %v\n%s", err, out)
	}
	status, body := get(t, base+"/v1/query?series=vigil_gpu_power_watts&step=-5s", "")
	if status != 400 || !strings.Contains(string(body), "step") {
		t.Errorf("bad step: %d %s", status, body)
	}
}

// TestNoDriverIsReported checks what this (GPU-less) CI machine must show:
// the agent runs, and says why there is no GPU data.
func TestNoDriverIsReported(t *testing.T) {
	a := startAgent(t, nil, "-dev", "-data-dir", filepath.Join(t.TempDir(), "d"), "-http-addr", "127.0.0.1:0")
	base := "http://" + a.addr
	waitHealthy(t, base, "")
	_, body := get(t, base+"/v1/gpus", "")
	var snap gpuSnapshot
	json.Unmarshal(body, &snap)
	if len(snap.Devices) > 0 {
		t.Logf("this machine has %d GPUs; the no-driver path is not exercised here", len(snap.Devices))
		return
	}
	if !strings.Contains(snap.Error, "no NVML driver found") {
		t.Errorf("/v1/gpus error = %q, want the missing driver named", snap.Error)
	}
	if !strings.Contains(a.stdout.String(), "telemetry.gpu  unavailable: no NVML driver found") {
		t.Errorf("banner does not say the GPU is unavailable:\n%s", a.stdout)
	}
	_, metrics := get(t, base+"/metrics", "")
	if !bytes.Contains(metrics, []byte(`vigil_collector_up{collector="gpu"} 0`)) {
		t.Error(`/metrics lacks vigil_collector_up{collector="gpu"} 0`)
	}
}
