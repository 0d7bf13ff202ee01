package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestJSONSchemaNameChecked: response_format.json_schema.name follows
// OpenAI's rule (1 to 64 of a-z, A-Z, 0-9, _ and -), as a tool's name
// already does: a bad one is a 400 naming the field before any upstream
// call, on chat and on the Responses API (text.format.name), rather than
// passed on for OpenAI to refuse, or accepted by an upstream that does not
// check it.
func TestJSONSchemaNameChecked(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, name := range []string{"bad name!", "a.b", strings.Repeat("x", 65)} {
		w := h.do(t, "/chat", chatBody("single", `,"response_format":{"type":"json_schema","json_schema":{"name":"`+name+`","schema":{"type":"object"}}}`))
		e := errBody(t, w)
		if w.Code != 400 || paramOf(e) != "response_format.json_schema.name" || !strings.Contains(e.Message, "a-z, A-Z, 0-9, _ and -") {
			t.Errorf("name %q: %d param %q %q, want 400 naming response_format.json_schema.name", name, w.Code, paramOf(e), e.Message)
		}
	}
	r := httptest.NewRequest("POST", "/responses", strings.NewReader(`{"model":"single","input":"x","text":{"format":{"type":"json_schema","name":"bad name","schema":{"type":"object"}}}}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.g.HandleResponses(w, r)
	if e := errBody(t, w); w.Code != 400 || paramOf(e) != "text.format.name" {
		t.Errorf("responses: %d param %q %q, want 400 naming text.format.name", w.Code, paramOf(e), e.Message)
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("%d upstream calls, want none", n)
	}
	w = h.do(t, "/chat", chatBody("single", `,"response_format":{"type":"json_schema","json_schema":{"name":"Reply_v2-`+strings.Repeat("x", 55)+`","schema":{"type":"object"}}}`))
	if w.Code != 200 {
		t.Fatalf("a valid 64-character name: %d %s", w.Code, w.Body)
	}
}
