package agent

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/config"
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
