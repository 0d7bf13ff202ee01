package test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/anthropicstub"
)

// TestGatewayResponsesThinkingNodeSDK runs Responses API tool loops with
// reasoning.effort with the official OpenAI Node SDK
// (test/gateway/node/sdk_responses_thinking.mjs) through the agent, the
// real anthropic plugin process and test/anthropicstub: the reasoning
// item sent back by value with its encrypted_content (store: false,
// include), streamed and sent back without encrypted_content (store on),
// and by previous_response_id; a loop without the reasoning item refused
// naming the function_call, and a changed block refused by the upstream.
// It then checks what the stub received: each continuation's assistant
// turn starts with the first answer's thinking (and redacted_thinking)
// blocks, in order and unchanged (the stub checks the signatures itself),
// with thinking on; and that the same items sent to an OpenAI-wire alias
// reach test/openaistub without any reasoning.
func TestGatewayResponsesThinkingNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_responses_thinking.mjs", "the gateway's Responses API extended-thinking SDK test")
	e := startGateway(t)
	runNodeCheck(t, sdkDir, "sdk_responses_thinking.mjs", "OpenAI Node SDK Responses API tool loop with extended thinking through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_THINKING_ALIAS=claude-tools", "VIGIL_OPENAI_ALIAS=chat")

	thought := func(s string) map[string]any {
		return map[string]any{"type": "thinking", "thinking": s, "signature": anthropicstub.Signature(s)}
	}
	redacted := func(s string) map[string]any {
		return map[string]any{"type": "redacted_thinking", "data": anthropicstub.RedactedData(s)}
	}
	const paris, oslo, rome = "weather in Paris [redacted-thinking]", "weather in Oslo", "weather in Rome [redacted-thinking]"
	want := map[string][]any{
		paris: {thought("Thinking about: " + paris), redacted(paris)},
		oslo:  {thought("Thinking about: " + oslo)},
		rome:  {thought("Thinking about: " + rome), redacted(rome)},
	}
	seen := seenUsers(thinkingContinuations(t, e.ant, want))
	if !seen[paris] || !seen[oslo] || !seen[rome] {
		t.Fatalf("tool-loop continuations with their thinking blocks reached the stub: %v", seen)
	}

	// The OpenAI-wire alias got the conversation without any reasoning.
	found := false
	for _, r := range e.stub.Requests("/v1/chat/completions", "gpt-test") {
		msgs, _ := r["messages"].([]any)
		if len(msgs) != 3 || !strings.Contains(fmt.Sprint(msgs[0]), "weather in Lima") {
			continue
		}
		found = true
		asst, _ := msgs[1].(map[string]any)
		for _, k := range []string{"thinking_blocks", "reasoning_content", "reasoning"} {
			if _, ok := asst[k]; ok {
				t.Errorf("%s reached OpenAI's chat completions: %v", k, asst)
			}
		}
		if calls, _ := asst["tool_calls"].([]any); asst["role"] != "assistant" || len(calls) != 1 {
			t.Errorf("assistant turn at the OpenAI upstream: %v", asst)
		}
	}
	if !found {
		t.Fatal("the conversation sent to the OpenAI alias did not reach test/openaistub")
	}
}
