package agent

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/vigilml/vigil/agent/config"
)

func pprofAgent(t *testing.T, enable bool) *httptest.Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Load(config.Options{Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
		c.DataDir = dir
		c.API.Addr = "127.0.0.1:0"
		c.API.EnablePprof = enable
		c.API.Tokens = []config.Token{
			{Name: "reader", Scope: config.ScopeRead, Secret: "reader-secret-0123456789abcdef"},
			{Name: "writer", Scope: config.ScopeWrite, Secret: "writer-secret-0123456789abcdef"},
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{Dev: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown() })
	ts := httptest.NewServer(a.API())
	t.Cleanup(ts.Close)
	return ts
}

func getWith(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

func TestPprofOffByDefault(t *testing.T) {
	ts := pprofAgent(t, false)
	if code, body := getWith(t, ts.URL+"/debug/pprof/heap", "writer-secret-0123456789abcdef"); code != 404 {
		t.Fatalf("/debug/pprof/heap without api.enable_pprof = %d %s, want 404", code, body)
	}
}

func TestPprofNeedsWriteScope(t *testing.T) {
	ts := pprofAgent(t, true)
	if code, _ := getWith(t, ts.URL+"/debug/pprof/heap", "reader-secret-0123456789abcdef"); code != 403 {
		t.Errorf("heap profile with a read token = %d, want 403", code)
	}
	code, body := getWith(t, ts.URL+"/debug/pprof/heap", "writer-secret-0123456789abcdef")
	// A profile is gzipped protobuf.
	if code != 200 || !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		t.Errorf("heap profile with a write token = %d (%d bytes, starts %q), want 200 and a gzipped profile", code, len(body), body[:min(len(body), 16)])
	}
	code, body = getWith(t, ts.URL+"/debug/pprof/", "writer-secret-0123456789abcdef")
	if code != 200 || !bytes.Contains(body, []byte("goroutine")) {
		t.Errorf("profile index = %d, want 200 listing goroutine:\n%s", code, body)
	}
	code, body = getWith(t, ts.URL+"/debug/pprof/goroutine?debug=1", "writer-secret-0123456789abcdef")
	if code != 200 || !bytes.Contains(body, []byte("goroutine profile:")) {
		t.Errorf("goroutine profile = %d:\n%.500s", code, body)
	}
}
