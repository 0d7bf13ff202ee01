package test

import (
	"reflect"
	"testing"
)

// TestGatewayParamsNodeSDK runs test/gateway/node/sdk_params_openai.mjs
// (the pinned official OpenAI Node SDK) through the vigil binary, the real
// openai and anthropic plugins and the stubs: max_completion_tokens to a
// reasoning model (which refuses max_tokens, as OpenAI's do), logprobs
// whole and streamed against the stub's deterministic values, penalties
// and reasoning_effort (to an Anthropic alias: extended thinking, the
// thinking dropped from the answer), OpenAI's pass-through parameters (logit_bias,
// metadata, store, service_tier, prediction, ...), and an Anthropic target
// refusing a penalty or a pass-through parameter (400 unsupported) or
// falling back to OpenAI. It then checks what reached the
// upstreams, and that the refused requests reached none.
func TestGatewayParamsNodeSDK(t *testing.T) {
	sdkDir := npmPackage(t, "gateway/node", "openai", "sdk_params_openai.mjs", "the gateway's chat-parameters SDK test")
	e := startGateway(t)

	runNodeCheck(t, sdkDir, "sdk_params_openai.mjs", "OpenAI Node SDK chat parameters through the gateway",
		"VIGIL_BASE_URL="+e.base+"/openai/v1", "VIGIL_TOKEN="+gwWriteToken)

	// What reached OpenAI's stub, by the user message.
	const chat = "/v1/chat/completions"
	sent := map[string][]map[string]any{}
	for _, model := range []string{"gpt-test", "o4-mini"} {
		for _, r := range e.stub.Requests(chat, model) {
			msgs, _ := r["messages"].([]any)
			last, _ := msgs[len(msgs)-1].(map[string]any)
			text, _ := last["content"].(string)
			sent[text] = append(sent[text], r)
		}
	}
	one := func(text string) map[string]any {
		t.Helper()
		if len(sent[text]) != 1 {
			t.Fatalf("%q reached OpenAI's stub %d times, want once", text, len(sent[text]))
		}
		return sent[text][0]
	}
	r := one("think about max completion tokens")
	if _, has := r["max_tokens"]; has || r["max_completion_tokens"] != 64.0 || r["reasoning_effort"] != "low" || r["model"] != "o4-mini" {
		t.Errorf("max_completion_tokens request upstream: %v", r)
	}
	if r := one("old cap name"); r["max_tokens"] != 64.0 {
		t.Errorf("max_tokens request upstream: %v", r)
	}
	if r := one("the sky is blue"); r["logprobs"] != true || r["top_logprobs"] != 2.0 {
		t.Errorf("logprobs request upstream: %v", r)
	}
	if r := one("tokens one by one"); r["logprobs"] != true || r["top_logprobs"] != 1.0 || r["stream"] != true {
		t.Errorf("streamed logprobs request upstream: %v", r)
	}
	if r := one("no logprobs please"); r["logprobs"] != nil {
		t.Errorf("logprobs: false went upstream as %v", r["logprobs"])
	}
	if r := one("penalised answer"); r["presence_penalty"] != 0.5 || r["frequency_penalty"] != -0.75 {
		t.Errorf("penalties upstream: %v", r)
	}
	if r := one("effortful stream"); r["reasoning_effort"] != "high" || r["max_completion_tokens"] != 32.0 || r["stream"] != true {
		t.Errorf("reasoning_effort upstream: %v", r)
	}
	if r := one("fallback with a penalty"); r["frequency_penalty"] != 0.25 || r["model"] != "gpt-test" {
		t.Errorf("fallback upstream: %v", r)
	}
	// The pass-through parameters, as the stub (which checks their shapes
	// as OpenAI does) received them.
	r = one("pass these through")
	for k, want := range map[string]any{
		"logit_bias": map[string]any{"50256": -100.0, "1734": 5.0}, "metadata": map[string]any{"team": "ml", "run": "42"},
		"store": true, "service_tier": "flex", "prediction": map[string]any{"type": "content", "content": "echo: pass these through"},
		"verbosity": "low", "prompt_cache_key": "pc-1", "safety_identifier": "user-7",
	} {
		if !reflect.DeepEqual(r[k], want) {
			t.Errorf("pass-through %s upstream: %v, want %v", k, r[k], want)
		}
	}
	if r["model"] != "gpt-test" || r["stream"] != nil {
		t.Errorf("pass-through request upstream: %v", r)
	}
	r = one("pass these through streamed")
	if r["store"] != false || r["stream"] != true || !reflect.DeepEqual(r["prediction"], map[string]any{"type": "content", "content": []any{map[string]any{"type": "text", "text": "echo: pass them"}}}) {
		t.Errorf("streamed pass-through upstream: %v", r)
	}
	if r := one("fallback with metadata"); !reflect.DeepEqual(r["metadata"], map[string]any{"via": "fallback"}) {
		t.Errorf("fallback pass-through upstream: %v", r)
	}
	for _, text := range []string{"both caps", "x", "penalty for claude", "logprobs from claude", "no penalty", "store for claude", "think it over", "think while streaming", "cold thinking"} {
		if n := len(sent[text]); n != 0 {
			t.Errorf("%q reached OpenAI's stub %d times", text, n)
		}
	}
	// Anthropic's stub saw the request without a penalty (its
	// frequency_penalty 0 is not sent: the Messages API has none) and the
	// two with reasoning_effort, as extended thinking; not the refused
	// one (temperature 0.2 with thinking).
	ant := map[string]map[string]any{}
	for _, r := range e.ant.Requests("/v1/messages", "claude-test") {
		msgs, _ := r["messages"].([]any)
		last, _ := msgs[len(msgs)-1].(map[string]any)
		text, _ := last["content"].(string)
		ant[text] = r
	}
	if len(ant) != 3 || ant["no penalty"] == nil || ant["no penalty"]["frequency_penalty"] != nil || ant["no penalty"]["thinking"] != nil {
		t.Errorf("Anthropic's stub got %v, want the requests without a penalty and with reasoning_effort", ant)
	}
	if r := ant["think it over"]; r == nil || !reflect.DeepEqual(r["thinking"], map[string]any{"type": "enabled", "budget_tokens": 8192.0}) ||
		r["max_tokens"] != 8192.0+4096 || r["reasoning_effort"] != nil || r["temperature"] != nil {
		t.Errorf("reasoning_effort medium upstream: %v", r)
	}
	if r := ant["think while streaming"]; r == nil || !reflect.DeepEqual(r["thinking"], map[string]any{"type": "enabled", "budget_tokens": 2999.0}) ||
		r["max_tokens"] != 3000.0 || r["stream"] != true {
		t.Errorf("reasoning_effort high, capped at 3000, upstream: %v", r)
	}
}
