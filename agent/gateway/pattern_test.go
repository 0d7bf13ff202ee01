package gateway

import (
	"strings"
	"testing"
)

// TestSchemaPatternsAreECMAScript: JSON Schema's pattern and
// patternProperties are ECMA-262 regular expressions, and the schemas that
// clients generate use what Go's RE2 syntax lacks: zod's z.iso.duration()
// and z.emoji() have lookaheads, z.emoji() \p{Extended_Pictographic} and
// \u20E3. Such a schema is answered and checked, not refused as one that
// does not compile; a pattern no engine reads is still the client's 400.
func TestSchemaPatternsAreECMAScript(t *testing.T) {
	schemaWith := func(prop string) string {
		return `{"type":"object","properties":{"v":` + prop + `},"required":["v"],"additionalProperties":false}`
	}
	cases := []struct {
		name, prop, good, bad string
	}{
		{"lookahead (z.iso.duration)", `{"type":"string","format":"duration","pattern":"^P(?:(\\d+W)|(?!.*W)(?=\\d|T\\d)(\\d+Y)?(\\d+M)?(\\d+D)?(T(?=\\d)(\\d+H)?(\\d+M)?(\\d+([.,]\\d+)?S)?)?)$"}`, `"P1DT2H"`, `"P1W2D"`},
		{"negative lookahead", `{"type":"string","pattern":"^(?!draft-).+$"}`, `"final"`, `"draft-1"`},
		{"\\u escape", `{"type":"string","pattern":"^\\u0041+$"}`, `"AAA"`, `"BBB"`},
		{"z.emoji()", `{"type":"string","format":"emoji","pattern":"^(?=[\\s\\S]*[\\p{Extended_Pictographic}\\p{Regional_Indicator}\\u20E3])[\\p{Extended_Pictographic}\\p{Emoji_Component}]+$"}`, `"😀"`, `"abc"`},
		{"patternProperties with a lookahead", `{"type":"object","patternProperties":{"^(?!x_)":{"type":"integer"}},"additionalProperties":false}`, `{"a":1}`, `{"a":"one"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testCfg())
			rf := `,"response_format":{"type":"json_schema","json_schema":{"name":"r","strict":true,"schema":` + schemaWith(c.prop) + `}}`
			h.a.answers["solo"] = []string{`{"v":` + c.good + `}`}
			w := h.do(t, "/chat", chatBody("single", rf))
			if w.Code != 200 || h.a.count("solo") != 1 {
				t.Fatalf("a valid answer: %d, %d calls: %s", w.Code, h.a.count("solo"), w.Body)
			}
			// The pattern is checked: an answer that breaks it is repaired.
			h.a.answers["solo"] = []string{`{"v":` + c.bad + `}`, `{"v":` + c.good + `}`}
			w = h.do(t, "/chat", chatBody("single", rf))
			if w.Code != 200 || h.a.count("solo") != 3 || w.Header().Get("x-vigil-attempts") != "2" {
				t.Fatalf("an answer breaking the pattern: %d, %d calls, attempts %s: %s", w.Code, h.a.count("solo"), w.Header().Get("x-vigil-attempts"), w.Body)
			}
		})
	}
	t.Run("a match that backtracks without end is not held against the answer", func(t *testing.T) {
		h := newHarness(t, testCfg())
		rf := `,"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":` + schemaWith(`{"type":"string","pattern":"^(?!b)(a+)+$"}`) + `}}`
		h.a.answers["solo"] = []string{`{"v":"` + strings.Repeat("a", 40) + `!"}`}
		w := h.do(t, "/chat", chatBody("single", rf))
		if w.Code != 200 || h.a.count("solo") != 1 {
			t.Fatalf("%d, %d calls: %s", w.Code, h.a.count("solo"), w.Body)
		}
	})
	t.Run("a pattern no engine reads is a 400", func(t *testing.T) {
		h := newHarness(t, testCfg())
		rf := `,"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":` + schemaWith(`{"type":"string","pattern":"(ab"}`) + `}}`
		w := h.do(t, "/chat", chatBody("single", rf))
		if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "response_format.json_schema.schema" || !strings.Contains(e.Message, "(ab") || !strings.Contains(e.Message, "not valid regex") {
			t.Fatalf("%d %+v", w.Code, e)
		}
		if h.a.count("solo") != 0 {
			t.Fatal("a bad schema reached the upstream")
		}
	})
}

// TestSlowPatternStopsBeingMatched: a pattern that backtracks without end
// runs into the match timeout at most maxSlowMatches times; after that
// every string passes unmatched, so an answer of many strings (or many
// requests sending the pattern: compiled schemas are shared) cannot hold
// a core for the timeout once per string.
func TestSlowPatternStopsBeingMatched(t *testing.T) {
	re, err := compilePattern(`^(?!b)(a+)+$`) // a lookahead: regexp2, not RE2
	if err != nil {
		t.Fatal(err)
	}
	p, ok := re.(*ecmaPattern)
	if !ok {
		t.Fatalf("compiled as %T; want the backtracking engine", re)
	}
	if !p.MatchString("aaa") || p.MatchString("baa") {
		t.Fatal("the pattern does not match as written")
	}
	evil := strings.Repeat("a", 40) + "!"
	for i := range 10 {
		if !p.MatchString(evil) {
			t.Fatalf("match %d: a slow match was held against the string", i)
		}
	}
	if got := p.slow.Load(); got != maxSlowMatches {
		t.Errorf("%d matches ran into the timeout; want %d, then none", got, maxSlowMatches)
	}
	if !p.MatchString("baa") {
		t.Error("after its slow matches the pattern is still matched")
	}
}
