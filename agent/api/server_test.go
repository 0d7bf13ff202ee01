package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/agent/config"
)

const (
	readSecret  = "read-token-0123456789"
	writeSecret = "write-token-0123456789"
)

func newTestServer(t *testing.T, tokens bool) (*Server, *httptest.Server, *prometheus.Registry) {
	t.Helper()
	cfg := config.Default().API
	cfg.MaxBodyBytes = 1024
	if tokens {
		cfg.Tokens = []config.Token{
			{Name: "grafana", Scope: config.ScopeRead, Secret: readSecret},
			{Name: "ops", Scope: config.ScopeWrite, Secret: writeSecret},
		}
	}
	reg := prometheus.NewRegistry()
	s := New(cfg, slog.New(slog.DiscardHandler), reg)
	s.HandleFunc("GET /v1/thing", Read, func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"token": TokenName(r)})
	})
	s.HandleFunc("POST /v1/thing", Write, func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			N int `json:"n"`
		}
		if err := DecodeJSON(r, &body); err != nil {
			WriteError(w, err)
			return
		}
		WriteJSON(w, http.StatusAccepted, body)
	})
	s.HandleFunc("GET /v1/panic", Read, func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts, reg
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func do(t *testing.T, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("body is not a JSON API error: %q (%v)", body, err)
	}
	return e.Error.Code
}

func TestAuthScopes(t *testing.T) {
	_, ts, _ := newTestServer(t, true)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "GET", "/v1/thing", "", "", 401, CodeUnauthorized},
		{"wrong token", "GET", "/v1/thing", "not-a-real-token-at-all", "", 401, CodeUnauthorized},
		{"read token reads", "GET", "/v1/thing", readSecret, "", 200, ""},
		{"write token reads", "GET", "/v1/thing", writeSecret, "", 200, ""},
		{"read token writes", "POST", "/v1/thing", readSecret, `{"n":1}`, 403, CodeForbidden},
		{"write token writes", "POST", "/v1/thing", writeSecret, `{"n":1}`, 202, ""},
		// Which routes exist is told only to a valid token.
		{"no token on unknown path", "GET", "/v1/nope", "", "", 401, CodeUnauthorized},
		{"wrong token on unknown path", "GET", "/v1/nope", "not-a-real-token-at-all", "", 401, CodeUnauthorized},
		{"read token on unknown path", "GET", "/v1/nope", readSecret, "", 404, CodeNotFound},
		{"no token, wrong method", "DELETE", "/v1/thing", "", "", 401, CodeUnauthorized},
		{"read token, wrong method", "DELETE", "/v1/thing", readSecret, "", 405, CodeMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := do(t, tt.method, ts.URL+tt.path, tt.token, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			if tt.code != "" {
				if got := errorCode(t, body); got != tt.code {
					t.Errorf("code = %q, want %q", got, tt.code)
				}
			}
			if status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	// The handler sees which token authenticated the request.
	_, _, body := do(t, "GET", ts.URL+"/v1/thing", readSecret, "")
	if !strings.Contains(body, `"grafana"`) {
		t.Errorf("token name not passed to handler: %s", body)
	}
}

func TestNoTokensMeansNoAuth(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	if status, _, body := do(t, "POST", ts.URL+"/v1/thing", "", `{"n":2}`); status != 202 {
		t.Fatalf("status = %d body %s", status, body)
	}
}

func TestReloadTokens(t *testing.T) {
	s, ts, _ := newTestServer(t, true)
	cfg := config.Default().API
	cfg.Tokens = []config.Token{{Name: "new", Scope: config.ScopeRead, Secret: "a-brand-new-token-123"}}
	s.Reload(cfg)
	if status, _, _ := do(t, "GET", ts.URL+"/v1/thing", readSecret, ""); status != 401 {
		t.Errorf("old token still accepted after reload: %d", status)
	}
	if status, _, _ := do(t, "GET", ts.URL+"/v1/thing", "a-brand-new-token-123", ""); status != 200 {
		t.Errorf("new token refused after reload: %d", status)
	}
}

func TestErrorShapes(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		contains                 string
	}{
		{"not found", "GET", "/nowhere", "", 404, CodeNotFound, "/nowhere"},
		{"method not allowed", "DELETE", "/v1/thing", "", 405, CodeMethodNotAllowed, "allowed: GET, HEAD, POST"},
		{"panic", "GET", "/v1/panic", "", 500, CodeInternal, "see the agent's log"},
		{"bad json", "POST", "/v1/thing", `{"n":`, 400, CodeInvalidRequest, "ends in the middle"},
		{"wrong type", "POST", "/v1/thing", `{"n":"x"}`, 400, CodeInvalidRequest, "field n: expected int"},
		{"unknown field", "POST", "/v1/thing", `{"m":1}`, 400, CodeInvalidRequest, `unknown field "m"`},
		{"two values", "POST", "/v1/thing", `{"n":1}{"n":2}`, 400, CodeInvalidRequest, "more than one JSON value"},
		{"empty", "POST", "/v1/thing", "", 400, CodeInvalidRequest, "empty"},
		{"too large by length", "POST", "/v1/thing", `{"n":1,"pad":"` + strings.Repeat("x", 2000) + `"}`, 413, CodePayloadTooLarge, "api.max_body_bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, hdr, body := do(t, tt.method, ts.URL+tt.path, "", tt.body)
			if status != tt.status {
				t.Fatalf("status = %d, want %d (body %s)", status, tt.status, body)
			}
			if got := errorCode(t, body); got != tt.code {
				t.Errorf("code = %q, want %q", got, tt.code)
			}
			var e errorBody
			json.Unmarshal([]byte(body), &e)
			if !strings.Contains(e.Error.Message, tt.contains) {
				t.Errorf("message %q does not contain %q", e.Error.Message, tt.contains)
			}
			if ct := hdr.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
}

// TestBodyLimitChunked sends a body with no Content-Length, so only the
// streaming limit can stop it.
func TestBodyLimitChunked(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`{"n":1,"pad":"`))
		for range 100 {
			if _, err := pw.Write([]byte(strings.Repeat("y", 100))); err != nil {
				return
			}
		}
		pw.Write([]byte(`"}`))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", ts.URL+"/v1/thing", pr)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || errorCode(t, string(b)) != CodePayloadTooLarge {
		t.Errorf("status = %d body %s", resp.StatusCode, b)
	}
}

func TestUnsupportedMediaType(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	req, _ := http.NewRequest("POST", ts.URL+"/v1/thing", strings.NewReader("n=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 415 {
		t.Errorf("status = %d, want 415", resp.StatusCode)
	}
}

// TestContentEncoding: a compressed body is refused with 415 naming the
// coding, not misread as invalid JSON; identity (or none) is read as is.
func TestContentEncoding(t *testing.T) {
	_, ts, _ := newTestServer(t, false)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"n": 1}`))
	zw.Close()
	for _, tc := range []struct {
		encoding string
		body     []byte
		status   int
		message  string
	}{
		{"", []byte(`{"n": 1}`), 202, ""},
		{"identity", []byte(`{"n": 1}`), 202, ""},
		{"gzip", gz.Bytes(), 415, `Content-Encoding "gzip" is not supported; send the body uncompressed`},
		{"br", []byte(`{"n": 1}`), 415, `Content-Encoding "br"`},
	} {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/thing", bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		if resp.StatusCode != tc.status || (tc.status == 415 && (e.Error.Code != CodeUnsupportedMedia || !strings.Contains(e.Error.Message, tc.message))) {
			t.Errorf("Content-Encoding %q: %d %s, want %d %s", tc.encoding, resp.StatusCode, b, tc.status, tc.message)
		}
	}
}

// TestDecodeJSONNonFinite: the literals NaN and Infinity, which Python's
// json module writes, are refused with a hint saying what they are.
func TestDecodeJSONNonFinite(t *testing.T) {
	for _, tc := range []struct {
		body string
		hint bool
	}{
		{`{"n": NaN}`, true},
		{`{"n": Infinity}`, true},
		{`{"n": -Infinity}`, true},
		{`{"n": nope}`, false},
	} {
		r := httptest.NewRequest("POST", "/v1/thing", strings.NewReader(tc.body))
		var v map[string]any
		err := DecodeJSON(r, &v)
		var e *Error
		if !errors.As(err, &e) || e.Status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "invalid JSON at byte") ||
			strings.Contains(e.Message, "NaN and Infinity are not JSON") != tc.hint {
			t.Errorf("%s: %v, want a 400 with the hint: %v", tc.body, err, tc.hint)
		}
	}
}

func TestRequestMetrics(t *testing.T) {
	_, ts, reg := newTestServer(t, false)
	do(t, "GET", ts.URL+"/v1/thing", "", "")
	do(t, "GET", ts.URL+"/v1/thing", "", "")
	do(t, "GET", ts.URL+"/v1/nope/1", "", "")
	want := `
# HELP vigil_http_requests_total HTTP requests served by the agent API, by route, method and status code.
# TYPE vigil_http_requests_total counter
vigil_http_requests_total{code="200",handler="GET /v1/thing",method="GET"} 2
vigil_http_requests_total{code="404",handler="unmatched",method="GET"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_http_requests_total"); err != nil {
		t.Error(err)
	}
}

// TestRequestMetricsMethodBounded: a request's method becomes a label value
// only when it is one of HTTP's methods; any other is "other". The label
// took the method as sent, so a client, even one without a token (whose
// requests to no route are still counted, as 401s), could add a series to
// /metrics with every request, each invented method one more.
func TestRequestMetricsMethodBounded(t *testing.T) {
	_, ts, reg := newTestServer(t, true)
	for i := range 20 {
		do(t, fmt.Sprintf("X-INVENTED-%d", i), ts.URL+"/v1/thing", "", "")
		do(t, fmt.Sprintf("X-INVENTED-%d", i), ts.URL+"/nowhere", "", "")
	}
	do(t, "DELETE", ts.URL+"/v1/thing", writeSecret, "")
	want := `
# HELP vigil_http_requests_total HTTP requests served by the agent API, by route, method and status code.
# TYPE vigil_http_requests_total counter
vigil_http_requests_total{code="401",handler="unmatched",method="other"} 40
vigil_http_requests_total{code="405",handler="unmatched",method="DELETE"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vigil_http_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestRequestTimeoutReachesHandler(t *testing.T) {
	cfg := config.Default().API
	cfg.RequestTimeout = 50 * time.Millisecond
	s := New(cfg, slog.New(slog.DiscardHandler), nil)
	s.HandleFunc("GET /slow", Read, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			WriteError(w, Errorf(http.StatusGatewayTimeout, CodeTimeout, "gave up"))
		case <-time.After(10 * time.Second):
			w.WriteHeader(200)
		}
	})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/slow", nil))
	if rec.Code != http.StatusGatewayTimeout {
		t.Errorf("status = %d, want 504 from the handler seeing its deadline", rec.Code)
	}
}

// TestScopeMatrix checks every token scope against every route scope, and
// that llm tokens reach nothing but the gateway's routes.
func TestScopeMatrix(t *testing.T) {
	cfg := config.Default().API
	secrets := map[string]string{
		config.ScopeRead:  "matrix-read-token-0123",
		config.ScopeWrite: "matrix-write-token-0123",
		config.ScopeLLM:   "matrix-llm-token-01234",
	}
	for scope, secret := range secrets {
		cfg.Tokens = append(cfg.Tokens, config.Token{Name: scope + "-app", Scope: scope, Secret: secret})
	}
	s := New(cfg, slog.New(slog.DiscardHandler), nil)
	ok := func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]string{"token": TokenName(r), "scope": TokenScope(r)})
	}
	routes := map[Scope]string{Read: "/v1/read", Write: "/v1/write", LLM: "/openai/v1/call", LLMRead: "/openai/v1/list"}
	for sc, path := range routes {
		s.HandleFunc("GET "+path, sc, ok)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	allowed := map[string]map[Scope]bool{
		config.ScopeRead:  {Read: true, LLMRead: true},
		config.ScopeWrite: {Read: true, Write: true, LLM: true, LLMRead: true},
		config.ScopeLLM:   {LLM: true, LLMRead: true},
	}
	for scope, secret := range secrets {
		for sc, path := range routes {
			t.Run(scope+" on "+sc.String(), func(t *testing.T) {
				status, _, body := do(t, "GET", ts.URL+path, secret, "")
				if allowed[scope][sc] {
					if status != 200 || !strings.Contains(body, `"scope": "`+scope+`"`) {
						t.Fatalf("status %d body %s, want 200 with scope %s", status, body, scope)
					}
					return
				}
				if status != 403 || errorCode(t, body) != CodeForbidden {
					t.Fatalf("status %d body %s, want 403 forbidden", status, body)
				}
			})
		}
	}
}

// TestErrorShape: the server's own errors under a registered prefix use
// the registered writer; elsewhere Vigil's shape.
func TestErrorShape(t *testing.T) {
	cfg := config.Default().API
	cfg.Tokens = []config.Token{{Name: "r", Scope: config.ScopeRead, Secret: readSecret}}
	s := New(cfg, slog.New(slog.DiscardHandler), nil)
	s.ErrorShape("/openai/", func(w http.ResponseWriter, e *Error) {
		WriteJSON(w, e.Status, map[string]any{"error": map[string]any{"message": e.Message, "type": "other", "code": "x_" + e.Code}})
	})
	h := func(w http.ResponseWriter, r *http.Request) { WriteJSON(w, 200, map[string]string{}) }
	s.HandleFunc("POST /openai/v1/thing", Write, h)
	s.HandleFunc("POST /v1/thing", Write, h)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/openai/v1/thing", "", 401, "x_unauthorized"},
		{"/openai/v1/thing", "wrong-token-0123456789", 401, "x_unauthorized"},
		{"/openai/v1/thing", readSecret, 403, "x_forbidden"},
		{"/openai/v1/nothing", readSecret, 404, "x_not_found"},
		{"/openai/v1/nothing", "", 401, "x_unauthorized"},
		{"/v1/thing", "", 401, CodeUnauthorized},
		{"/v1/thing", readSecret, 403, CodeForbidden},
	} {
		status, _, body := do(t, "POST", ts.URL+tc.path, tc.token, `{}`)
		if status != tc.status || errorCode(t, body) != tc.code {
			t.Errorf("POST %s with %q: %d %s, want %d %s", tc.path, tc.token, status, body, tc.status, tc.code)
		}
	}
}

// TestOwnDeadline: routes registered with OwnDeadline run without the
// api.request_timeout deadline; every other route has it.
func TestOwnDeadline(t *testing.T) {
	cfg := config.Default().API
	cfg.RequestTimeout = 100 * time.Millisecond
	s := New(cfg, slog.New(slog.DiscardHandler), nil)
	h := func(w http.ResponseWriter, r *http.Request) {
		_, has := r.Context().Deadline()
		WriteJSON(w, 200, map[string]bool{"deadline": has})
	}
	s.OwnDeadline("POST /v1/long")
	s.HandleFunc("POST /v1/long", Write, h)
	s.HandleFunc("POST /v1/short", Write, h)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	for path, want := range map[string]bool{"/v1/long": false, "/v1/short": true} {
		status, _, body := do(t, "POST", ts.URL+path, "", "{}")
		var got map[string]bool
		if status != 200 || json.Unmarshal([]byte(body), &got) != nil || got["deadline"] != want {
			t.Errorf("%s: %d %s, want deadline=%v", path, status, body, want)
		}
	}
}
