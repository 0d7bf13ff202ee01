// Package test holds end-to-end tests that build the real vigil binary and
// drive it as a user would: as a process, over HTTP, with signals.
package test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilml/vigil/internal/testutil"
)

var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", vigilBin, "../cmd/vigil")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vigil:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type agentProc struct {
	cmd    *exec.Cmd
	stdout *testutil.SyncBuffer
	stderr *testutil.SyncBuffer
	addr   string // host:port of the API
	done   chan error
}

var apiLine = regexp.MustCompile(`API: https?://(127\.0\.0\.1:\d+)`)

// startAgent runs `vigil agent` with args and waits until its banner names
// the API address. Port 0 lets the kernel pick a free port.
func startAgent(t *testing.T, env []string, args ...string) *agentProc {
	t.Helper()
	return startAgentBin(t, vigilBin, env, args...)
}

// startAgentBin is startAgent with another copy of the binary (one with
// its own plugins directory beside it, say).
func startAgentBin(t *testing.T, bin string, env []string, args ...string) *agentProc {
	t.Helper()
	p := &agentProc{stdout: &testutil.SyncBuffer{}, stderr: &testutil.SyncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"agent"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("agent stdout:\n%s\nagent stderr:\n%s", p.stdout, p.stderr)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := apiLine.FindStringSubmatch(p.stdout.String()); m != nil {
			p.addr = m[1]
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("agent exited before serving: %v\nstderr:\n%s", err, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("agent did not print its API address within 15s")
	return nil
}

// waitExit waits for the agent to exit and returns its exit code.
func (p *agentProc) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			return 0
		}
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		t.Fatalf("wait: %v", err)
	case <-time.After(within):
		t.Fatalf("agent did not exit within %s", within)
	}
	return -1
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func waitHealthy(t *testing.T, base, token string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", base+"/v1/health", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("agent never became healthy")
}

// TestDevAgentLifecycle is the end-to-end test: start in dev mode,
// health, promtool-clean metrics, the data-dir lock, and a clean SIGTERM.
func TestDevAgentLifecycle(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	a := startAgent(t, nil, "-dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0")
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	status, body := get(t, base+"/v1/health", "")
	if status != 200 || !strings.Contains(string(body), `"status": "ok"`) {
		t.Errorf("health = %d %s", status, body)
	}

	st, fi := os.Stat(dataDir)
	if fi != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %v (err %v), want 0700", st.Mode().Perm(), fi)
	}

	var s struct {
		NodeName   string `json:"node_name"`
		DataDir    string `json:"data_dir"`
		DevMode    bool   `json:"dev_mode"`
		Subsystems []struct {
			Name, State string
		} `json:"subsystems"`
		Version struct {
			GoVersion string `json:"go_version"`
		} `json:"version"`
	}
	status, body = get(t, base+"/v1/status", "")
	if status != 200 {
		t.Fatalf("status = %d %s", status, body)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	if s.DataDir != dataDir || !s.DevMode || s.NodeName == "" || s.Version.GoVersion == "" || len(s.Subsystems) == 0 {
		t.Errorf("status incomplete: %s", body)
	}

	status, metrics := get(t, base+"/metrics", "")
	if status != 200 {
		t.Fatalf("/metrics = %d", status)
	}
	for _, want := range []string{"vigil_build_info{", "go_goroutines", "process_resident_memory_bytes", "vigil_http_requests_total"} {
		if !bytes.Contains(metrics, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics failed: %v\n%s", err, out)
	}

	// A second agent on the same data dir fails at once, naming the first.
	second := exec.Command(vigilBin, "agent", "-dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0")
	var errOut bytes.Buffer
	second.Stderr = &errOut
	start := time.Now()
	err = second.Run()
	if err == nil {
		t.Fatal("second agent on the same data dir started")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("second agent took %s to fail", took)
	}
	wantPID := fmt.Sprintf("pid %d", a.cmd.Process.Pid)
	if !strings.Contains(errOut.String(), "in use by another vigil agent ("+wantPID+")") {
		t.Errorf("second agent's error does not name the first's pid (%s): %s", wantPID, errOut.String())
	}

	// SIGTERM: drain and exit 0 well within the 10 s shutdown timeout.
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d", code)
	}
	if !strings.Contains(a.stderr.String(), "agent stopped") {
		t.Errorf("no 'agent stopped' log line")
	}
	// The lock is released: a new agent can take the directory.
	b := startAgent(t, nil, "-dev", "-data-dir", dataDir, "-http-addr", "127.0.0.1:0")
	b.cmd.Process.Signal(syscall.SIGINT)
	if code := b.waitExit(t, 12*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT = %d", code)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

const (
	readToken  = "e2e-read-token-0123456789"
	writeToken = "e2e-write-token-0123456789"
)

// TestConfigTokensReloadAndCLI runs the agent from a config directory with
// tokens and a unix socket, uses `vigil status` against it, and reloads it.
func TestConfigTokensReloadAndCLI(t *testing.T) {
	dir := t.TempDir()
	confDir := filepath.Join(dir, "conf.d")
	os.Mkdir(confDir, 0o700)
	sock := filepath.Join(dir, "api.sock")
	writeFile(t, filepath.Join(dir, "write.token"), writeToken+"\n")
	writeFile(t, filepath.Join(confDir, "10-base.yaml"), fmt.Sprintf(`
node_name: e2e-node
data_dir: %s
log_format: json
api:
  addr: 127.0.0.1:0
  unix_socket: %s
  tokens:
    - name: grafana
      scope: read
      secret_env: E2E_READ_TOKEN
    - name: ops
      scope: write
      secret_file: %s
`, filepath.Join(dir, "data"), sock, filepath.Join(dir, "write.token")))
	writeFile(t, filepath.Join(confDir, "20-site.yaml"), "log_level: info\n")

	a := startAgent(t, []string{"E2E_READ_TOKEN=" + readToken}, "-config", confDir)
	base := "http://" + a.addr
	waitHealthy(t, base, readToken)

	if status, _ := get(t, base+"/v1/status", ""); status != 401 {
		t.Errorf("no token: status %d, want 401", status)
	}

	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(vigilBin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := run([]string{"VIGIL_HTTP_ADDR=" + a.addr, "VIGIL_TOKEN="}, "status")
	if code != 2 || !strings.Contains(out, "401") {
		t.Errorf("vigil status without token: code %d, out %s", code, out)
	}
	code, out = run([]string{"VIGIL_HTTP_ADDR=" + a.addr, "VIGIL_TOKEN=" + readToken}, "status")
	if code != 0 || !strings.Contains(out, "e2e-node") || !strings.Contains(out, "Health:    ok") {
		t.Errorf("vigil status: code %d, out %s", code, out)
	}
	code, out = run([]string{"VIGIL_HTTP_ADDR=unix://" + sock, "VIGIL_TOKEN=" + readToken}, "status", "-format", "json")
	if code != 0 || !strings.Contains(out, `"node_name": "e2e-node"`) {
		t.Errorf("vigil status over unix socket: code %d, out %s", code, out)
	}

	// A reload that changes nothing says so with an empty list (not null).
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), `"msg":"configuration reloaded","applied":[]`) }, "a reload log line with an empty applied list")

	// Reload: the log level changes at once; the address change waits for
	// a restart and says so.
	writeFile(t, filepath.Join(confDir, "20-site.yaml"), "log_level: debug\napi:\n  addr: 127.0.0.1:1\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), "configuration reloaded") }, "reload log line")
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), `"keys":["api.addr"]`) }, "reload naming api.addr as needing a restart")
	get(t, base+"/v1/status", readToken)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), `"level":"DEBUG","msg":"api request"`) }, "debug-level request log after reload")

	// A broken file on reload keeps the running configuration.
	writeFile(t, filepath.Join(confDir, "20-site.yaml"), "log_levle: debug\n")
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), "reload failed") }, "reload failure log")
	if !strings.Contains(a.stderr.String(), "20-site.yaml:1: log_levle: unknown key") {
		t.Errorf("reload failure does not name file, line and key")
	}
	if status, _ := get(t, base+"/v1/health", readToken); status != 200 {
		t.Errorf("agent unhealthy after failed reload: %d", status)
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("unix socket left behind after shutdown: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	waitForWithin(t, 10*time.Second, cond, what)
}

func waitForWithin(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestBadConfigFailsWithLocation(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vigil.yaml")
	writeFile(t, p, "data_dir: "+filepath.Join(dir, "d")+"\napi:\n  addr: 127.0.0.1:0\n  request_timeout: forever\n")
	for _, args := range [][]string{{"agent", "-config", p}, {"config", "validate", p}} {
		cmd := exec.Command(vigilBin, args...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Errorf("%v: err = %v, want exit 1", args, err)
		}
		if !strings.Contains(string(out), p+":4: api.request_timeout: invalid duration \"forever\"") {
			t.Errorf("%v: output does not name file:line:key: %s", args, out)
		}
	}
	writeFile(t, p, "data_dir: "+filepath.Join(dir, "d")+"\n")
	out, err := exec.Command(vigilBin, "config", "validate", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Configuration is valid") {
		t.Errorf("valid config: %v %s", err, out)
	}
	// Neither -dev nor -config: a clear usage error, not a silent default.
	out, _ = exec.Command(vigilBin, "agent").CombinedOutput()
	if !strings.Contains(string(out), "pass -config") {
		t.Errorf("agent without config: %s", out)
	}
}

// TestTLS serves the API over TLS with a certificate made here, and checks
// `vigil status -ca-file` trusts it and a plain-HTTP client gets nothing.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := agentCert(t, dir)
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\napi:\n  addr: 127.0.0.1:0\n  tls:\n    cert_file: %s\n    key_file: %s\n", filepath.Join(dir, "data"), certFile, keyFile))
	a := startAgent(t, nil, "-config", cfg)
	if !strings.Contains(a.stdout.String(), "API: https://") {
		t.Errorf("banner does not show https: %s", a.stdout)
	}
	cmd := exec.Command(vigilBin, "status", "-http-addr", "https://"+a.addr, "-ca-file", caFile)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(TLS, no auth: loopback only)") {
		t.Errorf("vigil status over TLS: %v\n%s", err, out)
	}
	cmd = exec.Command(vigilBin, "status", "-http-addr", "https://"+a.addr)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("status trusted an unknown CA: %s", out)
	}
}

// TestTLSCertificateReload renews the agent's certificate in place (new
// files over the running api.tls paths, as certbot or cert-manager do) and
// checks that SIGHUP serves the new one without a restart, and that a
// broken renewal keeps the running certificate and says why.
func TestTLSCertificateReload(t *testing.T) {
	dir := t.TempDir()
	oldCA, certFile, keyFile := agentCert(t, dir)
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\napi:\n  addr: 127.0.0.1:0\n  tls:\n    cert_file: %s\n    key_file: %s\n", filepath.Join(dir, "data"), certFile, keyFile))
	a := startAgent(t, nil, "-config", cfg)
	status := func(ca string) (string, error) {
		out, err := exec.Command(vigilBin, "status", "-http-addr", "https://"+a.addr, "-ca-file", ca).CombinedOutput()
		return string(out), err
	}
	if out, err := status(oldCA); err != nil {
		t.Fatalf("status with the first CA: %v\n%s", err, out)
	}

	renewed := filepath.Join(dir, "renewed")
	if err := os.Mkdir(renewed, 0o700); err != nil {
		t.Fatal(err)
	}
	newCA, newCert, newKey := agentCert(t, renewed)
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, to, string(b))
	}
	copyFile(newCert, certFile)
	copyFile(newKey, keyFile)
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), "API TLS certificate reloaded") }, "the certificate reload log line")
	if out, err := status(newCA); err != nil {
		t.Errorf("status with the renewed certificate's CA after SIGHUP: %v\n%s", err, out)
	}
	if out, err := status(oldCA); err == nil {
		t.Errorf("the old certificate is still served after SIGHUP:\n%s", out)
	}

	// A renewal caught half way (a new certificate, the old key) is not
	// served: the running certificate stays.
	_, otherCert, _ := agentCert(t, t.TempDir())
	copyFile(otherCert, certFile)
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool {
		return strings.Contains(a.stderr.String(), "cannot read the API TLS certificate; still serving the running one")
	}, "the failed certificate reload log line")
	if out, err := status(newCA); err != nil {
		t.Errorf("status after a failed certificate reload: %v\n%s", err, out)
	}
}

// agentCert writes a CA and a certificate it signed for an agent serving
// 127.0.0.1, with its key, into dir.
func agentCert(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	ca, caKey := testutil.Cert(t, "vigil-e2e CA", nil, nil, 0)
	cert, key := testutil.Cert(t, "vigil-e2e", ca, caKey, x509.ExtKeyUsageServerAuth)
	return testutil.WriteCert(t, filepath.Join(dir, "ca.pem"), ca),
		testutil.WriteCert(t, filepath.Join(dir, "cert.pem"), cert),
		testutil.WriteKey(t, filepath.Join(dir, "key.pem"), key)
}
