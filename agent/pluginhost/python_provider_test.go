package pluginhost

// A provider plugin written in Python (sdk/python/examples/openai_compat.py,
// on the SDK's Provider class) in front of the OpenAI-shaped stub, as a real
// process through go-plugin with AutoMTLS; and the conformance kit run on it.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/conformance"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

func startStub(t *testing.T) (*openaistub.Server, string) {
	t.Helper()
	stub := openaistub.New("gpt-test", "text-embedding-test")
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	return stub, srv.URL + "/v1"
}

func TestPythonProviderRoundTrip(t *testing.T) {
	stub, base := startStub(t)
	h, _ := pyHost(t, "py-openai", func(c *Config) {
		c.Config = map[string]map[string]any{"py-openai": {"base_url": base, "timeout": "10s"}}
	})
	ctx := context.Background()
	with := func(fn func(ctx context.Context, c sdk.ProviderClient) error) error {
		return h.WithProvider(ctx, "py-openai", "test", fn)
	}
	ask := func(text string) *pb.ChatRequest {
		return &pb.ChatRequest{Model: "gpt-test", Messages: []*pb.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: text}}}
	}
	err := with(func(ctx context.Context, c sdk.ProviderClient) error {
		models, err := c.Models(ctx)
		if err != nil || len(models.GetModels()) != 2 {
			return errors.New("Models: " + models.String() + " " + errString(err))
		}
		for _, m := range models.GetModels() {
			if embed := strings.Contains(m.GetId(), "embed"); m.GetChat() == embed || m.GetEmbeddings() != embed {
				t.Errorf("model %v: flags", m)
			}
		}
		whole, err := c.Chat(ctx, ask("hello there"))
		if err != nil || whole.GetContent() == "" || whole.GetFinishReason() != "stop" || whole.GetUsage().GetPromptTokens() == 0 ||
			whole.GetUsage().GetTotalTokens() != whole.GetUsage().GetPromptTokens()+whole.GetUsage().GetCompletionTokens() {
			return errors.New("Chat: " + whole.String() + " " + errString(err))
		}
		// The stream carries the same answer (the stub is deterministic),
		// in several deltas, then finish_reason and usage.
		var deltas []string
		var final *pb.ChatEvent
		err = c.ChatStream(ctx, ask("hello there"), func(ev *pb.ChatEvent) error {
			if ev.GetFinishReason() != "" {
				final = ev
			} else {
				deltas = append(deltas, ev.GetDelta())
			}
			return nil
		})
		if err != nil || len(deltas) < 2 || strings.Join(deltas, "") != whole.GetContent() || final == nil ||
			final.GetUsage().GetCompletionTokens() != whole.GetUsage().GetCompletionTokens() {
			return errors.New("ChatStream: " + strings.Join(deltas, "|") + " " + final.String() + " " + errString(err))
		}
		emb, err := c.Embed(ctx, &pb.EmbedRequest{Model: "text-embedding-test", Input: []string{"a b", "c"}})
		if err != nil || len(emb.GetEmbeddings()) != 2 || len(emb.GetEmbeddings()[0].GetValues()) == 0 {
			return errors.New("Embed: " + emb.String() + " " + errString(err))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The request the upstream got is OpenAI's shape, messages in order.
	last := stub.LastRequest("/v1/chat/completions", "gpt-test")
	if n := stub.Calls("/v1/chat/completions", "gpt-test"); n != 2 || last["stream"] != true || len(last["messages"].([]any)) != 2 {
		t.Fatalf("upstream got %d calls, the last %v", n, last)
	}

	// Upstream failures come back as the contract's classes, streams too.
	for _, tc := range []struct {
		fault      openaistub.Fault
		class      sdk.Class
		retryAfter time.Duration
	}{
		{openaistub.Fault{Status: 429, RetryAfter: "2"}, sdk.RateLimited, 2 * time.Second},
		{openaistub.Fault{Status: 429, Code: "insufficient_quota"}, sdk.QuotaExhausted, 0},
		{openaistub.Fault{Status: 401}, sdk.Auth, 0},
		{openaistub.Fault{Status: 400, Code: "context_length_exceeded"}, sdk.ContextLengthExceeded, 0},
		{openaistub.Fault{Status: 503}, sdk.Overloaded, 0},
		{openaistub.Fault{Status: 500}, sdk.Unavailable, 0},
		{openaistub.Fault{Malformed: true}, sdk.Unavailable, 0},
	} {
		stub.Fail("gpt-test", tc.fault)
		err := with(func(ctx context.Context, c sdk.ProviderClient) error {
			_, err := c.Chat(ctx, ask("x"))
			return err
		})
		var e *sdk.Error
		if !errors.As(err, &e) || e.Class != tc.class || e.RetryAfter != tc.retryAfter {
			t.Errorf("fault %+v: err %v; want class %s, retry after %s", tc.fault, err, tc.class, tc.retryAfter)
		}
	}
	stub.Fail("gpt-test", openaistub.Fault{CutAfter: 2})
	var got []string
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		return c.ChatStream(ctx, ask("a longer question for a longer answer"), func(ev *pb.ChatEvent) error {
			got = append(got, ev.GetDelta())
			return nil
		})
	})
	if classOf(t, err) != sdk.Unavailable || len(got) == 0 {
		t.Errorf("stream cut mid-way: %d deltas, err %v; want some deltas, then class unavailable", len(got), err)
	}
	// Not overridden: the SDK answers unsupported, and the agent estimates.
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.CountTokens(ctx, &pb.CountTokensRequest{Model: "gpt-test", Text: "one two"})
		return err
	})
	if classOf(t, err) != sdk.Unsupported {
		t.Errorf("CountTokens: %v; want class unsupported", err)
	}
}

// TestPythonProviderParams: the Python provider declares the capabilities
// of the parameters it carries, and carries them in OpenAI's shape, as
// test/openaistub (which checks them as OpenAI does) received them:
// max_completion_tokens instead of max_tokens, penalties,
// reasoning_effort, image and file parts as OpenAI's content array, and
// openai_params merged into the body; a key of its own in openai_params
// and logprobs (not carried back) are refused before any upstream call.
func TestPythonProviderParams(t *testing.T) {
	stub, base := startStub(t)
	stub.Models = append(stub.Models, "o4-mini")
	h, _ := pyHost(t, "py-openai", func(c *Config) {
		c.Config = map[string]map[string]any{"py-openai": {"base_url": base, "timeout": "10s"}}
	})
	ctx := context.Background()
	chat := func(req *pb.ChatRequest, stream bool) (string, error) {
		var text strings.Builder
		err := h.WithProvider(ctx, "py-openai", "test", func(ctx context.Context, c sdk.ProviderClient) error {
			if !stream {
				resp, err := c.Chat(ctx, req)
				text.WriteString(resp.GetContent())
				return err
			}
			return c.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
				text.WriteString(ev.GetDelta())
				return nil
			})
		})
		return text.String(), err
	}
	const chatPath = "/v1/chat/completions"
	n, pp, fp := int32(40), 0.5, -1.25
	params := `{"logit_bias":{"50256":-100},"metadata":{"team":"ml"},"prediction":{"content":"hi","type":"content"},"prompt_cache_key":"k1","safety_identifier":"u-1","service_tier":"flex","store":true,"verbosity":"low"}`
	var wantParams map[string]any
	if err := json.Unmarshal([]byte(params), &wantParams); err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		// As the gateway sends max_completion_tokens: max_tokens too.
		req := &pb.ChatRequest{Model: "o4-mini", MaxTokens: &n, MaxCompletionTokens: &n, ReasoningEffort: "low",
			PresencePenalty: &pp, FrequencyPenalty: &fp, OpenaiParams: params,
			Messages: []*pb.Message{{Role: "user", Content: "what is this image", Parts: []*pb.ContentPart{
				{Type: "text", Text: "what is this"},
				{Type: "image_url", ImageUrl: "data:image/png;base64,iVBORw0KGgo=", ImageDetail: "low"},
				{Type: "image_url", ImageUrl: "https://example.com/cat.png"},
				{Type: "file", FileData: "data:application/pdf;base64,JVBERi0xLjQK", Filename: "r.pdf"},
			}}}}
		text, err := chat(req, stream)
		if err != nil || text != "echo: what is this[image image/png 8 bytes][image https://example.com/cat.png][file r.pdf 9 bytes]" {
			t.Fatalf("stream %v: %q %v", stream, text, err)
		}
		sent := stub.LastRequest(chatPath, "o4-mini")
		if _, has := sent["max_tokens"]; has || sent["max_completion_tokens"] != 40.0 || sent["reasoning_effort"] != "low" ||
			sent["presence_penalty"] != 0.5 || sent["frequency_penalty"] != -1.25 || (sent["stream"] == true) != stream {
			t.Errorf("stream %v: upstream got %v", stream, sent)
		}
		for k, v := range wantParams {
			if !reflect.DeepEqual(sent[k], v) {
				t.Errorf("stream %v: %s upstream = %v, want %v", stream, k, sent[k], v)
			}
		}
		wantContent := []any{
			map[string]any{"type": "text", "text": "what is this"},
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/cat.png"}},
			map[string]any{"type": "file", "file": map[string]any{"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "r.pdf"}},
		}
		if msgs, _ := sent["messages"].([]any); len(msgs) != 1 || !reflect.DeepEqual(msgs[0].(map[string]any)["content"], wantContent) {
			t.Errorf("stream %v: messages upstream %v", stream, sent["messages"])
		}
	}
	// Known once it runs.
	caps, known := h.Capabilities("py-openai")
	for _, c := range []string{"chat", "stream", "embeddings", "tools", "images", "files", "penalties", "reasoning_effort", "openai_params"} {
		if !known || !slices.Contains(caps, c) {
			t.Errorf("capabilities %v (known %v): no %q", caps, known, c)
		}
	}
	if slices.Contains(caps, "logprobs") {
		t.Errorf("capabilities %v: logprobs is not carried back, so not declared", caps)
	}
	// max_tokens alone goes as max_tokens.
	if _, err := chat(&pb.ChatRequest{Model: "gpt-test", MaxTokens: &n, Messages: []*pb.Message{{Role: "user", Content: "cap"}}}, false); err != nil {
		t.Fatal(err)
	}
	if sent := stub.LastRequest(chatPath, "gpt-test"); sent["max_tokens"] != 40.0 || sent["max_completion_tokens"] != nil {
		t.Errorf("max_tokens upstream: %v", sent)
	}
	before := stub.Calls(chatPath, "gpt-test")
	for _, tc := range []struct {
		req   *pb.ChatRequest
		class sdk.Class
		field string
	}{
		{&pb.ChatRequest{OpenaiParams: `{"model":"other","store":true}`}, sdk.InvalidRequest, "model"},
		{&pb.ChatRequest{OpenaiParams: `{"stream":false}`}, sdk.InvalidRequest, "stream"},
		{&pb.ChatRequest{OpenaiParams: `["store"]`}, sdk.InvalidRequest, "openai_params"},
		{&pb.ChatRequest{Logprobs: true}, sdk.Unsupported, ""},
	} {
		tc.req.Model, tc.req.Messages = "gpt-test", []*pb.Message{{Role: "user", Content: "x"}}
		for _, stream := range []bool{false, true} {
			_, err := chat(tc.req, stream)
			var e *sdk.Error
			if !errors.As(err, &e) || e.Class != tc.class || e.Field != tc.field {
				t.Errorf("%v (stream %v): %v; want class %s naming %q", tc.req, stream, err, tc.class, tc.field)
			}
		}
	}
	// A value OpenAI refuses: the upstream's 400, invalid_request naming
	// the parameter as the upstream did.
	_, err := chat(&pb.ChatRequest{Model: "gpt-test", OpenaiParams: `{"service_tier":"premium"}`, Messages: []*pb.Message{{Role: "user", Content: "x"}}}, false)
	var e *sdk.Error
	if !errors.As(err, &e) || e.Class != sdk.InvalidRequest || e.Field != "service_tier" {
		t.Errorf("service_tier OpenAI refuses: %v", err)
	}
	if n := stub.Calls(chatPath, "gpt-test") - before; n != 1 {
		t.Errorf("%d upstream calls for the refused requests, want only the service_tier one", n)
	}
}

// TestPythonProviderConfig: a bad setting is refused by field, and calls
// before any base_url say what to set.
func TestPythonProviderConfig(t *testing.T) {
	h, _ := pyHost(t, "py-openai", func(c *Config) {
		c.Config = map[string]map[string]any{"py-openai": {"base_url": "ftp://x", "timeout": -1, "colour": "red"}}
	})
	err := h.WithProvider(context.Background(), "py-openai", "test", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Models(ctx)
		return err
	})
	for _, want := range []string{"plugins.config.py-openai.base_url", "plugins.config.py-openai.timeout", "plugins.config.py-openai.colour"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v; want it to name %s", err, want)
		}
	}
}

// TestPythonProviderAsGatewayInstance: the example provider takes every
// key a gateway.providers entry hands over, in the form the gateway sends
// it (timeout as a Go duration, the key read from api_key_env as api_key,
// headers, max_concurrency as a number), and uses them upstream.
func TestPythonProviderAsGatewayInstance(t *testing.T) {
	stub := openaistub.New("gpt-test", "text-embedding-test")
	stub.APIKey = "sk-from-env"
	// The most requests the upstream saw at once, for max_concurrency.
	var inFlight, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		stub.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	base := srv.URL + "/v1"
	h, _ := pyHost(t, "py-openai", nil)
	err := h.SetInstances([]Instance{{Name: "local-vllm", Plugin: "py-openai", ConfigKey: "gateway.providers[0]", Config: map[string]any{
		"base_url": base, "timeout": "1m30s", "api_key": "sk-from-env", "max_concurrency": 1.0,
		"headers": map[string]any{"OpenAI-Organization": "org-1"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	// Three chats at once, each held up by the upstream: with
	// max_concurrency 1 the upstream sees them one after another.
	stub.Fail("gpt-test", openaistub.Fault{Delay: 200 * time.Millisecond}, openaistub.Fault{Delay: 200 * time.Millisecond}, openaistub.Fault{Delay: 200 * time.Millisecond})
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			errs <- h.WithProvider(context.Background(), "local-vllm", "test", func(ctx context.Context, c sdk.ProviderClient) error {
				resp, err := c.Chat(ctx, &pb.ChatRequest{Model: "gpt-test", Messages: []*pb.Message{{Role: "user", Content: "hello"}}})
				if err == nil && resp.GetContent() == "" {
					err = errors.New("empty answer: " + resp.String())
				}
				return err
			})
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("chat through an instance configured as the gateway does: %v", err)
		}
	}
	if p := peak.Load(); p != 1 {
		t.Errorf("the upstream saw %d requests at once; max_concurrency is 1", p)
	}
	if got := stub.LastHeaders().Get("OpenAI-Organization"); got != "org-1" {
		t.Errorf("upstream got OpenAI-Organization %q, want org-1", got)
	}

	// Bad values name the entry's keys.
	err = h.SetInstances([]Instance{{Name: "bad-vllm", Plugin: "py-openai", ConfigKey: "gateway.providers[1]", Config: map[string]any{
		"base_url": base, "timeout": "soon", "max_concurrency": 0.5, "headers": map[string]any{"Authorization": "Bearer x"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	err = h.WithProvider(context.Background(), "bad-vllm", "test", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Models(ctx)
		return err
	})
	for _, want := range []string{`gateway.providers[1].timeout: "soon" is not a positive duration such as 60s`, "gateway.providers[1].max_concurrency:", "gateway.providers[1].headers.Authorization: is set by the plugin"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err %v; want it to say %q", err, want)
		}
	}
}

// TestPythonProviderConforms runs the SDK's conformance kit on the packed
// Python provider, configured against the stub.
func TestPythonProviderConforms(t *testing.T) {
	_, base := startStub(t)
	conformance.RunWith(t, pythonPlugins(t)["py-openai"], conformance.Options{Kind: sdk.KindProvider, Config: map[string]any{"base_url": base}})
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
