package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigilml/vigil/internal/openaiwire"
	"github.com/vigilml/vigil/plugins/providers/internal/upstream"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/sdk/providerhttp"
)

// maxBody caps what the plugin reads of one upstream response (a whole
// chat completion or an embeddings list), and maxLine one SSE line.
const (
	maxBody = 64 << 20
	maxLine = 4 << 20
)

// state is one configuration in force: calls take it once at their start,
// so a reconfiguration never changes a call half-way.
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
	h.Set("Accept", "application/json")
	if c.apiKey != "" {
		h.Set("Authorization", "Bearer "+c.apiKey)
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

// apiError is OpenAI's error object.
type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"`
	Code    any    `json:"code"`
}

func (e apiError) code() string {
	switch c := e.Code.(type) {
	case string:
		return c
	case float64:
		return strconv.Itoa(int(c))
	}
	return ""
}

// classify maps an upstream HTTP error to the contract's classes: the
// status's (providerhttp.ClassForStatus), refined with what the body says.
func classify(status int, h http.Header, body []byte) error {
	ae, msg := parseAPIError(body)
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	msg = fmt.Sprintf("upstream HTTP %d: %s", status, msg)
	code, typ := ae.code(), ae.Type
	e := &sdk.Error{Class: providerhttp.ClassForStatus(status), Message: msg}
	switch {
	case status == 400 || status == 413 || status == 422:
		if tooLong(code, typ, ae.Message) {
			e.Class = sdk.ContextLengthExceeded
		}
		if p, ok := ae.Param.(string); ok {
			e.Field = p
		}
	case status == 401 || status == 403:
		// auth, whatever the body says
	case code == "insufficient_quota" || typ == "insufficient_quota":
		// OpenAI answers an exhausted quota with a 429, which waiting
		// does not cure.
		e.Class = sdk.QuotaExhausted
	}
	if e.Class == sdk.RateLimited || e.Class == sdk.Overloaded {
		e.RetryAfter = providerhttp.RetryAfter(h, time.Now())
	}
	return e
}

// parseAPIError reads an error body in the shapes OpenAI-compatible
// servers use: OpenAI's {"error": {...}} (also llama.cpp's and newer
// vLLM's), a flat {"message": ..., "type": ...} (older vLLM), and TGI's
// {"error": "...", "error_type": "..."}. The message is the body itself
// when none of them fits.
func parseAPIError(body []byte) (apiError, string) {
	var env struct {
		Error     json.RawMessage `json:"error"`
		ErrorType string          `json:"error_type"`
		apiError
	}
	if json.Unmarshal(body, &env) != nil {
		return apiError{}, strings.TrimSpace(string(body))
	}
	var ae apiError
	var text string
	switch {
	case len(env.Error) > 0 && env.Error[0] == '{' && json.Unmarshal(env.Error, &ae) == nil && ae.Message != "":
		return ae, ae.Message
	case len(env.Error) > 0 && env.Error[0] == '"' && json.Unmarshal(env.Error, &text) == nil && text != "":
		return apiError{Message: text, Type: env.ErrorType}, text
	case env.Message != "":
		return env.apiError, env.Message
	}
	return apiError{}, strings.TrimSpace(string(body))
}

// tooLongPhrases are how OpenAI-compatible servers say that a prompt does
// not fit the model's context, lower-cased. Servers that give no code say
// it only in the message.
var tooLongPhrases = []string{
	"maximum context length",                        // OpenAI, vLLM before V1
	"is longer than the maximum model length",       // vLLM V1 ("The decoder prompt (length N) is longer ...")
	"is longer than the model's context length",     // SGLang
	"exceeds the available context size",            // llama.cpp server, LM Studio
	"maximum prompt length is",                      // xAI
	"`inputs` tokens + `max_new_tokens` must be <=", // TGI
	"`inputs` must have less than",                  // TGI
	"please reduce the length of the messages",      // Groq
}

// tooLong says whether an upstream's 400 means the prompt does not fit the
// model's context (class context_length_exceeded, which sends the request
// to the alias's context_window_fallback).
func tooLong(code, typ, message string) bool {
	if code == "context_length_exceeded" || typ == "exceed_context_size_error" {
		return true
	}
	m := strings.ToLower(message)
	// vLLM says "encoder prompt" when a multimodal input outgrows the
	// encoder's cache: a longer context would not help.
	if strings.Contains(m, "encoder prompt") && !strings.Contains(m, "decoder prompt") {
		return false
	}
	for _, p := range tooLongPhrases {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

func (p *provider) Models(ctx context.Context) (*pb.ModelsResponse, error) {
	s := p.state()
	var body struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	err := s.Call(http.MethodGet, "/models", nil, false).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &body)
	})
	if err != nil {
		return nil, err
	}
	// The list says nothing of what a model does: ids with "embed" in
	// them (text-embedding-3-small, nomic-embed-text, ...) are taken as
	// embedding models, all others as chat models.
	out := &pb.ModelsResponse{}
	for _, m := range body.Data {
		embed := strings.Contains(m.ID, "embed")
		out.Models = append(out.Models, &pb.ModelInfo{Id: m.ID, Chat: !embed, Embeddings: embed})
	}
	return out, nil
}

// decode reads one JSON body of at most maxBody bytes.
func decode(r io.Reader, v any) error { return providerhttp.DecodeJSON(r, maxBody, v) }

// chatRequest is OpenAI's chat.completions request: a struct, not a map,
// since one is encoded for every call.
type chatRequest struct {
	Model          string          `json:"model"`
	Messages       []chatMessage   `json:"messages"`
	Temperature    *float64        `json:"temperature,omitempty"`
	TopP           *float64        `json:"top_p,omitempty"`
	MaxTokens      *int32          `json:"max_tokens,omitempty"`
	Stop           []string        `json:"stop,omitempty"`
	Seed           *int64          `json:"seed,omitempty"`
	User           string          `json:"user,omitempty"`
	ResponseFormat *responseFormat `json:"response_format,omitempty"`
	Stream         bool            `json:"stream,omitempty"`
	StreamOptions  *streamOptions  `json:"stream_options,omitempty"`
	// Tool calling: tool_choice is a string or
	// {"type":"function","function":{"name":...}}.
	Tools             []tool `json:"tools,omitempty"`
	ToolChoice        any    `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool  `json:"parallel_tool_calls,omitempty"`
	// max_completion_tokens replaces max_tokens when the client used that
	// name: OpenAI's reasoning models refuse max_tokens.
	MaxCompletionTokens *int32   `json:"max_completion_tokens,omitempty"`
	PresencePenalty     *float64 `json:"presence_penalty,omitempty"`
	FrequencyPenalty    *float64 `json:"frequency_penalty,omitempty"`
	ReasoningEffort     string   `json:"reasoning_effort,omitempty"`
	Logprobs            bool     `json:"logprobs,omitempty"`
	TopLogprobs         *int32   `json:"top_logprobs,omitempty"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a *string, nil (null) in an assistant message that only
	// calls tools, or []openaiwire.ContentPart for a message with images.
	Content    any                   `json:"content"`
	Name       string                `json:"name,omitempty"`
	ToolCalls  []openaiwire.ToolCall `json:"tool_calls,omitempty"`
	ToolCallID string                `json:"tool_call_id,omitempty"`
}

// contentParts is a message's parts in OpenAI's shape.
func contentParts(parts []*pb.ContentPart) ([]openaiwire.ContentPart, error) {
	out := make([]openaiwire.ContentPart, len(parts))
	for i, p := range parts {
		switch p.GetType() {
		case "text":
			text := p.GetText()
			out[i] = openaiwire.ContentPart{Type: "text", Text: &text}
		case "image_url":
			if p.GetImageUrl() == "" {
				return nil, sdk.FieldErrorf(fmt.Sprintf("parts[%d].image_url", i), "an image part needs its URL")
			}
			out[i] = openaiwire.ContentPart{Type: "image_url", ImageURL: &openaiwire.ImageURL{URL: p.GetImageUrl(), Detail: p.GetImageDetail()}}
		case "file":
			if p.GetFileData() == "" {
				return nil, sdk.FieldErrorf(fmt.Sprintf("parts[%d].file_data", i), "a file part needs its data")
			}
			out[i] = openaiwire.ContentPart{Type: "file", File: &openaiwire.File{FileData: p.GetFileData(), Filename: p.GetFilename()}}
		default:
			return nil, sdk.FieldErrorf(fmt.Sprintf("parts[%d].type", i), "part type %q is not text, image_url or file", p.GetType())
		}
	}
	return out, nil
}

type tool struct {
	Type     string       `json:"type"`
	Function toolFunction `json:"function"`
}

type toolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

// toolChoiceFunction is tool_choice forcing one function.
type toolChoiceFunction struct {
	Type     string `json:"type"`
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatBody is the chat.completions request for req.
func chatBody(req *pb.ChatRequest, stream, streamUsage bool, structured string) (*chatRequest, error) {
	if req.GetModel() == "" {
		return nil, sdk.FieldErrorf("model", "model is required")
	}
	if len(req.GetMessages()) == 0 {
		return nil, sdk.FieldErrorf("messages", "at least one message is required")
	}
	b := &chatRequest{
		Model: req.GetModel(), Messages: make([]chatMessage, 0, len(req.GetMessages())),
		Temperature: req.Temperature, TopP: req.TopP, MaxTokens: req.MaxTokens, Stop: req.GetStop(), Seed: req.Seed, User: req.GetUser(),
		PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty, ReasoningEffort: req.GetReasoningEffort(),
		Logprobs: req.GetLogprobs(), TopLogprobs: req.TopLogprobs,
	}
	if req.MaxCompletionTokens != nil {
		// The name the client used; the contract's max_tokens holds the
		// same value for plugins that predate max_completion_tokens.
		b.MaxTokens, b.MaxCompletionTokens = nil, req.MaxCompletionTokens
	}
	if b.TopLogprobs != nil && !b.Logprobs {
		return nil, sdk.FieldErrorf("top_logprobs", "top_logprobs needs logprobs")
	}
	for _, m := range req.GetMessages() {
		cm := chatMessage{Role: m.GetRole(), Name: m.GetName(), ToolCallID: m.GetToolCallId()}
		if len(m.GetParts()) > 0 {
			parts, err := contentParts(m.GetParts())
			if err != nil {
				return nil, err
			}
			cm.Content = parts
		} else if content := m.GetContent(); content != "" || len(m.GetToolCalls()) == 0 {
			cm.Content = &content
		}
		for _, c := range m.GetToolCalls() {
			tc := openaiwire.ToolCall{ID: c.GetId(), Type: "function"}
			tc.Function.Name, tc.Function.Arguments = c.GetName(), c.GetArguments()
			cm.ToolCalls = append(cm.ToolCalls, tc)
		}
		b.Messages = append(b.Messages, cm)
	}
	if err := setTools(b, req); err != nil {
		return nil, err
	}
	switch req.GetResponseFormat() {
	case "", "text":
	case "json_object":
		b.ResponseFormat = &responseFormat{Type: "json_object"}
	case "json_schema":
		schema := []byte(req.GetJsonSchema())
		if !json.Valid(schema) {
			var v any
			err := json.Unmarshal(schema, &v)
			return nil, sdk.FieldErrorf("response_format.json_schema.schema", "not valid JSON: %v", err)
		}
		name := req.GetJsonSchemaName()
		if name == "" {
			name = "response"
		}
		b.ResponseFormat = &responseFormat{Type: "json_schema", JSONSchema: &jsonSchema{Name: name, Schema: schema, Strict: req.GetJsonSchemaStrict()}}
	default:
		return nil, sdk.FieldErrorf("response_format", "%q is not text, json_object or json_schema", req.GetResponseFormat())
	}
	if b.ResponseFormat != nil && structured != structuredNative {
		// An upstream without (this kind of) native structured output:
		// the instruction, and the schema, go into the system prompt.
		instruction := upstream.JSONObjectInstruction
		if b.ResponseFormat.JSONSchema != nil {
			instruction = upstream.SchemaInstruction(string(b.ResponseFormat.JSONSchema.Schema))
		}
		b.Messages = withSystemInstruction(b.Messages, instruction)
		b.ResponseFormat = nil
		if structured == structuredJSONObject {
			b.ResponseFormat = &responseFormat{Type: "json_object"}
		}
	}
	if stream {
		b.Stream = true
		if streamUsage {
			b.StreamOptions = &streamOptions{IncludeUsage: true}
		}
	}
	return b, nil
}

// withSystemInstruction appends instruction to the first system message,
// or puts a system message carrying it first.
func withSystemInstruction(msgs []chatMessage, instruction string) []chatMessage {
	for i := range msgs {
		if msgs[i].Role == "system" || msgs[i].Role == "developer" {
			old := ""
			if c, ok := msgs[i].Content.(*string); ok && c != nil {
				old = *c
			}
			content := strings.TrimSpace(old + "\n\n" + instruction)
			msgs[i].Content = &content
			return msgs
		}
	}
	return append([]chatMessage{{Role: "system", Content: &instruction}}, msgs...)
}

// setTools carries the request's tools, tool_choice and
// parallel_tool_calls.
func setTools(b *chatRequest, req *pb.ChatRequest) error {
	for i, t := range req.GetTools() {
		f := toolFunction{Name: t.GetName(), Description: t.GetDescription(), Strict: t.GetStrict()}
		if p := t.GetParameters(); p != "" {
			if !json.Valid([]byte(p)) {
				return sdk.FieldErrorf(fmt.Sprintf("tools[%d].function.parameters", i), "not valid JSON")
			}
			f.Parameters = json.RawMessage(p)
		}
		b.Tools = append(b.Tools, tool{Type: "function", Function: f})
	}
	switch c := req.GetToolChoice(); c {
	case "":
	case "auto", "none", "required":
		b.ToolChoice = c
	case "function":
		if req.GetToolChoiceFunction() == "" {
			return sdk.FieldErrorf("tool_choice.function.name", "tool_choice function needs the function's name")
		}
		tc := toolChoiceFunction{Type: "function"}
		tc.Function.Name = req.GetToolChoiceFunction()
		b.ToolChoice = tc
	default:
		return sdk.FieldErrorf("tool_choice", "%q is not auto, none, required or function", c)
	}
	b.ParallelToolCalls = req.ParallelToolCalls
	return nil
}

type usage struct {
	PromptTokens        int32 `json:"prompt_tokens"`
	CompletionTokens    int32 `json:"completion_tokens"`
	TotalTokens         int32 `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int32 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens          int32 `json:"reasoning_tokens"`
		AcceptedPredictionTokens int32 `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int32 `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func (u *usage) proto() *pb.Usage {
	if u == nil {
		return nil
	}
	out := &pb.Usage{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.TotalTokens}
	if d := u.PromptTokensDetails; d != nil {
		out.CachedPromptTokens = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.ReasoningTokens = d.ReasoningTokens
		out.AcceptedPredictionTokens, out.RejectedPredictionTokens = d.AcceptedPredictionTokens, d.RejectedPredictionTokens
	}
	return out
}

func (p *provider) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	s := p.state()
	b, err := chatBody(req, false, false, s.cfg.structured)
	if err != nil {
		return nil, err
	}
	body, err := withParams(b, req.GetOpenaiParams())
	if err != nil {
		return nil, err
	}
	var out struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content   *string               `json:"content"`
				Refusal   *string               `json:"refusal"`
				ToolCalls []openaiwire.ToolCall `json:"tool_calls"`
				reasoningFields
			} `json:"message"`
			Logprobs     *choiceLogprobs `json:"logprobs"`
			FinishReason string          `json:"finish_reason"`
		} `json:"choices"`
		Usage             *usage `json:"usage"`
		ServiceTier       string `json:"service_tier"`
		SystemFingerprint string `json:"system_fingerprint"`
	}
	err = s.Call(http.MethodPost, "/chat/completions", body, true).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &out)
	})
	if err != nil {
		return nil, err
	}
	if len(out.Choices) == 0 {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream answered with no choices")
	}
	c := out.Choices[0]
	content, refusal := "", ""
	if c.Message.Content != nil {
		content = *c.Message.Content
	}
	if c.Message.Refusal != nil {
		refusal = *c.Message.Refusal
	}
	resp := &pb.ChatResponse{Id: out.ID, Model: out.Model, Content: content, Refusal: refusal, FinishReason: c.FinishReason, Usage: out.Usage.proto(), ServiceTier: out.ServiceTier,
		SystemFingerprint: out.SystemFingerprint, ReasoningContent: c.Message.text()}
	if req.GetLogprobs() {
		if resp.Logprobs, err = c.Logprobs.proto(); err != nil {
			return nil, err
		}
		if c.Message.Content != nil && *c.Message.Content != "" && len(resp.Logprobs) == 0 {
			return nil, noLogprobs()
		}
	}
	for _, tc := range c.Message.ToolCalls {
		resp.ToolCalls = append(resp.ToolCalls, &pb.ToolCall{Id: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	return resp, nil
}

// chunk is one chat.completion.chunk event, or an error object sent
// mid-stream.
type chunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Content   string          `json:"content"`
			Refusal   string          `json:"refusal"`
			ToolCalls []toolCallDelta `json:"tool_calls"`
			reasoningFields
		} `json:"delta"`
		Logprobs     *choiceLogprobs `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	} `json:"choices"`
	Usage             *usage    `json:"usage"`
	ServiceTier       string    `json:"service_tier"`
	SystemFingerprint string    `json:"system_fingerprint"`
	Error             *apiError `json:"error"`
}

// toolCallDelta is a streamed piece of a tool call: index, id, type and
// name on a call's first chunk, then argument fragments.
type toolCallDelta struct {
	Index    int32  `json:"index"`
	ID       string `json:"id"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

func (p *provider) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	s := p.state()
	b, err := chatBody(req, true, s.cfg.streamUsage, s.cfg.structured)
	if err != nil {
		return err
	}
	body, err := withParams(b, req.GetOpenaiParams())
	if err != nil {
		return err
	}
	return s.Call(http.MethodPost, "/chat/completions", body, true).Stream(ctx, func(resp *http.Response, w *providerhttp.Watchdog) error {
		return readStream(resp, w, req.GetLogprobs(), send)
	})
}

// readStream passes a chat.completions event stream on as ChatEvents.
// With logprobs asked for, a content chunk without them is an upstream
// that does not offer them: class unsupported.
func readStream(resp *http.Response, w *providerhttp.Watchdog, logprobs bool, send func(*pb.ChatEvent) error) error {
	// Time the agent takes to take an event is not upstream silence.
	send = providerhttp.Paused(w, send)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	var data strings.Builder
	var final *pb.ChatEvent // the event with finish_reason, held for the usage that follows
	for sc.Scan() {
		w.Kick()
		line := sc.Text()
		if line != "" {
			// Only data fields matter; comments (": ping") and event, id
			// and retry fields are skipped.
			if v, ok := strings.CutPrefix(line, "data:"); ok {
				if data.Len() > 0 {
					data.WriteByte('\n')
				}
				data.WriteString(strings.TrimPrefix(v, " "))
			}
			continue
		}
		if data.Len() == 0 {
			continue
		}
		ev := data.String()
		data.Reset()
		if ev == "[DONE]" {
			if final != nil {
				return send(final)
			}
			return nil
		}
		out, err := parseChunk(ev, logprobs)
		if err != nil {
			return err
		}
		switch {
		case out == nil:
		case final != nil && out.Delta == "" && len(out.ToolCalls) == 0 && len(out.Logprobs) == 0 && out.FinishReason == "" && out.ReasoningContent == "":
			// OpenAI sends usage in a chunk of its own after the one with
			// finish_reason; the contract wants both in the last event.
			if out.Usage != nil {
				final.Usage = out.Usage
			}
		default:
			if final != nil { // more after the finish: pass it on as it came
				if err := send(final); err != nil {
					return err
				}
				final = nil
			}
			if out.FinishReason != "" {
				final = out
				continue
			}
			if err := send(out); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sdk.Errorf(sdk.Unavailable, "upstream sent an SSE line longer than %d bytes", maxLine)
		}
		return providerhttp.TransportError(err, w)
	}
	if data.String() == "[DONE]" {
		// The body ended right after "data: [DONE]", without the blank
		// line that closes an event: the answer is whole all the same.
		if final != nil {
			return send(final)
		}
		return nil
	}
	return sdk.Errorf(sdk.Unavailable, "upstream stream ended before data: [DONE]: the response is truncated")
}

// parseChunk turns one chat.completion.chunk into a ChatEvent; nil for
// the role-only first chunk and other empty deltas. With logprobs asked
// for, content without them is class unsupported (a refusal's are not
// carried, and not required).
func parseChunk(ev string, logprobs bool) (*pb.ChatEvent, error) {
	var c chunk
	if err := json.Unmarshal([]byte(ev), &c); err != nil {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream sent a malformed stream chunk: %v", err)
	}
	if c.Error != nil {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream failed mid-stream: %s", c.Error.Message)
	}
	out := &pb.ChatEvent{Id: c.ID, Model: c.Model, Usage: c.Usage.proto(), ServiceTier: c.ServiceTier, SystemFingerprint: c.SystemFingerprint}
	if len(c.Choices) > 0 {
		ch := c.Choices[0]
		out.Delta, out.Refusal = ch.Delta.Content, ch.Delta.Refusal
		out.ReasoningContent = ch.Delta.text()
		if ch.FinishReason != nil {
			out.FinishReason = *ch.FinishReason
		}
		for _, d := range ch.Delta.ToolCalls {
			out.ToolCalls = append(out.ToolCalls, &pb.ToolCallDelta{Index: d.Index, Id: d.ID, Name: d.Function.Name, Arguments: d.Function.Arguments})
		}
		var err error
		if out.Logprobs, err = ch.Logprobs.proto(); err != nil {
			return nil, err
		}
		if logprobs && ch.Delta.Content != "" && len(out.Logprobs) == 0 {
			return nil, noLogprobs()
		}
	}
	if out.Delta == "" && out.Refusal == "" && out.FinishReason == "" && out.Usage == nil && len(out.ToolCalls) == 0 && len(out.Logprobs) == 0 && out.ReasoningContent == "" {
		return nil, nil
	}
	return out, nil
}

func (p *provider) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	s := p.state()
	if req.GetModel() == "" {
		return nil, sdk.FieldErrorf("model", "model is required")
	}
	if len(req.GetInput()) == 0 {
		return nil, sdk.FieldErrorf("input", "at least one input is required")
	}
	body := &struct {
		Model          string   `json:"model"`
		Input          []string `json:"input"`
		EncodingFormat string   `json:"encoding_format"`
		Dimensions     *int32   `json:"dimensions,omitempty"`
	}{req.GetModel(), req.GetInput(), "float", req.Dimensions}
	var out struct {
		Model string `json:"model"`
		Data  []struct {
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage *usage `json:"usage"`
	}
	err := s.Call(http.MethodPost, "/embeddings", body, true).Do(ctx, func(resp *http.Response) error {
		return decode(resp.Body, &out)
	})
	if err != nil {
		return nil, err
	}
	if len(out.Data) != len(req.GetInput()) {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream returned %d embeddings for %d inputs", len(out.Data), len(req.GetInput()))
	}
	embs := make([]*pb.Embedding, len(out.Data))
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= len(embs) || embs[d.Index] != nil {
			return nil, sdk.Errorf(sdk.Unavailable, "upstream returned embedding index %d twice or out of range", d.Index)
		}
		vals, err := parseEmbedding(d.Embedding)
		if err != nil {
			return nil, err
		}
		embs[d.Index] = &pb.Embedding{Values: vals}
	}
	return &pb.EmbedResponse{Model: out.Model, Embeddings: embs, Usage: out.Usage.proto()}, nil
}

// parseEmbedding accepts a float array or a base64 string of
// little-endian float32 values (servers that ignore encoding_format).
func parseEmbedding(raw json.RawMessage) ([]float32, error) {
	var vals []float32
	if err := json.Unmarshal(raw, &vals); err == nil {
		return vals, nil
	}
	var b64 string
	if err := json.Unmarshal(raw, &b64); err != nil {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream embedding is neither a float array nor base64")
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b)%4 != 0 {
		return nil, sdk.Errorf(sdk.Unavailable, "upstream base64 embedding does not decode to float32 values")
	}
	vals = make([]float32, len(b)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return vals, nil
}

// CountTokens is not offered: OpenAI's API has no counting endpoint for
// chat models. The agent estimates.
func (p *provider) CountTokens(context.Context, *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, sdk.Errorf(sdk.Unsupported, "the openai plugin does not count tokens")
}

// reasoningFields are the reasoning text that OpenAI-compatible servers
// put beside an answer's content (OpenAI itself returns none in chat
// completions): reasoning_content (DeepSeek, vLLM with a reasoning
// parser) or reasoning (newer vLLM, OpenRouter). Read leniently, as
// JSON: a server whose reasoning is not a string is not refused for it.
// They are passed on as the contract's reasoning_content and never sent
// back upstream (chatMessage has no such field: DeepSeek refuses it in
// input), and neither are the contract's thinking_blocks.
type reasoningFields struct {
	ReasoningContent json.RawMessage `json:"reasoning_content"`
	Reasoning        json.RawMessage `json:"reasoning"`
}

// text is the reasoning text, "" when there is none.
func (r *reasoningFields) text() string {
	for _, raw := range []json.RawMessage{r.ReasoningContent, r.Reasoning} {
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return s
			}
		}
	}
	return ""
}
