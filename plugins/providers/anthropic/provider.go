package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/plugins/providers/internal/upstream"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/sdk/providerconf"
	"github.com/vigilml/vigil/sdk/providerhttp"
)

const (
	maxBody = 64 << 20
	maxLine = 4 << 20
)

// config is the plugin's configuration.
type config struct {
	baseURL          string
	apiKey           string
	version          string
	timeout          time.Duration
	maxConcurrency   int
	defaultMaxTokens int32
	headers          map[string]string
	// thinkingMode is the option thinking: auto (adaptiveModels decides),
	// adaptive or budget (thinking.go).
	thinkingMode string
	// thinkingDisplay is the option thinking_display, sent as
	// thinking.display under adaptive thinking ("": not sent, the
	// model's default).
	thinkingDisplay string
}

func defaultConfig() config {
	return config{baseURL: "https://api.anthropic.com", version: "2023-06-01", timeout: 60 * time.Second, maxConcurrency: 64, defaultMaxTokens: 4096, thinkingMode: thinkingAuto}
}

func parseConfig(m map[string]any, getenv func(string) (string, bool)) (config, []sdk.FieldError) {
	c := defaultConfig()
	r := providerconf.New(m)
	r.LookupEnv = getenv
	r.Known(append(providerconf.HTTPKeys(), "anthropic_version", "default_max_tokens", "thinking", "thinking_display")...)
	h := r.HTTP(providerconf.HTTP{BaseURL: c.baseURL, Timeout: c.timeout, MaxConcurrency: c.maxConcurrency}, "x-api-key", "anthropic-version", "Content-Type")
	// The plugin's paths start with /v1: a base_url copied from an
	// OpenAI-style setting (".../v1") is taken too.
	c.baseURL = strings.TrimRight(strings.TrimSuffix(h.BaseURL, "/v1"), "/")
	c.apiKey, c.timeout, c.maxConcurrency, c.headers = h.APIKey, h.Timeout, h.MaxConcurrency, h.Headers
	if s, ok := r.String("anthropic_version"); ok {
		if s == "" {
			r.Bad("anthropic_version", "must not be empty")
		} else {
			c.version = s
		}
	}
	if v, ok := r.Int("default_max_tokens", 1, 1<<20); ok {
		c.defaultMaxTokens = int32(v)
	}
	if s, ok := r.String("thinking"); ok {
		switch s {
		case thinkingAuto, thinkingAdaptive, thinkingBudget:
			c.thinkingMode = s
		default:
			r.Bad("thinking", "%q is not auto (adaptive thinking for the models known to take it, budget_tokens for the others), adaptive or budget", s)
		}
	}
	if s, ok := r.String("thinking_display"); ok {
		switch s {
		case "summarized", "omitted":
			c.thinkingDisplay = s
		default:
			r.Bad("thinking_display", "%q is not summarized or omitted (leave it unset for the model's default)", s)
		}
	}
	return c, r.Errors()
}

type state struct {
	cfg config
	*providerhttp.Endpoint
}

type provider struct {
	st atomic.Pointer[state]
}

func newProvider() *provider {
	p := &provider{}
	p.st.Store(newState(defaultConfig()))
	return p
}

func newState(c config) *state {
	h := http.Header{}
	h.Set("anthropic-version", c.version)
	if c.apiKey != "" {
		h.Set("x-api-key", c.apiKey)
	}
	for k, v := range c.headers {
		h.Set(k, v)
	}
	return &state{cfg: c, Endpoint: providerhttp.NewEndpoint(c.baseURL, c.maxConcurrency, c.timeout, h, classify)}
}

// Configure implements sdk.Configurer.
func (p *provider) Configure(m map[string]any) []sdk.FieldError {
	c, errs := parseConfig(m, os.LookupEnv)
	if len(errs) > 0 {
		return errs
	}
	p.st.Store(newState(c))
	return nil
}

func (p *provider) state() *state { return p.st.Load() }

type apiError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
	// Details.ErrorCode refines some types: enforced_spend_limit_reached
	// on a rate_limit_error is the organisation's monthly spend limit,
	// which no wait lifts.
	Details struct {
		ErrorCode string `json:"error_code"`
	} `json:"details"`
}

// classify maps an Anthropic error answer to the contract's classes: the
// status's (providerhttp.ClassForStatus), refined with what the body says.
func classify(status int, h http.Header, body []byte) error {
	var env struct {
		Error *apiError `json:"error"`
	}
	ae := apiError{Message: strings.TrimSpace(string(body))}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		ae = *env.Error
	}
	msg := ae.Message
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	lower := strings.ToLower(ae.Message)
	e := &sdk.Error{Class: providerhttp.ClassForStatus(status), Message: fmt.Sprintf("upstream HTTP %d %s: %s", status, ae.Type, msg)}
	code := strings.ToLower(ae.Details.ErrorCode)
	billing := strings.Contains(lower, "credit balance") || strings.Contains(lower, "spend limit") || strings.Contains(lower, "billing") ||
		strings.Contains(code, "spend_limit") || strings.Contains(code, "credit")
	if code != "" {
		e.Message += " (" + ae.Details.ErrorCode + ")"
	}
	switch {
	case ae.Type == "billing_error" || billing && (status == 400 || status == 402 || status == 403 || status == 429):
		// Spend limits and billing: a retry fails until someone pays or
		// raises the limit.
		e.Class = sdk.QuotaExhausted
	case ae.Type == "timeout_error":
		// Anthropic gave up on the request itself (504).
		e.Class = sdk.Timeout
	case status == 400 || status == 413 || status == 422:
		if strings.Contains(lower, "prompt is too long") || strings.Contains(lower, "context window") {
			e.Class = sdk.ContextLengthExceeded
		}
	case ae.Type == "overloaded_error" && (e.Class == sdk.Unavailable || e.Class == sdk.InvalidRequest):
		// Anthropic's overloaded_error, under a status that says less.
		e.Class = sdk.Overloaded
	case status == 409:
		// Anthropic sends no 409: one from something in between is
		// taken as the plugin always took it, as the client's.
		e.Class = sdk.InvalidRequest
	}
	if e.Class == sdk.RateLimited || e.Class == sdk.Overloaded {
		e.RetryAfter = providerhttp.RetryAfter(h, time.Now())
	}
	return e
}

// decode reads one JSON body of at most maxBody bytes.
func decode(r io.Reader, v any) error { return providerhttp.DecodeJSON(r, maxBody, v) }

// messagesBody is the Messages API request for req. Anthropic has no
// response_format: a JSON answer is asked for in the system prompt (the
// agent validates it).
func (s *state) messagesBody(req *pb.ChatRequest, stream bool) (map[string]any, error) {
	if req.GetModel() == "" {
		return nil, sdk.FieldErrorf("model", "model is required")
	}
	system, msgs, hasTools, err := conversation(req.GetMessages())
	if err != nil {
		return nil, err
	}
	switch req.GetResponseFormat() {
	case "", "text":
	case "json_object":
		system = strings.TrimSpace(system + "\n\n" + upstream.JSONObjectInstruction)
	case "json_schema":
		system = strings.TrimSpace(system + "\n\n" + upstream.SchemaInstruction(req.GetJsonSchema()))
	default:
		return nil, sdk.FieldErrorf("response_format", "%q is not text, json_object or json_schema", req.GetResponseFormat())
	}
	if err := unsupportedParams(req); err != nil {
		return nil, err
	}
	maxTokens := s.cfg.defaultMaxTokens
	switch {
	case req.MaxTokens != nil:
		maxTokens = req.GetMaxTokens()
	case req.MaxCompletionTokens != nil: // the gateway sets both; another host may not
		maxTokens = req.GetMaxCompletionTokens()
	}
	b := map[string]any{"model": req.GetModel(), "messages": msgs, "max_tokens": maxTokens}
	if system != "" {
		b["system"] = system
	}
	if req.Temperature != nil {
		if t := req.GetTemperature(); t < 0 || t > 1 {
			return nil, sdk.FieldErrorf("temperature", "Anthropic accepts a temperature from 0 to 1, got %v", t)
		}
		b["temperature"] = req.GetTemperature()
	}
	if req.TopP != nil {
		b["top_p"] = req.GetTopP()
	}
	if len(req.GetStop()) > 0 {
		b["stop_sequences"] = req.GetStop()
	}
	if req.GetUser() != "" {
		b["metadata"] = map[string]any{"user_id": req.GetUser()}
	}
	if err := toolsBody(req, b, hasTools); err != nil {
		return nil, err
	}
	if err := s.thinkingBody(req, b); err != nil {
		return nil, err
	}
	if stream {
		b["stream"] = true
	}
	return b, nil
}

// finishReason maps Anthropic's stop_reason to OpenAI's finish_reason.
func finishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	case "":
		return ""
	}
	return "stop" // end_turn, stop_sequence, pause_turn
}

type usage struct {
	InputTokens              int32 `json:"input_tokens"`
	OutputTokens             int32 `json:"output_tokens"`
	CacheCreationInputTokens int32 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int32 `json:"cache_read_input_tokens"`
}

// proto counts cache writes and cache reads as prompt tokens, the reads
// also as cached prompt tokens (billed lower).
func (u usage) proto() *pb.Usage {
	pt := u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
	return &pb.Usage{PromptTokens: pt, CompletionTokens: u.OutputTokens, TotalTokens: pt + u.OutputTokens, CachedPromptTokens: u.CacheReadInputTokens}
}

func (p *provider) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	s := p.state()
	body, err := s.messagesBody(req, false)
	if err != nil {
		return nil, err
	}
	var out struct {
		ID         string         `json:"id"`
		Model      string         `json:"model"`
		Content    []contentBlock `json:"content"`
		StopReason string         `json:"stop_reason"`
		Usage      usage          `json:"usage"`
	}
	err = s.Call(http.MethodPost, "/v1/messages", body, true).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &out)
	})
	if err != nil {
		return nil, err
	}
	var text, reasoning strings.Builder
	var calls []*pb.ToolCall
	var thinking []*pb.ThinkingBlock
	for i := range out.Content {
		c := &out.Content[i]
		switch c.Type {
		case "text":
			text.WriteString(c.Text)
		case "tool_use":
			calls = append(calls, toolCall(c.ID, c.Name, c.Input))
		case "thinking", "redacted_thinking":
			// Passed on as they came, to be sent back with the
			// assistant message; the thinking text joined is the
			// reasoning_content (as a stream's pieces add up to it).
			reasoning.WriteString(c.Thinking)
			if tb := c.thinkingOut(); tb != nil {
				thinking = append(thinking, tb)
			}
		}
	}
	return &pb.ChatResponse{Id: out.ID, Model: out.Model, Content: text.String(), FinishReason: finishReason(out.StopReason),
		Usage: out.Usage.proto(), ToolCalls: calls, ReasoningContent: reasoning.String(), ThinkingBlocks: thinking}, nil
}

// streamEvent is any event of a Messages stream; the fields used depend
// on its type.
type streamEvent struct {
	Type    string `json:"type"`
	Message *struct {
		ID    string `json:"id"`
		Model string `json:"model"`
		Usage usage  `json:"usage"`
	} `json:"message"`
	Index        int           `json:"index"`
	ContentBlock *contentBlock `json:"content_block"`
	Delta        *struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		PartialJSON string `json:"partial_json"`
		StopReason  string `json:"stop_reason"`
		Thinking    string `json:"thinking"`
		Signature   string `json:"signature"`
	} `json:"delta"`
	Usage *usage    `json:"usage"`
	Error *apiError `json:"error"`
}

func (p *provider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	s := p.state()
	body, err := s.messagesBody(req, true)
	if err != nil {
		return err
	}
	return s.Call(http.MethodPost, "/v1/messages", body, true).Stream(ctx, func(resp *http.Response, w *providerhttp.Watchdog) error {
		return readStream(resp, w, send)
	})
}

// streamCall is a tool_use block being streamed.
type streamCall struct {
	index int32 // among the answer's tool calls, from 0
	// start is the input of content_block_start (empty: {}), sent when
	// no input_json_delta brought any arguments.
	start json.RawMessage
	args  bool
}

// readStream passes a Messages event stream on as ChatEvents. A tool_use
// block becomes a ToolCallDelta with its id and name, numbered among the
// tool calls only (a text, thinking or redacted_thinking block before it
// does not count), then one per input_json_delta fragment; a call whose
// deltas brought no arguments gets its start input, "{}" for none, when
// its block stops. Each thinking_delta is passed on as reasoning_content;
// the completed thinking blocks (text and signature_delta) and
// redacted_thinking blocks go out together, in order, in one event with
// thinking_blocks when the next block that is not reasoning starts (or
// the message ends), so that a client that keeps only the last
// thinking_blocks it saw, and one that joins them all, both hold the
// list to send back.
func readStream(resp *http.Response, w *providerhttp.Watchdog, send func(*pb.ChatEvent) error) error {
	// Time the agent takes to take an event is not upstream silence.
	send = providerhttp.Paused(w, send)
	var id, model, stop string
	var u usage
	calls := map[int]*streamCall{} // by Anthropic's block index
	var nCalls int32
	sendCall := func(d *pb.ToolCallDelta) error {
		return send(&pb.ChatEvent{Id: id, Model: model, ToolCalls: []*pb.ToolCallDelta{d}})
	}
	// thinking are the reasoning blocks being streamed (by block index),
	// done those complete and not yet sent.
	var thinking map[int]*contentBlock
	var done []*pb.ThinkingBlock
	flushThinking := func() error {
		if len(done) == 0 {
			return nil
		}
		ev := &pb.ChatEvent{Id: id, Model: model, ThinkingBlocks: done}
		done = nil
		return send(ev)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var data strings.Builder
	for sc.Scan() {
		w.Kick()
		line := sc.Text()
		if line != "" {
			if v, ok := strings.CutPrefix(line, "data:"); ok {
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(strings.TrimPrefix(v, " "))
			}
			continue // event: names are repeated in the data's type
		}
		if data.Len() == 0 {
			continue
		}
		var ev streamEvent
		err := json.Unmarshal([]byte(data.String()), &ev)
		data.Reset()
		if err != nil {
			return sdk.Errorf(sdk.Unavailable, "upstream sent a malformed stream event: %v", err)
		}
		switch ev.Type {
		case "message_start":
			if ev.Message != nil {
				id, model, u = ev.Message.ID, ev.Message.Model, ev.Message.Usage
			}
		case "content_block_start":
			if cb := ev.ContentBlock; cb != nil && (cb.Type == "thinking" || cb.Type == "redacted_thinking") {
				if thinking == nil {
					thinking = map[int]*contentBlock{}
				}
				thinking[ev.Index] = cb
				if cb.Thinking != "" {
					if err := send(&pb.ChatEvent{ReasoningContent: cb.Thinking, Id: id, Model: model}); err != nil {
						return err
					}
				}
				continue
			}
			if err := flushThinking(); err != nil {
				return err
			}
			if cb := ev.ContentBlock; cb != nil && cb.Type == "tool_use" {
				c := &streamCall{index: nCalls, start: cb.Input}
				calls[ev.Index] = c
				nCalls++
				if err := sendCall(&pb.ToolCallDelta{Index: c.index, Id: cb.ID, Name: cb.Name}); err != nil {
					return err
				}
			}
		case "content_block_delta":
			if ev.Delta == nil {
				continue
			}
			switch ev.Delta.Type {
			case "text_delta":
				if ev.Delta.Text != "" {
					if err := send(&pb.ChatEvent{Delta: ev.Delta.Text, Id: id, Model: model}); err != nil {
						return err
					}
				}
			case "thinking_delta":
				if b := thinking[ev.Index]; b != nil && ev.Delta.Thinking != "" {
					b.Thinking += ev.Delta.Thinking
					if err := send(&pb.ChatEvent{ReasoningContent: ev.Delta.Thinking, Id: id, Model: model}); err != nil {
						return err
					}
				}
			case "signature_delta":
				if b := thinking[ev.Index]; b != nil {
					b.Signature += ev.Delta.Signature
				}
			case "input_json_delta":
				// A block that is not a tool_use (a server tool's, say) was
				// not passed on, nor are its deltas.
				if c := calls[ev.Index]; c != nil && ev.Delta.PartialJSON != "" {
					c.args = true
					if err := sendCall(&pb.ToolCallDelta{Index: c.index, Arguments: ev.Delta.PartialJSON}); err != nil {
						return err
					}
				}
			}
		case "content_block_stop":
			if b := thinking[ev.Index]; b != nil {
				delete(thinking, ev.Index)
				// A thinking block without its signature cannot be sent
				// back: its text went out as reasoning_content only.
				if tb := b.thinkingOut(); tb != nil {
					done = append(done, tb)
				}
			}
			if c := calls[ev.Index]; c != nil && !c.args {
				c.args = true
				if err := sendCall(&pb.ToolCallDelta{Index: c.index, Arguments: compactInput(c.start)}); err != nil {
					return err
				}
			}
		case "message_delta":
			if err := flushThinking(); err != nil {
				return err
			}
			if ev.Delta != nil && ev.Delta.StopReason != "" {
				stop = ev.Delta.StopReason
			}
			if ev.Usage != nil {
				u.OutputTokens = ev.Usage.OutputTokens
			}
		case "message_stop":
			if err := flushThinking(); err != nil {
				return err
			}
			fr := finishReason(stop)
			if fr == "" {
				fr = "stop"
			}
			return send(&pb.ChatEvent{FinishReason: fr, Id: id, Model: model, Usage: u.proto()})
		case "error":
			msg, class := "error event", sdk.Unavailable
			if ev.Error != nil {
				msg = ev.Error.Type + ": " + ev.Error.Message
				switch ev.Error.Type {
				case "overloaded_error":
					class = sdk.Overloaded
				case "rate_limit_error":
					class = sdk.RateLimited
				}
			}
			return sdk.Errorf(class, "upstream failed mid-stream: %s", msg)
		}
		// ping, text blocks' start and stop: nothing to pass on.
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sdk.Errorf(sdk.Unavailable, "upstream sent an SSE line longer than %d bytes", maxLine)
		}
		return providerhttp.TransportError(err, w)
	}
	return sdk.Errorf(sdk.Unavailable, "upstream stream ended before message_stop: the response is truncated")
}

func (p *provider) CountTokens(ctx context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	s := p.state()
	msgs := req.GetMessages()
	if req.GetText() != "" {
		msgs = append(append([]*pb.Message(nil), msgs...), &pb.Message{Role: "user", Content: req.GetText()})
	}
	system, conv, _, err := conversation(msgs)
	if err != nil {
		return nil, err
	}
	body := map[string]any{"model": req.GetModel(), "messages": conv}
	if system != "" {
		body["system"] = system
	}
	var out struct {
		InputTokens int32 `json:"input_tokens"`
	}
	err = s.Call(http.MethodPost, "/v1/messages/count_tokens", body, false).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &out)
	})
	if err != nil {
		return nil, err
	}
	return &pb.CountTokensResponse{Tokens: out.InputTokens}, nil
}

func (p *provider) Models(ctx context.Context) (*pb.ModelsResponse, error) {
	s := p.state()
	var body struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	err := s.Call(http.MethodGet, "/v1/models?limit=1000", nil, false).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &body)
	})
	if err != nil {
		return nil, err
	}
	out := &pb.ModelsResponse{}
	for _, m := range body.Data {
		out.Models = append(out.Models, &pb.ModelInfo{Id: m.ID, Chat: true})
	}
	return out, nil
}

// Embed is not offered: Anthropic has no embeddings API.
func (p *provider) Embed(context.Context, *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	return nil, sdk.Errorf(sdk.Unsupported, "Anthropic has no embeddings API; route embeddings to another provider")
}
