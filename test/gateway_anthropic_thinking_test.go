package test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestGatewayAnthropicThinkingTools drives reasoning_effort with tools
// through the agent's OpenAI-compatible endpoint to the real anthropic
// plugin and the Anthropic-shaped stub, which answers with a signed
// thinking block first when thinking is enabled and refuses what the
// real Messages API refuses: a first request with tools, streamed, gets
// its tool call as call 0 with no thinking in the stream; continuing the
// tool loop with reasoning_effort is refused before any upstream call,
// naming reasoning_effort, and goes through without it.
func TestGatewayAnthropicThinkingTools(t *testing.T) {
	e := startGateway(t)
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

	resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude-tools", "weather in Paris?", `,"reasoning_effort":"low","stream":true,`+tools))
	if resp.StatusCode != 200 {
		t.Fatalf("streamed tool call with thinking: %d %s", resp.StatusCode, body)
	}
	if strings.Contains(string(body), "Thinking about") || strings.Contains(string(body), "sig_stub") {
		t.Fatalf("the thinking reached the client:\n%s", body)
	}
	events := sseData(string(body))
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", body)
	}
	var text, args strings.Builder
	var id, finish string
	for _, ev := range events[:len(events)-1] {
		var ch struct {
			Choices []struct {
				Delta struct {
					Content   string `json:"content"`
					ToolCalls []struct {
						Index    int    `json:"index"`
						ID       string `json:"id"`
						Function struct {
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &ch); err != nil {
			t.Fatalf("chunk %s: %v", ev, err)
		}
		for _, c := range ch.Choices {
			text.WriteString(c.Delta.Content)
			for _, tc := range c.Delta.ToolCalls {
				if tc.Index != 0 {
					t.Fatalf("tool call index %d (thinking or text blocks counted) in %s", tc.Index, ev)
				}
				if tc.ID != "" {
					id = tc.ID
				}
				args.WriteString(tc.Function.Arguments)
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if text.String() != "Let me call get_weather." || id != "toolu_stub_0_0" || args.String() != `{"city":"weather in Paris?"}` || finish != "tool_calls" {
		t.Fatalf("streamed answer: text %q, call %s %s, finish %q", text.String(), id, args.String(), finish)
	}
	sent := e.ant.LastRequest("/v1/messages", "claude-test")
	if !reflect.DeepEqual(sent["thinking"], map[string]any{"type": "enabled", "budget_tokens": 2048.0}) || sent["max_tokens"] != 4096.0 || sent["stream"] != true {
		t.Fatalf("what Anthropic got: thinking %v, max_tokens %v", sent["thinking"], sent["max_tokens"])
	}

	// The loop goes on: with reasoning_effort refused up front (Anthropic
	// would want the thinking block back), without it answered.
	before := e.ant.Calls("/v1/messages", "claude-test")
	round := func(extra string) string {
		return `{"model":"claude-tools","messages":[{"role":"user","content":"weather in Paris?"},` +
			`{"role":"assistant","content":"Let me call get_weather.","tool_calls":[{"id":"toolu_stub_0_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
			`{"role":"tool","tool_call_id":"toolu_stub_0_0","content":"18C"}],` + tools + extra + `}`
	}
	resp, body = e.post(t, "/chat/completions", gwWriteToken, round(`,"reasoning_effort":"low"`))
	var refusal struct {
		Error struct {
			Code    string `json:"code"`
			Param   string `json:"param"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &refusal); err != nil || resp.StatusCode != 400 || refusal.Error.Code != "invalid_request" ||
		refusal.Error.Param != "reasoning_effort" || !strings.Contains(refusal.Error.Message, "thinking blocks") {
		t.Fatalf("tool loop with reasoning_effort: %d %s", resp.StatusCode, body)
	}
	if n := e.ant.Calls("/v1/messages", "claude-test"); n != before {
		t.Fatalf("the upstream was called %d times for a request refused up front", n-before)
	}
	resp, body = e.post(t, "/chat/completions", gwWriteToken, round(""))
	if resp.StatusCode != 200 || !strings.Contains(string(body), "tool said: 18C") {
		t.Fatalf("tool loop without reasoning_effort: %d %s", resp.StatusCode, body)
	}
	if _, has := e.ant.LastRequest("/v1/messages", "claude-test")["thinking"]; has {
		t.Fatalf("thinking sent without reasoning_effort")
	}
}
