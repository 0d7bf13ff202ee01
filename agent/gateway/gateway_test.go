package gateway

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// scripted is an in-process provider: each upstream model answers from a
// queue of errors (nil = success), then succeeds. It counts calls.
type scripted struct {
	mu     sync.Mutex
	script map[string][]error
	calls  map[string]int
	// midStream makes a stream for the model fail after one delta.
	midStream map[string]bool
	// answers, when queued, are the contents of the next chat answers.
	answers map[string][]string
	// last is the last chat request per model.
	last map[string]*pb.ChatRequest
	// toolCalls, when set for a model, are what its answers call (with no
	// content); streams send each call's id and name, then its arguments
	// in two fragments.
	toolCalls map[string][]*pb.ToolCall
	// toolCallQueue, when queued for a model, are the calls of its next
	// answers, one set per answer, before toolCalls.
	toolCallQueue map[string][][]*pb.ToolCall
	// callText, when set for a model, is the content of its answers that
	// call tools (text before the calls).
	callText map[string]string
	// embedded is the last embedding request per model.
	embedded map[string]*pb.EmbedRequest
}

func (s *scripted) callsFor(model string) []*pb.ToolCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.toolCallQueue[model]; len(q) > 0 {
		s.toolCallQueue[model] = q[1:]
		return q[0]
	}
	return s.toolCalls[model]
}

func (s *scripted) answer(req *pb.ChatRequest) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last[req.GetModel()] = req
	if q := s.answers[req.GetModel()]; len(q) > 0 {
		s.answers[req.GetModel()] = q[1:]
		return q[0]
	}
	if req.GetResponseFormat() == "json_schema" || req.GetResponseFormat() == "json_object" {
		return `{"a":"hi from ` + req.GetModel() + `"}`
	}
	return "hi from " + req.GetModel()
}

func newScripted() *scripted {
	return &scripted{script: map[string][]error{}, calls: map[string]int{}, midStream: map[string]bool{}, answers: map[string][]string{}, last: map[string]*pb.ChatRequest{},
		toolCalls: map[string][]*pb.ToolCall{}, toolCallQueue: map[string][][]*pb.ToolCall{}, callText: map[string]string{}, embedded: map[string]*pb.EmbedRequest{}}
}

func (s *scripted) fail(model string, errs ...error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[model] = append(s.script[model], errs...)
}

func (s *scripted) count(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[model]
}

func (s *scripted) next(model string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[model]++
	if q := s.script[model]; len(q) > 0 {
		s.script[model] = q[1:]
		return q[0]
	}
	return nil
}

func (s *scripted) Info(context.Context) (*pb.InfoResponse, error) { return &pb.InfoResponse{}, nil }
func (s *scripted) Configure(context.Context, map[string]any) ([]sdk.FieldError, error) {
	return nil, nil
}
func (s *scripted) Models(context.Context) (*pb.ModelsResponse, error) {
	return &pb.ModelsResponse{}, nil
}
func (s *scripted) Chat(_ context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if err := s.next(req.GetModel()); err != nil {
		return nil, err
	}
	if calls := s.callsFor(req.GetModel()); len(calls) > 0 {
		s.answer(req)
		s.mu.Lock()
		text := s.callText[req.GetModel()]
		s.mu.Unlock()
		return &pb.ChatResponse{Id: "x", Model: req.GetModel(), Content: text, ToolCalls: calls, FinishReason: "tool_calls", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 3, TotalTokens: 6}}, nil
	}
	return &pb.ChatResponse{Id: "x", Model: req.GetModel(), Content: s.answer(req), FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 3, TotalTokens: 6, CachedPromptTokens: 1},
		SystemFingerprint: "fp_scripted"}, nil
}
func (s *scripted) ChatStream(_ context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if err := s.next(req.GetModel()); err != nil {
		return err
	}
	if calls := s.callsFor(req.GetModel()); len(calls) > 0 {
		s.answer(req)
		s.mu.Lock()
		text := s.callText[req.GetModel()]
		s.mu.Unlock()
		if text != "" {
			if err := send(&pb.ChatEvent{Delta: text, Model: req.GetModel()}); err != nil {
				return err
			}
		}
		for i, c := range calls {
			half := len(c.GetArguments()) / 2
			for _, d := range []*pb.ToolCallDelta{{Index: int32(i), Id: c.GetId(), Name: c.GetName()}, {Index: int32(i), Arguments: c.GetArguments()[:half]}, {Index: int32(i), Arguments: c.GetArguments()[half:]}} {
				if err := send(&pb.ChatEvent{ToolCalls: []*pb.ToolCallDelta{d}, Model: req.GetModel()}); err != nil {
					return err
				}
			}
		}
		return send(&pb.ChatEvent{FinishReason: "tool_calls", Usage: &pb.Usage{PromptTokens: 2, CompletionTokens: 2, TotalTokens: 4}})
	}
	text := s.answer(req)
	if text == "hi from "+req.GetModel() {
		text = "hi there"
	}
	half := len(text) / 2
	if err := send(&pb.ChatEvent{Delta: text[:half], Model: req.GetModel()}); err != nil {
		return err
	}
	s.mu.Lock()
	mid := s.midStream[req.GetModel()]
	s.mu.Unlock()
	if mid {
		return sdk.Errorf(sdk.Unavailable, "connection reset mid-stream")
	}
	if err := send(&pb.ChatEvent{Delta: text[half:]}); err != nil {
		return err
	}
	return send(&pb.ChatEvent{FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 2, CompletionTokens: 2, TotalTokens: 4}})
}
func (s *scripted) Embed(_ context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if err := s.next(req.GetModel()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.embedded[req.GetModel()] = req
	s.mu.Unlock()
	out := &pb.EmbedResponse{Model: req.GetModel(), Usage: &pb.Usage{PromptTokens: 1, TotalTokens: 1}}
	for i := range req.GetInput() {
		out.Embeddings = append(out.Embeddings, &pb.Embedding{Values: []float32{float32(i), 0.5, -1.25}})
	}
	return out, nil
}
func (s *scripted) CountTokens(context.Context, *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, sdk.Errorf(sdk.Unsupported, "no")
}

// fleet maps provider instance names to scripted providers.
type fleet map[string]*scripted

func (f fleet) WithProvider(ctx context.Context, name, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	p, ok := f[name]
	if !ok {
		return sdk.Errorf(sdk.Unavailable, "no provider %s", name)
	}
	return fn(ctx, p)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type harness struct {
	g      *Gateway
	a, b   *scripted
	sleeps []time.Duration
	clk    *clock
	reg    *prometheus.Registry
}

func testCfg() Config {
	c := DefaultConfig()
	c.Providers = []Provider{{Name: "pa", Plugin: "openai"}, {Name: "pb", Plugin: "openai"}}
	c.Models = []Model{
		{Name: "chain", Targets: []Target{{Provider: "pa", Model: "m1"}, {Provider: "pb", Model: "m2"}}, ContextWindowFallback: "long"},
		{Name: "single", Targets: []Target{{Provider: "pa", Model: "solo"}}},
		{Name: "long", Targets: []Target{{Provider: "pb", Model: "big"}}},
		{Name: "split", Targets: []Target{{Provider: "pa", Model: "w1", Weight: 1}, {Provider: "pb", Model: "w2", Weight: 3}, {Provider: "pb", Model: "w3"}}},
	}
	c.Breaker.ConsecutiveFailures = 4
	return c
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{a: newScripted(), b: newScripted(), clk: &clock{now: time.Now()}, reg: prometheus.NewRegistry()}
	g, err := New(cfg, fleet{"pa": h.a, "pb": h.b}, nil, h.reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.sleep = func(ctx context.Context, d time.Duration) error {
		h.sleeps = append(h.sleeps, d)
		h.clk.Add(d)
		return nil
	}
	for _, a := range g.aliases {
		for _, tg := range a.targets {
			tg.br.now = h.clk.Now
		}
	}
	h.g = g
	return h
}

func (h *harness) do(t *testing.T, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	switch path {
	case "/chat":
		h.g.HandleChat(w, r)
	case "/embeddings":
		h.g.HandleEmbeddings(w, r)
	}
	return w
}

func chatBody(model string, extra string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}]` + extra + `}`
}

func errBody(t *testing.T, w *httptest.ResponseRecorder) Error {
	t.Helper()
	var e struct{ Error Error }
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an OpenAI error body (%v): %s", err, w.Body)
	}
	return e.Error
}

func overloaded() error { return &sdk.Error{Class: sdk.Overloaded, Message: "busy"} }

func TestRetriesByClass(t *testing.T) {
	for _, tc := range []struct {
		name            string
		errs            []error
		status          int
		callsA, callsB  int
		attempts        string
		provider, class string
	}{
		{"success", nil, 200, 1, 0, "1", "pa", ""},
		{"overloaded then ok", []error{overloaded()}, 200, 2, 0, "2", "pa", ""},
		{"three failures then next target", []error{overloaded(), sdk.Errorf(sdk.Timeout, "slow"), sdk.Errorf(sdk.Unavailable, "down")}, 200, 3, 1, "4", "pb", ""},
		{"invalid request: no retry, no fallback", []error{sdk.FieldErrorf("temperature", "bad")}, 400, 1, 0, "1", "pa", "invalid_request"},
		{"auth: next target at once", []error{sdk.Errorf(sdk.Auth, "bad key")}, 200, 1, 1, "2", "pb", ""},
		{"quota exhausted: next target at once", []error{sdk.Errorf(sdk.QuotaExhausted, "no money")}, 200, 1, 1, "2", "pb", ""},
		{"rate limited with a long retry-after: next target", []error{&sdk.Error{Class: sdk.RateLimited, Message: "slow down", RetryAfter: time.Minute}}, 200, 1, 1, "2", "pb", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, testCfg())
			h.a.fail("m1", tc.errs...)
			w := h.do(t, "/chat", chatBody("chain", ""))
			if w.Code != tc.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if h.a.count("m1") != tc.callsA || h.b.count("m2") != tc.callsB {
				t.Fatalf("upstream calls: m1 %d m2 %d, want %d %d", h.a.count("m1"), h.b.count("m2"), tc.callsA, tc.callsB)
			}
			if got := w.Header().Get("x-vigil-attempts"); got != tc.attempts {
				t.Fatalf("x-vigil-attempts %s, want %s", got, tc.attempts)
			}
			if got := w.Header().Get("x-vigil-provider"); got != tc.provider {
				t.Fatalf("x-vigil-provider %s, want %s", got, tc.provider)
			}
			if w.Header().Get("x-vigil-cache") != "bypass" {
				t.Fatalf("x-vigil-cache: %v", w.Header())
			}
			if tc.class != "" {
				if e := errBody(t, w); e.Code != tc.class || e.Param == nil || *e.Param != "temperature" {
					t.Fatalf("error %+v", e)
				}
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("m1", &sdk.Error{Class: sdk.RateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond})
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 200 || h.a.count("m1") != 2 || len(h.sleeps) != 1 || h.sleeps[0] != 1500*time.Millisecond {
		t.Fatalf("status %d, calls %d, sleeps %v", w.Code, h.a.count("m1"), h.sleeps)
	}
	// Backoff without retry-after: full jitter below base<<try.
	h = newHarness(t, testCfg())
	h.a.fail("m1", overloaded(), overloaded())
	h.do(t, "/chat", chatBody("chain", ""))
	if len(h.sleeps) != 2 || h.sleeps[0] > 200*time.Millisecond || h.sleeps[1] > 400*time.Millisecond {
		t.Fatalf("backoffs %v", h.sleeps)
	}
}

func TestExhaustedStatuses(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{overloaded(), 503, "overloaded"},
		{&sdk.Error{Class: sdk.RateLimited, Message: "x", RetryAfter: 2 * time.Second}, 503, "rate_limited"},
		{sdk.Errorf(sdk.Timeout, "slow"), 504, "timeout"},
		{sdk.Errorf(sdk.Internal, "bug"), 502, "internal"},
		{sdk.Errorf(sdk.Auth, "bad key"), 502, "auth"},
		{sdk.Errorf(sdk.ContextLengthExceeded, "too long"), 400, "context_length_exceeded"},
		{sdk.Errorf(sdk.Unsupported, "no chat here"), 400, "unsupported"},
	} {
		h := newHarness(t, testCfg())
		for i := 0; i < 5; i++ {
			h.a.fail("solo", tc.err)
		}
		w := h.do(t, "/chat", chatBody("single", ""))
		e := errBody(t, w)
		if w.Code != tc.status || e.Code != tc.code {
			t.Errorf("%v: status %d code %s, want %d %s: %s", tc.err, w.Code, e.Code, tc.status, tc.code, w.Body)
		}
		if tc.code == "rate_limited" && w.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After not passed on: %v", w.Header())
		}
	}
}

func TestContextWindowFallback(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("m1", sdk.Errorf(sdk.ContextLengthExceeded, "too long"))
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 200 || h.a.count("m1") != 1 || h.b.count("m2") != 0 || h.b.count("big") != 1 {
		t.Fatalf("status %d, calls m1 %d m2 %d big %d: %s", w.Code, h.a.count("m1"), h.b.count("m2"), h.b.count("big"), w.Body)
	}
	if !strings.Contains(w.Body.String(), "hi from big") {
		t.Fatalf("answer: %s", w.Body)
	}
}

func TestCircuitBreakerSingleTarget(t *testing.T) {
	cfg := testCfg()
	cfg.Retry.MaxAttempts = 2
	h := newHarness(t, cfg)
	for i := 0; i < 4; i++ {
		h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"))
	}
	// Two requests, two attempts each: four failures in a row open it.
	for i := 0; i < 2; i++ {
		if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 503 {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	if h.a.count("solo") != 4 {
		t.Fatalf("calls %d", h.a.count("solo"))
	}
	// Open: fails fast without calling the upstream.
	w := h.do(t, "/chat", chatBody("single", ""))
	if e := errBody(t, w); w.Code != 503 || h.a.count("solo") != 4 || !strings.Contains(e.Message, "circuit breaker") || w.Header().Get("x-vigil-attempts") != "0" {
		t.Fatalf("open circuit: %d, calls %d, %+v", w.Code, h.a.count("solo"), e)
	}
	if v := testutil.ToFloat64(h.g.m.circuit.WithLabelValues("pa", "solo")); v != 2 {
		t.Fatalf("circuit gauge %v", v)
	}
	// After open_for one probe goes through; it fails, so it opens again.
	h.clk.Add(cfg.Breaker.OpenFor)
	h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "still down"))
	h.do(t, "/chat", chatBody("single", ""))
	if h.a.count("solo") != 5 {
		t.Fatalf("half-open should probe once: calls %d", h.a.count("solo"))
	}
	// The next probe succeeds and closes it.
	h.clk.Add(cfg.Breaker.OpenFor)
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 || h.a.count("solo") != 6 {
		t.Fatalf("probe: %d calls %d", w.Code, h.a.count("solo"))
	}
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 || h.a.count("solo") != 7 {
		t.Fatalf("closed again: %d calls %d", w.Code, h.a.count("solo"))
	}
}

func TestBreakerFailureRatio(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker(Breaker{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10, Window: 10 * time.Second, OpenFor: time.Second}, func() time.Time { return now })
	for i := 0; i < 9; i++ {
		b.record(i%2 == 0) // 5 failures of 9: below min_requests
	}
	if b.current() != closed {
		t.Fatal("opened below min_requests")
	}
	b.record(false) // 5 of 10: ratio reached on the next failure
	b.record(true)
	if b.current() != open {
		t.Fatalf("ratio 6/11 did not open: %v", b.current())
	}
	// Old buckets leave the window.
	b2 := newBreaker(Breaker{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 4, Window: 2 * time.Second, OpenFor: time.Second}, func() time.Time { return now })
	b2.record(true)
	b2.record(true)
	b2.record(false)
	now = now.Add(5 * time.Second)
	b2.record(false)
	b2.record(true)
	if b2.current() != closed {
		t.Fatal("failures outside the window counted")
	}
}

func TestWeightedSplit(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, pick := range []int64{0, 1, 2, 3} {
		h.g.rand = func(int64) int64 { return pick }
		h.do(t, "/chat", chatBody("split", ""))
	}
	if h.a.count("w1") != 1 || h.b.count("w2") != 3 || h.b.count("w3") != 0 {
		t.Fatalf("split: w1 %d w2 %d w3 %d", h.a.count("w1"), h.b.count("w2"), h.b.count("w3"))
	}
	// The rest of the tier is the fallback of the pick.
	h.g.rand = func(int64) int64 { return 0 }
	h.a.fail("w1", sdk.Errorf(sdk.Auth, "x"))
	if w := h.do(t, "/chat", chatBody("split", "")); w.Header().Get("x-vigil-model") != "w2" {
		t.Fatalf("fallback within the tier: %v", w.Header())
	}
}

// readSSE returns the data payloads of a stream.
func readSSE(t *testing.T, body string) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestStream(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("m1", overloaded()) // before the first byte: retried
	w := h.do(t, "/chat", chatBody("chain", `,"stream":true,"stream_options":{"include_usage":true}`))
	ev := readSSE(t, w.Body.String())
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" || w.Header().Get("x-vigil-attempts") != "2" {
		t.Fatalf("stream: %d %v", w.Code, w.Header())
	}
	if len(ev) != 6 || ev[len(ev)-1] != "[DONE]" {
		t.Fatalf("events: %q", ev)
	}
	var content strings.Builder
	for _, e := range ev[:len(ev)-1] {
		var c struct {
			Object  string
			Choices []struct {
				Delta        struct{ Role, Content string }
				FinishReason *string `json:"finish_reason"`
			}
			Usage *usageJSON
		}
		if err := json.Unmarshal([]byte(e), &c); err != nil || c.Object != "chat.completion.chunk" {
			t.Fatalf("chunk %s: %v", e, err)
		}
		for _, ch := range c.Choices {
			content.WriteString(ch.Delta.Content)
		}
		if c.Usage != nil && (len(c.Choices) != 0 || c.Usage.TotalTokens != 4) {
			t.Fatalf("usage chunk: %s", e)
		}
	}
	if content.String() != "hi there" || !strings.Contains(ev[4], `"usage":{"prompt_tokens":2`) {
		t.Fatalf("content %q, usage chunk %s", content.String(), ev[4])
	}
	// Without include_usage there is no usage chunk.
	w = h.do(t, "/chat", chatBody("chain", `,"stream":true`))
	if ev := readSSE(t, w.Body.String()); len(ev) != 5 || strings.Contains(w.Body.String(), "usage") {
		t.Fatalf("events without usage: %q", ev)
	}
}

func TestStreamFailsMidWay(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.midStream["m1"] = true
	w := h.do(t, "/chat", chatBody("chain", `,"stream":true`))
	ev := readSSE(t, w.Body.String())
	if h.a.count("m1") != 1 || h.b.count("m2") != 0 {
		t.Fatalf("a stream was retried after its first byte: m1 %d m2 %d", h.a.count("m1"), h.b.count("m2"))
	}
	last := ev[len(ev)-1]
	if last == "[DONE]" || !strings.Contains(last, `"error"`) || !strings.Contains(last, `"code":"unavailable"`) {
		t.Fatalf("stream did not end with an error event: %q", ev)
	}
	if v := testutil.ToFloat64(h.g.m.requests.WithLabelValues("chain", "pa", "m1", "stream_error")); v != 1 {
		t.Fatalf("stream_error not counted: %v", v)
	}
	// Every target failing before the first byte: an ordinary error.
	for i := 0; i < 3; i++ {
		h.a.fail("solo", sdk.Errorf(sdk.Timeout, "slow"))
	}
	w = h.do(t, "/chat", chatBody("single", `,"stream":true`))
	if e := errBody(t, w); w.Code != 504 || e.Code != "timeout" {
		t.Fatalf("stream that never started: %d %+v", w.Code, e)
	}
}

func TestEmbeddings(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.do(t, "/embeddings", `{"model":"single","input":["a","b"]}`)
	var resp struct {
		Object string
		Data   []struct {
			Index     int
			Embedding json.RawMessage
		}
		Usage struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 200 || len(resp.Data) != 2 || string(resp.Data[1].Embedding) != "[1,0.5,-1.25]" {
		t.Fatalf("float: %d %s", w.Code, w.Body)
	}
	w = h.do(t, "/embeddings", `{"model":"single","input":"a","encoding_format":"base64"}`)
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp.Data) != 1 {
		t.Fatalf("base64: %s", w.Body)
	}
	var s string
	if err := json.Unmarshal(resp.Data[0].Embedding, &s); err != nil {
		t.Fatalf("base64 embedding is not a string: %s", resp.Data[0].Embedding)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(raw) != 12 {
		t.Fatalf("decode %q: %v", s, err)
	}
	for i, want := range []float32{0, 0.5, -1.25} {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])); got != want {
			t.Fatalf("value %d = %v, want %v", i, got, want)
		}
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct {
		path, body string
		status     int
		param      string
	}{
		{"/chat", chatBody("nope", ""), 404, "model"},
		{"/chat", `{"messages":[{"role":"user","content":"x"}]}`, 400, "model"},
		{"/chat", chatBody("chain", `,"temperature":3`), 400, "temperature"},
		{"/chat", chatBody("chain", `,"top_p":-0.1`), 400, "top_p"},
		{"/chat", chatBody("chain", `,"top_p":1.01`), 400, "top_p"},
		{"/chat", chatBody("chain", `,"max_tokens":0`), 400, "max_tokens"},
		{"/chat", chatBody("chain", `,"n":2`), 400, "n"},
		{"/chat", chatBody("chain", `,"stream_options":{"include_usage":true}`), 400, "stream_options"},
		{"/chat", chatBody("chain", `,"response_format":{"type":"json_schema"}`), 400, "response_format.json_schema"},
		{"/chat", chatBody("chain", `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":"no"}}`), 400, "response_format.json_schema.schema"},
		{"/chat", `{"model":"chain","messages":[]}`, 400, "messages"},
		{"/chat", `{"model":"chain","messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].tool_call_id"},
		{"/chat", `{"model":"chain","messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "messages[0].content[0].image_url"},
		{"/chat", chatBody("chain", `,"tools":[]`), 400, "tools"},
		{"/chat", chatBody("chain", `,"temperature":"hot"`), 400, "temperature"},
		{"/chat", `{"model":`, 400, ""},
		{"/embeddings", `{"model":"single","input":[]}`, 400, "input"},
		{"/embeddings", `{"model":"single","input":[1,2.5]}`, 400, "input"},
		{"/embeddings", `{"model":"single","input":["a",""]}`, 400, "input[1]"},
		{"/embeddings", `{"model":"single","input":"a","encoding_format":"int8"}`, 400, "encoding_format"},
		{"/embeddings", `{"model":"nope","input":"a"}`, 404, "model"},
	} {
		w := h.do(t, tc.path, tc.body)
		e := errBody(t, w)
		param := ""
		if e.Param != nil {
			param = *e.Param
		}
		if w.Code != tc.status || param != tc.param {
			t.Errorf("%s %s: %d param %q, want %d %q: %s", tc.path, tc.body, w.Code, param, tc.status, tc.param, w.Body)
		}
	}
	if h.a.count("m1")+h.b.count("m2") != 0 {
		t.Fatal("a bad request reached an upstream")
	}
}

func TestJSONSchemaReachesProvider(t *testing.T) {
	var got *pb.ChatRequest
	cfg := testCfg()
	h := newHarness(t, cfg)
	h.g.providers = capture{fleet{"pa": h.a, "pb": h.b}, &got}
	w := h.do(t, "/chat", chatBody("chain", `,"response_format":{"type":"json_schema","json_schema":{"name":"reply","strict":true,"schema":{"type":"object", "properties":{"a":{"type":"string"}}}}},"temperature":0,"seed":7,"stop":"END"`))
	if w.Code != 200 || got == nil {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got.GetResponseFormat() != "json_schema" || got.GetJsonSchemaName() != "reply" || !got.GetJsonSchemaStrict() ||
		got.GetJsonSchema() != `{"type":"object","properties":{"a":{"type":"string"}}}` || got.Temperature == nil || got.GetSeed() != 7 || got.GetStop()[0] != "END" || got.GetModel() != "m1" {
		t.Fatalf("request reached the provider as %v", got)
	}
}

type capture struct {
	fleet
	got **pb.ChatRequest
}

func (c capture) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return c.fleet.WithProvider(ctx, name, method, func(ctx context.Context, pc sdk.ProviderClient) error {
		return fn(ctx, capturing{pc.(*scripted), c.got})
	})
}

type capturing struct {
	*scripted
	got **pb.ChatRequest
}

func (c capturing) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	*c.got = req
	return c.scripted.Chat(ctx, req)
}

func TestModelsList(t *testing.T) {
	h := newHarness(t, testCfg())
	w := httptest.NewRecorder()
	h.g.HandleModels(w, httptest.NewRequest("GET", "/models", nil))
	var l struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &l); err != nil || l.Object != "list" || len(l.Data) != 4 || l.Data[0].ID != "chain" || l.Data[0].Object != "model" {
		t.Fatalf("models: %s", w.Body)
	}
}

func TestConfigValidate(t *testing.T) {
	c := testCfg()
	c.Providers = append(c.Providers, Provider{Name: "pa", Plugin: "Bad Plugin", BaseURL: "ftp://x", APIKeyFile: "/k", APIKeyEnv: "K", Options: map[string]any{"timeout": "1s"}})
	c.Models = append(c.Models,
		Model{Name: "chain", Targets: []Target{{Provider: "nobody"}}},
		Model{Name: "w", Targets: []Target{{Provider: "pa", Model: "x"}, {Provider: "pa", Model: "y", Weight: 2}}, ContextWindowFallback: "w"},
		Model{Name: "bad fallback", ContextWindowFallback: "missing"},
		Model{Name: strings.Repeat("a", 121), Targets: []Target{{Provider: "pa", Model: "x"}}},
	)
	c.Retry.MaxAttempts = 0
	c.Breaker.FailureRatio = math.NaN()
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"gateway.providers[2].name", "gateway.providers[2].plugin", "gateway.providers[2].base_url", "gateway.providers[2].api_key_env",
		"gateway.providers[2].options.timeout", "gateway.models[4].name: alias \"chain\" is declared twice", "gateway.models[4].targets[0].provider",
		"gateway.models[4].targets[0].model", "gateway.models[5].targets[1].weight", "gateway.models[5].context_window_fallback",
		"gateway.models[6].name", "gateway.models[6].targets", "gateway.models[6].context_window_fallback: \"missing\"",
		"gateway.retry.max_attempts", "gateway.breaker.failure_ratio", "gateway.models[7].name: alias \"aaa", "is 121 bytes; at most 120",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in:\n%v", want, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	_, err = New(Config{Providers: []Provider{{Name: "p", Plugin: "openai", APIKeyEnv: "VIGIL_TEST_UNSET_KEY"}}}, fleet{}, nil, nil, func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "gateway.providers[0].api_key_env") {
		t.Fatalf("unset key env: %v", err)
	}
	// The key read from api_key_env reaches the plugin as api_key; a
	// rejection of it names api_key_env, the key the operator wrote.
	g, err := New(Config{Providers: []Provider{{Name: "p", Plugin: "openai", APIKeyEnv: "MY_KEY"}, {Name: "q", Plugin: "openai", APIKeyFile: "/k"},
		{Name: "r", Plugin: "openai", Options: map[string]any{"organization": "o"}}}},
		fleet{}, nil, nil, func(k string) (string, bool) { return "sk-1", k == "MY_KEY" })
	if err != nil {
		t.Fatal(err)
	}
	insts := g.Instances()
	if insts[0].Config["api_key"] != "sk-1" || insts[0].SetBy["api_key"] != "api_key_env" {
		t.Errorf("instance of a provider with api_key_env: %+v", insts[0])
	}
	if _, ok := insts[1].Config["api_key"]; ok || len(insts[1].SetBy) != 0 {
		t.Errorf("instance of a provider with api_key_file: %+v", insts[1])
	}
	// An options key's rejection names it under options.
	if insts[2].Config["organization"] != "o" || insts[2].SetBy["organization"] != "options.organization" {
		t.Errorf("instance of a provider with options: %+v", insts[2])
	}
}

var _ http.Handler = http.HandlerFunc((&Gateway{}).HandleChat)

func TestClientGoneStopsRetries(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("m1", overloaded(), overloaded())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("chain", ""))).WithContext(ctx)
	w := httptest.NewRecorder()
	h.g.HandleChat(w, r)
	if h.a.count("m1") != 1 || h.b.count("m2") != 0 || w.Body.Len() != 0 {
		t.Fatalf("after the client left: m1 %d m2 %d, body %q", h.a.count("m1"), h.b.count("m2"), w.Body)
	}
	if v := testutil.ToFloat64(h.g.m.requests.WithLabelValues("chain", "pa", "m1", "499")); v != 1 {
		t.Fatalf("499 not counted: %v", v)
	}
}

const replySchema = `,"response_format":{"type":"json_schema","json_schema":{"name":"r","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}}}`

func TestStructuredOutput(t *testing.T) {
	t.Run("valid at once", func(t *testing.T) {
		h := newHarness(t, testCfg())
		w := h.do(t, "/chat", chatBody("single", replySchema))
		if w.Code != 200 || h.a.count("solo") != 1 || testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", "response_format", "valid")) != 1 {
			t.Fatalf("%d calls %d: %s", w.Code, h.a.count("solo"), w.Body)
		}
	})
	t.Run("repaired once, quoting the error", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.answers["solo"] = []string{`{"a": 5}`, `{"a":"five"}`}
		w := h.do(t, "/chat", chatBody("single", replySchema))
		if w.Code != 200 || h.a.count("solo") != 2 || w.Header().Get("x-vigil-attempts") != "2" || !strings.Contains(w.Body.String(), `{\"a\":\"five\"}`) {
			t.Fatalf("%d calls %d %v: %s", w.Code, h.a.count("solo"), w.Header(), w.Body)
		}
		msgs := h.a.last["solo"].GetMessages()
		if len(msgs) != 3 || msgs[1].GetContent() != `{"a": 5}` || !strings.Contains(msgs[2].GetContent(), "does not match the schema") {
			t.Fatalf("repair request: %v", msgs)
		}
		if testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", "response_format", "repaired")) != 1 {
			t.Fatal("repaired not counted")
		}
	})
	t.Run("invalid twice is an error, never a success", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.answers["solo"] = []string{`not json`, `{"b":1}`}
		w := h.do(t, "/chat", chatBody("single", replySchema))
		if e := errBody(t, w); w.Code != 502 || e.Code != "invalid_output" || h.a.count("solo") != 2 {
			t.Fatalf("%d %+v calls %d", w.Code, e, h.a.count("solo"))
		}
	})
	t.Run("json_object", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.answers["solo"] = []string{`[1,2]`, `{"ok":true}`}
		w := h.do(t, "/chat", chatBody("single", `,"response_format":{"type":"json_object"}`))
		if w.Code != 200 || h.a.count("solo") != 2 {
			t.Fatalf("%d calls %d: %s", w.Code, h.a.count("solo"), w.Body)
		}
	})
	t.Run("a stream that fails the schema ends with an error", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.answers["solo"] = []string{`{"a": 12345}`}
		w := h.do(t, "/chat", chatBody("single", `,"stream":true`+replySchema))
		ev := readSSE(t, w.Body.String())
		if last := ev[len(ev)-1]; last == "[DONE]" || !strings.Contains(last, "invalid_output") || h.a.count("solo") != 1 {
			t.Fatalf("events %q", ev)
		}
		w = h.do(t, "/chat", chatBody("single", `,"stream":true`+replySchema))
		if ev := readSSE(t, w.Body.String()); ev[len(ev)-1] != "[DONE]" {
			t.Fatalf("valid stream: %q", ev)
		}
	})
	t.Run("bad schemas are the client's error, and nothing is loaded", func(t *testing.T) {
		h := newHarness(t, testCfg())
		for _, schema := range []string{
			`{"type":"object","properties":{"a":{"$ref":"file:///etc/passwd"}}}`,
			`{"type":"object","properties":{"a":{"$ref":"http://127.0.0.1:1/x.json"}}}`,
			`{"type":12}`,
		} {
			w := h.do(t, "/chat", chatBody("single", `,"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":`+schema+`}}`))
			if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "response_format.json_schema.schema" || strings.Contains(e.Message, "root:") {
				t.Fatalf("%s: %d %+v", schema, w.Code, e)
			}
		}
		if h.a.count("solo") != 0 {
			t.Fatal("a bad schema reached the upstream")
		}
	})
}

func TestBreakerSharedAcrossAliases(t *testing.T) {
	cfg := testCfg()
	cfg.Models = append(cfg.Models, Model{Name: "solo-too", Targets: []Target{{Provider: "pa", Model: "solo"}}})
	cfg.Retry.MaxAttempts = 4
	h := newHarness(t, cfg)
	for i := 0; i < 4; i++ {
		h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"))
	}
	h.do(t, "/chat", chatBody("single", ""))
	if w := h.do(t, "/chat", chatBody("solo-too", "")); w.Code != 503 || h.a.count("solo") != 4 {
		t.Fatalf("the other alias still called the broken upstream: %d, calls %d", w.Code, h.a.count("solo"))
	}
	if got := h.g.OpenCircuits(); len(got) != 1 || got[0] != "pa/solo" {
		t.Fatalf("open circuits %v", got)
	}
}

func TestCost(t *testing.T) {
	cfg := testCfg()
	cfg.Prices = map[string]Price{"solo": {Input: 1, CachedInput: 0.5, Output: 2}, "gpt-4o-mini": {Input: 100}}
	h := newHarness(t, cfg)
	w := h.do(t, "/chat", chatBody("single", ""))
	// 2 fresh prompt tokens at 1, 1 cached at 0.5, 3 completion at 2 (per million).
	if got := w.Header().Get("x-vigil-cost-usd"); got != "0.00000850" {
		t.Fatalf("x-vigil-cost-usd %q", got)
	}
	if !strings.Contains(w.Body.String(), `"prompt_tokens_details":{"cached_tokens":1}`) {
		t.Fatalf("cached tokens not reported: %s", w.Body)
	}
	if v := testutil.ToFloat64(h.g.m.cost.WithLabelValues("single", "pa", "solo")); math.Abs(v-8.5e-6) > 1e-12 {
		t.Fatalf("cost metric %v", v)
	}
	// A stream's cost is known at its end: an HTTP trailer, read here by
	// a real client.
	srv := httptest.NewServer(http.HandlerFunc(h.g.HandleChat))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(chatBody("single", `,"stream":true`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// 2 prompt tokens at 1, 2 completion at 2 (per million).
	if resp.StatusCode != 200 || resp.Trailer.Get("x-vigil-cost-usd") != "0.00000600" {
		t.Fatalf("stream: %d, trailers %v:\n%s", resp.StatusCode, resp.Trailer, body)
	}
	// An answer from the cache cost nothing upstream, whole or streamed:
	// known at once, so a header.
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	for _, stream := range []string{"", `,"stream":true`} {
		body := chatBody("single", `,"temperature":0`+stream)
		h.doHeader(t, body, nil)
		if w := h.doHeader(t, body, nil); w.Header().Get("x-vigil-cache") != "hit" || w.Header().Get("x-vigil-cost-usd") != "0.00000000" {
			t.Fatalf("cached answer (%q): %v", stream, w.Header())
		}
	}
	// No price, no cost: neither a header nor a made-up zero.
	if w := h.do(t, "/chat", chatBody("chain", "")); w.Header().Get("x-vigil-cost-usd") != "" {
		t.Fatalf("unpriced model has a cost: %v", w.Header())
	}
	if h.g.prices["gpt-4o-mini"].Input != 100 || h.g.prices["gpt-4o"].Output != DefaultPrices["gpt-4o"].Output {
		t.Fatal("configured prices do not override and extend the shipped table")
	}
	bad := testCfg()
	bad.Prices = map[string]Price{"m": {Input: math.Inf(1)}, "n": {Output: -1}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "gateway.prices.m") || !strings.Contains(err.Error(), "gateway.prices.n") {
		t.Fatalf("bad prices: %v", err)
	}
}

// TestEmbeddingTokenArrays: token ids (one array, or an array of them, as
// LangChain's OpenAIEmbeddings sends by default) are decoded in
// cl100k_base, the encoding of OpenAI's embedding models, and the provider
// gets text; ids that are not tokens are 400s naming the input.
func TestEmbeddingTokenArrays(t *testing.T) {
	h := newHarness(t, testCfg())
	hello := tokens.Encode(tokens.Cl100kBase, "hello world")
	naive := tokens.Encode(tokens.Cl100kBase, "naïve café")
	js := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, tc := range []struct {
		input string
		want  []string
	}{
		{js(hello), []string{"hello world"}},
		{js([][]int{hello, naive}), []string{"hello world", "naïve café"}},
	} {
		w := h.do(t, "/embeddings", `{"model":"single","input":`+tc.input+`}`)
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"embedding":[0,0.5,-1.25]`) {
			t.Fatalf("%s: %d %s", tc.input, w.Code, w.Body)
		}
		if got := h.a.embedded["solo"].GetInput(); !slices.Equal(got, tc.want) {
			t.Fatalf("%s: the provider got %q, want %q", tc.input, got, tc.want)
		}
	}
	for _, tc := range []struct{ input, param, msg string }{
		{`[9906, 100257]`, "input", "token 100257 (at 1) is not in cl100k_base"},
		{`[[9906], [-3]]`, "input[1]", "token -3 (at 0) is not in cl100k_base"},
		{`[[9906, 100257]]`, "input[0]", "token 100257 (at 1)"},
		{`[[9906], []]`, "input[1]", "from 1 to 8192 token ids, got 0"},
		{"[" + strings.Repeat("9906,", 8192) + "9906]", "input", "from 1 to 8192 token ids, got 8193"},
		{`[1.5]`, "input", "an array of token ids"},
		{`[[1], "a"]`, "input", "an array of token ids"},
	} {
		w := h.do(t, "/embeddings", `{"model":"single","input":`+tc.input+`}`)
		if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, tc.msg) {
			t.Errorf("%s: %d %+v", tc.input, w.Code, e)
		}
	}
}
