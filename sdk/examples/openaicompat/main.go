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
//   - the upstream's HTTP errors mapped to the contract's classes (classify),
//     with Retry-After and the field a 400 names;
//   - the call's ctx passed to every upstream request, and timeout applied as
//     the longest silence of the upstream (before its headers, and between
//     two streamed chunks), not as a cap on a long stream;
//   - max_concurrency as a bound on the upstream calls in flight.
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
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/sdk/providerconf"
)

// settings is one accepted configuration. Configure replaces it whole, so
// a call in flight keeps the settings it started with.
type settings struct {
	http            providerconf.HTTP
	chatModel       string
	embedModel      string
	embedDimensions int
	client          *http.Client
	slots           chan struct{} // max_concurrency
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

// init makes what the settings need to call the upstream.
func (s *settings) init() {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = s.http.MaxConcurrency
	s.client = &http.Client{Transport: tr}
	s.slots = make(chan struct{}, s.http.MaxConcurrency)
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
	err = p.call(ctx, "/chat/completions", body, func(resp *http.Response, _ func()) error {
		return decode(resp.Body, &out)
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
func (p *provider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	body, err := chatBody(req, true)
	if err != nil {
		return err
	}
	return p.call(ctx, "/chat/completions", body, func(resp *http.Response, kick func()) error {
		var finish string
		var last *usage
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			kick() // the upstream spoke: restart the silence timer
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
			return sdk.Errorf(sdk.Unavailable, "reading the upstream's stream: %v", err)
		}
		return sdk.Errorf(sdk.Unavailable, "the upstream's stream ended without data: [DONE]")
	})
}

func (p *provider) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if len(req.GetInput()) == 0 {
		return nil, sdk.FieldErrorf("input", "at least one input is required")
	}
	body := map[string]any{"model": req.GetModel(), "input": req.GetInput(), "encoding_format": "float"}
	if req.Dimensions != nil {
		body["dimensions"] = req.GetDimensions()
	} else if d := p.settings().embedDimensions; d > 0 && req.GetModel() == p.settings().embedModel {
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
	err := p.call(ctx, "/embeddings", body, func(resp *http.Response, _ func()) error {
		return decode(resp.Body, &out)
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

// decode reads a whole JSON answer; one that does not parse is the
// upstream's fault (class unavailable: the gateway may retry elsewhere).
func decode(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, 64<<20)).Decode(v); err != nil {
		return sdk.Errorf(sdk.Unavailable, "the upstream's answer is not the JSON expected: %v", err)
	}
	return nil
}

// errSilent ends an upstream call that said nothing for timeout.
var errSilent = errors.New("upstream silent")

// call sends body to the upstream's path and hands a 2xx response to read,
// with kick to call whenever the upstream sends something (a streamed
// chunk). It bounds the calls in flight, cancels the request when ctx ends
// (the agent gave up) or the upstream stays silent for longer than
// timeout, and types every failure with a class. read returns an
// *sdk.Error for what the upstream got wrong, and a send error as it is.
func (p *provider) call(ctx context.Context, path string, body any, read func(resp *http.Response, kick func()) error) error {
	s := p.settings()
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return sdk.Errorf(sdk.Timeout, "all %d upstream slots (max_concurrency) stayed busy: %v", cap(s.slots), ctx.Err())
	}
	b, err := json.Marshal(body)
	if err != nil {
		return sdk.Errorf(sdk.Internal, "encode the request: %v", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	silent := time.AfterFunc(s.http.Timeout, func() { cancel(errSilent) })
	defer silent.Stop()
	kick := func() { silent.Reset(s.http.Timeout) }

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.http.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return sdk.Errorf(sdk.Internal, "build the request: %v", err)
	}
	for k, v := range s.http.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.http.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.http.APIKey)
	}
	resp, err := s.client.Do(req)
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			return classify(resp.StatusCode, resp.Header, raw, time.Now())
		}
		kick()
		err = read(resp, kick)
	}
	switch {
	case err == nil:
		return nil
	case context.Cause(ctx) == errSilent:
		return sdk.Errorf(sdk.Timeout, "the upstream said nothing for %s (timeout)", s.http.Timeout)
	case ctx.Err() != nil:
		// The agent gave up (its deadline passed, or its client went
		// away). The class matters little: nobody waits for the answer.
		return sdk.Errorf(sdk.Timeout, "the call ended before the upstream answered: %v", context.Cause(ctx))
	case resp == nil:
		return sdk.Errorf(sdk.Unavailable, "the upstream could not be reached: %v", err)
	}
	return err
}

// classify maps an upstream's HTTP error to the contract's classes, which
// decide what the gateway does next (docs/gateway.md, "Routing, retries
// and fallback"): invalid_request answers the client at once, rate_limited
// and overloaded are retried after RetryAfter, auth and not_found move on
// to the next target.
func classify(status int, h http.Header, body []byte, now time.Time) error {
	var env struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
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
	e := &sdk.Error{Message: fmt.Sprintf("upstream HTTP %d: %s", status, msg)}
	code, _ := env.Error.Code.(string)
	switch {
	case code == "context_length_exceeded":
		e.Class = sdk.ContextLengthExceeded
	case code == "insufficient_quota" || status == 402:
		e.Class = sdk.QuotaExhausted
	case status == 400 || status == 413 || status == 422:
		e.Class = sdk.InvalidRequest
		e.Field, _ = env.Error.Param.(string)
	case status == 401 || status == 403:
		e.Class = sdk.Auth
	case status == 404:
		e.Class = sdk.NotFound
	case status == 408 || status == 504:
		e.Class = sdk.Timeout
	case status == 429:
		e.Class = sdk.RateLimited
	case status == 503 || status == 529:
		e.Class = sdk.Overloaded
	case status >= 500:
		e.Class = sdk.Unavailable
	default:
		e.Class = sdk.InvalidRequest
	}
	if e.Class == sdk.RateLimited || e.Class == sdk.Overloaded {
		e.RetryAfter = retryAfter(h, now)
	}
	return e
}

// retryAfter reads Retry-After (seconds or an HTTP date) and OpenAI's
// retry-after-ms; zero when the upstream gave none.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("retry-after-ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("retry-after")
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func main() {
	sdk.ServeProvider(sdk.Info{Name: "openaicompat", Version: "1.0.0",
		Capabilities: []string{"chat", "stream", "embeddings"}}, &provider{})
}
