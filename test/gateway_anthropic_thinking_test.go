package test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/anthropicstub"
)

// TestGatewayAnthropicThinkingTools drives reasoning_effort with tools
// through the agent's OpenAI-compatible endpoint to the real anthropic
// plugin and the Anthropic-shaped stub, which answers with a signed
// thinking block first when thinking is enabled and refuses what the
// real Messages API refuses: a first request with tools, streamed, gets
// its tool call as call 0, the thinking as reasoning_content deltas and
// one thinking_blocks delta before the text; continuing the tool loop
// with reasoning_effort but without the thinking blocks is refused
// before any upstream call, naming messages[1].thinking_blocks, and goes
// through without reasoning_effort.
func TestGatewayAnthropicThinkingTools(t *testing.T) {
	e := startGateway(t)
	const tools = `"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`

	resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("claude-tools", "weather in Paris?", `,"reasoning_effort":"low","stream":true,`+tools))
	if resp.StatusCode != 200 {
		t.Fatalf("streamed tool call with thinking: %d %s", resp.StatusCode, body)
	}
	events := sseData(string(body))
	if len(events) == 0 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %s", body)
	}
	var text, args, reasoning strings.Builder
	var id, finish string
	var blocks []any
	for _, ev := range events[:len(events)-1] {
		var ch struct {
			Choices []struct {
				Delta struct {
					ReasoningContent string `json:"reasoning_content"`
					ThinkingBlocks   []any  `json:"thinking_blocks"`
					Content          string `json:"content"`
					ToolCalls        []struct {
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
			reasoning.WriteString(c.Delta.ReasoningContent)
			if c.Delta.ThinkingBlocks != nil {
				if blocks != nil || text.Len() > 0 {
					t.Fatalf("thinking_blocks twice, or after the text: %s", ev)
				}
				blocks = c.Delta.ThinkingBlocks
			}
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
	const thought = "Thinking about: weather in Paris?"
	if want := []any{map[string]any{"type": "thinking", "thinking": thought, "signature": anthropicstub.Signature(thought)}}; reasoning.String() != thought || !reflect.DeepEqual(blocks, want) {
		t.Fatalf("streamed reasoning %q, blocks %v", reasoning.String(), blocks)
	}
	sent := e.ant.LastRequest("/v1/messages", "claude-test")
	if !reflect.DeepEqual(sent["thinking"], map[string]any{"type": "enabled", "budget_tokens": 2048.0}) || sent["max_tokens"] != 4096.0 || sent["stream"] != true {
		t.Fatalf("what Anthropic got: thinking %v, max_tokens %v", sent["thinking"], sent["max_tokens"])
	}

	// The loop goes on: with reasoning_effort but without the thinking
	// block refused up front (Anthropic wants it back), without
	// reasoning_effort answered.
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
		refusal.Error.Param != "messages[1].thinking_blocks" || !strings.Contains(refusal.Error.Message, "send the assistant message back with its thinking_blocks") {
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

// TestGatewayAnthropicThinkingNodeSDK runs a two-step tool loop with
// reasoning_effort, whole and streamed (the streaming helper), with the
// official OpenAI Node SDK (test/gateway/node/sdk_thinking_anthropic.mjs)
// through the agent, the real anthropic plugin process and
// test/anthropicstub, sending the assistant message back as the SDK
// returned it; then checks what the stub received: the assistant turn
// that made the call starts with the answer's thinking and
// redacted_thinking blocks, in order and unchanged (the stub checks the
// signatures itself), and neither reasoning_content nor thinking_blocks
// reached it as fields.
func TestGatewayAnthropicThinkingNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_thinking_anthropic.mjs", "the gateway's extended-thinking SDK test")
	e := startGateway(t)
	runNodeCheck(t, sdkDir, "sdk_thinking_anthropic.mjs", "OpenAI Node SDK tool loop with extended thinking through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_THINKING_ALIAS=claude-tools")

	thought := func(s string) map[string]any {
		return map[string]any{"type": "thinking", "thinking": s, "signature": anthropicstub.Signature(s)}
	}
	const paris, oslo = "weather in Paris [redacted-thinking]", "weather in Oslo"
	want := map[string][]any{
		paris: {thought("Thinking about: " + paris), map[string]any{"type": "redacted_thinking", "data": anthropicstub.RedactedData(paris)}},
		oslo:  {thought("Thinking about: " + oslo)},
	}
	found := thinkingContinuations(t, e.ant, want)
	for user, c := range found {
		if len(c.asst) != 2 {
			t.Fatalf("request for %q: assistant turn %v", user, c.asst)
		}
		if stream, _ := c.req["stream"].(bool); stream != (user == oslo) {
			t.Fatalf("request for %q: stream %v", user, c.req["stream"])
		}
	}
	seen := seenUsers(found)
	if !seen[paris] || !seen[oslo] {
		t.Fatalf("tool-loop continuations with their thinking blocks reached the stub: %v", seen)
	}
}

// thinkingContinuation is a tool-loop continuation the Anthropic stub
// got: the whole request, and its assistant turn.
type thinkingContinuation struct{ req, asst map[string]any }

// thinkingContinuations finds, by the user's text, the continuations
// (three messages: user, assistant, tool result) whose user text want
// names, and fails the test unless each assistant turn starts with want's
// thinking blocks for it, unchanged, and the request asks for thinking.
// The one request whose block a test changed to "something else" (which
// the stub refused) is left out.
func thinkingContinuations(t *testing.T, ant *anthropicstub.Server, want map[string][]any) map[string]thinkingContinuation {
	t.Helper()
	out := map[string]thinkingContinuation{}
	for _, r := range ant.Requests("/v1/messages", "claude-test") {
		msgs, _ := r["messages"].([]any)
		if len(msgs) != 3 {
			continue
		}
		first, _ := msgs[0].(map[string]any)
		user, _ := first["content"].(string)
		if user == "" {
			// Content given as parts.
			parts, _ := first["content"].([]any)
			if len(parts) == 1 {
				user, _ = parts[0].(map[string]any)["text"].(string)
			}
		}
		blocks, ok := want[user]
		if !ok {
			continue
		}
		asst, _ := msgs[1].(map[string]any)
		content, _ := asst["content"].([]any)
		if len(content) < len(blocks)+1 {
			t.Fatalf("assistant turn sent for %q: %v", user, asst)
		}
		if !reflect.DeepEqual(content[:len(blocks)], blocks) {
			if c0, _ := content[0].(map[string]any); c0["thinking"] == "something else" {
				continue
			}
			t.Fatalf("thinking blocks sent for %q:\n%v\nwant %v", user, content[:len(blocks)], blocks)
		}
		if r["thinking"] == nil {
			t.Fatalf("request for %q without thinking: %v", user, r)
		}
		out[user] = thinkingContinuation{req: r, asst: asst}
	}
	return out
}

// seenUsers is the set of user texts in found.
func seenUsers(found map[string]thinkingContinuation) map[string]bool {
	seen := map[string]bool{}
	for user := range found {
		seen[user] = true
	}
	return seen
}
