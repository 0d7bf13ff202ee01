package test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vigilml/vigil/test/anthropicstub"
	"github.com/vigilml/vigil/test/openaistub"
)

// clientsPackage returns a directory holding the Vercel AI SDK and
// LangChain JS as pinned in test/gateway/clients/package-lock.json (their
// own pin, apart from the OpenAI SDK's in test/gateway/node), with script
// beside them.
func clientsPackage(t *testing.T, script string) string {
	t.Helper()
	return npmPackage(t, "gateway/clients", "ai", script, "the gateway's client tests (Vercel AI SDK, LangChain JS)")
}

// TestGatewayClients runs two popular clients other than OpenAI's own SDK
// against the gateway, through the real agent, the openai plugin and
// test/openaistub, and for one case each the anthropic plugin and
// test/anthropicstub: the Vercel AI SDK (test/gateway/clients/aisdk.mjs:
// generateText, streamText, structured output, multi-step tool calls over
// chat completions, the Responses API and the provider's default,
// logprobs, reasoning, a conversation kept by the client by value and,
// with the default model, by item_reference, a tool loop whose answers
// have text and a call, a stream cut mid-way, embeddings, 404)
// and LangChain JS (langchain.mjs: ChatOpenAI invoke, stream,
// withStructuredOutput in its three methods, bindTools round trips, a
// stream cut mid-way, on chat completions and with useResponsesApi;
// OpenAIEmbeddings; 404). It then
// checks what reached the upstreams.
func TestGatewayClients(t *testing.T) {
	aiDir := clientsPackage(t, "aisdk.mjs")
	lcDir := clientsPackage(t, "langchain.mjs")
	e := startGateway(t)
	// Each client streams from alias cut once per API (four streams, which
	// the breaker's four consecutive failures let through).
	for range 4 {
		e.stub.Fail("gpt-cut", openaistub.Fault{CutAfter: 2})
	}
	vec, _ := json.Marshal(openaistub.Vector("alpha beta", 8))
	env := []string{"VIGIL_BASE_URL=" + e.base + "/openai/v1", "VIGIL_TOKEN=" + gwLLMToken,
		"VIGIL_EXPECT_EMBEDDING=" + string(vec), "VIGIL_ANTHROPIC_ALIAS=claude-tools"}

	t.Run("Vercel AI SDK", func(t *testing.T) {
		runNodeCheck(t, aiDir, "aisdk.mjs", "Vercel AI SDK against the gateway", env...)
	})
	t.Run("LangChain JS", func(t *testing.T) {
		runNodeCheck(t, lcDir, "langchain.mjs", "LangChain JS against the gateway", env...)
	})

	// What reached the OpenAI-wire upstream, whichever API the client
	// used: structured output as a strict json_schema response_format,
	// tools as function tools, logprobs as logprobs.
	chat := e.stub.Requests("/v1/chat/completions", "gpt-test")
	find := func(what string, ok func(r map[string]any) bool) map[string]any {
		t.Helper()
		for _, r := range chat {
			if ok(r) {
				return r
			}
		}
		t.Errorf("no upstream request with %s among %d", what, len(chat))
		return nil
	}
	lastUser := func(r map[string]any) string {
		msgs, _ := r["messages"].([]any)
		if len(msgs) == 0 {
			return ""
		}
		m, _ := msgs[len(msgs)-1].(map[string]any)
		s, _ := m["content"].(string)
		if s == "" {
			parts, _ := m["content"].([]any)
			if len(parts) == 1 {
				p, _ := parts[0].(map[string]any)
				s, _ = p["text"].(string)
			}
		}
		return s
	}
	for _, prompt := range []string{"tell me the answer", "stream the answer"} {
		r := find("the AI SDK's structured output for "+prompt, func(r map[string]any) bool { return lastUser(r) == prompt })
		rf, _ := r["response_format"].(map[string]any)
		js, _ := rf["json_schema"].(map[string]any)
		schema, _ := js["schema"].(map[string]any)
		if rf["type"] != "json_schema" || js["strict"] != true || schema["type"] != "object" {
			t.Errorf("structured output upstream for %q: %v", prompt, rf)
		}
	}
	if r := find("tools", func(r map[string]any) bool { return lastUser(r) == "weather in Paris" }); r != nil {
		tools, _ := r["tools"].([]any)
		tool, _ := tools[0].(map[string]any)
		fn, _ := tool["function"].(map[string]any)
		if len(tools) != 1 || tool["type"] != "function" || fn["name"] != "get_weather" {
			t.Errorf("tools upstream: %v", r["tools"])
		}
	}
	if r := find("LangChain's function-calling structured output", func(r map[string]any) bool { return lastUser(r) == "extract this" }); r != nil {
		if tc, _ := r["tool_choice"].(map[string]any); tc["type"] != "function" {
			t.Errorf("tool_choice upstream: %v", r["tool_choice"])
		}
	}
	if r := find("logprobs", func(r map[string]any) bool { return r["logprobs"] == true && r["top_logprobs"] == 2.0 }); r != nil {
		if lastUser(r) != "hi there" {
			t.Errorf("logprobs request upstream: %v", r)
		}
	}
	if r := e.stub.LastRequest("/v1/chat/completions", "o4-mini"); r["reasoning_effort"] != "low" {
		t.Errorf("reasoning effort upstream: %v", r)
	}
	// The AI SDK's default model (store left at its default, true) sent
	// its earlier answers as item_references: the gateway resolved them
	// from the output items it kept, so the upstream got the conversation
	// in order, as if the items had been sent by value.
	text := func(c any) string {
		if s, ok := c.(string); ok {
			return s
		}
		var b strings.Builder
		parts, _ := c.([]any)
		for _, p := range parts {
			pm, _ := p.(map[string]any)
			s, _ := pm["text"].(string)
			b.WriteString(s)
		}
		return b.String()
	}
	render := func(r map[string]any) []string {
		msgs, _ := r["messages"].([]any)
		out := make([]string, 0, len(msgs))
		for _, m := range msgs {
			mm, _ := m.(map[string]any)
			line := fmt.Sprintf("%v: %s", mm["role"], text(mm["content"]))
			calls, _ := mm["tool_calls"].([]any)
			for _, c := range calls {
				fn, _ := c.(map[string]any)["function"].(map[string]any)
				line += fmt.Sprintf(" [call %v %v]", fn["name"], fn["arguments"])
			}
			out = append(out, line)
		}
		return out
	}
	expect := func(what string, r map[string]any, want ...string) {
		t.Helper()
		if r == nil {
			return
		}
		if got := render(r); !slices.Equal(got, want) {
			t.Errorf("%s reached the upstream as\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	expect("the default model's second turn", find("the default model's second turn", func(r map[string]any) bool { return lastUser(r) == "second question (stored)" }),
		"user: first question (stored)", "assistant: echo: first question (stored)", "user: second question (stored)")
	// previousResponseId: the third turn reached the upstream as the whole
	// conversation. The AI SDK sends its system prompt as an input item
	// (not instructions), so it is part of the first turn and carried
	// over, as OpenAI carries input items.
	expect("the AI SDK's previousResponseId chain", find("the AI SDK's previousResponseId chain", func(r map[string]any) bool { return lastUser(r) == "aisdk chain three" }),
		"system: aisdk chain rules", "user: aisdk chain one", "assistant: echo: aisdk chain one", "user: aisdk chain two", "assistant: echo: aisdk chain two", "user: aisdk chain three")
	for _, name := range []string{"whole", "streamed"} {
		prompt := "weather in Bergen, " + name + " [preamble]"
		call := fmt.Sprintf(`assistant: %s [call get_weather {"query":%q}]`, openaistub.Preamble, prompt)
		expect("the "+name+" tool loop's second step", find("the "+name+" tool loop's second step", func(r map[string]any) bool {
			msgs, _ := r["messages"].([]any)
			first, _ := msgs[0].(map[string]any)
			last, _ := msgs[len(msgs)-1].(map[string]any)
			return text(first["content"]) == prompt && last["role"] == "tool"
		}), "user: "+prompt, call, "tool: 7 C, rain")
		expect("the turn after the "+name+" tool loop", find("the turn after the "+name+" tool loop", func(r map[string]any) bool { return lastUser(r) == "and tomorrow, "+name+"?" }),
			"user: "+prompt, call, "tool: 7 C, rain", "assistant: tool get_weather returned: 7 C, rain", "user: and tomorrow, "+name+"?")
	}
	// Embeddings reached the upstream as text.
	if r := e.stub.LastRequest("/v1/embeddings", "emb-test"); r == nil {
		t.Error("no embeddings request upstream")
	} else if in, _ := r["input"].([]any); len(in) != 2 || in[0] != "alpha beta" {
		t.Errorf("embeddings input upstream: %v", r["input"])
	}
	// Each cut stream reached the upstream once: neither the gateway (the
	// stream had begun) nor the clients retried it.
	if n := e.stub.Calls("/v1/chat/completions", "gpt-cut"); n != 4 {
		t.Errorf("%d upstream calls for the four cut streams", n)
	}
	// The anthropic case went to the Messages API.
	if n := e.ant.Calls("/v1/messages", "claude-test"); n < 4 {
		t.Errorf("%d calls reached the Anthropic upstream, want at least 4", n)
	}
	// The AI SDK's tool loops with a reasoning effort: the second step's
	// assistant turn started with the first answer's thinking block,
	// unchanged (by item_reference, and by value with store: false).
	for _, store := range []string{"default", "false"} {
		prompt := "aisdk thinking weather, store " + store
		found := false
		for _, r := range e.ant.Requests("/v1/messages", "claude-test") {
			msgs, _ := r["messages"].([]any)
			if len(msgs) != 3 || r["thinking"] == nil || !strings.Contains(fmt.Sprint(msgs[0]), prompt) {
				continue
			}
			content, _ := msgs[1].(map[string]any)["content"].([]any)
			want := map[string]any{"type": "thinking", "thinking": "Thinking about: " + prompt, "signature": anthropicstub.Signature("Thinking about: " + prompt)}
			if len(content) < 2 || !reflect.DeepEqual(content[0], want) {
				t.Errorf("AI SDK tool loop (store %s): assistant turn upstream %v", store, msgs[1])
			}
			found = true
		}
		if !found {
			t.Errorf("AI SDK tool loop (store %s): no continuation with thinking reached the Anthropic upstream", store)
		}
	}
}
