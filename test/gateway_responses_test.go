package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/openaistub"
)

// TestGatewayResponsesNodeSDK runs OpenAI's Responses API through the
// gateway with the official OpenAI Node SDK
// (test/gateway/node/sdk_responses.mjs, the same pinned package as the
// other SDK tests) against the real openai plugin and test/openaistub,
// and one case through the anthropic plugin and test/anthropicstub:
// responses.create with output_text, instructions, function tools over two
// turns, text.format json_schema, a refusal (responses.parse and
// responses.stream: the refusal content part, output_parsed null),
// responses.stream and create({stream: true}), a mid-stream cut, previous_response_id over three turns and in
// a tool loop, 404 for an unknown model and for
// responses.retrieve/delete, 400s. It then checks what reached the
// upstreams: the chat request each Responses request became.
func TestGatewayResponsesNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_responses.mjs", "the gateway's Responses API SDK test")
	e := startGateway(t)
	e.stub.Fail("gpt-cut", openaistub.Fault{CutAfter: 2})
	runNodeCheck(t, sdkDir, "sdk_responses.mjs", "OpenAI Node SDK Responses API through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_ANTHROPIC_ALIAS=claude-tools")

	var instructed, firstTurn, secondTurn map[string]any
	chain := map[string]string{} // by the last message's content
	for _, r := range e.stub.Requests("/v1/chat/completions", "gpt-test") {
		msgs, _ := r["messages"].([]any)
		first, _ := msgs[0].(map[string]any)
		if last, _ := msgs[len(msgs)-1].(map[string]any); last != nil {
			if c, _ := last["content"].(string); strings.HasPrefix(c, "chain ") || c == "21 C" {
				chain[c] = renderMsgs(msgs)
			}
		}
		switch {
		case first["content"] == "be brief":
			instructed = r
		case first["content"] == "weather in Paris" && len(msgs) == 1:
			firstTurn = r
		case first["content"] == "weather in Paris" && len(msgs) == 3:
			secondTurn = r
		}
	}
	if instructed == nil || firstTurn == nil || secondTurn == nil {
		t.Fatalf("requests missing upstream: instructions %v, first turn %v, second turn %v", instructed != nil, firstTurn != nil, secondTurn != nil)
	}
	// instructions became the system message; max_output_tokens the
	// completion cap; store and metadata were not forwarded (they are the
	// Response's, which Vigil does not keep).
	msgs := instructed["messages"].([]any)
	if len(msgs) != 2 || msgs[0].(map[string]any)["role"] != "system" || msgs[1].(map[string]any)["content"] != "hi there" || instructed["max_completion_tokens"] != 100.0 || instructed["temperature"] != 0.0 {
		t.Errorf("instructions request upstream: %v", instructed)
	}
	for _, k := range []string{"store", "metadata", "max_tokens"} {
		if _, ok := instructed[k]; ok {
			t.Errorf("%s reached the upstream: %v", k, instructed)
		}
	}
	// Flat tools became chat tools; the one without strict is strict,
	// with its schema normalized as OpenAI's Responses API does.
	tools := firstTurn["tools"].([]any)
	timeFn := tools[1].(map[string]any)["function"].(map[string]any)
	wantParams := map[string]any{"type": "object", "properties": map[string]any{"query": map[string]any{"type": "string"}}, "required": []any{"query"}, "additionalProperties": false}
	if len(tools) != 2 || timeFn["name"] != "get_time" || timeFn["strict"] != true || !reflect.DeepEqual(timeFn["parameters"], wantParams) {
		t.Errorf("tools upstream: %v", tools)
	}
	// The second turn: the function_call item became the assistant's
	// tool call, the function_call_output a tool message.
	msgs = secondTurn["messages"].([]any)
	asst, tool := msgs[1].(map[string]any), msgs[2].(map[string]any)
	calls, _ := asst["tool_calls"].([]any)
	if len(calls) != 1 || tool["role"] != "tool" || tool["content"] != "18 C, cloudy" || tool["tool_call_id"] != calls[0].(map[string]any)["id"] {
		t.Errorf("second turn upstream: assistant %v, tool %v", asst, tool)
	}
	// previous_response_id: each turn reached the upstream as the whole
	// conversation, with only its own instructions (v1 was not resent);
	// the tool loop's output joined the call kept from the turn before.
	for content, want := range map[string]string{
		"chain two":   "system:chain rules v2|user:chain one|assistant:echo: chain one|user:chain two|",
		"chain three": "user:chain one|assistant:echo: chain one|user:chain two|assistant:echo: chain two|user:chain three|",
		"21 C":        "user:loop weather in Lima|assistant:<nil> calls get_weather|tool:21 C|",
	} {
		if got := chain[content]; got != want {
			t.Errorf("previous_response_id turn %q upstream:\n%s\nwant\n%s", content, got, want)
		}
	}
	if _, ok := chain["chain not kept"]; !ok {
		t.Error("the store: false request did not reach the upstream")
	}
	// The anthropic plugin got the same conversation as Messages API
	// turns: the tool_result in a user turn after the tool_use.
	// (The stub refuses tool turns the real API would refuse; the SDK
	// script checked the quoted result.) The last call was the stream,
	// its instructions the system prompt.
	last := e.ant.LastRequest("/v1/messages", "claude-test")
	if last["stream"] != true || !strings.Contains(fmt.Sprint(last["system"]), "be brief") {
		t.Errorf("anthropic stream upstream: %v", last)
	}

	// The raw stream: named events, no data: [DONE].
	resp, body := e.post(t, "/responses", gwWriteToken, `{"model":"default","input":"raw stream","stream":true}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "event: response.created\ndata: {") || !strings.Contains(string(body), "event: response.completed\n") || strings.Contains(string(body), "[DONE]") {
		t.Errorf("raw stream: %d %s", resp.StatusCode, body)
	}
	// The cost of a streamed answer comes as the chat path's trailer.
	if _, ok := resp.Trailer["X-Vigil-Cost-Usd"]; !ok && resp.Header.Get("Trailer") == "" {
		t.Errorf("no cost trailer declared: %v", resp.Header)
	}

	// A read token may not call it (it spends upstream quota), as for chat.
	resp, body = e.post(t, "/responses", gwReadToken, `{"model":"default","input":"x"}`)
	var eb struct{ Error struct{ Code, Type string } }
	_ = json.Unmarshal(body, &eb)
	if resp.StatusCode != http.StatusForbidden || eb.Error.Type != "permission_error" {
		t.Errorf("read token: %d %s", resp.StatusCode, body)
	}
	// input_tokens (a Responses endpoint) is not built: 404 saying so.
	resp, body = e.post(t, "/responses/input_tokens", gwWriteToken, `{"model":"default","input":"x"}`)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not served by the gateway") {
		t.Errorf("input_tokens: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest("GET", e.base+"/openai/v1/responses/resp_1/input_items", nil)
	req.Header.Set("Authorization", "Bearer "+gwWriteToken)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotFound || !strings.Contains(string(b2), "does not store responses") {
		t.Errorf("input_items: %d %s", r2.StatusCode, b2)
	}
}

// renderMsgs is chat messages as role:content|, with an assistant's calls
// by function name.
func renderMsgs(msgs []any) string {
	var b strings.Builder
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		fmt.Fprintf(&b, "%v:%v", mm["role"], mm["content"])
		calls, _ := mm["tool_calls"].([]any)
		for _, c := range calls {
			fn, _ := c.(map[string]any)["function"].(map[string]any)
			fmt.Fprintf(&b, " calls %v", fn["name"])
		}
		b.WriteString("|")
	}
	return b.String()
}
