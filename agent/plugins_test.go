package agent

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/config"
	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/sdk"
)

// TestPluginEndpointsStatuses checks the plugin endpoints answer 404 only
// for an unknown plugin, 409 when the plugin's state forbids the request,
// and 400 for a relative path.
func TestPluginEndpointsStatuses(t *testing.T) {
	pdir := t.TempDir()
	// A packaged plugin whose binary is missing: trusted by its
	// catalog.json, refused at discovery.
	catalog := `{"version": 1, "plugins": [{"name": "gone", "kind": "detector", "file": "gone", "sha256": "` + strings.Repeat("ab", 32) + `"}]}`
	if err := os.WriteFile(filepath.Join(pdir, "catalog.json"), []byte(catalog), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.Options{Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
		c.DataDir = filepath.Join(t.TempDir(), "data")
		c.API.Addr = "127.0.0.1:0"
		c.Plugins.Dirs = []string{pdir}
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Dev: true, Level: new(slog.LevelVar)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown() })
	ts := httptest.NewServer(a.API())
	defer ts.Close()

	for _, tc := range []struct {
		method, path, body string
		status             int
		code, message      string
	}{
		{"POST", "/v1/plugins/nosuch/restart", "", 404, "not_found", `no plugin "nosuch"`},
		{"DELETE", "/v1/plugins/nosuch", "", 404, "not_found", `no plugin "nosuch"`},
		{"POST", "/v1/plugins/gone/restart", "", 409, "conflict", `plugin "gone" is refused`},
		{"DELETE", "/v1/plugins/gone", "", 409, "conflict", "trusted by its package"},
		{"POST", "/v1/plugins/register", `{"path": "plugins.d/mine"}`, 400, "invalid_request", "must be absolute"},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || body.Error.Code != tc.code || !strings.Contains(body.Error.Message, tc.message) {
			t.Errorf("%s %s: %d %+v, want %d %s with %q", tc.method, tc.path, resp.StatusCode, body.Error, tc.status, tc.code, tc.message)
		}
	}
}

// TestPluginConfigRejectedNamesFileAndReloads: a plugins.config section
// the plugin rejects fails the plugin at once, naming the file and line of
// the rejected key; a reload with the file fixed starts it.
func TestPluginConfigRejectedNamesFileAndReloads(t *testing.T) {
	pdir := t.TempDir()
	bin := filepath.Join(pdir, "test-detector")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.kind=detector", "-o", bin, "../test/plugins/testplugin").CombinedOutput(); err != nil {
		t.Fatalf("build test plugin: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	catalog := fmt.Sprintf(`{"version": 1, "plugins": [{"name": "test-detector", "kind": "detector", "file": "test-detector", "sha256": "%x"}]}`, sha256.Sum256(b))
	if err := os.WriteFile(filepath.Join(pdir, "catalog.json"), []byte(catalog), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "vigil.yaml")
	dataDir := filepath.Join(t.TempDir(), "data")
	load := func(greeting string) *config.Loaded {
		t.Helper()
		yaml := "plugins:\n  dirs: [" + pdir + "]\n  config:\n    test-detector:\n      greeting: " + greeting + "\n"
		if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(config.Options{Path: file, Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
			c.DataDir = dataDir
			c.API.Addr = "127.0.0.1:0"
		}})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	a, err := New(load("5"), Options{Dev: true, Level: new(slog.LevelVar)}) // dev: a taken gossip port is no error
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown() })
	describe := func() error {
		return a.plugins.WithDetector(context.Background(), "test-detector", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
			_, err := c.Describe(ctx)
			return err
		})
	}
	want := file + ":5: plugins.config.test-detector.greeting: must be a string"
	if err := describe(); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("call with a rejected configuration: %v; want %q", err, want)
	}
	wait := func(what string, ok func(pluginhost.Status) bool) pluginhost.Status {
		t.Helper()
		var s pluginhost.Status
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for _, p := range a.plugins.List() {
				if p.Name == "test-detector" {
					s = p
				}
			}
			if ok(s) {
				return s
			}
		}
		t.Fatalf("test-detector never %s: %+v", what, s)
		return s
	}
	s := wait("failed", func(s pluginhost.Status) bool { return s.State == pluginhost.StateFailed })
	if !strings.Contains(s.LastError, want) || s.Restarts != 0 {
		t.Errorf("after the rejection: %+v; want failed without restarts, saying %q", s, want)
	}
	a.Reload(load(`"hello"`))
	wait("running after the reload", func(s pluginhost.Status) bool { return s.State == pluginhost.StateRunning })
	if err := describe(); err != nil {
		t.Errorf("after the reload: %v", err)
	}
}
