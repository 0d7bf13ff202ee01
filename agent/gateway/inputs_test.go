package gateway

// Checks of what a client sends: content parts, message content, embedding
// input.

import (
	"strings"
	"testing"
)

// TestTextPartNeedsText: a text content part without text is a 400 naming
// messages[i].content[j].text, as OpenAI answers ("Missing required
// parameter"), not a message sent upstream as if it were empty; a text
// part with "" is text and passes.
func TestTextPartNeedsText(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/chat", `{"model":"chain","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text"}]}]}`)
	e := errBody(t, w)
	if w.Code != 400 || paramOf(e) != "messages[0].content[1].text" || !strings.Contains(e.Message, "without text") {
		t.Fatalf("%d param %q %q, want 400 naming messages[0].content[1].text", w.Code, paramOf(e), e.Message)
	}
	if h.a.count("m1") != 0 {
		t.Fatalf("%d upstream calls, want none", h.a.count("m1"))
	}
	w = h.do(t, "/chat", `{"model":"chain","messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"text","text":"hi"}]}]}`)
	if w.Code != 200 {
		t.Fatalf("text parts with text: %d %s", w.Code, w.Body)
	}
}

// TestEmptyContentArray: an empty array of content parts is a 400 naming
// messages[i].content, as OpenAI answers, for every role.
func TestEmptyContentArray(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, msgs := range []string{
		`[{"role":"user","content":[]}]`,
		`[{"role":"system","content":[]},{"role":"user","content":"hi"}]`,
		`[{"role":"user","content":"hi"},{"role":"assistant","content":[]},{"role":"user","content":"and?"}]`,
	} {
		w := h.do(t, "/chat", `{"model":"chain","messages":`+msgs+`}`)
		e := errBody(t, w)
		if w.Code != 400 || !strings.HasSuffix(paramOf(e), "].content") || !strings.Contains(e.Message, "empty array") {
			t.Errorf("%s: %d param %q %q, want 400 naming the message's content", msgs, w.Code, paramOf(e), e.Message)
		}
	}
	if h.a.count("m1") != 0 {
		t.Fatalf("%d upstream calls, want none", h.a.count("m1"))
	}
}

// TestContentPartUnknownKey: a key a content part does not have is
// refused with its path, as unknown keys are everywhere else in a
// request, not dropped.
func TestContentPartUnknownKey(t *testing.T) {
	h := newHarness(t, testCfg())
	for body, want := range map[string]string{
		`[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}]`:                                                                         "messages[0].content[0].cache_control",
		`[{"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","bogus":1}}]}]`: "messages[1].content[1].image_url.bogus",
	} {
		w := h.do(t, "/chat", `{"model":"chain","messages":`+body+`}`)
		e := errBody(t, w)
		if w.Code != 400 || paramOf(e) != want || !strings.Contains(e.Message, "unknown key") {
			t.Errorf("%s: %d param %q %q, want 400 naming %s", body, w.Code, paramOf(e), e.Message, want)
		}
	}
	if h.a.count("m1") != 0 {
		t.Fatalf("%d upstream calls, want none", h.a.count("m1"))
	}
}

// TestEmbeddingInputNull: "input": null is a missing input, and says so
// as a missing one does (it said "must not be empty").
func TestEmbeddingInputNull(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, body := range []string{`{"model":"single"}`, `{"model":"single","input":null}`} {
		w := h.do(t, "/embeddings", body)
		e := errBody(t, w)
		if w.Code != 400 || paramOf(e) != "input" || !strings.Contains(e.Message, "input is required") {
			t.Errorf("%s: %d param %q %q, want 400 input is required", body, w.Code, paramOf(e), e.Message)
		}
	}
}
