package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/anthropicstub"
)

func setup(t *testing.T, extra map[string]any) (*provider, *anthropicstub.Server) {
	t.Helper()
	stub := anthropicstub.New("claude-test")
	stub.APIKey = "sk-ant-test"
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	cfg := map[string]any{"base_url": srv.URL, "api_key": "sk-ant-test", "timeout": "2s"}
	for k, v := range extra {
		cfg[k] = v
	}
	p := newProvider()
	if errs := p.Configure(cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	return p, stub
}

func chatReq() *pb.ChatRequest {
	return &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{
		{Role: "system", Content: "be brief"}, {Role: "user", Content: "first"}, {Role: "user", Content: "hello there"},
	}, Stop: []string{"END"}, User: "u1"}
}

func TestChatTranslation(t *testing.T) {
	p, stub := setup(t, nil)
	resp, err := p.Chat(context.Background(), chatReq())
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "echo: first\n\nhello there" || resp.GetFinishReason() != "stop" || resp.GetUsage().GetPromptTokens() != 5 || resp.GetUsage().GetCompletionTokens() != 4 {
		t.Fatalf("response %v", resp)
	}
	body := stub.LastRequest("/v1/messages", "claude-test")
	if body["system"] != "be brief" || body["max_tokens"] != 4096.0 || len(body["messages"].([]any)) != 1 || body["stop_sequences"].([]any)[0] != "END" || body["metadata"].(map[string]any)["user_id"] != "u1" {
		t.Fatalf("request sent: %v", body)
	}
	req := chatReq()
	req.ResponseFormat, req.JsonSchema = "json_schema", `{"type":"object"}`
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if sys := stub.LastRequest("/v1/messages", "claude-test")["system"].(string); !strings.Contains(sys, `JSON Schema, and nothing else`) || !strings.Contains(sys, `{"type":"object"}`) {
		t.Fatalf("schema not in the system prompt: %q", sys)
	}
	temp := 1.5
	req.Temperature = &temp
	if _, err := p.Chat(context.Background(), req); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("temperature 1.5: %v", err)
	}
}

func TestStream(t *testing.T) {
	p, stub := setup(t, nil)
	var text strings.Builder
	var last *pb.ChatEvent
	err := p.ChatStream(context.Background(), chatReq(), func(ev *pb.ChatEvent) error {
		text.WriteString(ev.GetDelta())
		last = ev
		return nil
	})
	if err != nil || text.String() != "echo: first\n\nhello there" || last.GetFinishReason() != "stop" || last.GetUsage().GetTotalTokens() != 9 {
		t.Fatalf("stream: %v %q %v", err, text.String(), last)
	}
	stub.Fail("claude-test", anthropicstub.Fault{StreamErrorAfter: 2})
	n := 0
	err = p.ChatStream(context.Background(), chatReq(), func(ev *pb.ChatEvent) error { n++; return nil })
	if sdk.ClassOf(err) != sdk.Overloaded || n != 2 {
		t.Fatalf("mid-stream error: %v after %d events", err, n)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		fault      anthropicstub.Fault
		class      sdk.Class
		retryAfter time.Duration
	}{
		{anthropicstub.Fault{Status: 429, RetryAfter: "7"}, sdk.RateLimited, 7 * time.Second},
		{anthropicstub.Fault{Status: 429, Message: "You have reached your specified workspace API spend limit"}, sdk.QuotaExhausted, 0},
		{anthropicstub.Fault{Status: 400, Message: "Your credit balance is too low to access the Anthropic API"}, sdk.QuotaExhausted, 0},
		// The monthly spend limit, told by its error code, with a
		// retry-after that no wait honours: not retried.
		{anthropicstub.Fault{Status: 429, RetryAfter: "60", Message: "You have reached your organization's usage limit.", ErrorCode: "enforced_spend_limit_reached"}, sdk.QuotaExhausted, 0},
		{anthropicstub.Fault{Status: 402, Type: "billing_error", Message: "Payment required"}, sdk.QuotaExhausted, 0},
		{anthropicstub.Fault{Status: 504, Type: "timeout_error", Message: "Request timed out"}, sdk.Timeout, 0},
		{anthropicstub.Fault{Status: 500, Type: "timeout_error", Message: "Request timed out"}, sdk.Timeout, 0},
		{anthropicstub.Fault{Status: 400, Message: "prompt is too long: 210000 tokens > 200000 maximum"}, sdk.ContextLengthExceeded, 0},
		{anthropicstub.Fault{Status: 400}, sdk.InvalidRequest, 0},
		{anthropicstub.Fault{Status: 401}, sdk.Auth, 0},
		{anthropicstub.Fault{Status: 403}, sdk.Auth, 0},
		{anthropicstub.Fault{Status: 404}, sdk.NotFound, 0},
		{anthropicstub.Fault{Status: 500}, sdk.Unavailable, 0},
		{anthropicstub.Fault{Status: 529, RetryAfter: "2"}, sdk.Overloaded, 2 * time.Second},
		{anthropicstub.Fault{Status: 504}, sdk.Timeout, 0},
	} {
		p, stub := setup(t, nil)
		stub.Fail("claude-test", tc.fault)
		_, err := p.Chat(context.Background(), chatReq())
		se, _ := err.(*sdk.Error)
		if se == nil || se.Class != tc.class || se.RetryAfter != tc.retryAfter {
			t.Errorf("%+v: got %v, want %s (retry after %s)", tc.fault, err, tc.class, tc.retryAfter)
		}
	}
}

func TestCountTokensModelsEmbed(t *testing.T) {
	p, _ := setup(t, nil)
	n, err := p.CountTokens(context.Background(), &pb.CountTokensRequest{Model: "claude-test", Messages: []*pb.Message{{Role: "system", Content: "a b"}}, Text: "c d e"})
	if err != nil || n.GetTokens() != 5 {
		t.Fatalf("count: %v %v", n, err)
	}
	ms, err := p.Models(context.Background())
	if err != nil || len(ms.GetModels()) != 1 || ms.GetModels()[0].GetId() != "claude-test" {
		t.Fatalf("models: %v %v", ms, err)
	}
	if _, err := p.Embed(context.Background(), &pb.EmbedRequest{}); sdk.ClassOf(err) != sdk.Unsupported {
		t.Fatalf("embed: %v", err)
	}
	if _, errs := parseConfig(map[string]any{"default_max_tokens": 0.0, "headers": map[string]any{"x-api-key": "k"}, "nope": 1.0}, func(string) (string, bool) { return "", false }); len(errs) != 3 {
		t.Fatalf("config errors: %v", errs)
	}
}
