package test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPluginKindMismatchRefused runs an agent whose plugin directory's
// catalog.json calls a vector-store binary a detector: the plugin is
// refused at its first start, without restarts, and that shows in `vigil
// plugins list` (with the error naming both kinds and the catalog file),
// /v1/plugins and /metrics.
func TestPluginKindMismatchRefused(t *testing.T) {
	dir := t.TempDir()
	pdir := filepath.Join(dir, "plugins")
	if err := os.Mkdir(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := buildTestPlugin(t, "vectorstore", pdir, "vigil-vectorstore-mem")
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	catalog := filepath.Join(pdir, "catalog.json")
	writeFile(t, catalog, `{"version": 1, "plugins": [{"name": "mem", "kind": "detector", "file": "vigil-vectorstore-mem", "sha256": "`+hex.EncodeToString(sum[:])+`"}]}`)
	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, "data_dir: "+filepath.Join(dir, "data")+`
api:
  addr: 127.0.0.1:0
plugins:
  dirs: [`+pdir+`]
  start: boot
  min_backoff: 10ms
  max_backoff: 50ms
`)
	a := startAgent(t, nil, "-config", cfg)
	base := "http://" + a.addr
	waitHealthy(t, base, "")

	waitFor(t, func() bool {
		for _, p := range listPlugins(t, base).Plugins {
			if p.Name == "mem" && p.State == "refused" {
				return true
			}
		}
		return false
	}, "plugin with the wrong kind refused")
	var l struct {
		Plugins []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			Restarts  int    `json:"restarts"`
			LastError string `json:"last_error"`
		} `json:"plugins"`
	}
	_, body := get(t, base+"/v1/plugins", "")
	if err := json.Unmarshal(body, &l); err != nil {
		t.Fatal(err)
	}
	for _, p := range l.Plugins {
		if p.Name != "mem" {
			continue
		}
		for _, want := range []string{`"vectorstore"`, `"detector"`, catalog} {
			if !strings.Contains(p.LastError, want) {
				t.Errorf("/v1/plugins last_error %q does not name %s", p.LastError, want)
			}
		}
		if p.Restarts != 0 || strings.Contains(p.LastError, "crashes within") {
			t.Errorf("/v1/plugins: a refused plugin was restarted: %+v", p)
		}
	}

	out, err := vigil(t, "plugins", "list", "-http-addr", a.addr)
	if row := grepLines(out, "mem"); err != nil || !strings.Contains(row, "refused") || !strings.Contains(row, catalog) {
		t.Errorf("vigil plugins list does not show the refusal: %v\n%s", err, out)
	}

	_, metrics := get(t, base+"/metrics", "")
	if !strings.Contains(string(metrics), `vigil_plugin_up{kind="detector",plugin="mem"} 0`) {
		t.Errorf("/metrics lacks vigil_plugin_up 0 for the refused plugin")
	}
	if strings.Contains(string(metrics), `vigil_plugin_restarts_total{plugin="mem"}`) {
		t.Errorf("/metrics counts restarts of the refused plugin")
	}

	// It stays refused: no restart by the supervisor, and none by hand.
	if out, err := vigil(t, "plugins", "restart", "mem", "-http-addr", a.addr); err == nil || !strings.Contains(out, "refused") {
		t.Errorf("vigil plugins restart of a refused plugin: %v\n%s", err, out)
	}

	a.cmd.Process.Signal(syscall.SIGTERM)
	if code := a.waitExit(t, 12*time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}
