package test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestGatewayAnthropicToolCalls drives tool calls through the agent's
// OpenAI-compatible endpoint to the real anthropic plugin and the
// Anthropic-shaped stub (which refuses what the real Messages API
// refuses): a call, the same call streamed, the result sent back, a
// forced tool without parallel calls, and bad arguments refused before any
// upstream call.
func TestGatewayAnthropicToolCalls(t *testing.T) {
	e := startGateway(t)
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
	type toolCall struct {
		ID       string `json:"id"`
		Type     string `json:"type"`
		Function struct {
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
		} `json:"function"`
	}
	var answer struct {
		Choices []struct {
			FinishReason string `json:"finish_reason"`
			Message      struct {
				Content   *string    `json:"content"`
				ToolCalls []toolCall `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
	}
	decode := func(b []byte) {
		t.Helper()
		answer.Choices = nil
		if err := json.Unmarshal(b, &answer); err != nil || len(answer.Choices) != 1 {
			t.Fatalf("answer %s: %v", b, err)
		}
	}

	// 1. A call.
	resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude-tools", "weather in Paris?", ","+tools))
	if resp.StatusCode != 200 {
		t.Fatalf("tool call: %d %s", resp.StatusCode, body)
	}
	decode(body)
	c := answer.Choices[0]
	if c.FinishReason != "tool_calls" || c.Message.Content == nil || *c.Message.Content != "Let me call get_weather." || len(c.Message.ToolCalls) != 1 {
		t.Fatalf("tool call answer: %s", body)
	}
	call := c.Message.ToolCalls[0]
	if call.ID != "toolu_stub_0_0" || call.Type != "function" || call.Function.Name != "get_weather" || call.Function.Arguments != `{"city":"weather in Paris?"}` {
		t.Fatalf("tool call: %+v", call)
	}
	sent := e.ant.LastRequest("/v1/messages", "claude-test")
	schema, _ := json.Marshal(sent["tools"].([]any)[0].(map[string]any)["input_schema"])
	if string(schema) != `{"properties":{"city":{"type":"string"}},"type":"object"}` || sent["tool_choice"] != nil {
		t.Fatalf("what Anthropic got: tools %v, tool_choice %v", sent["tools"], sent["tool_choice"])
	}

	// 2. The same, streamed: the call's id and name first, then argument
	// fragments with the same index that join to the arguments.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude-tools", "weather in Paris?", `,"stream":true,`+tools))
	if resp.StatusCode != 200 {
		t.Fatalf("streamed tool call: %d %s", resp.StatusCode, body)
	}
	events := sseData(string(body))
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", body)
	}
	var args strings.Builder
	fragments, finish, first := 0, "", true
	for _, ev := range events[:len(events)-1] {
		var ch struct {
			Choices []struct {
				Delta struct {
					ToolCalls []struct {
						Index    int     `json:"index"`
						ID       *string `json:"id"`
						Type     *string `json:"type"`
						Function struct {
							Name      *string `json:"name"`
							Arguments string  `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatalf("chunk %s: %v", ev, err)
		}
		for _, choice := range ch.Choices {
			for _, tc := range choice.Delta.ToolCalls {
				if tc.Index != 0 {
					t.Fatalf("tool call index %d in %s", tc.Index, ev)
				}
				if first {
					if tc.ID == nil || *tc.ID != "toolu_stub_0_0" || tc.Type == nil || *tc.Type != "function" || tc.Function.Name == nil || *tc.Function.Name != "get_weather" {
						t.Fatalf("first tool-call chunk %s", ev)
					}
					first = false
				} else if tc.ID != nil || tc.Function.Name != nil {
					t.Fatalf("a later tool-call chunk repeats the id or name: %s", ev)
				}
				if tc.Function.Arguments != "" {
					fragments++
					args.WriteString(tc.Function.Arguments)
				}
			}
			if choice.FinishReason != nil {
				finish = *choice.FinishReason
			}
		}
	}
	if first || args.String() != `{"city":"weather in Paris?"}` || fragments < 2 || finish != "tool_calls" {
		t.Fatalf("streamed call: arguments %q in %d fragments, finish %q:\n%s", args.String(), fragments, finish, body)
	}

	// 3. The result goes back, with a user message after it.
	callJSON, _ := json.Marshal(call)
	round := `{"model":"claude-tools","messages":[{"role":"user","content":"weather in Paris?"},` +
		`{"role":"assistant","content":"Let me call get_weather.","tool_calls":[` + string(callJSON) + `]},` +
		`{"role":"tool","tool_call_id":"toolu_stub_0_0","content":"18C"},{"role":"user","content":"thanks"}],` + tools + `}`
	resp, body = e.post(t, "/chat/completions", gwWriteToken, round)
	if resp.StatusCode != 200 {
		t.Fatalf("tool result: %d %s", resp.StatusCode, body)
	}
	decode(body)
	if c := answer.Choices[0]; c.FinishReason != "stop" || c.Message.Content == nil || *c.Message.Content != "tool said: 18C (and you said: thanks)" {
		t.Fatalf("answer to the tool result: %s", body)
	}
	msgs := e.ant.LastRequest("/v1/messages", "claude-test")["messages"].([]any)
	lastTurn, _ := json.Marshal(msgs[len(msgs)-1])
	if len(msgs) != 3 || !strings.Contains(string(lastTurn), `"type":"tool_result"`) || !strings.Contains(string(lastTurn), `"tool_use_id":"toolu_stub_0_0"`) ||
		strings.Index(string(lastTurn), "tool_result") > strings.Index(string(lastTurn), "thanks") {
		t.Fatalf("what Anthropic got: %d messages, the last %s", len(msgs), lastTurn)
	}

	// 4. A forced tool, one call at a time.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude-tools", "weather in Oslo?",
		`,"tool_choice":{"type":"function","function":{"name":"get_weather"}},"parallel_tool_calls":false,`+tools))
	if resp.StatusCode != 200 {
		t.Fatalf("forced tool: %d %s", resp.StatusCode, body)
	}
	decode(body)
	if c := answer.Choices[0]; len(c.Message.ToolCalls) != 1 || (c.Message.Content != nil && *c.Message.Content != "") {
		t.Fatalf("forced tool answer: %s", body)
	}
	choice, _ := json.Marshal(e.ant.LastRequest("/v1/messages", "claude-test")["tool_choice"])
	if string(choice) != `{"disable_parallel_tool_use":true,"name":"get_weather","type":"tool"}` {
		t.Fatalf("tool_choice Anthropic got: %s", choice)
	}

	// 5. Arguments that are not a JSON object: refused, no upstream call.
	before := e.ant.Calls("/v1/messages", "claude-test")
	bad := `{"model":"claude-tools","messages":[{"role":"user","content":"x"},` +
		`{"role":"assistant","content":"","tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"[1]"}}]},` +
		`{"role":"tool","tool_call_id":"toolu_1","content":"r"}],` + tools + `}`
	resp, body = e.post(t, "/chat/completions", gwWriteToken, bad)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "messages[1].tool_calls[0].arguments") || !strings.Contains(string(body), "invalid_request") {
		t.Fatalf("bad arguments: %d %s", resp.StatusCode, body)
	}
	if n := e.ant.Calls("/v1/messages", "claude-test"); n != before {
		t.Fatalf("the upstream was called %d times for a request refused up front", n-before)
	}
}
