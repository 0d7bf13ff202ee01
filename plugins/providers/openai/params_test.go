package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

const chatPath = "/v1/chat/completions"

// TestMaxCompletionTokens: the output cap goes upstream under the name the
// client used. A reasoning model takes max_completion_tokens and refuses
// max_tokens (test/openaistub answers with OpenAI's message).
func TestMaxCompletionTokens(t *testing.T) {
	p, stub := setup(t, nil)
	stub.Models = append(stub.Models, "o4-mini")
	ctx := context.Background()
	n := int32(50)

	req := chatReq("o4-mini")
	req.Temperature = nil
	req.MaxTokens, req.MaxCompletionTokens = &n, &n // as the gateway sends it
	if _, err := p.Chat(ctx, req); err != nil {
		t.Fatalf("max_completion_tokens to a reasoning model: %v", err)
	}
	sent := stub.LastRequest(chatPath, "o4-mini")
	if _, has := sent["max_tokens"]; has || sent["max_completion_tokens"] != 50.0 {
		t.Fatalf("sent upstream: %v", sent)
	}
	if err := p.ChatStream(ctx, req, func(*pb.ChatEvent) error { return nil }); err != nil {
		t.Fatalf("streamed: %v", err)
	}
	if sent := stub.LastRequest(chatPath, "o4-mini"); sent["max_completion_tokens"] != 50.0 || sent["max_tokens"] != nil {
		t.Fatalf("streamed, sent upstream: %v", sent)
	}

	// max_tokens alone: sent as max_tokens, which a reasoning model
	// refuses as OpenAI does.
	req.MaxCompletionTokens = nil
	_, err := p.Chat(ctx, req)
	var se *sdk.Error
	if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != "max_tokens" || !strings.Contains(se.Message, "Use 'max_completion_tokens' instead") {
		t.Fatalf("max_tokens to a reasoning model: %v", err)
	}
	// ... and any other model takes.
	req = chatReq("gpt-test")
	req.MaxTokens = &n
	if _, err := p.Chat(ctx, req); err != nil {
		t.Fatal(err)
	}
	if sent := stub.LastRequest(chatPath, "gpt-test"); sent["max_tokens"] != 50.0 || sent["max_completion_tokens"] != nil {
		t.Fatalf("sent upstream: %v", sent)
	}
}

// TestPenaltiesAndReasoningEffort: the penalties and reasoning_effort go
// upstream as given; what the upstream refuses comes back as
// invalid_request naming the field.
func TestPenaltiesAndReasoningEffort(t *testing.T) {
	p, stub := setup(t, nil)
	stub.Models = append(stub.Models, "gpt-5-mini")
	ctx := context.Background()
	pp, fp := 1.5, -0.25

	req := chatReq("gpt-test")
	req.PresencePenalty, req.FrequencyPenalty = &pp, &fp
	if _, err := p.Chat(ctx, req); err != nil {
		t.Fatal(err)
	}
	sent := stub.LastRequest(chatPath, "gpt-test")
	if sent["presence_penalty"] != 1.5 || sent["frequency_penalty"] != -0.25 {
		t.Fatalf("penalties upstream: %v", sent)
	}
	if _, has := sent["reasoning_effort"]; has {
		t.Fatalf("reasoning_effort sent unasked: %v", sent)
	}

	req = chatReq("gpt-5-mini")
	req.Temperature, req.ReasoningEffort = nil, "minimal"
	if err := p.ChatStream(ctx, req, func(*pb.ChatEvent) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if sent := stub.LastRequest(chatPath, "gpt-5-mini"); sent["reasoning_effort"] != "minimal" {
		t.Fatalf("reasoning_effort upstream: %v", sent)
	}

	for _, tc := range []struct {
		change func(r *pb.ChatRequest)
		field  string
	}{
		{func(r *pb.ChatRequest) { v := 2.5; r.PresencePenalty = &v }, "presence_penalty"},
		{func(r *pb.ChatRequest) { v := -3.0; r.FrequencyPenalty = &v }, "frequency_penalty"},
		{func(r *pb.ChatRequest) { r.ReasoningEffort = "high" }, "reasoning_effort"}, // gpt-test is no reasoning model
	} {
		req := chatReq("gpt-test")
		tc.change(req)
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field {
			t.Errorf("%s: %v", tc.field, err)
		}
	}
}

// TestLogprobs: logprobs, whole and streamed, as test/openaistub computes
// them; top_logprobs goes upstream.
func TestLogprobs(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	top := int32(3)
	req := chatReq("gpt-test")
	req.Logprobs, req.TopLogprobs = true, &top

	resp, err := p.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sent := stub.LastRequest(chatPath, "gpt-test"); sent["logprobs"] != true || sent["top_logprobs"] != 3.0 {
		t.Fatalf("sent upstream: %v", sent)
	}
	want := wantLogprobs(t, resp.GetContent(), 3)
	if len(want) != 4 || !sameLogprobs(resp.GetLogprobs(), want) {
		t.Fatalf("logprobs %v, want %v", resp.GetLogprobs(), want)
	}

	var got []*pb.TokenLogprob
	var content strings.Builder
	err = p.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
		if ev.GetDelta() != "" && len(ev.GetLogprobs()) != 1 {
			t.Errorf("content event without its token's logprobs: %v", ev)
		}
		content.WriteString(ev.GetDelta())
		got = append(got, ev.GetLogprobs()...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if content.String() != resp.GetContent() || !sameLogprobs(got, want) {
		t.Fatalf("streamed %q with logprobs %v, want %v", content.String(), got, want)
	}

	// Not asked for: none sent, none returned.
	resp, err = p.Chat(ctx, chatReq("gpt-test"))
	if err != nil || len(resp.GetLogprobs()) != 0 {
		t.Fatalf("without logprobs: %v %v", resp, err)
	}
	if _, has := stub.LastRequest(chatPath, "gpt-test")["logprobs"]; has {
		t.Fatal("logprobs sent unasked")
	}
}

// wantLogprobs is what test/openaistub's Logprobs gives for content.
func wantLogprobs(t *testing.T, content string, top int) []*pb.TokenLogprob {
	t.Helper()
	b, _ := json.Marshal(openaistub.Logprobs(content, top))
	var lp choiceLogprobs
	if err := json.Unmarshal([]byte(`{"content":`+string(b)+`}`), &lp); err != nil {
		t.Fatal(err)
	}
	out, err := lp.proto()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameLogprobs(a, b []*pb.TokenLogprob) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return len(a) == len(b) && string(ja) == string(jb)
}

// TestLogprobsIgnoredUpstream: an OpenAI-compatible server that answers
// without the logprobs asked for is class unsupported (the gateway tries
// the next target) rather than an answer without them, whole or streamed
// (before any event is sent).
func TestLogprobsIgnoredUpstream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"logprobs":null,"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				`[DONE]`,
			} {
				_, _ = w.Write([]byte("data: " + c + "\n\n"))
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"logprobs":null,"finish_reason":"stop"}]}`))
	}))
	t.Cleanup(srv.Close)
	p := newProvider()
	if errs := p.Configure(map[string]any{"base_url": srv.URL + "/v1"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	req := chatReq("m")
	req.Logprobs = true
	if _, err := p.Chat(context.Background(), req); sdk.ClassOf(err) != sdk.Unsupported {
		t.Fatalf("whole: %v", err)
	}
	n := 0
	if err := p.ChatStream(context.Background(), req, func(*pb.ChatEvent) error { n++; return nil }); sdk.ClassOf(err) != sdk.Unsupported || n != 0 {
		t.Fatalf("streamed: %v after %d events", err, n)
	}
	// Without logprobs asked for, the same server is fine.
	req.Logprobs = false
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// TestLogprobsOfARefusal: a refusal carries no content logprobs (OpenAI
// puts its tokens' under logprobs.refusal, which the contract does not
// carry); it is passed on as the answer's refusal, not as content, and
// not taken for an upstream without logprobs.
func TestLogprobsOfARefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		lp := `{"content":null,"refusal":[{"token":"No","logprob":-0.5,"bytes":[78,111],"top_logprobs":[]}]}`
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"refusal":""},"logprobs":{"content":[],"refusal":null},"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"refusal":"No"},"logprobs":` + lp + `,"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
				`[DONE]`,
			} {
				_, _ = w.Write([]byte("data: " + c + "\n\n"))
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"No"},"logprobs":` + lp + `,"finish_reason":"stop"}]}`))
	}))
	t.Cleanup(srv.Close)
	p := newProvider()
	if errs := p.Configure(map[string]any{"base_url": srv.URL + "/v1"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	req := chatReq("m")
	req.Logprobs = true
	resp, err := p.Chat(context.Background(), req)
	if err != nil || resp.GetRefusal() != "No" || resp.GetContent() != "" || len(resp.GetLogprobs()) != 0 {
		t.Fatalf("whole: %v %v", resp, err)
	}
	text, refusal := "", ""
	if err := p.ChatStream(context.Background(), req, func(ev *pb.ChatEvent) error {
		text += ev.GetDelta()
		refusal += ev.GetRefusal()
		return nil
	}); err != nil || refusal != "No" || text != "" {
		t.Fatalf("streamed: refusal %q, content %q, %v", refusal, text, err)
	}
}
