package test

import (
	"reflect"
	"testing"
)

// TestGatewayToolsOpenAINodeSDK runs tool calling through the gateway with
// the official OpenAI Node SDK (test/gateway/node/sdk_tools_openai.mjs,
// the same pinned package as TestGatewayOpenAINodeSDK) against the real
// openai plugin and test/openaistub: a round trip (tool_calls, the tool's
// result sent back, the final text), two parallel calls streamed and
// accumulated by the SDK's streaming helper, a forced function,
// tool_choice none, a cached tool call re-streamed, and 400s for a bad
// tool name and the deprecated functions parameter. It then checks what
// reached the upstream.
func TestGatewayToolsOpenAINodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_tools_openai.mjs", "the gateway's tool-calling SDK test")
	e := startGateway(t)
	runNodeCheck(t, sdkDir, "sdk_tools_openai.mjs", "OpenAI Node SDK tool calling through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken, "VIGIL_TOOLS_ALIAS=default")

	// What reached the upstream through the plugin.
	var forced, roundTrip, streamed map[string]any
	for _, r := range e.stub.Requests("/v1/chat/completions", "gpt-test") {
		msgs, _ := r["messages"].([]any)
		first, _ := msgs[0].(map[string]any)
		switch first["content"] {
		case "what time is it in Tokyo":
			forced = r
		case "weather in Paris":
			if len(msgs) == 3 {
				roundTrip = r
			}
		case "weather and time in Oslo":
			streamed = r
		}
	}
	if forced == nil || roundTrip == nil || streamed == nil {
		t.Fatalf("requests missing upstream: forced %v, round trip %v, streamed %v", forced != nil, roundTrip != nil, streamed != nil)
	}
	wantChoice := map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}
	if !reflect.DeepEqual(forced["tool_choice"], wantChoice) || forced["parallel_tool_calls"] != false {
		t.Errorf("forced tool_choice upstream: %v, parallel_tool_calls %v", forced["tool_choice"], forced["parallel_tool_calls"])
	}
	tools, _ := forced["tools"].([]any)
	if len(tools) != 2 {
		t.Fatalf("tools upstream: %v", forced["tools"])
	}
	fn, _ := tools[0].(map[string]any)["function"].(map[string]any)
	params, _ := fn["parameters"].(map[string]any)
	if fn["name"] != "get_weather" || fn["strict"] != true || params["additionalProperties"] != false || fn["description"] != "The current weather of a city" {
		t.Errorf("first tool upstream: %v", fn)
	}
	msgs := roundTrip["messages"].([]any)
	asst, tool := msgs[1].(map[string]any), msgs[2].(map[string]any)
	calls, _ := asst["tool_calls"].([]any)
	if c, ok := asst["content"]; !ok || c != nil || len(calls) != 1 || tool["role"] != "tool" || tool["tool_call_id"] != calls[0].(map[string]any)["id"] {
		t.Errorf("round trip upstream: assistant %v, tool %v", asst, tool)
	}
	if streamed["stream"] != true || streamed["tool_choice"] != "required" {
		t.Errorf("streamed request upstream: %v", streamed)
	}
}
