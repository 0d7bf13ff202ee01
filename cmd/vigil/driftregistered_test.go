package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/pluginhost"
)

// TestDriftCompareRegisteredRefusals: -registered runs only a plugin the
// agent trusts by a registration, of the detector kind; what else the
// agent lists is refused before anything is started, naming why.
func TestDriftCompareRegisteredRefusals(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "a.csv")
	if err := os.WriteFile(csv, []byte("x\n1\n2\n3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plugins := []pluginhost.Status{
		{Name: "pkg", Kind: "detector", Path: "/usr/lib/vigil/plugins/pkg", SHA256: strings.Repeat("a", 64), Source: "package", State: pluginhost.StateRunning},
		{Name: "vec", Kind: "vectorstore", Path: "/etc/vigil/plugins.d/vec", SHA256: strings.Repeat("b", 64), Source: "registered", State: pluginhost.StateRunning},
		{Name: "gone", Kind: "detector", Path: filepath.Join(dir, "nothing-here"), SHA256: strings.Repeat("c", 64), Source: "registered", State: pluginhost.StateFailed},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/plugins" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"plugins": plugins})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct{ name, want string }{
		{"pkg", `does not trust plugin "pkg" by a registration (its trust: package)`},
		{"vec", `plugin "vec" is registered as a vectorstore plugin, not a detector`},
		{"gone", `-registered: plugin "gone": open ` + filepath.Join(dir, "nothing-here")},
	} {
		var stdout, stderr bytes.Buffer
		code := run([]string{"drift", "compare", "-reference", csv, "-current", csv, "-detector", tc.name, "-registered", "-http-addr", addr}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), tc.want) || stdout.Len() != 0 {
			t.Errorf("%s: exit %d, stderr %q, stdout %q; want exit 2 and %q", tc.name, code, stderr.String(), stdout.String(), tc.want)
		}
	}
}
