package gateway

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
)

var requestIDPattern = regexp.MustCompile(`^req_[0-9a-f]{32}$`)

// TestRequestIDHeader: every /openai/v1 answer, whole, streamed or an
// error, carries x-request-id: req_ and 32 hex digits, a new one per
// request (the OpenAI SDKs expose it as request_id); one the API server
// already set is kept.
func TestRequestIDHeader(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("solo", sdk.Errorf(sdk.Auth, "bad key"))
	seen := map[string]bool{}
	for _, tc := range []struct {
		name, path, body string
		status           int
	}{
		{"upstream error", "/chat", chatBody("single", ""), 502},
		{"chat", "/chat", chatBody("chain", ""), 200},
		{"stream", "/chat", chatBody("chain", `,"stream":true`), 200},
		{"bad request", "/chat", `{"model":"chain"}`, 400},
		{"unknown alias", "/chat", chatBody("nope", ""), 404},
		{"embeddings", "/embeddings", `{"model":"chain","input":"hi"}`, 200},
	} {
		w := h.do(t, tc.path, tc.body)
		id := w.Header().Get("x-request-id")
		if w.Code != tc.status || !requestIDPattern.MatchString(id) || seen[id] {
			t.Errorf("%s: %d x-request-id %q, want %d and a new req_<32 hex>", tc.name, w.Code, id, tc.status)
		}
		seen[id] = true
	}
	w := httptest.NewRecorder()
	h.g.HandleModels(w, httptest.NewRequest("GET", "/openai/v1/models", nil))
	if id := w.Header().Get("x-request-id"); !requestIDPattern.MatchString(id) {
		t.Errorf("models: x-request-id %q", id)
	}
	w = httptest.NewRecorder()
	w.Header().Set("x-request-id", "req_0123456789abcdef0123456789abcdef")
	h.g.HandleChat(w, httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("chain", ""))))
	if got := w.Header().Values("x-request-id"); len(got) != 1 || got[0] != "req_0123456789abcdef0123456789abcdef" {
		t.Errorf("an id set before the gateway: %q", got)
	}
}

// TestRequestIDLogged: the gateway's warning about a request names the
// id the client got.
func TestRequestIDLogged(t *testing.T) {
	h := newHarness(t, testCfg())
	var buf bytes.Buffer
	h.g.logger = slog.New(slog.NewJSONHandler(&buf, nil))
	h.a.midStream["m1"] = true
	w := h.do(t, "/chat", chatBody("chain", `,"stream":true`))
	id := w.Header().Get("x-request-id")
	var line struct {
		Msg       string `json:"msg"`
		RequestID string `json:"request_id"`
	}
	for l := range strings.Lines(buf.String()) {
		if err := json.Unmarshal([]byte(l), &line); err != nil {
			t.Fatal(err)
		}
		if line.Msg == "upstream failed mid-stream" {
			break
		}
	}
	if line.Msg != "upstream failed mid-stream" || !requestIDPattern.MatchString(id) || line.RequestID != id {
		t.Fatalf("log %q request_id %q, header %q:\n%s", line.Msg, line.RequestID, id, buf.String())
	}
}
