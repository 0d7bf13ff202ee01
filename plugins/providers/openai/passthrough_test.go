package main

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestOpenAIParamsMerged: ChatRequest.openai_params reaches the upstream
// merged into the body, whole and streamed, beside the fields the plugin
// sets; test/openaistub checks their shapes as OpenAI does, so a wrong
// merge fails here.
func TestOpenAIParamsMerged(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	params := `{"logit_bias":{"50256":-100},"metadata":{"team":"ml"},"prediction":{"content":"hello","type":"content"},"prompt_cache_key":"k1","safety_identifier":"u-1","service_tier":"flex","store":true,"verbosity":"low"}`
	var want map[string]any
	if err := json.Unmarshal([]byte(params), &want); err != nil {
		t.Fatal(err)
	}
	req := chatReq("gpt-test")
	req.OpenaiParams = params
	resp, err := p.Chat(ctx, req)
	if err != nil || resp.GetContent() != "echo: hello there world" {
		t.Fatalf("chat: %v %v", resp, err)
	}
	check := func(how string, stream bool) {
		t.Helper()
		sent := stub.LastRequest(chatPath, "gpt-test")
		for k, v := range want {
			if !reflect.DeepEqual(sent[k], v) {
				t.Errorf("%s: %s upstream = %v, want %v", how, k, sent[k], v)
			}
		}
		if sent["model"] != "gpt-test" || len(sent["messages"].([]any)) != 2 || sent["temperature"] != 0.0 || (sent["stream"] == true) != stream {
			t.Errorf("%s: the plugin's own fields upstream: %v", how, sent)
		}
	}
	check("whole", false)
	var text strings.Builder
	err = p.ChatStream(ctx, req, func(ev *pb.ChatEvent) error { text.WriteString(ev.GetDelta()); return nil })
	if err != nil || text.String() != "echo: hello there world" {
		t.Fatalf("stream: %q %v", text.String(), err)
	}
	check("streamed", true)

	// A value OpenAI refuses comes back as invalid_request naming it (the
	// plugin passes values through; the stub checks them as OpenAI does).
	req.OpenaiParams = `{"service_tier":"premium"}`
	_, err = p.Chat(ctx, req)
	var se *sdk.Error
	if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != "service_tier" {
		t.Fatalf("a service_tier OpenAI refuses: %v", err)
	}

	// None, or an empty object: the body is the plugin's own.
	for _, params := range []string{"", "{}", " { } "} {
		req.OpenaiParams = params
		if _, err := p.Chat(ctx, req); err != nil {
			t.Fatalf("%q: %v", params, err)
		}
		sent := stub.LastRequest(chatPath, "gpt-test")
		for k := range want {
			if _, has := sent[k]; has {
				t.Errorf("openai_params %q: %s went upstream", params, k)
			}
		}
	}
}

// TestOpenAIParamsCollision: openai_params may not set a key the plugin
// sets itself (model, messages, stream, ...): refused as invalid_request
// naming it, before any upstream call; so is a value that is not an
// object.
func TestOpenAIParamsCollision(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	for _, tc := range []struct{ params, field string }{
		{`{"model":"gpt-4o"}`, "model"},
		{`{"store":true,"messages":[]}`, "messages"},
		{`{"stream":true}`, "stream"},
		{`{"temperature":2}`, "temperature"},
		{`{"max_completion_tokens":5}`, "max_completion_tokens"},
		{`{"tools":[]}`, "tools"},
		{`{"stream_options":{"include_usage":false}}`, "stream_options"},
		{`["store"]`, "openai_params"},
		{`"store"`, "openai_params"},
		{`{"store":true`, "openai_params"},
	} {
		req := chatReq("gpt-test")
		req.OpenaiParams = tc.params
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field {
			t.Errorf("%s: %v, want invalid_request naming %s", tc.params, err, tc.field)
		}
		err = p.ChatStream(ctx, req, func(*pb.ChatEvent) error { return nil })
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field {
			t.Errorf("%s streamed: %v, want invalid_request naming %s", tc.params, err, tc.field)
		}
	}
	if n := stub.Calls(chatPath, "gpt-test"); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}
}

// TestOwnKeys: every field the plugin encodes is one openai_params may not
// set.
func TestOwnKeys(t *testing.T) {
	for _, k := range []string{"model", "messages", "stream", "stream_options", "tools", "tool_choice", "response_format", "max_tokens", "logprobs", "user", "seed", "stop"} {
		if !ownKeys[k] {
			t.Errorf("%s is not an own key", k)
		}
	}
	for _, k := range []string{"store", "metadata", "logit_bias", ""} {
		if ownKeys[k] {
			t.Errorf("%q is an own key", k)
		}
	}
}

// BenchmarkChatBody is the body's encoding, without and with
// openai_params: without them it is the struct's json.Marshal alone.
func BenchmarkChatBody(b *testing.B) {
	for _, params := range []string{"", `{"metadata":{"team":"ml"},"store":true}`} {
		name := "none"
		if params != "" {
			name = "with"
		}
		b.Run(name, func(b *testing.B) {
			req := chatReq("gpt-test")
			req.OpenaiParams = params
			b.ReportAllocs()
			for b.Loop() {
				body, err := chatBody(req, false, false, structuredNative)
				if err != nil {
					b.Fatal(err)
				}
				v, err := withParams(body, req.GetOpenaiParams())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := json.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
