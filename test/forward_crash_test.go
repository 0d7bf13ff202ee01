package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestForwardSurvivesOutageAndKillMinus9 is the promise of forwarding as
// an operator relies on it: a node that cannot reach its receiver, and
// whose agent is killed (SIGKILL) while it catches up, loses nothing.
// Every sample in the agent's store after the last restart is in a real
// Prometheus, counted per series through both query APIs.
func TestForwardSurvivesOutageAndKillMinus9(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	dir := t.TempDir()
	// The agent starts before Prometheus: nothing listens at the address
	// it forwards to yet, so it buffers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	cfgFile := filepath.Join(dir, "vigil.yaml")
	writeCfg := func(promAddr string, telemetry bool) {
		gpu, host := "simulate: 2\n    interval: 100ms", "interval: 500ms"
		if !telemetry {
			gpu, host = "enabled: false", "enabled: false"
		}
		writeFile(t, cfgFile, "node_name: crash\ndata_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    `+gpu+`
  host:
    `+host+`
forward:
  remote_write:
    - name: prom
      url: http://`+promAddr+`/api/v1/write
      batch_max_samples: 50
      min_backoff: 50ms
      max_backoff: 200ms
`)
	}
	type fwdStatus struct {
		State   string            `json:"state"`
		Sent    uint64            `json:"samples_sent"`
		Dropped map[string]uint64 `json:"samples_dropped"`
		Pending *int64            `json:"pending_samples"`
	}
	status := func(a *agentProc) fwdStatus {
		var fw struct {
			Upstreams []fwdStatus `json:"upstreams"`
		}
		_, body := get(t, "http://"+a.addr+"/v1/forward", "")
		if err := json.Unmarshal(body, &fw); err != nil || len(fw.Upstreams) != 1 {
			t.Fatalf("/v1/forward: %v: %s", err, body)
		}
		return fw.Upstreams[0]
	}
	kill := func(a *agentProc) {
		if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a.waitExit(t, 10*time.Second)
	}
	appended := func(a *agentProc) float64 {
		_, body := get(t, "http://"+a.addr+"/v1/query?series=vigil_gpu_power_watts&start=-10m", "")
		var r struct {
			Series []struct {
				Points [][2]any `json:"points"`
			} `json:"series"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("/v1/query: %v: %s", err, body)
		}
		n := 0
		for _, s := range r.Series {
			n += len(s.Points)
		}
		return float64(n)
	}

	// Buffer for a while with nowhere to send to, then crash.
	writeCfg(down, true)
	a := startAgent(t, nil, "-config", cfgFile)
	waitForWithin(t, 30*time.Second, func() bool { return appended(a) >= 60 }, "samples buffered during the outage")
	kill(a)

	// The receiver is there now; crash twice more while the backlog
	// drains (50 samples a request: many requests).
	promAddr := startPrometheus(t, prom, dir, "global:\n  scrape_interval: 1h\n", "--web.enable-remote-write-receiver")
	writeCfg(promAddr, true)
	for i := range 2 {
		a = startAgent(t, nil, "-config", cfgFile)
		waitForWithin(t, 60*time.Second, func() bool { return status(a).Sent > uint64(200*(i+1)) }, "forwarding after the restart")
		kill(a)
	}

	// Last start without collectors: it only forwards what is left.
	writeCfg(promAddr, false)
	a = startAgent(t, nil, "-config", cfgFile)
	waitForWithin(t, 60*time.Second, func() bool {
		s := status(a)
		return s.State == "idle" && s.Pending != nil && *s.Pending == 0
	}, "the backlog forwarded")
	local := appended(a)
	q := `count_over_time(vigil_gpu_power_watts{node="crash"}[10m])`
	var inProm float64
	waitForWithin(t, 15*time.Second, func() bool {
		_, body := get(t, "http://"+promAddr+"/api/v1/query?query="+url.QueryEscape("sum("+q+")"), "")
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &r) != nil || len(r.Data.Result) != 1 {
			return false
		}
		fmt.Sscan(fmt.Sprint(r.Data.Result[0].Value[1]), &inProm)
		return inProm == local
	}, "Prometheus to hold every sample of the agent's store")
	t.Logf("vigil_gpu_power_watts: %v samples in the agent's store, %v in Prometheus; last run: %+v", local, inProm, status(a))
	if d := status(a).Dropped; d["evicted"] != 0 || d["invalid"] != 0 {
		t.Errorf("dropped: %v", d)
	}
}
