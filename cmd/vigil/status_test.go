package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent"
)

// TestStatusAPILine checks that the API line says plainly whether TLS is on
// and, when no token is needed, whether the API is reachable from other
// hosts (api.insecure_allow_remote) instead of always claiming loopback;
// and that it gives the addresses in the form -http-addr takes.
func TestStatusAPILine(t *testing.T) {
	for _, tc := range []struct {
		api  agent.APIStatus
		want string
	}{
		{agent.APIStatus{Addresses: []string{"tcp://127.0.0.1:7070"}}, "API:       http://127.0.0.1:7070 (plain HTTP, no auth: loopback only)"},
		{agent.APIStatus{Addresses: []string{"unix:///run/vigil/api.sock"}}, "(plain HTTP, no auth: loopback only)"},
		{agent.APIStatus{Addresses: []string{"tcp://[::]:7070"}}, "(plain HTTP, NO AUTH, reachable from other hosts)"},
		// The addresses as -http-addr takes them: https:// with TLS (the
		// unix socket stays plain).
		{agent.APIStatus{Addresses: []string{"tcp://10.0.0.17:7070", "unix:///run/vigil/api.sock"}, TLS: true, Auth: true}, "API:       https://10.0.0.17:7070, unix:///run/vigil/api.sock (TLS, bearer tokens)"},
	} {
		var b bytes.Buffer
		printStatus(&b, agent.Status{API: tc.api}, "ok", nil)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%v: output lacks %q:\n%s", tc.api, tc.want, b.String())
		}
	}
}

// TestStatusJSONHealth: the "health" object of `vigil status -format json`
// is what /v1/health answers: {"status": "ok"} with no "checks" when the
// agent is healthy (it printed "checks": null, which a script reading the
// checks as an object trips on), and the failing checks when it is not.
func TestStatusJSONHealth(t *testing.T) {
	for _, tt := range []struct {
		name   string
		code   int
		health string
		exit   int
		want   string
	}{
		{"healthy", http.StatusOK, `{"status": "ok"}`, 0, `{"status":"ok"}`},
		{"failing", http.StatusServiceUnavailable, `{"status": "failing", "checks": {"store": "disk full"}}`, 1, `{"checks":{"store":"disk full"},"status":"failing"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch r.URL.Path {
				case "/v1/status":
					w.Write([]byte(`{"node_name": "n1", "subsystems": []}`))
				case "/v1/health":
					w.WriteHeader(tt.code)
					w.Write([]byte(tt.health))
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			var stdout, stderr bytes.Buffer
			if code := run([]string{"status", "-format", "json", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr); code != tt.exit {
				t.Fatalf("exit %d, want %d: %s", code, tt.exit, stderr.String())
			}
			var out struct {
				Health json.RawMessage `json:"health"`
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
			}
			var got bytes.Buffer
			if err := json.Compact(&got, out.Health); err != nil {
				t.Fatal(err)
			}
			// Compare as re-marshalled maps, so key order does not matter.
			var m map[string]any
			json.Unmarshal(got.Bytes(), &m)
			b, _ := json.Marshal(m)
			if string(b) != tt.want {
				t.Errorf("health = %s, want %s", b, tt.want)
			}
		})
	}
}
