package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUnknownFieldNamesItsPath: an unknown key inside an object of the
// request (a message, a tool, stream_options, response_format) is refused
// naming where it is (messages[1].bogus), not as a top-level parameter
// "bogus" that the client would look for and not find.
func TestUnknownFieldNamesItsPath(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct{ path, body, param string }{
		{"/chat", chatBody("chain", `,"bogus":1`), "bogus"},
		{"/chat", `{"model":"chain","messages":[{"role":"system","content":"s"},{"role":"user","content":"hi","bogus":1}]}`, "messages[1].bogus"},
		{"/chat", chatBody("chain", `,"stream":true,"stream_options":{"include_usage":true,"bogus":1}`), "stream_options.bogus"},
		{"/chat", chatBody("chain", `,"response_format":{"type":"json_object","bogus":1}`), "response_format.bogus"},
		{"/chat", chatBody("chain", `,"tools":[{"type":"function","function":{"name":"w","bogus":1}}]`), "tools[0].function.bogus"},
		// encoding/json matches keys without regard to case: a known
		// field in another case is not the unknown one.
		{"/chat", chatBody("chain", `,"Stream_Options":{"Include_Usage":true,"bogus":1},"stream":true`), "Stream_Options.bogus"},
		{"/embeddings", `{"model":"single","input":"a","bogus":1}`, "bogus"},
	} {
		w := h.do(t, tc.path, tc.body)
		e := errBody(t, w)
		if w.Code != 400 || paramOf(e) != tc.param || !strings.Contains(e.Message, `"`+tc.param+`"`) {
			t.Errorf("%s %s: %d param %q %q, want 400 naming %q", tc.path, tc.body, w.Code, paramOf(e), e.Message, tc.param)
		}
	}
	r := httptest.NewRequest("POST", "/responses", strings.NewReader(`{"model":"chain","input":"hi","text":{"format":{"type":"text"},"bogus":1}}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.g.HandleResponses(w, r)
	if e := errBody(t, w); w.Code != 400 || paramOf(e) != "text.bogus" {
		t.Errorf("responses: %d param %q %q, want 400 naming text.bogus", w.Code, paramOf(e), e.Message)
	}
}

func paramOf(e Error) string {
	if e.Param == nil {
		return ""
	}
	return *e.Param
}
