package anthropicstub

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestThinkingRefusals checks the stub refuses, as the real API does,
// the thinking requests a wrong translation would produce.
func TestThinkingRefusals(t *testing.T) {
	srv := httptest.NewServer(New("m"))
	defer srv.Close()
	th := `"thinking":{"type":"enabled","budget_tokens":1024}`
	user := `"messages":[{"role":"user","content":"a"}]`
	use := `{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"tool_use","id":"toolu_1","name":"search","input":{"query":"x"}}]}`
	result := `{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}`
	for _, tc := range []struct{ name, body, want string }{
		{"unknown type", `{"model":"m","max_tokens":2000,"thinking":{"type":"on"},` + user + `}`, "does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'"},
		{"budget missing", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled"},` + user + `}`, "thinking.enabled.budget_tokens: Input should be a valid integer"},
		{"budget too small", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1023},` + user + `}`, "greater than or equal to 1024"},
		{"budget not below max_tokens", `{"model":"m","max_tokens":1024,` + th + `,` + user + `}`, "`max_tokens` must be greater than `thinking.budget_tokens`"},
		{"temperature", `{"model":"m","max_tokens":2000,"temperature":0.5,` + th + `,` + user + `}`, "`temperature` may only be set to 1"},
		{"top_k", `{"model":"m","max_tokens":2000,"top_k":5,` + th + `,` + user + `}`, "`top_k` must be unset"},
		{"top_p", `{"model":"m","max_tokens":2000,"top_p":0.9,` + th + `,` + user + `}`, "`top_p` must be greater than or equal to 0.95"},
		{"forced tool", `{"model":"m","max_tokens":2000,` + toolsJSON + `,"tool_choice":{"type":"any"},` + th + `,` + user + `}`, "tool_choice forces tool use"},
		{"tool loop without thinking blocks", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},` + use + `,` + result + `]}`, "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`"},
		{"signature not the block's", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"thinking","thinking":"h","signature":"` + Signature("h") + `x"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`, "messages.1.content.0: Invalid `signature` in `thinking` block"},
		{"thinking text changed", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"thinking","thinking":"h ","signature":"` + Signature("h") + `"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`, "messages.1.content.0: Invalid `signature` in `thinking` block"},
		{"redacted data not the stub's", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"x"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`, "messages.1.content.0: Invalid `data` in `redacted_thinking` block"},
		{"thinking after the text", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"t"},{"type":"thinking","thinking":"h","signature":"` + Signature("h") + `"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`, "Expected `thinking` or `redacted_thinking`, but found `text`"},
		{"thinking without a signature", `{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"thinking","thinking":"h"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`, "thinking.signature: Field required"},
	} {
		code, out, raw := post(t, srv.URL, tc.body)
		e, _ := out["error"].(map[string]any)
		if code != 400 || out["type"] != "error" || e["type"] != "invalid_request_error" || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: %d %s", tc.name, code, raw)
		}
	}
	// Accepted: temperature 1, top_p 0.95, tool_choice auto, thinking
	// disabled with any sampling, and a tool loop whose assistant turn
	// starts with its thinking (or redacted thinking) block.
	for _, body := range []string{
		`{"model":"m","max_tokens":1025,"temperature":1,"top_p":0.95,` + th + `,` + user + `}`,
		`{"model":"m","max_tokens":9,"temperature":0.2,"top_k":3,"thinking":{"type":"disabled"},` + user + `}`,
		`{"model":"m","max_tokens":2000,` + toolsJSON + `,"tool_choice":{"type":"auto"},` + th + `,` + user + `}`,
		`{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"thinking","thinking":"h","signature":"` + Signature("h") + `"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`,
		`{"model":"m","max_tokens":2000,` + toolsJSON + `,` + th + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"redacted_thinking","data":"` + RedactedData("a") + `"},{"type":"tool_use","id":"toolu_1","name":"search","input":{}}]},` + result + `]}`,
	} {
		if code, _, raw := post(t, srv.URL, body); code != 200 {
			t.Errorf("%s: %d %s", body, code, raw)
		}
	}
}

// TestThinkingAnswers: with thinking enabled the answer starts with a
// signed thinking block, whole and streamed, counted in output_tokens.
func TestThinkingAnswers(t *testing.T) {
	srv := httptest.NewServer(New("m"))
	defer srv.Close()
	body := `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},` + toolsJSON + `,"messages":[{"role":"user","content":"find cats"}]}`
	code, out, raw := post(t, srv.URL, body)
	content, _ := out["content"].([]any)
	if code != 200 || len(content) != 3 {
		t.Fatalf("%d %s", code, raw)
	}
	first := content[0].(map[string]any)
	if first["type"] != "thinking" || first["thinking"] != "Thinking about: find cats" || first["signature"] != Signature("Thinking about: find cats") ||
		content[1].(map[string]any)["type"] != "text" || content[2].(map[string]any)["type"] != "tool_use" {
		t.Fatalf("content: %v", content)
	}
	// 4 words of thinking, 4 of text ("Let me call search."), 2 of input.
	if u := out["usage"].(map[string]any); u["output_tokens"] != 10.0 {
		t.Fatalf("usage: %v", u)
	}

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)))
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var data []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, d)
		}
	}
	all := strings.Join(data, "\n")
	for _, want := range []string{
		`"content_block":{"signature":"","thinking":"","type":"thinking"},"index":0`,
		`"delta":{"thinking":"Thinking ","type":"thinking_delta"},"index":0`,
		`"delta":{"signature":"` + Signature("Thinking about: find cats") + `","type":"signature_delta"},"index":0`,
		`"content_block":{"text":"","type":"text"},"index":1`,
		`"content_block":{"id":"toolu_stub_0_0","input":{},"name":"search","type":"tool_use"},"index":2`,
		`"usage":{"output_tokens":10}`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("stream lacks %s:\n%s", want, all)
		}
	}
}

// TestRedactedThinkingAnswers: "[redacted-thinking]" in the user's text
// adds a redacted_thinking block after the thinking block, whole and
// streamed (its data in content_block_start), and that data comes back
// accepted.
func TestRedactedThinkingAnswers(t *testing.T) {
	srv := httptest.NewServer(New("m"))
	defer srv.Close()
	text := "cats [redacted-thinking]"
	body := `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":"` + text + `"}]}`
	code, out, raw := post(t, srv.URL, body)
	content, _ := out["content"].([]any)
	if code != 200 || len(content) != 3 {
		t.Fatalf("%d %s", code, raw)
	}
	if b := content[1].(map[string]any); b["type"] != "redacted_thinking" || b["data"] != RedactedData(text) || !validRedacted(RedactedData(text)) {
		t.Fatalf("content: %v", content)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/messages", strings.NewReader(strings.Replace(body, `{"model"`, `{"stream":true,"model"`, 1)))
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := `"content_block":{"data":"` + RedactedData(text) + `","type":"redacted_thinking"},"index":1`; !strings.Contains(string(b), want) {
		t.Fatalf("stream lacks %s:\n%s", want, b)
	}
}
