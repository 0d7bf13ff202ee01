package anthropicstub

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// adaptiveModels are the models of the adaptive-thinking tests: one of
// each kind the stub tells apart.
var adaptiveModels = []string{"claude-opus-4-7", "claude-fable-5", "claude-mythos-preview", "claude-sonnet-4-6", "claude-opus-4-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"}

// TestAdaptiveRefusals: each model refuses the thinking shape and the
// effort levels it does not take, with the messages Anthropic gives, and
// adaptive thinking rules out what enabled thinking does.
func TestAdaptiveRefusals(t *testing.T) {
	srv := httptest.NewServer(New(adaptiveModels...))
	defer srv.Close()
	user := `"messages":[{"role":"user","content":"a"}]`
	req := func(model, extra string) string {
		return `{"model":"` + model + `","max_tokens":2000,` + extra + user + `}`
	}
	const adaptive = `"thinking":{"type":"adaptive"},`
	const enabledOnly = "\"thinking.type.enabled\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior."
	use := `{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"toolu_1","name":"search","input":{"query":"x"}}]}`
	result := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}`
	for _, tc := range []struct{ name, body, want string }{
		{"enabled on Opus 4.7", req("claude-opus-4-7", `"thinking":{"type":"enabled","budget_tokens":1024},`), enabledOnly},
		{"enabled on Fable 5", req("claude-fable-5", `"thinking":{"type":"enabled","budget_tokens":1024},`), enabledOnly},
		{"disabled on Fable 5", req("claude-fable-5", `"thinking":{"type":"disabled"},`), "\"thinking.type.disabled\" is not supported for this model"},
		{"adaptive on Sonnet 4.5", req("claude-sonnet-4-5-20250929", adaptive), "adaptive thinking is not supported on this model"},
		{"adaptive on Opus 4.5", req("claude-opus-4-5", adaptive), "adaptive thinking is not supported on this model"},
		{"effort on Haiku 4.5", req("claude-haiku-4-5", `"output_config":{"effort":"low"},`), "This model does not support the effort parameter."},
		{"effort with enabled on Sonnet 4.5", req("claude-sonnet-4-5-20250929", `"thinking":{"type":"enabled","budget_tokens":1024},"output_config":{"effort":"high"},`), "This model does not support the effort parameter."},
		{"max on Opus 4.5", req("claude-opus-4-5", `"output_config":{"effort":"max"},`), `output_config.effort: "max" is not supported by this model`},
		{"xhigh on Sonnet 4.6", req("claude-sonnet-4-6", adaptive+`"output_config":{"effort":"xhigh"},`), `output_config.effort: "xhigh" is not supported by this model`},
		{"xhigh on Mythos Preview", req("claude-mythos-preview", adaptive+`"output_config":{"effort":"xhigh"},`), `output_config.effort: "xhigh" is not supported by this model`},
		{"unknown effort", req("claude-opus-4-7", adaptive+`"output_config":{"effort":"minimal"},`), "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"},
		{"unknown output_config key", req("claude-opus-4-7", adaptive+`"output_config":{"effort":"low","verbosity":"low"},`), "output_config.verbosity: Extra inputs are not permitted"},
		{"budget with adaptive", req("claude-opus-4-7", `"thinking":{"type":"adaptive","budget_tokens":1024},`), "thinking.adaptive.budget_tokens: Extra inputs are not permitted"},
		{"unknown display", req("claude-opus-4-7", `"thinking":{"type":"adaptive","display":"full"},`), "thinking.adaptive.display: Input should be 'summarized' or 'omitted'"},
		{"temperature with adaptive", req("claude-sonnet-4-6", adaptive+`"temperature":0.5,`), "`temperature` may only be set to 1"},
		{"top_p with adaptive", req("claude-sonnet-4-6", adaptive+`"top_p":0.5,`), "`top_p` must be greater than or equal to 0.95"},
		{"forced tool with adaptive", req("claude-opus-4-7", adaptive+toolsJSON+`,"tool_choice":{"type":"tool","name":"now"},`), "tool_choice forces tool use"},
		{"tool loop without thinking blocks", `{"model":"claude-opus-4-7","max_tokens":2000,` + adaptive + toolsJSON + `,"messages":[{"role":"user","content":"a"},` + use + `,` + result + `]}`, "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`"},
	} {
		code, out, raw := post(t, srv.URL, tc.body)
		e, _ := out["error"].(map[string]any)
		if code != 400 || e["type"] != "invalid_request_error" || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: %d %s", tc.name, code, raw)
		}
	}
	// Accepted: both shapes on the 4.6 models, effort alone where it is
	// known (Opus 4.5 with its budget too), no thinking at all, disabled
	// on Opus 4.7, every level on the models that take it.
	for _, body := range []string{
		req("claude-sonnet-4-6", `"thinking":{"type":"enabled","budget_tokens":1024},`),
		req("claude-sonnet-4-6", adaptive+`"output_config":{"effort":"max"},`),
		req("claude-opus-4-7", adaptive+`"output_config":{"effort":"xhigh"},`),
		req("claude-opus-4-7", `"thinking":{"type":"adaptive","display":"summarized"},"output_config":{"effort":"low"},`),
		req("claude-opus-4-7", `"thinking":{"type":"disabled"},`),
		req("claude-opus-4-7", ""),
		req("claude-fable-5", `"output_config":{"effort":"max"},`),
		req("claude-mythos-preview", adaptive+`"output_config":{"effort":"medium"},`),
		req("claude-opus-4-5", `"thinking":{"type":"enabled","budget_tokens":1024},"output_config":{"effort":"medium"},`),
		req("claude-haiku-4-5", `"thinking":{"type":"enabled","budget_tokens":1024},`),
		req("claude-opus-4-7", adaptive+`"temperature":1,"top_p":0.95,`+toolsJSON+`,"tool_choice":{"type":"auto"},`),
	} {
		if code, _, raw := post(t, srv.URL, body); code != 200 {
			t.Errorf("%s: %d %s", body, code, raw)
		}
	}
}

// TestAdaptiveAnswers: under adaptive thinking the answer starts with a
// thinking block; on the adaptive-only models its text is omitted by
// default (an empty text, an OmittedSignature carrying the thinking, no
// thinking_delta when streamed) and summarized on request, on the others
// summarized; the thinking counts in output_tokens either way; an
// omitted block comes back with its empty text, not with a text.
func TestAdaptiveAnswers(t *testing.T) {
	srv := httptest.NewServer(New(adaptiveModels...))
	defer srv.Close()
	const thought = "Thinking about: find cats"
	for _, tc := range []struct {
		model, thinking string
		text, sig       string
	}{
		{"claude-opus-4-7", `{"type":"adaptive"}`, "", OmittedSignature(thought)},
		{"claude-opus-4-7", `{"type":"adaptive","display":"omitted"}`, "", OmittedSignature(thought)},
		{"claude-opus-4-7", `{"type":"adaptive","display":"summarized"}`, thought, Signature(thought)},
		{"claude-sonnet-4-6", `{"type":"adaptive"}`, thought, Signature(thought)},
		{"claude-sonnet-4-6", `{"type":"adaptive","display":"omitted"}`, "", OmittedSignature(thought)},
	} {
		body := `{"model":"` + tc.model + `","max_tokens":2000,"thinking":` + tc.thinking + `,"output_config":{"effort":"low"},` + toolsJSON + `,"messages":[{"role":"user","content":"find cats"}]}`
		code, out, raw := post(t, srv.URL, body)
		content, _ := out["content"].([]any)
		if code != 200 || len(content) != 3 {
			t.Fatalf("%+v: %d %s", tc, code, raw)
		}
		first := content[0].(map[string]any)
		if first["type"] != "thinking" || first["thinking"] != tc.text || first["signature"] != tc.sig || content[2].(map[string]any)["type"] != "tool_use" {
			t.Fatalf("%+v: content %v", tc, content)
		}
		// 4 words of thinking (omitted or not), 4 of text, 2 of input.
		if u := out["usage"].(map[string]any); u["output_tokens"] != 10.0 {
			t.Fatalf("%+v: usage %v", tc, u)
		}

		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)))
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var data []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				data = append(data, d)
			}
		}
		resp.Body.Close()
		all := strings.Join(data, "\n")
		if want := `"delta":{"signature":"` + tc.sig + `","type":"signature_delta"},"index":0`; !strings.Contains(all, want) || !strings.Contains(all, `"usage":{"output_tokens":10}`) {
			t.Errorf("%+v: stream lacks %s:\n%s", tc, want, all)
		}
		if deltas := strings.Contains(all, `"type":"thinking_delta"`); deltas != (tc.text != "") {
			t.Errorf("%+v: thinking_delta sent %v:\n%s", tc, deltas, all)
		}
	}

	// The omitted block goes back in the tool loop as it came; with a
	// text put in it (or another block's signature) it is refused.
	loop := func(thinking, sig string) string {
		return `{"model":"claude-opus-4-7","max_tokens":2000,"thinking":{"type":"adaptive"},"output_config":{"effort":"low"},` + toolsJSON +
			`,"messages":[{"role":"user","content":"find cats"},{"role":"assistant","content":[{"type":"thinking","thinking":"` + thinking + `","signature":"` + sig + `"},` +
			`{"type":"tool_use","id":"toolu_stub_0_0","name":"search","input":{"query":"find cats"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_stub_0_0","content":"3 cats"}]}]}`
	}
	if code, out, raw := post(t, srv.URL, loop("", OmittedSignature(thought))); code != 200 || !strings.Contains(raw, "tool said: 3 cats") {
		t.Fatalf("omitted block sent back: %d %s %v", code, raw, out)
	}
	for _, body := range []string{loop(thought, OmittedSignature(thought)), loop("", OmittedSignature(thought)+"x"), loop("", Signature(thought))} {
		if code, _, raw := post(t, srv.URL, body); code != 400 || !strings.Contains(raw, "Invalid `signature` in `thinking` block") {
			t.Errorf("%s: %d %s", body, code, raw)
		}
	}
}
