package anthropicstub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, url, body string) (int, map[string]any, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(buf.Bytes(), &out)
	return resp.StatusCode, out, buf.String()
}

const toolsJSON = `"tools":[{"name":"search","description":"d","input_schema":{"type":"object","properties":{"query":{"type":"string"}}}},{"name":"now","input_schema":{"type":"object"}}]`

// TestRefusals checks the stub refuses, as the real API does, the
// requests a wrong translation would produce.
func TestRefusals(t *testing.T) {
	srv := httptest.NewServer(New("m"))
	defer srv.Close()
	use := `{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"search","input":{"query":"x"}}]}`
	for _, tc := range []struct{ name, body, want string }{
		{"OpenAI's penalty", `{"model":"m","max_tokens":9,"presence_penalty":0.5,"messages":[{"role":"user","content":"a"}]}`, "presence_penalty: Extra inputs are not permitted"},
		{"OpenAI's output cap name", `{"model":"m","max_tokens":9,"max_completion_tokens":9,"messages":[{"role":"user","content":"a"}]}`, "max_completion_tokens: Extra inputs are not permitted"},
		{"logprobs", `{"model":"m","max_tokens":9,"logprobs":true,"messages":[{"role":"user","content":"a"}]}`, "logprobs: Extra inputs are not permitted"},
		{"roles not alternating", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, "roles must alternate"},
		{"tool without input_schema", `{"model":"m","max_tokens":9,"tools":[{"name":"f"}],"messages":[{"role":"user","content":"a"}]}`, "tools.0.custom.input_schema: Field required"},
		{"input_schema not an object schema", `{"model":"m","max_tokens":9,"tools":[{"name":"f","input_schema":{"type":"string"}}],"messages":[{"role":"user","content":"a"}]}`, "input_schema.type"},
		{"tool_result for another id", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},` + use + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_2","content":"r"}]}]}`, "unexpected `tool_use_id`"},
		{"tool_result after text", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},` + use + `,{"role":"user","content":[{"type":"text","text":"t"},{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}]}`, "tool_result blocks must come first"},
		{"tool_use unanswered", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},` + use + `,{"role":"user","content":"b"}]}`, "without `tool_result` blocks"},
		{"tool_use last", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},` + use + `]}`, "without `tool_result` blocks"},
		{"tool blocks without tools", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},` + use + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"r"}]}]}`, "must define tools"},
		{"tool_choice without tools", `{"model":"m","max_tokens":9,"tool_choice":{"type":"auto"},"messages":[{"role":"user","content":"a"}]}`, "only be specified while providing tools"},
		{"forced tool unknown", `{"model":"m","max_tokens":9,` + toolsJSON + `,"tool_choice":{"type":"tool","name":"nope"},"messages":[{"role":"user","content":"a"}]}`, "tool_choice.tool.name"},
		{"tool_use input not an object", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"search","input":"x"}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1"}]}]}`, "tool_use.input"},
		{"empty text block", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, "must be non-empty"},
		{"blank text block", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"text","text":" \n"}]}]}`, "non-whitespace text"},
		{"document not a PDF type", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"text/plain","data":"aGk="}}]}]}`, "document.source.base64.media_type"},
		{"document not base64", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"***"}}]}]}`, "invalid base64 data"},
		{"document not a PDF", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"aGVsbG8="}}]}]}`, "The PDF specified was not valid"},
		{"document in an assistant turn", `{"model":"m","max_tokens":9,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}]}]}`, "messages.1.content.0"},
		{"foreign tool_use id", `{"model":"m","max_tokens":9,` + toolsJSON + `,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"functions.search:0","name":"search","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"functions.search:0"}]}]}`, "tool_use.id"},
	} {
		status, body, raw := post(t, srv.URL, tc.body)
		e, _ := body["error"].(map[string]any)
		if status != 400 || body["type"] != "error" || e["type"] != "invalid_request_error" || !strings.Contains(e["message"].(string), tc.want) {
			t.Errorf("%s: %d %s, want 400 invalid_request_error containing %q", tc.name, status, raw, tc.want)
		}
	}
	// A valid round is answered with the results quoted.
	status, body, raw := post(t, srv.URL, `{"model":"m","max_tokens":9,`+toolsJSON+`,"messages":[{"role":"user","content":"a"},`+use+`,{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"found"}]},{"type":"text","text":"thanks"}]}]}`)
	if status != 200 || body["stop_reason"] != "end_turn" || !strings.Contains(raw, `"text":"tool said: found (and you said: thanks)"`) {
		t.Errorf("valid round: %d %s", status, raw)
	}
}

// TestToolUseStream checks a streamed tool_use is shaped as the real
// API's: an empty input at the start, the input in partial JSON
// fragments, stop_reason tool_use.
func TestToolUseStream(t *testing.T) {
	srv := httptest.NewServer(New("m"))
	defer srv.Close()
	status, _, raw := post(t, srv.URL, `{"model":"m","max_tokens":9,"stream":true,`+toolsJSON+`,"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"find cats"}]}`)
	if status != 200 {
		t.Fatalf("%d %s", status, raw)
	}
	var names []string
	var partial strings.Builder
	var start, stop map[string]any
	sc := bufio.NewScanner(strings.NewReader(raw))
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		names = append(names, ev["type"].(string))
		switch ev["type"] {
		case "content_block_start":
			start = ev["content_block"].(map[string]any)
		case "content_block_delta":
			partial.WriteString(ev["delta"].(map[string]any)["partial_json"].(string))
		case "message_delta":
			stop = ev["delta"].(map[string]any)
		}
	}
	got := strings.Join(names, " ")
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got != want || start["type"] != "tool_use" || start["name"] != "search" || len(start["input"].(map[string]any)) != 0 ||
		partial.String() != `{"query":"find cats"}` || stop["stop_reason"] != "tool_use" {
		t.Fatalf("events %s\nstart %v, input %s, delta %v", got, start, partial.String(), stop)
	}
}
