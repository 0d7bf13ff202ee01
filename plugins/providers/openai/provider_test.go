package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

func setup(t *testing.T, extra map[string]any) (*provider, *openaistub.Server) {
	t.Helper()
	stub := openaistub.New("gpt-test", "emb-test")
	stub.APIKey = "sk-test-key"
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("sk-test-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{"base_url": srv.URL + "/v1", "api_key_file": keyFile, "timeout": "2s", "headers": map[string]any{"X-Extra": "yes"}}
	for k, v := range extra {
		cfg[k] = v
	}
	p := newProvider()
	if errs := p.Configure(cfg); len(errs) > 0 {
		t.Fatalf("configure: %v", errs)
	}
	return p, stub
}

func chatReq(model string) *pb.ChatRequest {
	temp := 0.0
	return &pb.ChatRequest{Model: model, Temperature: &temp, Messages: []*pb.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hello there world"}}}
}

func TestChatAndModels(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	resp, err := p.Chat(ctx, chatReq("gpt-test"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "echo: hello there world" || resp.GetFinishReason() != "stop" || resp.GetUsage().GetPromptTokens() != 5 || resp.GetUsage().GetCompletionTokens() != 4 {
		t.Fatalf("chat response: %v", resp)
	}
	if stub.LastHeaders().Get("X-Extra") != "yes" {
		t.Fatalf("extra header not sent: %v", stub.LastHeaders())
	}
	if got := stub.LastRequest("/v1/chat/completions", "gpt-test")["temperature"]; got != 0.0 {
		t.Fatalf("temperature 0 not sent: %v", got)
	}
	ms, err := p.Models(ctx)
	if err != nil || len(ms.GetModels()) != 2 || ms.GetModels()[0].GetId() != "gpt-test" {
		t.Fatalf("models: %v %v", ms, err)
	}
}

func TestJSONSchemaPassedThrough(t *testing.T) {
	p, stub := setup(t, nil)
	req := chatReq("gpt-test")
	req.ResponseFormat, req.JsonSchema, req.JsonSchemaName, req.JsonSchemaStrict = "json_schema", `{"type":"object","properties":{"answer":{"type":"string"}}}`, "reply", true
	if _, err := p.Chat(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	rf := stub.LastRequest("/v1/chat/completions", "gpt-test")["response_format"].(map[string]any)
	js := rf["json_schema"].(map[string]any)
	if rf["type"] != "json_schema" || js["name"] != "reply" || js["strict"] != true || js["schema"].(map[string]any)["type"] != "object" {
		t.Fatalf("response_format sent upstream: %v", rf)
	}
	req.JsonSchema = "{not json"
	if _, err := p.Chat(context.Background(), req); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("bad schema: %v", err)
	}
}

// TestStructuredOutputModes: with structured_output json_object or prompt,
// a json_schema request reaches the upstream with the schema in its
// system prompt, and with JSON mode or no response_format.
func TestStructuredOutputModes(t *testing.T) {
	const schema = `{"type":"object","properties":{"answer":{"type":"string"}}}`
	for _, tc := range []struct {
		mode, format, wantFormat string
		system                   bool // the request has a system message
	}{
		{"json_object", "json_schema", "json_object", true},
		{"prompt", "json_schema", "", true},
		{"prompt", "json_schema", "", false},
		{"prompt", "json_object", "", true},
		{"json_object", "json_object", "json_object", true},
	} {
		p, stub := setup(t, map[string]any{"structured_output": tc.mode})
		req := chatReq("gpt-test")
		if !tc.system {
			req.Messages = req.Messages[1:]
		}
		req.ResponseFormat = tc.format
		if tc.format == "json_schema" {
			req.JsonSchema, req.JsonSchemaName = schema, "reply"
		}
		if _, err := p.Chat(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		sent := stub.LastRequest("/v1/chat/completions", "gpt-test")
		rf, _ := sent["response_format"].(map[string]any)
		if got, _ := rf["type"].(string); got != tc.wantFormat {
			t.Errorf("%s/%s: response_format %v, want type %q", tc.mode, tc.format, sent["response_format"], tc.wantFormat)
		}
		msgs := sent["messages"].([]any)
		first := msgs[0].(map[string]any)
		content, _ := first["content"].(string)
		want := "Respond with a single JSON object"
		if tc.format == "json_schema" {
			want = schema
		}
		if first["role"] != "system" || !strings.Contains(content, want) || len(msgs) != 2 ||
			(tc.system && !strings.HasPrefix(content, "be brief")) {
			t.Errorf("%s/%s: messages sent %v", tc.mode, tc.format, msgs)
		}
	}
	if _, errs := parseConfig(map[string]any{"structured_output": "maybe"}, nil); len(errs) != 1 || errs[0].Field != "structured_output" {
		t.Errorf("structured_output: maybe: %v", errs)
	}
}

func TestStream(t *testing.T) {
	p, stub := setup(t, nil)
	var deltas []string
	var last *pb.ChatEvent
	err := p.ChatStream(context.Background(), chatReq("gpt-test"), func(ev *pb.ChatEvent) error {
		deltas = append(deltas, ev.GetDelta())
		last = ev
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(deltas, ""); got != "echo: hello there world" {
		t.Fatalf("stream content %q", got)
	}
	if last.GetUsage().GetTotalTokens() != 9 || last.GetFinishReason() != "stop" {
		t.Fatalf("the last event must carry finish_reason and usage (OpenAI sends them in two chunks): %v", last)
	}
	opts := stub.LastRequest("/v1/chat/completions", "gpt-test")["stream_options"].(map[string]any)
	if opts["include_usage"] != true {
		t.Fatalf("stream_options not sent: %v", opts)
	}
}

func TestStreamFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault openaistub.Fault
		class sdk.Class
		sent  int
	}{
		{"cut mid-way", openaistub.Fault{CutAfter: 2}, sdk.Unavailable, 2},
		{"error event", openaistub.Fault{CutAfter: 1, StreamError: true}, sdk.Unavailable, 1},
		{"429 before start", openaistub.Fault{Status: 429, RetryAfterMs: "250"}, sdk.RateLimited, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, stub := setup(t, nil)
			stub.Fail("gpt-test", tc.fault)
			n := 0
			err := p.ChatStream(context.Background(), chatReq("gpt-test"), func(ev *pb.ChatEvent) error { n++; return nil })
			if sdk.ClassOf(err) != tc.class || n != tc.sent {
				t.Fatalf("got %v after %d events, want class %s after %d", err, n, tc.class, tc.sent)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fault      openaistub.Fault
		class      sdk.Class
		retryAfter time.Duration
	}{
		{"429 retry-after seconds", openaistub.Fault{Status: 429, RetryAfter: "3"}, sdk.RateLimited, 3 * time.Second},
		{"429 retry-after-ms wins", openaistub.Fault{Status: 429, RetryAfter: "3", RetryAfterMs: "120"}, sdk.RateLimited, 120 * time.Millisecond},
		{"429 insufficient_quota", openaistub.Fault{Status: 429, Type: "insufficient_quota", Code: "insufficient_quota"}, sdk.QuotaExhausted, 0},
		{"402", openaistub.Fault{Status: 402}, sdk.QuotaExhausted, 0},
		{"401", openaistub.Fault{Status: 401}, sdk.Auth, 0},
		{"403", openaistub.Fault{Status: 403}, sdk.Auth, 0},
		{"400", openaistub.Fault{Status: 400}, sdk.InvalidRequest, 0},
		{"400 context length", openaistub.Fault{Status: 400, Code: "context_length_exceeded"}, sdk.ContextLengthExceeded, 0},
		{"404", openaistub.Fault{Status: 404, Code: "model_not_found"}, sdk.NotFound, 0},
		{"500", openaistub.Fault{Status: 500}, sdk.Unavailable, 0},
		{"502", openaistub.Fault{Status: 502}, sdk.Unavailable, 0},
		{"503", openaistub.Fault{Status: 503, RetryAfter: "1"}, sdk.Overloaded, time.Second},
		{"529", openaistub.Fault{Status: 529}, sdk.Overloaded, 0},
		{"504", openaistub.Fault{Status: 504}, sdk.Timeout, 0},
		{"malformed JSON", openaistub.Fault{Malformed: true}, sdk.Unavailable, 0},
		{"slow", openaistub.Fault{Delay: 5 * time.Second}, sdk.Timeout, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, stub := setup(t, map[string]any{"timeout": "200ms"})
			stub.Fail("gpt-test", tc.fault)
			_, err := p.Chat(context.Background(), chatReq("gpt-test"))
			var se *sdk.Error
			if err == nil || sdk.ClassOf(err) != tc.class {
				t.Fatalf("got %v, want class %s", err, tc.class)
			}
			if se, _ = err.(*sdk.Error); se.RetryAfter != tc.retryAfter {
				t.Fatalf("retry after %s, want %s", se.RetryAfter, tc.retryAfter)
			}
		})
	}
}

func TestUnknownModelAndBadKey(t *testing.T) {
	p, stub := setup(t, nil)
	if _, err := p.Chat(context.Background(), chatReq("nope")); sdk.ClassOf(err) != sdk.NotFound {
		t.Fatalf("unknown model: %v", err)
	}
	stub.APIKey = "another"
	if _, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: "emb-test", Input: []string{"x"}}); sdk.ClassOf(err) != sdk.Auth {
		t.Fatalf("bad key: %v", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	p := newProvider()
	if errs := p.Configure(map[string]any{"base_url": url + "/v1", "api_key": "k"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := p.Chat(context.Background(), chatReq("gpt-test")); sdk.ClassOf(err) != sdk.Unavailable {
		t.Fatalf("unreachable: %v", err)
	}
}

func TestEmbed(t *testing.T) {
	p, _ := setup(t, nil)
	dims := int32(16)
	resp, err := p.Embed(context.Background(), &pb.EmbedRequest{Model: "emb-test", Input: []string{"a", "b c"}, Dimensions: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetEmbeddings()) != 2 || len(resp.GetEmbeddings()[1].GetValues()) != 16 || resp.GetUsage().GetPromptTokens() != 3 {
		t.Fatalf("embed: %v", resp)
	}
	want := openaistub.Vector("b c", 16)
	for i, v := range resp.GetEmbeddings()[1].GetValues() {
		if v != want[i] {
			t.Fatalf("value %d: %v, want %v", i, v, want[i])
		}
	}
	// A server that answers base64 anyway is understood.
	vals, err := parseEmbedding([]byte(`"AACAPwAAAMA="`))
	if err != nil || len(vals) != 2 || vals[0] != 1 || vals[1] != -2 {
		t.Fatalf("base64: %v %v", vals, err)
	}
}

func TestConfigErrors(t *testing.T) {
	env := func(k string) (string, bool) {
		if k == "KEY" {
			return "sk-env", true
		}
		return "", false
	}
	c, errs := parseConfig(map[string]any{"api_key_env": "KEY", "max_concurrency": 3.0, "timeout": "5s"}, env)
	if len(errs) > 0 || c.apiKey != "sk-env" || c.maxConcurrency != 3 || c.timeout != 5*time.Second {
		t.Fatalf("good config: %+v %v", c, errs)
	}
	_, errs = parseConfig(map[string]any{
		"base_url": "ftp://x", "api_key_file": "/nonexistent/key", "api_key_env": "MISSING", "timeout": "soon",
		"max_concurrency": 0.5, "headers": map[string]any{"Authorization": "x"}, "bogus": 1.0,
	}, env)
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
	}
	for _, f := range []string{"base_url", "api_key_file", "api_key_env", "api_key", "timeout", "max_concurrency", "headers.Authorization", "bogus"} {
		if !fields[f] {
			t.Errorf("no error for field %s in %v", f, errs)
		}
	}
}

func TestUsageDetails(t *testing.T) {
	var u usage
	if err := json.Unmarshal([]byte(`{"prompt_tokens":100,"completion_tokens":50,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":20,"accepted_prediction_tokens":7,"rejected_prediction_tokens":3}}`), &u); err != nil {
		t.Fatal(err)
	}
	if p := u.proto(); p.GetCachedPromptTokens() != 64 || p.GetReasoningTokens() != 20 || p.GetTotalTokens() != 150 ||
		p.GetAcceptedPredictionTokens() != 7 || p.GetRejectedPredictionTokens() != 3 {
		t.Fatalf("usage %v", p)
	}
}

// TestServiceTierCarried: the tier the upstream says it used comes back,
// whole and in every stream event that carries content.
func TestServiceTierCarried(t *testing.T) {
	p, _ := setup(t, nil)
	req := chatReq("gpt-test")
	req.OpenaiParams = `{"service_tier":"flex"}`
	resp, err := p.Chat(context.Background(), req)
	if err != nil || resp.GetServiceTier() != "flex" {
		t.Fatalf("whole: %v %v", resp, err)
	}
	req.OpenaiParams = ""
	var tiers []string
	err = p.ChatStream(context.Background(), req, func(ev *pb.ChatEvent) error { tiers = append(tiers, ev.GetServiceTier()); return nil })
	if err != nil || len(tiers) == 0 || slices.IndexFunc(tiers, func(s string) bool { return s != "default" }) >= 0 {
		t.Fatalf("stream: %v %v", tiers, err)
	}
}

// TestClassifyServersErrorBodies: the error bodies of OpenAI-compatible
// servers, as they send them, get the right class and a readable message;
// a prompt too long for the model is context_length_exceeded whichever
// way the server says it.
func TestClassifyServersErrorBodies(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		status     int
		class      sdk.Class
		message    string // what the error's message must contain
	}{
		{"openai", `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			400, sdk.ContextLengthExceeded, "maximum context length is 128000"},
		{"vllm before V1 (flat)", `{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}`,
			400, sdk.ContextLengthExceeded, "4096 tokens"},
		{"vllm V1", `{"error":{"message":"The decoder prompt (length 9254) is longer than the maximum model length of 4096. Make sure that max_model_len is no smaller than the number of text tokens.","type":"BadRequestError","param":null,"code":400}}`,
			400, sdk.ContextLengthExceeded, "decoder prompt (length 9254)"},
		{"vllm encoder cache", `{"error":{"message":"The encoder prompt (length 9000) is longer than the maximum model length of 8192.","type":"BadRequestError","param":null,"code":400}}`,
			400, sdk.InvalidRequest, "encoder prompt"},
		{"llama.cpp", `{"error":{"code":400,"message":"request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4476,"n_ctx":4096}}`,
			400, sdk.ContextLengthExceeded, "request (4476 tokens)"},
		{"sglang", `{"object":"error","message":"The input (9000 tokens) is longer than the model's context length (8192 tokens).","type":"BadRequestError","param":null,"code":400}`,
			400, sdk.ContextLengthExceeded, "input (9000 tokens)"},
		{"tgi total", `{"error":"Input validation error: ` + "`inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 500 `max_new_tokens`" + `","error_type":"validation"}`,
			422, sdk.ContextLengthExceeded, "Input validation error"},
		{"tgi input", `{"error":"Input validation error: ` + "`inputs` must have less than 4095 tokens. Given: 5000" + `","error_type":"validation"}`,
			422, sdk.ContextLengthExceeded, "less than 4095 tokens"},
		{"tgi other", `{"error":"Input validation error: ` + "`temperature` must be strictly positive" + `","error_type":"validation"}`,
			422, sdk.InvalidRequest, "`temperature` must be strictly positive"},
		{"tgi overloaded", `{"error":"Model is overloaded","error_type":"overloaded"}`,
			429, sdk.RateLimited, "Model is overloaded"},
		{"plain text", "upstream connect error", 502, sdk.Unavailable, "upstream connect error"},
		{"other 400", `{"error":{"message":"Invalid value for 'temperature'","type":"invalid_request_error","param":"temperature","code":null}}`,
			400, sdk.InvalidRequest, "Invalid value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := classify(tc.status, http.Header{}, []byte(tc.body))
			if sdk.ClassOf(err) != tc.class {
				t.Errorf("class %s, want %s (%v)", sdk.ClassOf(err), tc.class, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.message) || strings.Contains(msg, `"error`) {
				t.Errorf("message %q: want it to hold %q and no JSON", msg, tc.message)
			}
		})
	}
}
