package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestParamValidation: each refusal of the output cap, penalties,
// reasoning_effort and logprobs is a 400 naming the field, before any
// upstream call.
func TestParamValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct {
		extra, param, code, says string
	}{
		{`,"max_tokens":10,"max_completion_tokens":10`, "max_tokens", "invalid_parameter_combination", "at the same time"},
		{`,"max_tokens":10,"max_completion_tokens":20`, "max_tokens", "invalid_parameter_combination", "at the same time"},
		{`,"max_completion_tokens":0`, "max_completion_tokens", "invalid_request", "at least 1"},
		{`,"max_completion_tokens":"many"`, "max_completion_tokens", "invalid_request", "expected a 32-bit integer"},
		{`,"max_tokens":-1`, "max_tokens", "invalid_request", "at least 1"},
		{`,"presence_penalty":2.5`, "presence_penalty", "invalid_request", "from -2 to 2"},
		{`,"presence_penalty":-2.01`, "presence_penalty", "invalid_request", "from -2 to 2"},
		{`,"frequency_penalty":3`, "frequency_penalty", "invalid_request", "from -2 to 2"},
		{`,"frequency_penalty":"high"`, "frequency_penalty", "invalid_request", "expected a number"},
		{`,"reasoning_effort":"High"`, "reasoning_effort", "invalid_request", "lowercase word"},
		{`,"reasoning_effort":""`, "reasoning_effort", "invalid_request", "lowercase word"},
		{`,"reasoning_effort":"very high"`, "reasoning_effort", "invalid_request", "lowercase word"},
		{`,"reasoning_effort":3`, "reasoning_effort", "invalid_request", "expected a string"},
		{`,"logprobs":"yes"`, "logprobs", "invalid_request", "expected a boolean"},
		{`,"logprobs":true,"top_logprobs":21`, "top_logprobs", "invalid_request", "from 0 to 20"},
		{`,"logprobs":true,"top_logprobs":-1`, "top_logprobs", "invalid_request", "from 0 to 20"},
		{`,"top_logprobs":2`, "top_logprobs", "invalid_request", "needs logprobs: true"},
		{`,"logprobs":false,"top_logprobs":2`, "top_logprobs", "invalid_request", "needs logprobs: true"},
		{`,"modalities":["text","audio"]`, "modalities", "invalid_request", "does not support it"},
		{`,"web_search_options":{}`, "web_search_options", "invalid_request", "does not support it"},
	} {
		w := h.do(t, "/chat", chatBody("chain", tc.extra))
		e := errBody(t, w)
		param := ""
		if e.Param != nil {
			param = *e.Param
		}
		if w.Code != 400 || param != tc.param || e.Code != tc.code || !strings.Contains(e.Message, tc.says) || e.Type != "invalid_request_error" {
			t.Errorf("%s:\n  %d param %q code %q %q, want 400 %q %q saying %q", tc.extra, w.Code, param, e.Code, e.Message, tc.param, tc.code, tc.says)
		}
	}
	if h.a.count("m1")+h.b.count("m2") != 0 {
		t.Fatal("a bad request reached an upstream")
	}
}

// TestParamsReachProvider: what a client sends reaches the provider in the
// contract's fields; max_completion_tokens also fills max_tokens (for
// plugins that predate it); logprobs: false is accepted as a no-op.
func TestParamsReachProvider(t *testing.T) {
	h := newHarness(t, testCfg())
	ptr := func(v float64) *float64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	for _, tc := range []struct {
		extra string
		want  *pb.ChatRequest
	}{
		{`,"max_completion_tokens":77`, &pb.ChatRequest{MaxTokens: i32(77), MaxCompletionTokens: i32(77)}},
		{`,"max_tokens":66`, &pb.ChatRequest{MaxTokens: i32(66)}},
		{`,"presence_penalty":-2,"frequency_penalty":1.5`, &pb.ChatRequest{PresencePenalty: ptr(-2), FrequencyPenalty: ptr(1.5)}},
		{`,"presence_penalty":0,"frequency_penalty":null`, &pb.ChatRequest{PresencePenalty: ptr(0)}},
		{`,"reasoning_effort":"minimal"`, &pb.ChatRequest{ReasoningEffort: "minimal"}},
		{`,"reasoning_effort":null`, &pb.ChatRequest{}},
		{`,"logprobs":false`, &pb.ChatRequest{}},
		{`,"logprobs":null`, &pb.ChatRequest{}},
		{`,"logprobs":true`, &pb.ChatRequest{Logprobs: true}},
		{`,"logprobs":true,"top_logprobs":0`, &pb.ChatRequest{Logprobs: true, TopLogprobs: i32(0)}},
		{`,"logprobs":true,"top_logprobs":20`, &pb.ChatRequest{Logprobs: true, TopLogprobs: i32(20)}},
	} {
		for _, stream := range []string{"", `,"stream":true`} {
			w := h.do(t, "/chat", chatBody("single", tc.extra+stream))
			if w.Code != 200 {
				t.Fatalf("%s%s: %d %s", tc.extra, stream, w.Code, w.Body)
			}
			got := h.a.last["solo"]
			tc.want.Model, tc.want.Messages = "solo", got.Messages
			if !protoEqual(got, tc.want) {
				t.Errorf("%s%s reached the provider as %v, want %v", tc.extra, stream, got, tc.want)
			}
		}
	}
}

// logprobFleet wraps scripted providers so that they answer with logprobs
// when asked (one per space-separated piece of the content: logprob
// -(i+1)/10, the piece's bytes, and top_logprobs alternatives; a streamed
// delta is one token), and
// reports capabilities when caps is set.
// expectSkipped sends a chat request with extra, whole and streamed, to
// "chain", whose first target (pa) lacks a capability the request needs:
// pb must answer on the second attempt; and to "single" (pa only): 400
// unsupported saying "provider pa <says>".
func expectSkipped(t *testing.T, h *harness, extra, says string) {
	t.Helper()
	for _, stream := range []string{"", `,"stream":true`} {
		before := h.b.count("m2")
		w := h.do(t, "/chat", chatBody("chain", extra+stream))
		if w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" || w.Header().Get("x-vigil-attempts") != "2" || h.b.count("m2") != before+1 {
			t.Fatalf("%s%s on chain (pa without, then pb): %d %v %s", extra, stream, w.Code, w.Header(), w.Body)
		}
		w = h.do(t, "/chat", chatBody("single", extra+stream))
		if e := errBody(t, w); w.Code != 400 || e.Code != "unsupported" || !strings.Contains(e.Message, "provider pa "+says) {
			t.Fatalf("%s%s on single (pa only): %d %s", extra, stream, w.Code, w.Body)
		}
	}
}

type logprobFleet struct {
	fleet
	caps map[string][]string
}

func (f logprobFleet) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return f.fleet.WithProvider(ctx, name, method, func(ctx context.Context, pc sdk.ProviderClient) error {
		return fn(ctx, logprobbing{pc.(*scripted)})
	})
}

func (f logprobFleet) Capabilities(name string) ([]string, bool) {
	c, ok := f.caps[name]
	return c, ok
}

type logprobbing struct{ *scripted }

// fakeLogprobs are the logprobs of text's pieces, numbered from first.
func fakeLogprobs(req *pb.ChatRequest, text string, first int) []*pb.TokenLogprob {
	if !req.GetLogprobs() || text == "" {
		return nil
	}
	var out []*pb.TokenLogprob
	for i, tok := range strings.SplitAfter(text, " ") {
		out = append(out, fakeLogprob(req, tok, first+i))
	}
	return out
}

func fakeLogprob(req *pb.ChatRequest, tok string, n int) *pb.TokenLogprob {
	lp := &pb.TokenLogprob{Token: tok, Logprob: -float64(n+1) / 10, Bytes: []byte(tok)}
	for k := range int(req.GetTopLogprobs()) {
		alt := fmt.Sprintf("%s#%d", tok, k)
		lp.TopLogprobs = append(lp.TopLogprobs, &pb.TopLogprob{Token: alt, Logprob: -float64(n+1)/10 - float64(k), Bytes: []byte(alt)})
	}
	return lp
}

func (l logprobbing) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	resp, err := l.scripted.Chat(ctx, req)
	if err == nil {
		resp.Logprobs = fakeLogprobs(req, resp.GetContent(), 0)
	}
	return resp, err
}

func (l logprobbing) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	n := 0
	return l.scripted.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
		// Each delta is one token.
		if d := ev.GetDelta(); d != "" && req.GetLogprobs() {
			ev.Logprobs = []*pb.TokenLogprob{fakeLogprob(req, d, n)}
			n++
		}
		return send(ev)
	})
}

// wantLogprobs is OpenAI's JSON for fakeLogprobs of pieces.
func wantLogprobs(pieces []string, top, first int) []any {
	out := []any{}
	bytesOf := func(s string) []any {
		b := []any{}
		for _, c := range []byte(s) {
			b = append(b, float64(c))
		}
		return b
	}
	for i, p := range pieces {
		n := first + i
		alts := []any{}
		for k := range top {
			alt := fmt.Sprintf("%s#%d", p, k)
			alts = append(alts, map[string]any{"token": alt, "logprob": -float64(n+1)/10 - float64(k), "bytes": bytesOf(alt)})
		}
		out = append(out, map[string]any{"token": p, "logprob": -float64(n+1) / 10, "bytes": bytesOf(p), "top_logprobs": alts})
	}
	return out
}

// TestLogprobsAnswer: logprobs come back in OpenAI's shape, whole (in the
// choice) and streamed (per content chunk), null when not asked for; a
// request for them neither uses nor fills the cache.
func TestLogprobsAnswer(t *testing.T) {
	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	h.g.providers = logprobFleet{fleet: fleet{"pa": h.a, "pb": h.b}}
	h.a.answers["solo"] = []string{"the sky is blue", "the sky is blue"}

	w := h.doHeader(t, chatBody("single", `,"logprobs":true,"top_logprobs":2,"temperature":0`), nil)
	if w.Code != 200 || w.Header().Get("x-vigil-cache") != "bypass" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	var resp struct {
		Choices []struct {
			Logprobs map[string]any `json:"logprobs"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	lp := resp.Choices[0].Logprobs
	if want := wantLogprobs([]string{"the ", "sky ", "is ", "blue"}, 2, 0); !reflect.DeepEqual(lp["content"], want) {
		t.Fatalf("logprobs content %v\nwant %v", lp["content"], want)
	}
	if r, ok := lp["refusal"]; !ok || r != nil || len(lp) != 2 {
		t.Fatalf("logprobs object %v", lp)
	}
	// Again: still no cache, a second upstream call.
	if w := h.doHeader(t, chatBody("single", `,"logprobs":true,"top_logprobs":2,"temperature":0`), nil); w.Header().Get("x-vigil-cache") != "bypass" || h.a.count("solo") != 2 {
		t.Fatalf("second logprobs request: %v, %d calls", w.Header(), h.a.count("solo"))
	}

	// Not asked for: null, as before.
	w = h.do(t, "/chat", chatBody("single", `,"logprobs":false`))
	if !strings.Contains(w.Body.String(), `"logprobs":null`) {
		t.Fatalf("without logprobs: %s", w.Body)
	}

	// Streamed: each content chunk carries its pieces' logprobs, the role
	// chunk an empty list (as OpenAI's), the finish chunk null.
	h.a.answers["solo"] = []string{"one two three"}
	w = h.do(t, "/chat", chatBody("single", `,"logprobs":true,"top_logprobs":1,"stream":true`))
	var got []any
	content := ""
	for _, ev := range readSSE(t, w.Body.String()) {
		if ev == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
					Role    string  `json:"role"`
				} `json:"delta"`
				Logprobs     json.RawMessage `json:"logprobs"`
				FinishReason *string         `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatal(err)
		}
		ch := c.Choices[0]
		if ch.Delta.Role != "" {
			if string(ch.Logprobs) != `{"content":[],"refusal":null}` {
				t.Fatalf("role chunk's logprobs: %s", ev)
			}
			continue
		}
		if ch.FinishReason != nil {
			if string(ch.Logprobs) != "null" {
				t.Fatalf("finish chunk with logprobs: %s", ev)
			}
			continue
		}
		var lp map[string]any
		if err := json.Unmarshal(ch.Logprobs, &lp); err != nil || lp == nil {
			t.Fatalf("content chunk without logprobs: %s", ev)
		}
		got = append(got, lp["content"].([]any)...)
		content += *ch.Delta.Content
	}
	if want := wantLogprobs([]string{"one tw", "o three"}, 1, 0); content != "one two three" || !reflect.DeepEqual(got, want) {
		t.Fatalf("streamed %q with logprobs %v\nwant %v", content, got, want)
	}
	// A stream without logprobs: null in every chunk.
	w = h.do(t, "/chat", chatBody("single", `,"stream":true`))
	if strings.Contains(w.Body.String(), `"logprobs":{`) {
		t.Fatalf("stream without logprobs: %s", w.Body)
	}
}

// TestParamsNeedCapabilities: logprobs, non-zero penalties and
// reasoning_effort skip a target whose plugin does not declare the
// capability (it would drop them) and go to the next; with none left the
// answer is 400 unsupported naming the provider and the parameter. A zero
// penalty (the default) needs nothing.
func TestParamsNeedCapabilities(t *testing.T) {
	h := newHarness(t, testCfg())
	all := []string{"chat", "stream", ToolsCapability, LogprobsCapability, PenaltiesCapability, ReasoningEffortCapability}
	h.g.providers = logprobFleet{fleet: fleet{"pa": h.a, "pb": h.b}, caps: map[string][]string{"pa": {"chat", "stream", ToolsCapability}, "pb": all}}
	for _, tc := range []struct{ extra, says string }{
		{`,"logprobs":true`, "does not support logprobs"},
		{`,"presence_penalty":0.5`, "does not support presence_penalty"},
		{`,"frequency_penalty":-1`, "does not support frequency_penalty"},
		{`,"reasoning_effort":"low"`, "does not support reasoning_effort"},
	} {
		expectSkipped(t, h, tc.extra, tc.says)
	}
	if n := h.a.count("solo") + h.a.count("m1"); n != 0 {
		t.Fatalf("pa was called %d times", n)
	}
	if w := h.do(t, "/chat", chatBody("single", `,"presence_penalty":0,"frequency_penalty":0,"logprobs":false`)); w.Code != 200 {
		t.Fatalf("zero penalties on pa: %d %s", w.Code, w.Body)
	}
}

// TestParamsInCacheKey: the new parameters are part of the cache key,
// and a request without them keeps the key it had before they existed.
func TestParamsInCacheKey(t *testing.T) {
	ptr := func(v float64) *float64 { return &v }
	i32 := func(v int32) *int32 { return &v }
	base := func() *pb.ChatRequest {
		return &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "hi"}}, MaxTokens: i32(5)}
	}
	// The key of base as computed before these fields existed: answers
	// cached then are still found.
	if k, before := cacheKey("x", "", base()), "d0b4560a9f6589e86205ad36af83be0ce4a630bc750c236d244d86924ea5263a"; k != before {
		t.Errorf("the key of a request without the new fields changed: %s, was %s", k, before)
	}
	keys := map[string]string{cacheKey("x", "", base()): "none"}
	for name, change := range map[string]func(r *pb.ChatRequest){
		"max_completion_tokens": func(r *pb.ChatRequest) { r.MaxCompletionTokens = i32(5) },
		"presence_penalty":      func(r *pb.ChatRequest) { r.PresencePenalty = ptr(1) },
		"presence_penalty 0":    func(r *pb.ChatRequest) { r.PresencePenalty = ptr(0) },
		"frequency_penalty":     func(r *pb.ChatRequest) { r.FrequencyPenalty = ptr(1) },
		"reasoning_effort":      func(r *pb.ChatRequest) { r.ReasoningEffort = "high" },
		"reasoning_effort low":  func(r *pb.ChatRequest) { r.ReasoningEffort = "low" },
	} {
		r := base()
		change(r)
		k := cacheKey("x", "", r)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same cache key", name, other)
		}
		keys[k] = name
	}
}
