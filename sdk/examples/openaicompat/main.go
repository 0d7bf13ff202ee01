// Command openaicompat is a small, complete LLM provider plugin: chat
// (whole and streamed) and embeddings against any server that speaks
// OpenAI's HTTP API (vLLM, llama.cpp, Ollama, OpenAI itself): a smaller,
// text-only Go counterpart of sdk/python/examples/openai_compat.py that
// shows what a third party's provider needs and nothing more:
//
//   - settings read with sdk/providerconf: the keys every gateway.providers
//     entry may carry (base_url, api_key / api_key_file, timeout,
//     max_concurrency, headers) plus options of its own (chat_model,
//     embedding_model, embedding_dimensions);
//   - sdk.UnsupportedProvider for the call it does not offer (CountTokens:
//     the agent then estimates);
//   - the HTTP plumbing from sdk/providerhttp: an Endpoint per
//     configuration whose Calls pass the call's ctx to the upstream request,
//     apply timeout as the longest silence of the upstream (before its
//     headers, and between two streamed chunks), not as a cap on a long
//     stream, bound the calls in flight by max_concurrency, and give every
//     failure a class;
//   - the upstream's HTTP errors mapped to the contract's classes (classify:
//     providerhttp.StatusError, with Retry-After, refined with what the
//     body says, and the field a 400 names).
//
// It carries text messages (and response_format) only, and declares no
// capability beyond chat,
// stream and embeddings, so the gateway sends it no tools, images, files or
// logprobs (docs/plugins.md, "Capabilities"). docs/plugins.md, "Writing a
// plugin in Go", walks through it; main_test.go runs the conformance kit
// against it, built, with an OpenAI-shaped stub as its upstream.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/sdk/providerconf"
	"github.com/vigilml/vigil/sdk/providerhttp"
)

// maxBody caps what the plugin reads of one whole answer.
const maxBody = 64 << 20

// settings is one accepted configuration. Configure replaces it whole, so
// a call in flight keeps the settings (and the endpoint) it started with.
type settings struct {
	http            providerconf.HTTP
	chatModel       string
	embedModel      string
	embedDimensions int
	upstream        *providerhttp.Endpoint
}

// defaults is what a plugin given no settings uses (configure-empty).
var defaults = providerconf.HTTP{
	BaseURL:        "http://127.0.0.1:8000/v1",
	Timeout:        60 * time.Second,
	MaxConcurrency: 16,
}

type provider struct {
	sdk.UnsupportedProvider // CountTokens answers unsupported

	mu  sync.Mutex
	cur *settings
}

// ownKeys are the plugin's options (gateway.providers[].options).
var ownKeys = []string{"chat_model", "embedding_model", "embedding_dimensions"}

// Configure reads a gateway.providers entry's settings. It may be called
// more than once (the conformance kit sends a second configuration), and
// applies nothing unless everything is right.
func (p *provider) Configure(m map[string]any) []sdk.FieldError {
	r := providerconf.New(m)
	r.Known(append(providerconf.HTTPKeys(), ownKeys...)...)
	h := r.HTTP(defaults, "Authorization", "Content-Type")
	s := &settings{http: h, chatModel: "gpt-4o-mini", embedModel: "text-embedding-3-small"}
	if v, ok := r.String("chat_model"); ok {
		s.chatModel = v
	}
	if v, ok := r.String("embedding_model"); ok {
		s.embedModel = v
	}
	if v, ok := r.Int("embedding_dimensions", 1, 65536); ok {
		s.embedDimensions = v
	}
	if s.chatModel == "" && s.embedModel == "" {
		r.Bad("chat_model", "and embedding_model are both empty: the plugin would offer no model")
	}
	if errs := r.Errors(); len(errs) > 0 {
		return errs
	}
	s.init()
	p.mu.Lock()
	p.cur = s
	p.mu.Unlock()
	return nil
}

// init makes the endpoint the settings call: their base URL, the headers
// every request carries, and a client and max_concurrency slots of its
// own.
func (s *settings) init() {
	h := http.Header{}
	for k, v := range s.http.Headers {
		h.Set(k, v)
	}
	if s.http.APIKey != "" {
		h.Set("Authorization", "Bearer "+s.http.APIKey)
	}
	s.upstream = providerhttp.NewEndpoint(s.http.BaseURL, s.http.MaxConcurrency, s.http.Timeout, h, classify)
}

// settings returns the configuration in force: the defaults until the
// agent calls Configure (which it does right after start).
func (p *provider) settings() *settings {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		p.cur = &settings{http: defaults, chatModel: "gpt-4o-mini", embedModel: "text-embedding-3-small"}
		p.cur.init()
	}
	return p.cur
}

// Models lists the configured models, for the conformance kit (which calls
// them) and other tools. The agent's gateway does not call it: it sends each
// request to the model its gateway.models target names.
func (p *provider) Models(ctx context.Context) (*pb.ModelsResponse, error) {
	s := p.settings()
	var out pb.ModelsResponse
	if s.chatModel != "" {
		out.Models = append(out.Models, &pb.ModelInfo{Id: s.chatModel, Chat: true})
	}
	if s.embedModel != "" {
		out.Models = append(out.Models, &pb.ModelInfo{Id: s.embedModel, Embeddings: true, EmbeddingDimensions: int32(s.embedDimensions)})
	}
	return &out, nil
}

// chatBody is the upstream request for req: text messages, the sampling
// parameters and response_format. The gateway sends no parts, tools or
// logprobs to a plugin that does not declare them.
func chatBody(req *pb.ChatRequest, stream bool) (map[string]any, error) {
	if len(req.GetMessages()) == 0 {
		return nil, sdk.FieldErrorf("messages", "at least one message is required")
	}
	msgs := make([]map[string]any, 0, len(req.GetMessages()))
	for _, m := range req.GetMessages() {
		msg := map[string]any{"role": m.GetRole(), "content": m.GetContent()}
		if m.GetName() != "" {
			msg["name"] = m.GetName()
		}
		msgs = append(msgs, msg)
	}
	body := map[string]any{"model": req.GetModel(), "messages": msgs}
	if req.Temperature != nil {
		body["temperature"] = req.GetTemperature()
	}
	if req.TopP != nil {
		body["top_p"] = req.GetTopP()
	}
	if req.MaxTokens != nil {
		body["max_tokens"] = req.GetMaxTokens()
	}
	if len(req.GetStop()) > 0 {
		body["stop"] = req.GetStop()
	}
	if req.Seed != nil {
		body["seed"] = req.GetSeed()
	}
	// The gateway checks the answer against the schema itself, but only
	// an upstream that was given it can keep to it.
	switch f := req.GetResponseFormat(); f {
	case "text", "json_object":
		body["response_format"] = map[string]any{"type": f}
	case "json_schema":
		if !json.Valid([]byte(req.GetJsonSchema())) {
			return nil, sdk.FieldErrorf("response_format.json_schema.schema", "is not JSON")
		}
		name := req.GetJsonSchemaName()
		if name == "" {
			name = "response"
		}
		body["response_format"] = map[string]any{"type": f, "json_schema": map[string]any{
			"name": name, "schema": json.RawMessage(req.GetJsonSchema()), "strict": req.GetJsonSchemaStrict()}}
	}
	if stream {
		body["stream"] = true
		body["stream_options"] = map[string]any{"include_usage": true}
	}
	return body, nil
}

type usage struct {
	PromptTokens     int32 `json:"prompt_tokens"`
	CompletionTokens int32 `json:"completion_tokens"`
	TotalTokens      int32 `json:"total_tokens"`
}

func (u *usage) pb() *pb.Usage {
	if u == nil {
		return nil
	}
	return &pb.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
}

func (p *provider) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	body, err := chatBody(req, false)
	if err != nil {
		return nil, err
	}
	var out struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *usage `json:"usage"`
	}
	err = p.settings().upstream.Call(http.MethodPost, "/chat/completions", body, true).Do(ctx, func(resp *http.Response) error {
		return providerhttp.DecodeJSON(resp.Body, maxBody, &out)
	})
	if err != nil {
		return nil, err
	}
	if len(out.Choices) == 0 {
		return nil, sdk.Errorf(sdk.Unavailable, "the upstream answered with no choices")
	}
	return &pb.ChatResponse{Id: out.ID, Model: out.Model, Content: out.Choices[0].Message.Content,
		FinishReason: out.Choices[0].FinishReason, Usage: out.Usage.pb()}, nil
}

// ChatStream reads the upstream's server-sent events. Every send error is
// returned as it is: it means the agent has gone (the call's ctx ends too).
// An error reading the stream gets its class from TransportError: timeout
// when the upstream went silent for longer than timeout.
func (p *provider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	body, err := chatBody(req, true)
	if err != nil {
		return err
	}
	call := p.settings().upstream.Call(http.MethodPost, "/chat/completions", body, true)
	return call.Stream(ctx, func(resp *http.Response, w *providerhttp.Watchdog) error {
		// The time the agent (a slow client behind it) takes to take an
		// event is not upstream silence: the watchdog is held meanwhile.
		send := providerhttp.Paused(w, send)
		var finish string
		var last *usage
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			w.Kick() // the upstream spoke: restart the silence timer
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue // comments, event names, blank lines
			}
			data = strings.TrimSpace(data)
			if data == "[DONE]" {
				return send(&pb.ChatEvent{FinishReason: finish, Usage: last.pb()})
			}
			var chunk struct {
				ID      string `json:"id"`
				Model   string `json:"model"`
				Choices []struct {
					Delta struct {
						Content string `json:"content"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
				Usage *usage `json:"usage"`
				Error *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(data), &chunk); err != nil {
				return sdk.Errorf(sdk.Unavailable, "the upstream sent an event that is not JSON: %v", err)
			}
			if chunk.Error != nil {
				return sdk.Errorf(sdk.Unavailable, "the upstream failed mid-stream: %s", chunk.Error.Message)
			}
			if chunk.Usage != nil {
				last = chunk.Usage
			}
			for _, c := range chunk.Choices {
				if c.FinishReason != nil {
					finish = *c.FinishReason
				}
				if c.Delta.Content == "" {
					continue
				}
				if err := send(&pb.ChatEvent{Id: chunk.ID, Model: chunk.Model, Delta: c.Delta.Content}); err != nil {
					return err
				}
			}
		}
		if err := sc.Err(); err != nil {
			return providerhttp.TransportError(err, w)
		}
		return sdk.Errorf(sdk.Unavailable, "the upstream's stream ended without data: [DONE]")
	})
}

func (p *provider) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if len(req.GetInput()) == 0 {
		return nil, sdk.FieldErrorf("input", "at least one input is required")
	}
	body := map[string]any{"model": req.GetModel(), "input": req.GetInput(), "encoding_format": "float"}
	s := p.settings()
	if req.Dimensions != nil {
		body["dimensions"] = req.GetDimensions()
	} else if d := s.embedDimensions; d > 0 && req.GetModel() == s.embedModel {
		body["dimensions"] = d // the dimension Models advertises
	}
	var out struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
		Usage *usage `json:"usage"`
	}
	err := s.upstream.Call(http.MethodPost, "/embeddings", body, true).Do(ctx, func(resp *http.Response) error {
		return providerhttp.DecodeJSON(resp.Body, maxBody, &out)
	})
	if err != nil {
		return nil, err
	}
	if len(out.Data) != len(req.GetInput()) {
		return nil, sdk.Errorf(sdk.Unavailable, "the upstream answered %d embeddings for %d inputs", len(out.Data), len(req.GetInput()))
	}
	embs := make([]*pb.Embedding, len(out.Data))
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= len(embs) {
			return nil, sdk.Errorf(sdk.Unavailable, "the upstream answered an embedding with index %d", d.Index)
		}
		embs[d.Index] = &pb.Embedding{Values: d.Embedding}
	}
	return &pb.EmbedResponse{Model: out.Model, Embeddings: embs, Usage: out.Usage.pb()}, nil
}

// classify maps an upstream's HTTP error to the contract's classes, which
// decide what the gateway does next (docs/gateway.md, "Routing, retries
// and fallback"): invalid_request answers the client at once, rate_limited
// and overloaded are retried after RetryAfter, auth and not_found move on
// to the next target. The status gives the class (StatusError, which
// also reads Retry-After); OpenAI's error object refines it. The
// Endpoint has already replaced the API key in body, should the upstream
// quote it.
func classify(status int, h http.Header, body []byte) error {
	var env struct {
		Error struct {
			Message string `json:"message"`
			Code    any    `json:"code"`
			Param   any    `json:"param"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
		msg = env.Error.Message
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	e := providerhttp.StatusError(status, h, fmt.Sprintf("upstream HTTP %d: %s", status, msg))
	code, _ := env.Error.Code.(string)
	switch {
	case code == "context_length_exceeded":
		e.Class = sdk.ContextLengthExceeded // to the alias's context_window_fallback
	case code == "insufficient_quota":
		// OpenAI says so with a 429, but waiting does not cure it.
		e.Class, e.RetryAfter = sdk.QuotaExhausted, 0
	case e.Class == sdk.InvalidRequest:
		e.Field, _ = env.Error.Param.(string) // OpenAI names the parameter
	}
	return e
}

func main() {
	sdk.ServeProvider(sdk.Info{Name: "openaicompat", Version: "1.0.0",
		Capabilities: []string{"chat", "stream", "embeddings"}}, &provider{})
}
