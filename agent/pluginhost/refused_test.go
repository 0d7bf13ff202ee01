package pluginhost

// What no restart can fix is refused at once, not retried as a crash until
// the crash budget is spent: a plugin that is not the kind or contract
// version its catalog entry trusts, and a binary removed or replaced while
// its plugin ran.

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// writePackageCatalog writes dir/catalog.json trusting file as a plugin of
// the given kind (with its real hash) and env.
func writePackageCatalog(t *testing.T, dir, name, kind, file string, env ...string) {
	t.Helper()
	sum, err := fileSHA256(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(PackageCatalog{Version: 1, Plugins: []PackageEntry{{Name: name, Kind: kind, File: file, SHA256: sum, Env: env}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkRefusedAtOnce asserts a plugin is refused without a restart, with
// a one-line error holding every want, its up gauge 0 and no restart
// counted, and that a call to it fails as unavailable.
func checkRefusedAtOnce(t *testing.T, h *Host, name, kind string, wants ...string) {
	t.Helper()
	s := waitState(t, h, name, StateRefused)
	t.Logf("last error: %s", s.LastError)
	for _, w := range wants {
		if !strings.Contains(s.LastError, w) {
			t.Errorf("last error %q does not name %q", s.LastError, w)
		}
	}
	if strings.Contains(s.LastError, "\n") {
		t.Errorf("last error is more than one line: %q", s.LastError)
	}
	if s.Restarts != 0 {
		t.Errorf("refused plugin was restarted %d times: %+v", s.Restarts, s)
	}
	if got := testutil.ToFloat64(h.m.up.WithLabelValues(name, kind)); got != 0 {
		t.Errorf("vigil_plugin_up = %v for a refused plugin", got)
	}
	if got := testutil.ToFloat64(h.m.restarts.WithLabelValues(name)); got != 0 {
		t.Errorf("vigil_plugin_restarts_total = %v for a refused plugin", got)
	}
	if err := h.Restart(name); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("restart of a refused plugin: %v; want it refused", err)
	}
}

// TestKindMismatchRefused: a package catalog that calls a vector store a
// detector gets the plugin refused at its first start, naming both kinds
// and the catalog file, not restarted until the crash budget is spent.
func TestKindMismatchRefused(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, builtPlugins["vectorstore"], filepath.Join(dir, "vigil-vectorstore-mem"))
	writePackageCatalog(t, dir, "mem", "detector", "vigil-vectorstore-mem")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	h := newHost(t, cfg, "")
	h.Start()
	checkRefusedAtOnce(t, h, "mem", "detector", `"vectorstore"`, `"detector"`, filepath.Join(dir, "catalog.json"))

	err := h.WithDetector(context.Background(), "mem", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		_, err := c.Describe(ctx)
		return err
	})
	if classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), "refused") {
		t.Errorf("call to a refused plugin: %v", err)
	}
}

// TestKindMismatchOfRegisteredEntryNamesAgentCatalog: an entry of the
// agent's own catalog that disagrees with the plugin names that file.
func TestKindMismatchOfRegisteredEntryNamesAgentCatalog(t *testing.T) {
	dir := install(t, "provider")
	catPath := filepath.Join(t.TempDir(), "plugins.db")
	h, err := New(testConfig(dir), Options{CatalogPath: catPath})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test-provider")
	sum, _ := fileSHA256(path)
	// An entry written by an older agent, or edited, with the wrong kind.
	if err := h.cat.put(context.Background(), Entry{Name: "test-provider", Kind: "detector", Path: path, SHA256: sum, Source: "registered"}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	cfg := testConfig(dir)
	cfg.Start = "boot"
	h, err = New(cfg, Options{CatalogPath: catPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.Start()
	checkRefusedAtOnce(t, h, "test-provider", "detector", `"provider"`, `"detector"`, catPath, "vigil plugins register "+path)
}

// TestContractVersionMismatchRefused: a plugin whose handshake speaks
// contract 1 but whose Info says 2 is refused at once, naming both
// versions, and cannot be registered.
func TestContractVersionMismatchRefused(t *testing.T) {
	bins := pythonPlugins(t)
	dir := t.TempDir()
	copyFile(t, bins["py-test"], filepath.Join(dir, "py-test"))
	writePackageCatalog(t, dir, "py-test", "detector", "py-test", "PYPLUGIN_FAULT=contract-2")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	cfg.StartTimeout = 20 * time.Second // Python starts slowly under -race load
	h := newHost(t, cfg, "")
	h.Start()
	checkRefusedAtOnce(t, h, "py-test", "detector", "contract version 2", "contract version 1", filepath.Join(dir, "catalog.json"))

	// Registering it is refused too, rather than trusting a plugin that
	// can never run: the same plugin with the fault built in (register
	// starts a binary with a bare environment).
	src, err := os.ReadFile("../../test/plugins/pyplugin/main.py")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "contract2.py")
	forced := strings.Replace(string(src), `FAULT = os.environ.get("PYPLUGIN_FAULT", "")`, `FAULT = "contract-2"`, 1)
	if forced == string(src) {
		t.Fatal("test/plugins/pyplugin/main.py no longer reads PYPLUGIN_FAULT as this test expects")
	}
	if err := os.WriteFile(script, []byte(forced), 0o644); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	bin := filepath.Join(other, "py-contract2")
	if out, err := exec.Command(pythonInterpreter, "../../sdk/python/pack.py", script, "-o", bin).CombinedOutput(); err != nil {
		t.Fatalf("pack: %v\n%s", err, out)
	}
	cfg2 := testConfig(other)
	cfg2.StartTimeout = 20 * time.Second // Python starts slowly under -race load
	h2 := newHost(t, cfg2, "")
	_, err = h2.Register(context.Background(), bin, "")
	if err == nil || !strings.Contains(err.Error(), "contract version 2") || !strings.Contains(err.Error(), "contract version 1") {
		t.Errorf("register of a plugin whose Info says contract version 2: %v", err)
	}
}

// TestBinaryRemovedWhileRunningRefused removes a running plugin's binary,
// then crashes the plugin: the supervisor's restart finds the file gone
// and refuses the plugin at once, instead of spending the crash budget on
// "no such file".
func TestBinaryRemovedWhileRunningRefused(t *testing.T) {
	h, path, _ := bootDetector(t)
	waitState(t, h, "test-detector", StateRunning)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"crash": true}}); err == nil {
		t.Fatal("a crashing call succeeded")
	}
	checkRefusedAtOnce(t, h, "test-detector", "detector", path, "no such file")
}

// TestBinaryReplacedWhileRunningRefused replaces a running plugin's binary
// with another (as an upgrade that skipped `register` would), then
// crashes the plugin: refused at once, naming both hashes, no restart.
func TestBinaryReplacedWhileRunningRefused(t *testing.T) {
	h, path, e := bootDetector(t)
	waitState(t, h, "test-detector", StateRunning)
	tmp := path + ".new"
	copyFile(t, builtPlugins["provider"], tmp)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	sum, _ := fileSHA256(path)
	if _, err := detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"crash": true}}); err == nil {
		t.Fatal("a crashing call succeeded")
	}
	checkRefusedAtOnce(t, h, "test-detector", "detector", path, sum[:12], e.SHA256[:12], "vigil plugins register")
}

// TestRestartOfRemovedBinaryRefused: `vigil plugins restart` of a running
// plugin whose binary was removed refuses it instead of backing off.
func TestRestartOfRemovedBinaryRefused(t *testing.T) {
	h, path, _ := bootDetector(t)
	waitState(t, h, "test-detector", StateRunning)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.Restart("test-detector"); err != nil {
		t.Fatal(err)
	}
	checkRefusedAtOnce(t, h, "test-detector", "detector", path, "no such file")
	ok := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1, 2}}
	if _, err := detect(h, ok); classOf(t, err) != sdk.Unavailable {
		t.Errorf("call to a plugin whose binary is gone: %v", err)
	}
}

// TestHandshakeVersionMismatchRefused: a trusted binary whose handshake
// offers another contract version is refused at its first start; being
// pinned by its hash, it will never offer another.
func TestHandshakeVersionMismatchRefused(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wrong-proto"), []byte("#!/bin/sh\necho '1|7|unix|/nonexistent|grpc|'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	writePackageCatalog(t, dir, "wrong-proto", "detector", "wrong-proto")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	h := newHost(t, cfg, "")
	h.Start()
	checkRefusedAtOnce(t, h, "wrong-proto", "detector", "this agent speaks contract version 1")
}

// TestUpGaugeOfRefusedAndUnregistered: a plugin refused when the agent
// starts has vigil_plugin_up 0 (an alert on up == 0 sees it), and a
// refused or failed plugin that is unregistered leaves no series behind.
func TestUpGaugeOfRefusedAndUnregistered(t *testing.T) {
	dir := install(t, "detector", "provider")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	cfg.CrashBudget = 1
	catPath := filepath.Join(t.TempDir(), "plugins.db")
	h, err := New(cfg, Options{CatalogPath: catPath})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"detector", "provider"} {
		if _, err := h.Register(context.Background(), filepath.Join(dir, "test-"+k), ""); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "test-provider"), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("tampered"))
	f.Close()

	h = newHostAt(t, cfg, catPath)
	h.Start()
	if s := status(t, h, "test-provider"); s.State != StateRefused {
		t.Fatalf("tampered plugin: %+v", s)
	}
	waitState(t, h, "test-detector", StateRunning)
	if n := testutil.CollectAndCount(h.m.up); n != 2 {
		t.Errorf("vigil_plugin_up has %d series; want one per plugin, the refused one's too", n)
	}
	if got := testutil.ToFloat64(h.m.up.WithLabelValues("test-provider", "provider")); got != 0 {
		t.Errorf("vigil_plugin_up = %v for a refused plugin", got)
	}

	// One crash spends the budget of 1: failed.
	detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"crash": true}})
	waitState(t, h, "test-detector", StateFailed)
	for _, name := range []string{"test-detector", "test-provider"} {
		if err := h.Unregister(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(15 * time.Second); testutil.CollectAndCount(h.m.up) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("vigil_plugin_up still has %d series after a failed and a refused plugin were unregistered", testutil.CollectAndCount(h.m.up))
		}
	}
}

// newHostAt is newHost with a given catalog file.
func newHostAt(t *testing.T, cfg Config, catPath string) *Host {
	t.Helper()
	h, err := New(cfg, Options{CatalogPath: catPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// TestInstanceOfPackagePluginReplacedNamesCatalog: an instance of a
// packaged plugin whose binary is replaced while it runs is refused with
// the package's catalog.json named, as the plugin itself would be (not
// told to re-register a plugin it never registered).
func TestInstanceOfPackagePluginReplacedNamesCatalog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil-detector-test")
	copyFile(t, builtPlugins["detector"], path)
	writePackageCatalog(t, dir, "test-detector", "detector", "vigil-detector-test")
	h := newHost(t, testConfig(dir), "")
	if err := h.SetInstances([]Instance{{Name: "det-a", Plugin: "test-detector"}}); err != nil {
		t.Fatal(err)
	}
	call := func(params map[string]any) error {
		return h.WithDetector(context.Background(), "det-a", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
			_, err := c.Detect(ctx, &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1, 2}, Params: params})
			return err
		})
	}
	if err := call(nil); err != nil {
		t.Fatal(err)
	}
	copyFile(t, builtPlugins["provider"], path+".new")
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if err := call(map[string]any{"crash": true}); err == nil {
		t.Fatal("a crashing call succeeded")
	}
	checkRefusedAtOnce(t, h, "det-a", "detector", filepath.Join(dir, "catalog.json"), "reinstall the package")
}

// TestRegisterInvalidOwnName: a plugin whose own name the agent does not
// take (64 characters) is registered under another with -name, and
// without one the refusal says to give one.
func TestRegisterInvalidOwnName(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "longname")
	cmd := exec.Command("go", "build", "-ldflags", "-X main.kind=detector -X main.fault=long-name", "-o", bin, "../../test/plugins/testplugin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	h := newHost(t, testConfig(dir), "")
	_, err := h.Register(context.Background(), bin, "")
	if err == nil || !strings.Contains(err.Error(), "not a valid plugin name") || !strings.Contains(err.Error(), "-name") {
		t.Fatalf("register without a name: %v; want a refusal that points at -name", err)
	}
	e, err := h.Register(context.Background(), bin, "short")
	if err != nil || e.Name != "short" {
		t.Fatalf("register -name short: %+v, %v", e, err)
	}
	if _, err := h.Register(context.Background(), bin, "Bad Name"); err == nil || !strings.Contains(err.Error(), `"Bad Name" is not valid`) {
		t.Errorf("register -name 'Bad Name': %v; want it refused", err)
	}
}
