package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestUnsupportedParams: OpenAI's parameters the Messages API has no
// counterpart for are class unsupported naming the parameter, whole and
// streamed, before any upstream call (OpenAI's pass-through parameters
// too, by name); a zero penalty is the default and passes. max_completion_tokens alone becomes max_tokens.
func TestUnsupportedParams(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	zero, half := 0.0, 0.5
	top := int32(2)
	for _, tc := range []struct {
		name   string
		change func(r *pb.ChatRequest)
	}{
		{"presence_penalty", func(r *pb.ChatRequest) { r.PresencePenalty = &half }},
		{"frequency_penalty", func(r *pb.ChatRequest) { r.FrequencyPenalty = &half }},
		{"logprobs", func(r *pb.ChatRequest) { r.Logprobs = true }},
		{"logprobs", func(r *pb.ChatRequest) { r.Logprobs, r.TopLogprobs = true, &top }},
		{"logit_bias:", func(r *pb.ChatRequest) { r.OpenaiParams = `{"logit_bias":{"1":5}}` }},
		{"metadata, store:", func(r *pb.ChatRequest) { r.OpenaiParams = `{"store":true,"metadata":{"a":"b"}}` }},
		{"openai_params:", func(r *pb.ChatRequest) { r.OpenaiParams = `[1]` }},
	} {
		req := chatReq()
		tc.change(req)
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.Unsupported || !strings.HasPrefix(se.Message, tc.name) {
			t.Errorf("%s: %v", tc.name, err)
		}
		err = p.ChatStream(ctx, req, func(*pb.ChatEvent) error { return nil })
		if sdk.ClassOf(err) != sdk.Unsupported || !strings.Contains(err.Error(), tc.name) {
			t.Errorf("%s streamed: %v", tc.name, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}
	req := chatReq()
	req.PresencePenalty, req.FrequencyPenalty = &zero, &zero
	n := int32(33)
	req.MaxCompletionTokens = &n
	if _, err := p.Chat(ctx, req); err != nil {
		t.Fatalf("zero penalties: %v", err)
	}
	if got := stub.LastRequest("/v1/messages", "claude-test")["max_tokens"]; got != 33.0 {
		t.Fatalf("max_tokens sent: %v", got)
	}
}
