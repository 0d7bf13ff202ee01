package main

// The example is tested as its author would test it: built and run
// through the conformance kit as the agent runs it, and called in-process
// against an OpenAI-shaped stub with faults injected, to pin down the
// class each upstream failure gets.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/conformance"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

const key = "sk-test"

func stub(t *testing.T) (*openaistub.Server, string) {
	t.Helper()
	s := openaistub.New("gpt-4o-mini", "text-embedding-3-small", "o3-mini")
	s.APIKey = key
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/v1"
}

// TestConformance builds the plugin and runs the kit against it with the
// settings a gateway.providers entry would give it.
func TestConformance(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "vigil-provider-openaicompat")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	s, url := stub(t)
	conformance.RunWith(t, bin, conformance.Options{Kind: sdk.KindProvider, Config: map[string]any{
		"base_url": url, "api_key": key, "timeout": "10s", "max_concurrency": 4.0,
		"embedding_dimensions": 16.0, "headers": map[string]any{"X-Team": "ml"},
	}})
	if s.Calls("/v1/chat/completions", "gpt-4o-mini") == 0 || s.Calls("/v1/embeddings", "text-embedding-3-small") == 0 {
		t.Fatal("the kit's calls did not reach the upstream")
	}
	if got := s.LastHeaders().Get("X-Team"); got != "ml" {
		t.Errorf("header X-Team = %q, want the configured ml", got)
	}
}

func configured(t *testing.T, url string, extra map[string]any) *provider {
	t.Helper()
	m := map[string]any{"base_url": url, "api_key": key, "embedding_dimensions": 8.0}
	for k, v := range extra {
		m[k] = v
	}
	p := &provider{}
	if errs := p.Configure(m); len(errs) > 0 {
		t.Fatalf("Configure: %v", errs)
	}
	return p
}

func TestConfigureProblems(t *testing.T) {
	for _, c := range []struct {
		name string
		in   map[string]any
		want []sdk.FieldError
	}{
		{"empty", nil, nil},
		{"unknown key", map[string]any{"modle": "x"}, []sdk.FieldError{{Field: "modle",
			Message: "unknown key (known: base_url, api_key, api_key_file, api_key_env, timeout, max_concurrency, headers, chat_model, embedding_model, embedding_dimensions)"}}},
		{"every problem at once", map[string]any{"timeout": "soon", "embedding_dimensions": 0.5, "headers": map[string]any{"Authorization": "Bearer x"}},
			[]sdk.FieldError{
				{Field: "timeout", Message: `"soon" is not a positive duration such as 60s`},
				{Field: "headers.Authorization", Message: "is set by the plugin"},
				{Field: "embedding_dimensions", Message: "must be a whole number from 1 to 65536, got 0.5"},
			}},
		{"no model", map[string]any{"chat_model": "", "embedding_model": ""}, []sdk.FieldError{{Field: "chat_model",
			Message: "and embedding_model are both empty: the plugin would offer no model"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := &provider{}
			got := p.Configure(c.in)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Configure(%v) =\n%v\nwant\n%v", c.in, got, c.want)
			}
			if len(got) > 0 && p.cur != nil {
				t.Error("a rejected configuration was applied")
			}
		})
	}
}

func chatReq(model, text string) *pb.ChatRequest {
	return &pb.ChatRequest{Model: model, Messages: []*pb.Message{{Role: "user", Content: text}}}
}

// TestUpstreamErrors checks the class (and retry-after, field) each
// upstream failure gets, for Chat and ChatStream.
func TestUpstreamErrors(t *testing.T) {
	four := int32(4)
	for _, c := range []struct {
		name   string
		fault  *openaistub.Fault
		req    *pb.ChatRequest
		key    string
		class  sdk.Class
		field  string
		after  time.Duration
		stream bool
	}{
		{name: "rate limited", fault: &openaistub.Fault{Status: 429, RetryAfter: "2"}, class: sdk.RateLimited, after: 2 * time.Second},
		{name: "rate limited ms", fault: &openaistub.Fault{Status: 429, RetryAfterMs: "250"}, class: sdk.RateLimited, after: 250 * time.Millisecond, stream: true},
		{name: "overloaded", fault: &openaistub.Fault{Status: 503}, class: sdk.Overloaded},
		{name: "server error", fault: &openaistub.Fault{Status: 500}, class: sdk.Unavailable, stream: true},
		{name: "quota", fault: &openaistub.Fault{Status: 429, Code: "insufficient_quota"}, class: sdk.QuotaExhausted},
		{name: "too long", fault: &openaistub.Fault{Status: 400, Code: "context_length_exceeded"}, class: sdk.ContextLengthExceeded},
		{name: "bad key", key: "wrong", class: sdk.Auth},
		{name: "unknown model", req: chatReq("no-such-model", "hi"), class: sdk.NotFound, stream: true},
		{name: "bad parameter names its field", req: &pb.ChatRequest{Model: "o3-mini", MaxTokens: &four,
			Messages: []*pb.Message{{Role: "user", Content: "hi"}}}, class: sdk.InvalidRequest, field: "max_tokens"},
		{name: "no messages", req: &pb.ChatRequest{Model: "gpt-4o-mini"}, class: sdk.InvalidRequest, field: "messages"},
		{name: "malformed answer", fault: &openaistub.Fault{Malformed: true}, class: sdk.Unavailable},
		{name: "stream cut", fault: &openaistub.Fault{CutAfter: 1}, class: sdk.Unavailable, stream: true},
		{name: "stream error event", fault: &openaistub.Fault{CutAfter: 1, StreamError: true}, class: sdk.Unavailable, stream: true},
		{name: "silent upstream", fault: &openaistub.Fault{Delay: 5 * time.Second}, class: sdk.Timeout},
		{name: "silent stream", fault: &openaistub.Fault{Delay: 5 * time.Second}, class: sdk.Timeout, stream: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, url := stub(t)
			extra := map[string]any{"timeout": "200ms"}
			if c.key != "" {
				extra["api_key"] = c.key
			}
			p := configured(t, url, extra)
			req := c.req
			if req == nil {
				req = chatReq("gpt-4o-mini", "hello")
			}
			if c.fault != nil {
				s.Fail(req.Model, *c.fault)
			}
			var err error
			if c.stream {
				err = p.ChatStream(context.Background(), req, func(*pb.ChatEvent) error { return nil })
			} else {
				_, err = p.Chat(context.Background(), req)
			}
			var se *sdk.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want an *sdk.Error of class %s", err, err, c.class)
			}
			if se.Class != c.class || se.Field != c.field || se.RetryAfter != c.after {
				t.Fatalf("got class %s, field %q, retry after %s (%v); want %s, %q, %s",
					se.Class, se.Field, se.RetryAfter, se, c.class, c.field, c.after)
			}
		})
	}
}

func TestChatAndEmbed(t *testing.T) {
	s, url := stub(t)
	p := configured(t, url, nil)
	models, err := p.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.ModelInfo{
		{Id: "gpt-4o-mini", Chat: true},
		{Id: "text-embedding-3-small", Embeddings: true, EmbeddingDimensions: 8},
	}
	if len(models.Models) != 2 || models.Models[0].String() != want[0].String() || models.Models[1].String() != want[1].String() {
		t.Fatalf("Models = %v, want %v", models.Models, want)
	}

	resp, err := p.Chat(context.Background(), chatReq("gpt-4o-mini", "hello there"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(resp.Content, "hello there") || resp.FinishReason != "stop" || resp.Usage.GetTotalTokens() == 0 {
		t.Fatalf("Chat = %v", resp)
	}

	var text strings.Builder
	var last *pb.ChatEvent
	err = p.ChatStream(context.Background(), chatReq("gpt-4o-mini", "one two three"), func(ev *pb.ChatEvent) error {
		text.WriteString(ev.Delta)
		last = ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "one two three") || last.FinishReason != "stop" || last.Usage.GetTotalTokens() == 0 {
		t.Fatalf("stream %q, last event %v", text.String(), last)
	}
	if so, _ := s.LastRequest("/v1/chat/completions", "gpt-4o-mini")["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Errorf("stream_options %v, want include_usage", so)
	}

	schema := `{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`
	resp, err = p.Chat(context.Background(), &pb.ChatRequest{Model: "gpt-4o-mini", Messages: []*pb.Message{{Role: "user", Content: "hi"}},
		ResponseFormat: "json_schema", JsonSchema: schema, JsonSchemaName: "reply", JsonSchemaStrict: true})
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid([]byte(resp.Content)) {
		t.Errorf("answer to a json_schema request %q is not JSON", resp.Content)
	}
	rf, _ := s.LastRequest("/v1/chat/completions", "gpt-4o-mini")["response_format"].(map[string]any)
	js, _ := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["name"] != "reply" || js["strict"] != true || js["schema"] == nil {
		t.Fatalf("response_format sent upstream: %v", rf)
	}

	emb, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: "text-embedding-3-small", Input: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Embeddings) != 2 || len(emb.Embeddings[0].Values) != 8 {
		t.Fatalf("Embed = %v, want two vectors of the advertised 8 dimensions", emb)
	}
	if _, err := p.CountTokens(context.Background(), &pb.CountTokensRequest{Model: "gpt-4o-mini", Text: "x"}); sdk.ClassOf(err) != sdk.Unsupported {
		t.Errorf("CountTokens: %v, want class unsupported (sdk.UnsupportedProvider)", err)
	}
}

// TestCancelEndsUpstreamCall: when the agent gives up on a call (its ctx
// ends), the upstream request is cancelled at once, not left to run to the
// plugin's own timeout.
func TestCancelEndsUpstreamCall(t *testing.T) {
	s, url := stub(t)
	p := configured(t, url, map[string]any{"timeout": "1m", "max_concurrency": 1.0})
	s.Fail("gpt-4o-mini", openaistub.Fault{Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Chat(ctx, chatReq("gpt-4o-mini", "hello"))
		done <- err
	}()
	for s.Calls("/v1/chat/completions", "gpt-4o-mini") == 0 {
		time.Sleep(5 * time.Millisecond) // poll: the request reached the upstream
	}
	cancel()
	if err := <-done; sdk.ClassOf(err) != sdk.Timeout || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Chat after cancel: %v, want class timeout saying the call was cancelled", err)
	}
	// The only slot (max_concurrency 1) is free again: the next call
	// runs (a leaked slot would leave it waiting until its deadline).
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.Chat(ctx, chatReq("gpt-4o-mini", "again")); err != nil {
		t.Fatal(err)
	}
}

// TestStreamTimeoutIsSilence: timeout bounds the upstream's silence
// between chunks, not the whole stream: a stream that keeps talking for
// longer than timeout is whole, one that stops talking ends with class
// timeout.
func TestStreamTimeoutIsSilence(t *testing.T) {
	const chunks = 30
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range chunks {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"w%d \"}}]}\n\n", i)
			fl.Flush()
			if strings.Contains(r.Header.Get("X-Case"), "stall") {
				<-r.Context().Done() // silent after the first chunk
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n")
	}))
	defer srv.Close()
	for _, c := range []struct {
		name   string
		events int
		class  sdk.Class
	}{
		{"talking", chunks + 1, ""},
		{"stall", 1, sdk.Timeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			// 30 chunks 50ms apart take 1.5s, longer than timeout.
			p := configured(t, srv.URL, map[string]any{"timeout": "1s", "headers": map[string]any{"X-Case": c.name}})
			events := 0
			err := p.ChatStream(context.Background(), chatReq("m", "hi"), func(*pb.ChatEvent) error {
				events++
				return nil
			})
			if events != c.events || sdk.ClassOf(err) != c.class {
				t.Fatalf("%d events, error %v; want %d events and class %q", events, err, c.events, c.class)
			}
		})
	}
}
