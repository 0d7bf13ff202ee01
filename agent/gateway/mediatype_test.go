package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestContentTypeRefused: a body sent as anything but JSON (curl -d's
// form encoding, text/plain) is 415 with code unsupported_media_type, the
// code api.md gives that status (as 413 has payload_too_large), in
// OpenAI's error shape; JSON with parameters, in any case, is accepted.
func TestContentTypeRefused(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", "json"} {
		for _, path := range []string{"/chat", "/embeddings"} {
			body := chatBody("chain", "")
			if path == "/embeddings" {
				body = `{"model":"single","input":"a"}`
			}
			r := httptest.NewRequest("POST", path, strings.NewReader(body))
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			if path == "/chat" {
				h.g.HandleChat(w, r)
			} else {
				h.g.HandleEmbeddings(w, r)
			}
			e := errBody(t, w)
			if w.Code != 415 || e.Code != "unsupported_media_type" || e.Type != "invalid_request_error" || !strings.Contains(e.Message, "application/json") {
				t.Errorf("%s %q: %d %+v, want 415 unsupported_media_type", path, ct, w.Code, e)
			}
		}
	}
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("chain", "")))
	r.Header.Set("Content-Type", "Application/JSON; charset=UTF-8")
	w := httptest.NewRecorder()
	h.g.HandleChat(w, r)
	if w.Code != 200 {
		t.Errorf("Application/JSON; charset=UTF-8: %d %s, want 200", w.Code, w.Body)
	}
}

// TestContentEncodingRefused: a compressed body is 415 naming the coding,
// as the agent's own API answers it, not "invalid JSON" about its first
// byte; identity is no coding.
func TestContentEncodingRefused(t *testing.T) {
	h := newHarness(t, testCfg())
	r := httptest.NewRequest("POST", "/chat", strings.NewReader("\x1f\x8b\x08\x00garbage"))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Encoding", "gzip")
	w := httptest.NewRecorder()
	h.g.HandleChat(w, r)
	if e := errBody(t, w); w.Code != 415 || e.Code != "unsupported_media_type" || !strings.Contains(e.Message, `"gzip"`) {
		t.Errorf("gzip body: %d %+v, want 415 naming gzip", w.Code, e)
	}
	r = httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("chain", "")))
	r.Header.Set("Content-Encoding", "identity")
	w = httptest.NewRecorder()
	h.g.HandleChat(w, r)
	if w.Code != 200 {
		t.Errorf("Content-Encoding identity: %d %s, want 200", w.Code, w.Body)
	}
}
