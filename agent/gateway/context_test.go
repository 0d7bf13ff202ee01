package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// words is n distinct words, each one o200k_base token with its space.
func words(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(" the")
	}
	return b.String()
}

func msgJSON(msgs ...[2]string) string {
	var parts []string
	for _, m := range msgs {
		b, _ := json.Marshal(map[string]string{"role": m[0], "content": m[1]})
		parts = append(parts, string(b))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func promptTokens(enc tokens.Encoding, msgs ...[2]string) int {
	var ms []tokens.Message
	for _, m := range msgs {
		ms = append(ms, tokens.Message{Role: m[0], Content: m[1]})
	}
	return tokens.CountChat(enc, ms)
}

// contextCfg: "small" has a 200-token gpt-4o target and falls back to
// "big"; "strict" has the same target and no fallback; "trim" drops the
// oldest messages.
func contextCfg() Config {
	c := testCfg()
	c.Models = append(c.Models,
		Model{Name: "small", Targets: []Target{{Provider: "pa", Model: "gpt-4o", ContextWindow: 200}}, ContextWindowFallback: "big"},
		Model{Name: "big", Targets: []Target{{Provider: "pb", Model: "gpt-4.1"}}},
		Model{Name: "strict", Targets: []Target{{Provider: "pa", Model: "gpt-4o", ContextWindow: 200}}},
		Model{Name: "trim", Truncation: "drop_oldest", Targets: []Target{{Provider: "pa", Model: "gpt-4o-mini", ContextWindow: 200}}},
		Model{Name: "llama", Targets: []Target{{Provider: "pa", Model: "llama-3.1-8b", ContextWindow: 100}}},
	)
	return c
}

func TestPreflightFits(t *testing.T) {
	h := newHarness(t, contextCfg())
	w := h.do(t, "/chat", `{"model":"strict","max_tokens":50,"messages":`+msgJSON([2]string{"user", words(100)})+`}`)
	if w.Code != 200 || h.a.count("gpt-4o") != 1 || w.Header().Get("x-vigil-truncated") != "" {
		t.Fatalf("status %d, calls %d, headers %v: %s", w.Code, h.a.count("gpt-4o"), w.Header(), w.Body)
	}
	if n := testutil.ToFloat64(h.g.m.ctx.checks.WithLabelValues("strict", "pa", "gpt-4o", "fits")); n != 1 {
		t.Errorf("fits checks = %v", n)
	}
}

func TestPreflightTooLongNoFallback(t *testing.T) {
	h := newHarness(t, contextCfg())
	msgs := [][2]string{{"system", "be brief"}, {"user", words(150)}}
	prompt := promptTokens(tokens.O200kBase, msgs...)
	w := h.do(t, "/chat", `{"model":"strict","max_tokens":100,"messages":`+msgJSON(msgs...)+`}`)
	if w.Code != 400 || h.a.count("gpt-4o") != 0 {
		t.Fatalf("status %d, upstream calls %d: %s", w.Code, h.a.count("gpt-4o"), w.Body)
	}
	e := errBody(t, w)
	want := fmt.Sprintf("%d prompt tokens (o200k_base, counted by the gateway) + max_tokens 100 for the answer exceed gpt-4o's context window of 200 tokens", prompt)
	if e.Code != "context_length_exceeded" || !strings.Contains(e.Message, want) {
		t.Fatalf("error %+v; want the message to hold %q", e, want)
	}
	if w.Header().Get("x-vigil-attempts") != "0" {
		t.Errorf("x-vigil-attempts %q: no upstream call was made", w.Header().Get("x-vigil-attempts"))
	}
	if n := testutil.ToFloat64(h.g.m.ctx.checks.WithLabelValues("strict", "pa", "gpt-4o", "too_long")); n != 1 {
		t.Errorf("too_long checks = %v", n)
	}
	// Without max_tokens the same prompt fits (one token is reserved).
	w = h.do(t, "/chat", `{"model":"strict","messages":`+msgJSON(msgs...)+`}`)
	if w.Code != 200 || h.a.count("gpt-4o") != 1 {
		t.Fatalf("without max_tokens: %d %s", w.Code, w.Body)
	}
}

func TestPreflightUsesContextWindowFallback(t *testing.T) {
	h := newHarness(t, contextCfg())
	w := h.do(t, "/chat", `{"model":"small","messages":`+msgJSON([2]string{"user", words(300)})+`}`)
	if w.Code != 200 || h.a.count("gpt-4o") != 0 || h.b.count("gpt-4.1") != 1 {
		t.Fatalf("status %d, calls gpt-4o %d gpt-4.1 %d: %s", w.Code, h.a.count("gpt-4o"), h.b.count("gpt-4.1"), w.Body)
	}
	if w.Header().Get("x-vigil-attempts") != "1" || !strings.Contains(w.Body.String(), "hi from gpt-4.1") {
		t.Fatalf("attempts %q: %s", w.Header().Get("x-vigil-attempts"), w.Body)
	}
}

func TestPreflightEstimateForOtherModels(t *testing.T) {
	h := newHarness(t, contextCfg())
	w := h.do(t, "/chat", `{"model":"llama","messages":`+msgJSON([2]string{"user", words(120)})+`}`)
	if w.Code != 400 || h.a.count("llama-3.1-8b") != 0 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if e := errBody(t, w); !strings.Contains(e.Message, "estimated with o200k_base: llama-3.1-8b's own tokenizer is not built in") {
		t.Fatalf("message does not say the count is an estimate: %s", e.Message)
	}
}

func TestTruncationDropOldest(t *testing.T) {
	h := newHarness(t, contextCfg())
	msgs := [][2]string{
		{"system", "You are terse."},
		{"user", "first question" + words(80)},
		{"assistant", "first answer" + words(80)},
		{"system", "a later instruction"},
		{"user", "second question" + words(30)},
		{"assistant", "second answer"},
		{"user", "third question"},
	}
	w := h.do(t, "/chat", `{"model":"trim","messages":`+msgJSON(msgs...)+`}`)
	if w.Code != 200 || h.a.count("gpt-4o-mini") != 1 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	// The first user message alone would do, but the assistant answer
	// after it would then open the conversation: both go.
	if got := w.Header().Get("x-vigil-truncated"); got != "2" {
		t.Errorf("x-vigil-truncated = %q, want 2", got)
	}
	var roles []string
	for _, m := range h.a.last["gpt-4o-mini"].GetMessages() {
		roles = append(roles, m.GetRole()+":"+strings.Fields(m.GetContent())[0])
	}
	if want := "system:You system:a user:second assistant:second user:third"; strings.Join(roles, " ") != want {
		t.Fatalf("sent %q, want %q", strings.Join(roles, " "), want)
	}
	if n := testutil.ToFloat64(h.g.m.ctx.dropped.WithLabelValues("trim", "pa", "gpt-4o-mini")); n != 2 {
		t.Errorf("dropped messages metric = %v", n)
	}

	// A stream reports the truncation in its headers too.
	w = h.do(t, "/chat", `{"model":"trim","stream":true,"messages":`+msgJSON(msgs...)+`}`)
	if w.Code != 200 || w.Header().Get("x-vigil-truncated") != "2" {
		t.Fatalf("stream: %d %v", w.Code, w.Header())
	}

	// When the system messages and the last user message alone do not
	// fit, nothing is sent.
	calls := h.a.count("gpt-4o-mini")
	w = h.do(t, "/chat", `{"model":"trim","messages":`+msgJSON([2]string{"system", "sys"}, [2]string{"assistant", "hi"}, [2]string{"user", words(250)})+`}`)
	if w.Code != 400 || h.a.count("gpt-4o-mini") != calls {
		t.Fatalf("too long even truncated: %d %s", w.Code, w.Body)
	}
	if e := errBody(t, w); e.Code != "context_length_exceeded" || !strings.Contains(e.Message, "even after dropping the 1 oldest messages") {
		t.Fatalf("error %+v", e)
	}
}

func TestTokensConfigValidate(t *testing.T) {
	c := testCfg()
	c.Models[0].Truncation = "newest"
	c.Models[0].Targets[0].ContextWindow = -1
	c.Models[0].Targets[1].Encoding = "p50k_base"
	err := c.Validate()
	for _, want := range []string{
		`gateway.models[0].truncation: "newest" is not error or drop_oldest`,
		"gateway.models[0].targets[0].context_window: must be a positive number of tokens",
		`gateway.models[0].targets[1].encoding: "p50k_base" is not o200k_base or cl100k_base`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestShippedWindow(t *testing.T) {
	for model, want := range map[string]int{
		"gpt-4o": 128000, "gpt-4o-2024-08-06": 128000, "gpt-4o-mini-2024-07-18": 128000, "gpt-4-0613": 8192,
		"gpt-4-turbo-2024-04-09": 128000, "gpt-4.1-nano": 1047576, "gpt-4o-audio-preview": 0, "llama-3.1-8b": 0,
	} {
		if got := shippedWindow(model); got != want {
			t.Errorf("shippedWindow(%q) = %d, want %d", model, got, want)
		}
	}
	ti := newTokenInfo(Target{Model: "my-azure-deployment", Encoding: "cl100k_base", ContextWindow: 1000})
	if ti.enc != tokens.Cl100kBase || !ti.exact || ti.window != 1000 {
		t.Errorf("configured encoding and window: %+v", ti)
	}
}

// usageless answers like scripted but reports no usage, as some
// OpenAI-compatible servers do.
type usageless struct{ *scripted }

func (u usageless) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	r, err := u.scripted.Chat(ctx, req)
	if r != nil {
		r.Usage = nil
	}
	return r, err
}

func (u usageless) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	return u.scripted.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
		ev.Usage = nil
		return send(ev)
	})
}

func (u usageless) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	r, err := u.scripted.Embed(ctx, req)
	if r != nil {
		r.Usage = nil
	}
	return r, err
}

type providerMap map[string]sdk.ProviderClient

func (p providerMap) WithProvider(ctx context.Context, name, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	return fn(ctx, p[name])
}

func TestEstimatedUsage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Cache.Enabled = false
	cfg.Providers = []Provider{{Name: "quiet", Plugin: "openai"}}
	cfg.Models = []Model{
		{Name: "chat", Targets: []Target{{Provider: "quiet", Model: "gpt-4o-mini"}}},
		{Name: "embed", Targets: []Target{{Provider: "quiet", Model: "text-embedding-3-small"}}},
	}
	reg := prometheus.NewRegistry()
	s := newScripted()
	g, err := New(cfg, providerMap{"quiet": usageless{s}}, nil, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func(path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		w := httptest.NewRecorder()
		if path == "/embeddings" {
			g.HandleEmbeddings(w, r)
		} else {
			g.HandleChat(w, r)
		}
		return w
	}
	msgs := [][2]string{{"system", "You count."}, {"user", "How many tokens is this sentence?"}}
	prompt := promptTokens(tokens.O200kBase, msgs...)
	completion := tokens.Count(tokens.O200kBase, "hi from gpt-4o-mini")

	w := do("/chat", `{"model":"chat","messages":`+msgJSON(msgs...)+`}`)
	var resp struct{ Usage map[string]any }
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w.Header().Get("x-vigil-usage") != "estimated" {
		t.Errorf("x-vigil-usage = %q", w.Header().Get("x-vigil-usage"))
	}
	if resp.Usage["prompt_tokens"] != float64(prompt) || resp.Usage["completion_tokens"] != float64(completion) ||
		resp.Usage["total_tokens"] != float64(prompt+completion) || len(resp.Usage) != 3 {
		t.Errorf("usage %v, want prompt %d completion %d and nothing else in the body", resp.Usage, prompt, completion)
	}
	// Priced like reported usage (gpt-4o-mini has a shipped price).
	wantUSD := (float64(prompt)*0.15 + float64(completion)*0.60) / 1e6
	if got := w.Header().Get("x-vigil-cost-usd"); got != formatUSD(wantUSD) {
		t.Errorf("x-vigil-cost-usd = %s, want %s", got, formatUSD(wantUSD))
	}
	if n := testutil.ToFloat64(g.m.tokens.WithLabelValues("chat", "quiet", "gpt-4o-mini", "prompt", "estimated")); n != float64(prompt) {
		t.Errorf("estimated prompt tokens metric = %v, want %d", n, prompt)
	}

	// A stream without a usage chunk from upstream: the gateway's count,
	// marked, in the usage chunk.
	w = do("/chat", `{"model":"chat","stream":true,"stream_options":{"include_usage":true},"messages":`+msgJSON(msgs...)+`}`)
	ev := readSSE(t, w.Body.String())
	last := ev[len(ev)-2]
	var chunk struct {
		Choices []any
		Usage   map[string]any
	}
	if err := json.Unmarshal([]byte(last), &chunk); err != nil || len(chunk.Choices) != 0 {
		t.Fatalf("usage chunk %s: %v", last, err)
	}
	if chunk.Usage["estimated"] != true || chunk.Usage["prompt_tokens"] != float64(prompt) ||
		chunk.Usage["completion_tokens"] != float64(tokens.Count(tokens.O200kBase, "hi there")) {
		t.Errorf("usage chunk %s", last)
	}

	// Embeddings: the inputs' tokens, in cl100k_base for text-embedding-3.
	w = do("/embeddings", `{"model":"embed","input":["alpha beta","gamma"]}`)
	var er struct{ Usage map[string]float64 }
	_ = json.Unmarshal(w.Body.Bytes(), &er)
	want := tokens.Count(tokens.Cl100kBase, "alpha beta") + tokens.Count(tokens.Cl100kBase, "gamma")
	if w.Code != 200 || er.Usage["prompt_tokens"] != float64(want) || w.Header().Get("x-vigil-usage") != "estimated" {
		t.Errorf("embeddings: %d %v %s, want %d prompt tokens", w.Code, w.Header(), w.Body, want)
	}
}

// Reported usage is left alone and not marked.
func TestReportedUsageNotMarked(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 200 || w.Header().Get("x-vigil-usage") != "" || !strings.Contains(w.Body.String(), `"prompt_tokens":3`) {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	if n := testutil.ToFloat64(h.g.m.tokens.WithLabelValues("chain", "pa", "m1", "prompt", "reported")); n != 3 {
		t.Errorf("reported prompt tokens = %v", n)
	}
}

// A prompt whose bytes fit the window is not counted at all; one whose
// bytes do not is counted once per encoding, however many targets use it.
func TestPreflightCountsOnlyWhenNeeded(t *testing.T) {
	h := newHarness(t, contextCfg())
	a := h.g.aliases["strict"]
	tg := a.targets[0]
	fit := h.g.newFit(&pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "short"}}})
	if err := fit.check(a, tg); err != nil || fit.counts != nil {
		t.Fatalf("short prompt: err %v, counted %v", err, fit.counts)
	}
	fit = h.g.newFit(&pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: words(60)}}})
	if err := fit.check(a, tg); err != nil || len(fit.counts) != 1 || len(fit.counts[tokens.O200kBase]) != 1 {
		t.Fatalf("long prompt: err %v, counts %v", err, fit.counts)
	}
	trim := h.g.aliases["trim"]
	if err := fit.check(trim, trim.targets[0]); err != nil || len(fit.counts) != 1 {
		t.Fatalf("second target, same encoding: err %v, counts %v", err, fit.counts)
	}
}
