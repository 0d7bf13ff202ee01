package gateway

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeErrorsSpeakJSON: a body of the wrong JSON type is refused in
// JSON's words, naming the field, never with the gateway's Go types
// ("[]gateway.chatMessage", "float64") that a client cannot act on.
func TestDecodeErrorsSpeakJSON(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct {
		path, body, param, says string
	}{
		{"/chat", `[]`, "", "the request body must be a JSON object, got JSON array"},
		{"/chat", `"hi"`, "", "the request body must be a JSON object, got JSON string"},
		{"/embeddings", `[1]`, "", "the request body must be a JSON object, got JSON array"},
		{"/chat", `{"model":"chain","messages":"hi"}`, "messages", "field messages: expected an array, got JSON string"},
		{"/chat", `{"model":"chain","messages":[1]}`, "messages", "field messages: expected an object, got JSON number"},
		{"/chat", chatBody("chain", `,"temperature":"0"`), "temperature", "field temperature: expected a number, got JSON string"},
		{"/chat", chatBody("chain", `,"max_tokens":1e20`), "max_tokens", "field max_tokens: expected a 32-bit integer, got JSON number 1e20"},
		{"/chat", chatBody("chain", `,"seed":1.5`), "seed", "field seed: expected an integer, got JSON number 1.5"},
		{"/chat", chatBody("chain", `,"stream":"yes"`), "stream", "field stream: expected a boolean, got JSON string"},
		{"/chat", chatBody("chain", `,"tools":{}`), "tools", "field tools: expected an array, got JSON object"},
	} {
		w := h.do(t, tc.path, tc.body)
		e := errBody(t, w)
		param := ""
		if e.Param != nil {
			param = *e.Param
		}
		if w.Code != 400 || param != tc.param || e.Message != tc.says || strings.Contains(e.Message, "gateway.") {
			t.Errorf("%s %s: %d param %q %q, want 400 %q %q", tc.path, tc.body, w.Code, param, e.Message, tc.param, tc.says)
		}
	}
}

// TestDecodeTooLargeWithoutLength: a body over api.max_body_bytes found
// only while reading (chunked, no Content-Length) is 413 with code
// payload_too_large, as the API server answers when the length is
// declared up front.
func TestDecodeTooLargeWithoutLength(t *testing.T) {
	h := newHarness(t, testCfg())
	body := chatBody("chain", `,"user":"`+strings.Repeat("x", 200)+`"`)
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.ContentLength = -1
	w := httptest.NewRecorder()
	r.Body = http.MaxBytesReader(w, r.Body, 100)
	h.g.HandleChat(w, r)
	e := errBody(t, w)
	if w.Code != http.StatusRequestEntityTooLarge || e.Code != "payload_too_large" || e.Type != "invalid_request_error" {
		t.Fatalf("%d %+v, want 413 payload_too_large", w.Code, e)
	}
}

// TestCacheHeaderChecked: an x-vigil-cache request header other than use
// or bypass (any case) is a 400 naming it, before the cache or an
// upstream: a misspelt bypass must not serve a cached answer.
func TestCacheHeaderChecked(t *testing.T) {
	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	det := chatBody("single", `,"temperature":0`)
	h.doHeader(t, det, nil)
	for _, v := range []string{"bypas", "no-cache", "hit"} {
		w := h.doHeader(t, det, map[string]string{"x-vigil-cache": v})
		e := errBody(t, w)
		if w.Code != 400 || !strings.Contains(e.Message, "x-vigil-cache") || !strings.Contains(e.Message, v) {
			t.Errorf("x-vigil-cache: %s: %d %q, want 400 naming the header", v, w.Code, e.Message)
		}
	}
	r := httptest.NewRequest("POST", "/responses", strings.NewReader(`{"model":"single","input":"hello","temperature":0}`))
	r.Header.Set("x-vigil-cache", "off")
	w := httptest.NewRecorder()
	h.g.HandleResponses(w, r)
	if e := errBody(t, w); w.Code != 400 || !strings.Contains(e.Message, "x-vigil-cache") {
		t.Errorf("responses with x-vigil-cache: off: %d %q, want 400", w.Code, e.Message)
	}
	if w := h.doHeader(t, det, map[string]string{"x-vigil-cache": "BYPASS"}); w.Code != 200 || w.Header().Get("x-vigil-cache") != "bypass" {
		t.Errorf("x-vigil-cache: BYPASS: %d %s", w.Code, w.Header().Get("x-vigil-cache"))
	}
	if n := h.a.count("solo"); n != 2 {
		t.Fatalf("upstream calls %d, want 2 (the first request and the bypass)", n)
	}
}

// TestMessageContentRequired: a system, developer, user or tool message
// without content (absent or null) is a 400 naming the field, before any
// upstream call, as OpenAI answers; an assistant message with tool_calls
// may have null content.
func TestMessageContentRequired(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct{ body, param string }{
		{`{"model":"single","messages":[{"role":"user","content":null}]}`, "messages[0].content"},
		{`{"model":"single","messages":[{"role":"user"}]}`, "messages[0].content"},
		{`{"model":"single","messages":[{"role":"developer"},{"role":"user","content":"x"}]}`, "messages[0].content"},
		{`{"model":"single","messages":[{"role":"system","content":"s"},{"role":"user","content":null}]}`, "messages[1].content"},
	} {
		w := h.do(t, "/chat", tc.body)
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, "is required") {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.body, w.Code, e, tc.param)
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("%d upstream calls for requests without content", n)
	}
	w := h.do(t, "/chat", `{"model":"single","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"w"}}]}`)
	if w.Code != 200 {
		t.Fatalf("assistant message with tool_calls and null content: %d %s", w.Code, w.Body)
	}
}

// TestStreamOptionsIncludeObfuscation: chat completions take OpenAI's
// stream_options.include_obfuscation (typed by its SDKs, as the Responses
// API here already does) and add no padding either way.
func TestStreamOptionsIncludeObfuscation(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, v := range []string{"false", "true"} {
		w := h.do(t, "/chat", chatBody("single", `,"stream":true,"stream_options":{"include_usage":true,"include_obfuscation":`+v+`}`))
		ev := readSSE(t, w.Body.String())
		if w.Code != 200 || ev[len(ev)-1] != "[DONE]" || strings.Contains(w.Body.String(), "obfuscation") {
			t.Fatalf("include_obfuscation %s: %d %s", v, w.Code, w.Body)
		}
	}
	w := h.do(t, "/chat", chatBody("single", `,"stream":true,"stream_options":{"include_obfuscation":"no"}`))
	if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "stream_options.include_obfuscation" {
		t.Fatalf("include_obfuscation \"no\": %d %+v", w.Code, e)
	}
}

// TestTopPZero: top_p 0 is taken, as OpenAI's API (minimum 0) and
// Anthropic's take it, and reaches the provider as 0, not unset.
func TestTopPZero(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/chat", chatBody("single", `,"top_p":0`))
	if w.Code != 200 {
		t.Fatalf("top_p 0: %d %s", w.Code, w.Body)
	}
	if p := h.a.last["solo"].TopP; p == nil || *p != 0 {
		t.Fatalf("top_p reached the provider as %v, want 0", p)
	}
}
