package api

import (
	vtest "github.com/vigilml/vigil/internal/testutil"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/vigilml/vigil/agent/config"
)

// TestRequestIDs: under a registered prefix every answer carries the
// generated x-request-id, the server's own errors (401, unknown route)
// included, the handler sees it, and the access log line names it;
// elsewhere there is none.
func TestRequestIDs(t *testing.T) {
	cfg := config.Default().API
	cfg.AccessLog = true
	cfg.Tokens = []config.Token{{Name: "r", Scope: config.ScopeRead, Secret: readSecret}}
	var logs vtest.SyncBuffer
	s := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
	n := 0
	var mu sync.Mutex
	s.RequestIDs("/openai/", func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return "req_test" + strings.Repeat("x", n)
	})
	var seen string
	h := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = w.Header().Get("x-request-id")
		mu.Unlock()
		WriteJSON(w, 200, map[string]string{})
	}
	s.HandleFunc("GET /openai/v1/thing", Read, h)
	s.HandleFunc("GET /v1/thing", Read, h)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path, token string
		status      int
		id          string
	}{
		{"/openai/v1/thing", "", 401, "req_testx"},
		{"/openai/v1/nothing", readSecret, 404, "req_testxx"},
		{"/openai/v1/thing", readSecret, 200, "req_testxxx"},
		{"/v1/thing", readSecret, 200, ""},
	} {
		status, hdr, body := do(t, "GET", ts.URL+tc.path, tc.token, "")
		if status != tc.status || hdr.Get("x-request-id") != tc.id {
			t.Errorf("GET %s: %d x-request-id %q, want %d %q: %s", tc.path, status, hdr.Get("x-request-id"), tc.status, tc.id, body)
		}
	}
	mu.Lock()
	if seen != "" {
		t.Errorf("handler outside the prefix saw x-request-id %q", seen)
	}
	mu.Unlock()
	log := logs.String()
	for _, want := range []string{"path=/openai/v1/thing status=401", "request_id=req_testx\n", "request_id=req_testxxx\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("access log lacks %q:\n%s", want, log)
		}
	}
	for l := range strings.Lines(log) {
		if strings.Contains(l, "path=/v1/thing") && strings.Contains(l, "request_id") {
			t.Errorf("request_id outside the prefix: %s", l)
		}
	}
}
