package api

import (
	"net/http"
	"strings"
	"testing"
)

// doWith sends a request with extra headers (a Host header is set on the
// request itself, as a browser after DNS rebinding would send it).
func doWith(t *testing.T, method, url, token, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// A web page the operator visits must not be able to change the agent's
// state through the browser (CSRF): a bodyless POST such as a plugin
// restart is a "simple" request a page may send to 127.0.0.1 without a
// preflight.
func TestCrossSiteBrowserWritesRefused(t *testing.T) {
	for _, tokens := range []bool{false, true} {
		_, ts, _ := newTestServer(t, tokens)
		token := ""
		if tokens {
			token = writeSecret
		}
		tests := []struct {
			name, method string
			hdr          map[string]string
			status       int
		}{
			{"cross-site fetch", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
			{"same-site fetch", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
			{"old browser with a foreign Origin", "POST", map[string]string{"Origin": "http://evil.example"}, 403},
			{"same-origin fetch", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, 202},
			{"typed into the address bar", "POST", map[string]string{"Sec-Fetch-Site": "none"}, 202},
			{"not a browser", "POST", nil, 202},
			// Reads stay open: the same-origin policy keeps the answer from the page.
			{"cross-site read", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, 200},
		}
		for _, tt := range tests {
			body := ""
			if tt.method == "POST" {
				body = `{"n":1}`
			}
			status, resp := doWith(t, tt.method, ts.URL+"/v1/thing", token, body, tt.hdr)
			if status != tt.status {
				t.Errorf("tokens=%v %s: status = %d, want %d (%s)", tokens, tt.name, status, tt.status, resp)
				continue
			}
			if status == 403 {
				if code := errorCode(t, resp); code != CodeForbidden || !strings.Contains(resp, "cross-origin") {
					t.Errorf("tokens=%v %s: %s", tokens, tt.name, resp)
				}
			}
		}
	}
}

// Without tokens, a loopback listener answers only requests addressed to a
// loopback name: a page whose own host name was rebound to 127.0.0.1 (DNS
// rebinding) is same-origin with the API and could otherwise read it and
// use the gateway's provider keys.
func TestLoopbackHostChecked(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	for host, want := range map[string]int{
		"127.0.0.1:" + port:      200,
		"127.0.0.5:" + port:      200,
		"localhost:" + port:      200,
		"LOCALHOST":              200,
		"[::1]:" + port:          200,
		"evil.example:" + port:   403,
		"evil.example":           403,
		"localhost.evil.example": 403,
		"127.0.0.1.evil.example": 403,
		"10.0.0.1:" + port:       403,
	} {
		status, body := doWith(t, "GET", ts.URL+"/v1/thing", "", "", map[string]string{"Host": host})
		if status != want {
			t.Errorf("Host %q: status = %d, want %d (%s)", host, status, want, body)
			continue
		}
		if status == 403 && (errorCode(t, body) != CodeForbidden || !strings.Contains(body, "api.tokens")) {
			t.Errorf("Host %q: %s", host, body)
		}
	}
	// With tokens the token guards the API: any Host name is served.
	_, tts, _ := newTestServer(t, true)
	if status, body := doWith(t, "GET", tts.URL+"/v1/thing", readSecret, "", map[string]string{"Host": "vigil.example"}); status != 200 {
		t.Errorf("with tokens, Host vigil.example: %d %s", status, body)
	}
}
