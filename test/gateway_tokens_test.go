package test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/test/openaistub"
)

// TestGatewayTokens runs the vigil binary with the real openai plugin in
// front of the OpenAI-wire stub: usage the upstream leaves out is estimated
// and marked, a prompt too long for a target's context_window goes to the
// fallback without an upstream call, drop_oldest sends the upstream the
// shortened conversation, and /metrics stays promtool-clean.
func TestGatewayTokens(t *testing.T) {
	gs := newGatewaySetup(t, "gpt-4o-mini", "gpt-4o", "gpt-4.1")
	stub := gs.stub
	e := gs.start(t, gatewayConfig{
		tokens: []string{"app", "viewer"},
		gateway: `gateway:
  request_timeout: 30s
  cache: {enabled: false}
  providers:
    - name: openai-main
      plugin: openai
      base_url: ` + gs.stubURL + `/v1
      api_key_file: ` + gs.keyFile + `
  models:
    - name: quiet
      targets: [{provider: openai-main, model: gpt-4o-mini}]
    - name: tight
      targets: [{provider: openai-main, model: gpt-4o, context_window: 60}]
      context_window_fallback: wide
    - name: wide
      targets: [{provider: openai-main, model: gpt-4.1}]
    - name: trim
      truncation: drop_oldest
      targets: [{provider: openai-main, model: gpt-4o, context_window: 60}]
`})
	const chat = "/v1/chat/completions"

	t.Run("estimated usage", func(t *testing.T) {
		stub.Fail("gpt-4o-mini", openaistub.Fault{NoUsage: true})
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("quiet", "count these words please", ""))
		var out struct {
			Choices []struct{ Message struct{ Content string } }
			Usage   map[string]any
		}
		if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || len(out.Choices) != 1 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		prompt := tokens.CountChat(tokens.O200kBase, []tokens.Message{{Role: "user", Content: "count these words please"}})
		completion := tokens.Count(tokens.O200kBase, out.Choices[0].Message.Content)
		if resp.Header.Get("x-vigil-usage") != "estimated" || out.Usage["prompt_tokens"] != float64(prompt) ||
			out.Usage["completion_tokens"] != float64(completion) || resp.Header.Get("x-vigil-cost-usd") == "" {
			t.Fatalf("headers %v, usage %v; want prompt %d completion %d", resp.Header, out.Usage, prompt, completion)
		}
		// Reported usage is passed on unmarked.
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("quiet", "count these words please", ""))
		if resp.Header.Get("x-vigil-usage") != "" || !strings.Contains(string(body), `"prompt_tokens":4`) {
			t.Fatalf("reported usage: %v %s", resp.Header, body)
		}
		// A stream whose upstream sends no usage chunk.
		stub.Fail("gpt-4o-mini", openaistub.Fault{NoUsage: true})
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("quiet", "stream me", `,"stream":true,"stream_options":{"include_usage":true}`))
		events := sseData(string(body))
		if resp.StatusCode != 200 || len(events) < 3 || events[len(events)-1] != "[DONE]" {
			t.Fatalf("stream: %d %q", resp.StatusCode, events)
		}
		var u struct{ Usage map[string]any }
		if err := json.Unmarshal([]byte(events[len(events)-2]), &u); err != nil || u.Usage["estimated"] != true ||
			u.Usage["completion_tokens"] != float64(tokens.Count(tokens.O200kBase, streamText(t, events))) {
			t.Fatalf("usage chunk %s", events[len(events)-2])
		}
	})

	t.Run("pre-flight fallback", func(t *testing.T) {
		long := strings.Repeat("word ", 80)
		resp, body := e.post(t, "/chat/completions", gwWriteToken, chatJSON("tight", long, ""))
		if resp.StatusCode != 200 || stub.Calls(chat, "gpt-4o") != 0 || stub.Calls(chat, "gpt-4.1") != 1 || resp.Header.Get("x-vigil-model") != "gpt-4.1" {
			t.Fatalf("%d %v %s; calls gpt-4o %d gpt-4.1 %d", resp.StatusCode, resp.Header, body, stub.Calls(chat, "gpt-4o"), stub.Calls(chat, "gpt-4.1"))
		}
	})

	t.Run("drop_oldest", func(t *testing.T) {
		msgs := []map[string]string{
			{"role": "system", "content": "Be brief."},
			{"role": "user", "content": strings.Repeat("old ", 40)},
			{"role": "assistant", "content": "noted"},
			{"role": "user", "content": "what now?"},
		}
		b, _ := json.Marshal(map[string]any{"model": "trim", "messages": msgs})
		resp, body := e.post(t, "/chat/completions", gwWriteToken, string(b))
		if resp.StatusCode != 200 || resp.Header.Get("x-vigil-truncated") != "2" {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
		sent, _ := stub.LastRequest(chat, "gpt-4o")["messages"].([]any)
		if got := fmt.Sprint(sent); len(sent) != 2 || !strings.Contains(got, "Be brief.") || !strings.Contains(got, "what now?") {
			t.Fatalf("upstream got %v", sent)
		}
		// Too long even with only the last user message: 400, no call.
		calls := stub.Calls(chat, "gpt-4o")
		resp, body = e.post(t, "/chat/completions", gwWriteToken, chatJSON("trim", strings.Repeat("word ", 100), ""))
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"code":"context_length_exceeded"`) || stub.Calls(chat, "gpt-4o") != calls {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		code, body := get(t, e.base+"/metrics", gwReadToken)
		m := string(body)
		for _, want := range []string{
			`vigil_llm_tokens_total{alias="quiet",kind="prompt",model="gpt-4o-mini",provider="openai-main",source="estimated"}`,
			`vigil_llm_tokens_total{alias="quiet",kind="prompt",model="gpt-4o-mini",provider="openai-main",source="reported"} 4`,
			`vigil_llm_context_checks_total{alias="tight",model="gpt-4o",provider="openai-main",result="too_long"} 1`,
			`vigil_llm_context_checks_total{alias="trim",model="gpt-4o",provider="openai-main",result="truncated"} 1`,
			`vigil_llm_truncated_messages_total{alias="trim",model="gpt-4o",provider="openai-main"} 2`,
		} {
			if code != 200 || !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		promtool, err := exec.LookPath("promtool")
		if err != nil {
			t.Fatal("promtool not found: install Debian's prometheus package (`make test-deps` does it as root)")
		}
		check := exec.Command(promtool, "check", "metrics")
		check.Stdin = strings.NewReader(m)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}
