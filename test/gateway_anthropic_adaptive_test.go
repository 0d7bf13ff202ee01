package test

import (
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/anthropicstub"
)

// adaptiveEnv is an agent whose gateway reaches an Anthropic-wire stub
// serving claude-opus-4-7 (adaptive thinking only, its thinking text
// omitted by default) and claude-sonnet-4-6 (both shapes) through three
// instances of the real anthropic plugin: anthropic-summarized (option
// thinking_display: summarized), anthropic-auto (no options) and
// anthropic-budget (thinking: budget). Aliases: opus (summarized),
// opus-omitted, sonnet (auto), sonnet-budget and opus-budget.
type adaptiveEnv struct {
	*gatewayEnv
}

func startAdaptiveGateway(t *testing.T) adaptiveEnv {
	t.Helper()
	gs := newGatewaySetup(t, "gpt-test")
	ant := anthropicstub.New("claude-opus-4-7", "claude-sonnet-4-6")
	srv := httptest.NewServer(ant)
	t.Cleanup(srv.Close)
	e := gs.start(t, gatewayConfig{
		tokens: []string{"app", "viewer"},
		gateway: `gateway:
  request_timeout: 30s
  retry: {max_attempts: 2, base_backoff: 1ms, max_backoff: 5ms}
  providers:
    - name: anthropic-summarized
      plugin: anthropic
      base_url: ` + srv.URL + `
      options: {thinking_display: summarized}
    - name: anthropic-auto
      plugin: anthropic
      base_url: ` + srv.URL + `
    - name: anthropic-budget
      plugin: anthropic
      base_url: ` + srv.URL + `
      options: {thinking: budget}
  models:
    - name: opus
      targets: [{provider: anthropic-summarized, model: claude-opus-4-7}]
    - name: opus-omitted
      targets: [{provider: anthropic-auto, model: claude-opus-4-7}]
    - name: sonnet
      targets: [{provider: anthropic-auto, model: claude-sonnet-4-6}]
    - name: sonnet-budget
      targets: [{provider: anthropic-budget, model: claude-sonnet-4-6}]
    - name: opus-budget
      targets: [{provider: anthropic-budget, model: claude-opus-4-7}]
`})
	e.ant = ant
	return adaptiveEnv{e}
}

// chatAnswer is a whole chat completion's first choice, with the
// reasoning fields.
type chatAnswer struct {
	Choices []struct {
		FinishReason string `json:"finish_reason"`
		Message      struct {
			Content          string           `json:"content"`
			ReasoningContent *string          `json:"reasoning_content"`
			ThinkingBlocks   []map[string]any `json:"thinking_blocks"`
			ToolCalls        []map[string]any `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
}

// TestGatewayAnthropicAdaptiveNodeSDK runs the extended-thinking tool
// loop of the official OpenAI Node SDK (sdk_thinking_anthropic.mjs:
// whole and streamed, two steps each, the assistant message sent back as
// the SDK returned it) against Claude Opus 4.7, which refuses thinking
// type enabled, through the agent and the real anthropic plugin process
// with thinking_display summarized; then checks the stub got adaptive
// thinking with the effort of each reasoning_effort (low, medium), the
// default cap raised as for budget thinking, and every continuation with
// the answer's thinking blocks first in the assistant turn.
func TestGatewayAnthropicAdaptiveNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_thinking_anthropic.mjs", "the gateway's adaptive-thinking SDK test")
	e := startAdaptiveGateway(t)
	runNodeCheck(t, sdkDir, "sdk_thinking_anthropic.mjs", "OpenAI Node SDK tool loop with adaptive thinking through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_THINKING_ALIAS=opus")

	reqs := e.ant.Requests("/v1/messages", "claude-opus-4-7")
	if len(reqs) < 4 {
		t.Fatalf("%d requests reached the stub", len(reqs))
	}
	continued := 0
	for _, r := range reqs {
		oc, _ := r["output_config"].(map[string]any)
		effort, _ := oc["effort"].(string)
		stream, _ := r["stream"].(bool)
		// The whole loop asks for low, the streamed one for medium.
		want := map[bool]struct {
			effort string
			max    float64
		}{false: {"low", 4096}, true: {"medium", 12288}}[stream]
		if !reflect.DeepEqual(r["thinking"], map[string]any{"type": "adaptive", "display": "summarized"}) || effort != want.effort || r["max_tokens"] != want.max || r["temperature"] != nil {
			t.Fatalf("request to Opus 4.7: thinking %v, output_config %v, max_tokens %v", r["thinking"], r["output_config"], r["max_tokens"])
		}
		msgs, _ := r["messages"].([]any)
		if len(msgs) != 3 {
			continue
		}
		asst, _ := msgs[1].(map[string]any)
		content, _ := asst["content"].([]any)
		first, _ := content[0].(map[string]any)
		if first["type"] != "thinking" || first["signature"] == "" {
			t.Fatalf("continuation's assistant turn does not start with its thinking block: %v", asst)
		}
		continued++
	}
	if continued < 2 {
		t.Fatalf("%d tool-loop continuations reached the stub", continued)
	}
}

// TestGatewayAnthropicAdaptive drives adaptive thinking over HTTP
// through the agent, the real anthropic plugin and the stub: on Opus 4.7
// without thinking_display the answer's thinking text is omitted (a
// thinking block with an empty text and its signature, no
// reasoning_content, whole and streamed), and a two-step tool loop sending
// that block back goes on; on Sonnet 4.6 auto picks adaptive thinking;
// the option thinking: budget makes Sonnet 4.6 get budget_tokens, and
// makes Opus 4.7 answer its own 400, which the client gets.
func TestGatewayAnthropicAdaptive(t *testing.T) {
	e := startAdaptiveGateway(t)
	const tools = `,"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]`
	const thought = "Thinking about: weather in Paris?"

	// Step 1: the call, with the omitted thinking block.
	resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("opus-omitted", "weather in Paris?", `,"reasoning_effort":"high"`+tools))
	var first chatAnswer
	if err := json.Unmarshal(body, &first); err != nil || resp.StatusCode != 200 || len(first.Choices) != 1 {
		t.Fatalf("first step: %d %s", resp.StatusCode, body)
	}
	msg := first.Choices[0].Message
	wantBlock := map[string]any{"type": "thinking", "thinking": "", "signature": anthropicstub.OmittedSignature(thought)}
	if first.Choices[0].FinishReason != "tool_calls" || msg.ReasoningContent != nil || len(msg.ThinkingBlocks) != 1 || !reflect.DeepEqual(msg.ThinkingBlocks[0], wantBlock) || len(msg.ToolCalls) != 1 {
		t.Fatalf("first step answer: %s", body)
	}
	sent := e.ant.LastRequest("/v1/messages", "claude-opus-4-7")
	if !reflect.DeepEqual(sent["thinking"], map[string]any{"type": "adaptive"}) || !reflect.DeepEqual(sent["output_config"], map[string]any{"effort": "high"}) || sent["max_tokens"] != 20480.0 {
		t.Fatalf("Opus 4.7 got thinking %v, output_config %v, max_tokens %v", sent["thinking"], sent["output_config"], sent["max_tokens"])
	}

	// Streamed, the same: no reasoning_content chunk, the block in one
	// thinking_blocks chunk before the call.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("opus-omitted", "weather in Paris?", `,"reasoning_effort":"high","stream":true`+tools))
	if resp.StatusCode != 200 || strings.Contains(string(body), `"reasoning_content"`) {
		t.Fatalf("streamed first step: %d %s", resp.StatusCode, body)
	}
	var streamed []any
	for _, ev := range sseData(string(body)) {
		var ch struct {
			Choices []struct {
				Delta struct {
					ThinkingBlocks []any `json:"thinking_blocks"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal([]byte(ev), &ch) == nil && len(ch.Choices) == 1 && ch.Choices[0].Delta.ThinkingBlocks != nil {
			streamed = append(streamed, ch.Choices[0].Delta.ThinkingBlocks...)
		}
	}
	if len(streamed) != 1 || !reflect.DeepEqual(streamed[0], wantBlock) {
		t.Fatalf("streamed thinking blocks %v", streamed)
	}

	// Step 2: the assistant message back with its blocks, and the result.
	asst, _ := json.Marshal(map[string]any{"role": "assistant", "content": msg.Content, "tool_calls": msg.ToolCalls, "thinking_blocks": msg.ThinkingBlocks})
	id, _ := msg.ToolCalls[0]["id"].(string)
	loop := `{"model":"opus-omitted","reasoning_effort":"high","messages":[{"role":"user","content":"weather in Paris?"},` + string(asst) +
		`,{"role":"tool","tool_call_id":"` + id + `","content":"18C"}]` + tools + `}`
	resp, body = e.post(t, "/chat/completions", gwWriteToken, loop)
	var second chatAnswer
	if err := json.Unmarshal(body, &second); err != nil || resp.StatusCode != 200 || len(second.Choices) != 1 || second.Choices[0].Message.Content != "tool said: 18C" || len(second.Choices[0].Message.ThinkingBlocks) != 1 {
		t.Fatalf("second step: %d %s", resp.StatusCode, body)
	}
	msgs := e.ant.LastRequest("/v1/messages", "claude-opus-4-7")["messages"].([]any)
	if c := msgs[1].(map[string]any)["content"].([]any); !reflect.DeepEqual(c[0], wantBlock) {
		t.Fatalf("the omitted block sent back: %v", c[0])
	}

	// auto on Sonnet 4.6: adaptive, summarized by the model's default.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("sonnet", "hello", `,"reasoning_effort":"minimal"`))
	var ans chatAnswer
	if err := json.Unmarshal(body, &ans); err != nil || resp.StatusCode != 200 || ans.Choices[0].Message.ReasoningContent == nil || *ans.Choices[0].Message.ReasoningContent != "Thinking about: hello" {
		t.Fatalf("Sonnet 4.6 with auto: %d %s", resp.StatusCode, body)
	}
	if sent := e.ant.LastRequest("/v1/messages", "claude-sonnet-4-6"); !reflect.DeepEqual(sent["thinking"], map[string]any{"type": "adaptive"}) || !reflect.DeepEqual(sent["output_config"], map[string]any{"effort": "low"}) {
		t.Fatalf("Sonnet 4.6 with auto got thinking %v, output_config %v", sent["thinking"], sent["output_config"])
	}

	// thinking: budget on Sonnet 4.6: budget_tokens, no effort.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("sonnet-budget", "hello", `,"reasoning_effort":"low"`))
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"reasoning_content":"Thinking about: hello"`) {
		t.Fatalf("Sonnet 4.6 with thinking budget: %d %s", resp.StatusCode, body)
	}
	if sent := e.ant.LastRequest("/v1/messages", "claude-sonnet-4-6"); !reflect.DeepEqual(sent["thinking"], map[string]any{"type": "enabled", "budget_tokens": 2048.0}) || sent["output_config"] != nil {
		t.Fatalf("Sonnet 4.6 with thinking budget got thinking %v, output_config %v", sent["thinking"], sent["output_config"])
	}

	// thinking: budget on Opus 4.7: Anthropic's 400 reaches the client.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("opus-budget", "hello", `,"reasoning_effort":"low"`))
	var refusal struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &refusal); err != nil || resp.StatusCode != 400 || refusal.Error.Code != "invalid_request" || !strings.Contains(refusal.Error.Message, `"thinking.type.enabled" is not supported for this model`) {
		t.Fatalf("Opus 4.7 with thinking budget: %d %s", resp.StatusCode, body)
	}

	// xhigh: Opus 4.7 takes it; Sonnet 4.6 does not, refused up front.
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("opus", "hello", `,"reasoning_effort":"xhigh"`))
	if resp.StatusCode != 200 || !reflect.DeepEqual(e.ant.LastRequest("/v1/messages", "claude-opus-4-7")["output_config"], map[string]any{"effort": "xhigh"}) {
		t.Fatalf("xhigh on Opus 4.7: %d %s", resp.StatusCode, body)
	}
	before := e.ant.Calls("/v1/messages", "claude-sonnet-4-6")
	resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("sonnet", "hello", `,"reasoning_effort":"xhigh"`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), "reasoning_effort") || !strings.Contains(string(body), "none, minimal, low, medium, high or max") || e.ant.Calls("/v1/messages", "claude-sonnet-4-6") != before {
		t.Fatalf("xhigh on Sonnet 4.6: %d %s", resp.StatusCode, body)
	}
}
