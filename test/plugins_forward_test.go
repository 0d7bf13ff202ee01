package test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

// buildTestPlugin builds the test plugin of one kind into dir/name.
func buildTestPlugin(t *testing.T, kind, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.kind="+kind, "-o", out, "./plugins/testplugin")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build test plugin: %v\n%s", err, b)
	}
	return out
}

func vigil(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(vigilBin, args...).CombinedOutput()
	return string(out), err
}

type pluginList struct {
	Plugins []struct {
		Name     string `json:"name"`
		Path     string `json:"path"`
		Kind     string `json:"kind"`
		State    string `json:"state"`
		Source   string `json:"source"`
		PID      int    `json:"pid"`
		Restarts int    `json:"restarts"`
	} `json:"plugins"`
}

func listPlugins(t *testing.T, base string) pluginList {
	t.Helper()
	var l pluginList
	_, body := get(t, base+"/v1/plugins", "")
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatalf("/v1/plugins: %v: %s", err, body)
	}
	return l
}

// TestPluginsThroughAgentAndCLI runs an agent with a plugin directory and
// drives trust through the CLI: a binary found there is listed as
// untrusted, `vigil plugins register` pins it and it starts, restart gives
// it a new process, unregister forgets it.
func TestPluginsThroughAgentAndCLI(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildTestPlugin(t, "detector", pdir, "vigil-detector-test")
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
plugins:
  dirs: [`+pdir+`]
  start: boot
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	out, err := vigil(t, "plugins", "list", "-http-addr", a.addr)
	if err != nil || !strings.Contains(out, "untrusted") {
		t.Fatalf("vigil plugins list before register: %v\n%s", err, out)
	}
	// Registering a path outside the plugin directories is refused.
	outside := buildTestPlugin(t, "detector", dir, "elsewhere")
	if out, err := vigil(t, "plugins", "register", outside, "-http-addr", a.addr); err == nil || !strings.Contains(out, "plugin director") {
		t.Errorf("register outside the plugin dirs: %v\n%s", err, out)
	}
	// A binary every user may write could be swapped between its
	// checksum and its launch: refused.
	if err := os.Chmod(bin, 0o757); err != nil {
		t.Fatal(err)
	}
	if out, err := vigil(t, "plugins", "register", bin, "-http-addr", a.addr); err == nil || !strings.Contains(out, "writable by every user") {
		t.Errorf("register a binary writable by every user: %v\n%s", err, out)
	}
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered through a symbolic link outside the plugin directories,
	// it is recorded (and launched) as the binary in the directory, not
	// as the link, which its owner could point elsewhere.
	link := filepath.Join(dir, "link-to-detector")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	out, err = vigil(t, "plugins", "register", link, "-http-addr", a.addr)
	if err != nil || !strings.Contains(out, "Registered test-detector") {
		t.Fatalf("vigil plugins register: %v\n%s", err, out)
	}
	var pid int
	waitFor(t, func() bool {
		for _, p := range listPlugins(t, base).Plugins {
			if p.Name == "test-detector" && p.State == "running" && p.Kind == "detector" && p.Path == bin {
				pid = p.PID
				return true
			}
		}
		return false
	}, "registered plugin running")

	// What the plugin declared shows once it runs: in the table's
	// CAPABILITIES column and in the JSON.
	out, err = vigil(t, "plugins", "list", "-http-addr", a.addr)
	if row := strings.Fields(grepLines(out, "test-detector")); err != nil || !strings.Contains(out, "CAPABILITIES") || len(row) < 9 || row[8] != "test" {
		t.Errorf("vigil plugins list does not show the capabilities: %v\n%s", err, out)
	}
	if out, err := vigil(t, "plugins", "list", "-format", "json", "-http-addr", a.addr); err != nil || !strings.Contains(out, `"capabilities": [`) {
		t.Errorf("vigil plugins list -format json lacks capabilities: %v\n%s", err, out)
	}

	_, metrics := get(t, base+"/metrics", "")
	if !strings.Contains(string(metrics), `vigil_plugin_up{kind="detector",plugin="test-detector"} 1`) {
		t.Errorf("/metrics lacks vigil_plugin_up for the plugin")
	}

	if out, err := vigil(t, "plugins", "restart", "test-detector", "-http-addr", a.addr); err != nil {
		t.Fatalf("vigil plugins restart: %v\n%s", err, out)
	}
	waitFor(t, func() bool {
		for _, p := range listPlugins(t, base).Plugins {
			if p.Name == "test-detector" && p.State == "running" && p.PID != pid && p.PID != 0 {
				return true
			}
		}
		return false
	}, "plugin running in a new process after restart")

	if out, err := vigil(t, "plugins", "restart", "nope", "-http-addr", a.addr); err == nil || !strings.Contains(out, "nope") {
		t.Errorf("restart of an unknown plugin: %v\n%s", err, out)
	}
	if out, err := vigil(t, "plugins", "unregister", "test-detector", "-http-addr", a.addr); err != nil {
		t.Fatalf("vigil plugins unregister: %v\n%s", err, out)
	}
	waitFor(t, func() bool {
		l := listPlugins(t, base)
		return len(l.Plugins) == 1 && l.Plugins[0].State == "untrusted"
	}, "plugin back to untrusted after unregister")

	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

// TestDevModeTrustsBuildPlugins checks that `vigil agent -dev` trusts and
// starts the plugins in bin/plugins beside its own binary, as `make run`
// lays them out.
func TestDevModeTrustsBuildPlugins(t *testing.T) {
	dir := t.TempDir()
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(filepath.Join(binDir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(vigilBin)
	if err != nil {
		t.Fatal(err)
	}
	devVigil := filepath.Join(binDir, "vigil")
	if err := os.WriteFile(devVigil, b, 0o755); err != nil {
		t.Fatal(err)
	}
	buildTestPlugin(t, "provider", filepath.Join(binDir, "plugins"), "vigil-provider-test")

	cmd := exec.Command(devVigil, "agent", "-dev", "-data-dir", filepath.Join(dir, "data"), "-http-addr", "127.0.0.1:0")
	stdout, stderr := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
	}()
	var addr string
	waitFor(t, func() bool {
		m := apiLine.FindStringSubmatch(stdout.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	}, "dev agent banner")
	base := "http://" + addr
	waitFor(t, func() bool {
		for _, p := range listPlugins(t, base).Plugins {
			if p.Name == "test-provider" && p.State == "running" && p.Source == "dev" {
				return true
			}
		}
		return false
	}, "dev plugin trusted and running")
}

// TestAgentForwardsToPrometheus runs an agent with simulated GPUs that
// forwards to a real Prometheus by remote write, and finds the GPU series
// in Prometheus with their labels, two agents of one fleet side by side.
func TestAgentForwardsToPrometheus(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	dir := t.TempDir()
	promAddr := startPrometheus(t, prom, dir, "global:\n  scrape_interval: 1h\n", "--web.enable-remote-write-receiver")

	// Two agents of one fleet share the receiver; their simulated GPUs
	// have the same uuids, so only forward.external_labels (by default
	// node: <node_name>) keeps their series apart.
	var bases []string
	for _, node := range []string{"node-a", "node-b"} {
		cfg := filepath.Join(dir, node+".yaml")
		writeFile(t, cfg, "node_name: "+node+"\ndata_dir: "+filepath.Join(dir, node)+`
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    simulate: 2
    interval: 200ms
forward:
  remote_write:
    - name: local-prom
      url: http://`+promAddr+`/api/v1/write
      min_backoff: 100ms
      max_backoff: 1s
`)
		a := startAgent(t, nil, "-config", cfg)
		bases = append(bases, "http://"+a.addr)
		waitHealthy(t, bases[len(bases)-1], "")
	}

	waitForWithin(t, time.Minute, func() bool {
		resp, err := http.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(`vigil_gpu_power_watts{gpu="1"}`))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &r) != nil || len(r.Data.Result) != 2 {
			return false
		}
		nodes := map[string]bool{}
		for _, res := range r.Data.Result {
			if res.Metric["uuid"] != "" {
				nodes[res.Metric["node"]] = true
			}
		}
		return nodes["node-a"] && nodes["node-b"]
	}, "simulated GPU power of both nodes in Prometheus, labelled with their node")

	for _, base := range bases {
		var fw struct {
			Upstreams []struct {
				Name    string            `json:"name"`
				Up      bool              `json:"up"`
				Dropped map[string]uint64 `json:"samples_dropped"`
			} `json:"upstreams"`
		}
		_, body := get(t, base+"/v1/forward", "")
		if err := json.Unmarshal(body, &fw); err != nil || len(fw.Upstreams) != 1 || fw.Upstreams[0].Name != "local-prom" || !fw.Upstreams[0].Up {
			t.Errorf("/v1/forward: %v %s", err, body)
		} else if n := fw.Upstreams[0].Dropped["rejected"]; n != 0 {
			t.Errorf("%s: %d samples rejected by Prometheus (the nodes wrote into one another's series?): %s", base, n, body)
		}
	}
}

// startPrometheus runs the prometheus binary at prom on a free loopback
// port, with config as dir/prometheus.yml, its storage under dir and the
// extra flags, until the test ends (its log is shown if the test failed),
// and returns its address.
func startPrometheus(t *testing.T, prom, dir, config string, extra ...string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	writeFile(t, filepath.Join(dir, "prometheus.yml"), config)
	args := append([]string{"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "prom"), "--web.listen-address=" + addr, "--log.level=warn"}, extra...)
	pc := exec.Command(prom, args...)
	plog := &testutil.SyncBuffer{}
	pc.Stdout, pc.Stderr = plog, plog
	if err := pc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.Process.Signal(syscall.SIGTERM)
		pc.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", plog)
		}
	})
	return addr
}
