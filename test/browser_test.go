package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// browserRequest sends what a browser would: a page's request with its
// Origin and Sec-Fetch-Site headers, or, after DNS rebinding, the page's
// own host name in Host.
func browserRequest(t *testing.T, method, url, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserRequestsRefused: an agent without tokens on loopback refuses
// what a web page open on the same host could send it: a cross-site write
// (CSRF, a bodyless POST needs no preflight) and any request addressed to
// the page's own name rebound to 127.0.0.1 (DNS rebinding), the gateway's
// included, in the gateway's error shape. The CLI and other clients are
// not affected.
func TestBrowserRequestsRefused(t *testing.T) {
	a := startAgent(t, []string{"VIGIL_GOSSIP_ENABLED=false"}, "-dev", "-http-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	base := "http://" + a.addr
	waitHealthy(t, base, "")
	port := a.addr[strings.LastIndex(a.addr, ":")+1:]

	evaluate := base + "/v1/models/fraud/drift/evaluate"
	status, body := browserRequest(t, "POST", evaluate, "", map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
	if status != 403 || !strings.Contains(body, `"forbidden"`) || !strings.Contains(body, "cross-origin request refused") {
		t.Errorf("cross-site POST: %d %s", status, body)
	}
	// The same POST from a client that is not a browser reaches the handler
	// (no such model: 404).
	if status, body := browserRequest(t, "POST", evaluate, "", nil); status != 404 {
		t.Errorf("POST without browser headers: %d %s", status, body)
	}

	for _, path := range []string{"/v1/status", "/v1/plugins", "/metrics"} {
		status, body := browserRequest(t, "GET", base+path, "evil.example:"+port, map[string]string{"Sec-Fetch-Site": "same-origin"})
		if status != 403 || !strings.Contains(body, "is not a loopback name") {
			t.Errorf("GET %s with Host evil.example: %d %s", path, status, body)
		}
		if status, body := browserRequest(t, "GET", base+path, "localhost:"+port, nil); status != 200 {
			t.Errorf("GET %s with Host localhost: %d %s", path, status, body)
		}
	}
	status, body = browserRequest(t, "GET", base+"/openai/v1/models", "evil.example:"+port, nil)
	var oe struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if status != 403 || json.Unmarshal([]byte(body), &oe) != nil || oe.Error.Type != "permission_error" || !strings.Contains(oe.Error.Message, "api.tokens") {
		t.Errorf("gateway with Host evil.example: %d %s", status, body)
	}

	// The CLI, which addresses the agent by its loopback address, works.
	out, err := runCLI("status", "-http-addr", a.addr)
	if err != nil {
		t.Errorf("vigil status: %v\n%s", err, out)
	}
}
