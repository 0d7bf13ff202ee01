package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/internal/openaiwire"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file speaks OpenAI's HTTP API: request and response bodies, server-
// sent events and the error object.

// Error is an error in OpenAI's shape:
// {"error":{"message","type","param","code"}}.
type Error struct {
	Status  int     `json:"-"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    string  `json:"code"`
	// retryAfter becomes a Retry-After header.
	retryAfter time.Duration
	// noRetry tells the OpenAI SDKs not to retry (x-should-retry: false).
	noRetry bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func invalid(param, format string, args ...any) *Error {
	e := &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
	if param != "" {
		e.Param = &param
	}
	return e
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.noRetry {
		w.Header().Set("X-Should-Retry", "false")
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.retryAfter.Seconds()))))
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

// WriteAgentError writes an error of the agent's API server (auth, body
// limit, unknown route) in OpenAI's shape, so that OpenAI's SDKs raise
// the matching exception (AuthenticationError for a 401, say). code is
// the agent's error code (unauthorized, forbidden, ...).
func WriteAgentError(w http.ResponseWriter, status int, code, message string) {
	e := &Error{Status: status, Message: message, Type: "invalid_request_error", Code: code}
	switch {
	case status == http.StatusUnauthorized:
		e.Code = "invalid_api_key"
	case status == http.StatusForbidden:
		e.Type, e.Code = "permission_error", "insufficient_permissions"
	case status == http.StatusNotFound:
		e.Code = "not_found"
	case status >= 500:
		e.Type = "server_error"
	}
	writeError(w, e)
}

var unencodable = []byte(`{"error":{"message":"internal error: response could not be encoded","type":"server_error","param":null,"code":"internal"}}` + "\n")

// jsonBufs recycles the buffers answers are encoded into.
var jsonBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func writeJSON(w http.ResponseWriter, status int, v any) {
	buf := jsonBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			jsonBufs.Put(buf)
		}
	}()
	b := unencodable
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		status = http.StatusInternalServerError
	} else {
		b = buf.Bytes()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decode reads a JSON body: one value, no unknown fields (a misspelt
// parameter is an error, not a silent default). The API server caps the
// body size. (The agent's api.DecodeJSON does the same with Vigil's error
// shape; this package cannot import it, since the config package imports
// this one.)
func decode(r *http.Request, v any) *Error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			e := invalid("", "Content-Type %q is not supported; send application/json", ct)
			e.Status, e.Code = http.StatusUnsupportedMediaType, "unsupported_media_type"
			return e
		}
	}
	// A compressed body would otherwise be "invalid JSON" about its first
	// byte; RFC 9110 answers an unsupported content coding with 415.
	if ce := strings.TrimSpace(r.Header.Get("Content-Encoding")); ce != "" && !strings.EqualFold(ce, "identity") {
		e := invalid("", "Content-Encoding %q is not supported; send the body uncompressed", ce)
		e.Status, e.Code = http.StatusUnsupportedMediaType, "unsupported_media_type"
		return e
	}
	// The body is read whole before it is decoded: a json.Decoder reading
	// the connection grows its buffer whenever the body comes in more than
	// one read, as it does from most clients (2 KB allocated for a
	// 100-byte body, the largest allocation of a gateway request).
	body := jsonBufs.Get().(*bytes.Buffer)
	body.Reset()
	defer func() {
		if body.Cap() <= 1<<20 {
			jsonBufs.Put(body)
		}
	}()
	_, err := body.ReadFrom(r.Body)
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body.Bytes()))
		dec.DisallowUnknownFields()
		err = dec.Decode(v)
		if err == nil {
			if _, err = dec.Token(); errors.Is(err, io.EOF) {
				return nil
			} else if err == nil {
				return invalid("", "the request body holds more than one JSON value")
			}
		}
	}
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		e := invalid("", "the request body is larger than the limit of %d bytes (api.max_body_bytes)", maxErr.Limit)
		e.Status, e.Code = http.StatusRequestEntityTooLarge, "payload_too_large"
		return e
	case errors.Is(err, io.EOF):
		return invalid("", "the request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("", "the request body ends in the middle of a JSON value")
	case errors.As(err, &syntaxErr):
		return invalid("", "invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr) && typeErr.Field == "":
		return invalid("", "the request body must be a JSON object, got JSON %s", typeErr.Value)
	case errors.As(err, &typeErr):
		return invalid(typeErr.Field, "field %s: expected %s, got JSON %s", typeErr.Field, jsonKind(typeErr.Type), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if path := unknownFieldPath(body.Bytes(), reflect.TypeOf(v)); path != "" {
			field = path // encoding/json names the key alone, not where it is
		}
		return invalid(field, "unknown parameter %q: the gateway does not support it (yet)", field)
	}
	return invalid("", "invalid JSON: %v", err)
}

// jsonKind names what a Go type accepts in JSON words, for a client that
// never saw the gateway's Go types ("an array", not "[]gateway.chatMessage").
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int8, reflect.Uint8:
		return "an 8-bit integer"
	case reflect.Int16, reflect.Int32, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("a %d-bit integer", t.Bits())
	case reflect.Int, reflect.Int64, reflect.Uint, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "another type"
}

// upstreamError turns what the routing loop ended with into a client
// error: the upstream's own verdict for a bad request, 400 when no target
// offers what was asked (unsupported), else 502/503/504 naming the last
// error class.
func upstreamError(o outcome) *Error {
	class := sdk.ClassOf(o.err)
	var se *sdk.Error
	errors.As(o.err, &se)
	msg := o.err.Error()
	if se != nil {
		msg = se.Message
	}
	switch class {
	case sdk.InvalidRequest:
		if se != nil && se.Field != "" && !strings.Contains(msg, se.Field) {
			// A plugin's field error whose message leaves the field to
			// param ("must be from 1 to 8192"): the message names it too.
			msg = se.Field + ": " + msg
		}
		e := invalid("", "upstream %s rejected the request: %s", o.target, msg)
		if se != nil && se.Field != "" {
			e.Param = &se.Field
		}
		return e
	case sdk.ContextLengthExceeded:
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "context_length_exceeded",
			Message: fmt.Sprintf("the prompt is longer than %s's context window and alias %q has no further context_window_fallback: %s", o.target, o.alias, msg)}
	case sdk.Unsupported:
		// No target offers what the request asks for (tool calls, chat
		// from an embeddings-only provider): the request does not fit the
		// alias, as OpenAI answers 400 for a model without tool support.
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported",
			Message: fmt.Sprintf("alias %q cannot serve this request: %s: %s", o.alias, o.target, msg)}
	}
	status := http.StatusBadGateway
	switch class {
	case sdk.Timeout:
		status = http.StatusGatewayTimeout
	case sdk.RateLimited, sdk.Overloaded, sdk.Unavailable:
		status = http.StatusServiceUnavailable
	}
	e := &Error{Status: status, Type: "upstream_error", Code: string(class),
		Message: fmt.Sprintf("alias %q: every target failed after %d attempt(s); last error from %s: %s: %s", o.alias, o.attempts, o.target, class, msg)}
	if se != nil && status == http.StatusServiceUnavailable {
		e.retryAfter = se.RetryAfter
	}
	if status == http.StatusServiceUnavailable && o.closedIn > e.retryAfter {
		// The failures of this request opened the last circuits: a client
		// retrying sooner would only be refused by them.
		e.retryAfter = o.closedIn
	}
	if o.attempts == 0 && o.openSkips == 0 {
		// Nothing was sent upstream (every slot of the provider stayed
		// busy): the message says so rather than count failed attempts.
		e.Message = fmt.Sprintf("alias %q: no upstream called: %s", o.alias, msg)
	}
	if o.attempts == 0 && o.openSkips > 0 {
		// No upstream was called: every target's circuit is open. The
		// client may come back when the first of them lets a probe
		// through, not when the last one skipped does.
		e.Message = fmt.Sprintf("alias %q: no upstream called: the circuit breaker of every target is open (the first lets a call through in %s); last skipped: %s", o.alias, o.reopens.Round(time.Second), msg)
		e.retryAfter = o.reopens
	}
	switch class {
	case sdk.Auth, sdk.QuotaExhausted, sdk.NotFound:
		// The upstream refuses for a reason a retry does not change (a
		// wrong key, spent quota, an unknown model): the OpenAI SDKs,
		// which retry every 5xx, are told not to, unless some target
		// failed for a passing reason.
		e.noRetry = !o.transient
	}
	return e
}

func newID(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func (g *Gateway) lookup(model string) (*alias, *Error) {
	if model == "" {
		return nil, invalid("model", "model is required: one of the gateway's aliases (GET /openai/v1/models)")
	}
	a, ok := g.aliases[model]
	if !ok {
		p := "model"
		return nil, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "model_not_found", Param: &p,
			Message: fmt.Sprintf("the model %q is not an alias of this gateway; GET /openai/v1/models lists them", model)}
	}
	return a, nil
}

// Values of the x-vigil-cache header.
const (
	cacheHit    = "hit"
	cacheMiss   = "miss"
	cacheBypass = "bypass"
)

func (g *Gateway) setHeaders(w http.ResponseWriter, o outcome, cache string) {
	// Keys in canonical form: Set then needs no allocation to canonicalise
	// them (the wire form is the same).
	h := w.Header()
	if o.target != nil {
		h.Set("X-Vigil-Provider", o.target.provider)
		h.Set("X-Vigil-Model", o.target.model)
	}
	h.Set("X-Vigil-Attempts", strconv.Itoa(o.attempts))
	h.Set("X-Vigil-Cache", cache)
}

// cacheHeaderError refuses an x-vigil-cache request header other than use
// or bypass: a typo (bypas, no-cache) must not quietly serve a cached
// answer to a client that asked for a fresh one.
func cacheHeaderError(r *http.Request) *Error {
	v := r.Header.Get("X-Vigil-Cache") // canonical: no allocation
	switch strings.ToLower(v) {
	case "", "use", "bypass":
		return nil
	}
	return invalid("", "the x-vigil-cache request header must be use or bypass, got %q", v)
}

// cacheKeyFor returns the cache key when the request may use the cache:
// the cache is on, the client did not send x-vigil-cache: bypass, and the
// request is deterministic (temperature 0) or sent x-vigil-cache: use.
func (g *Gateway) cacheKeyFor(r *http.Request, a *alias, req *pb.ChatRequest) string {
	if g.cache == nil {
		return ""
	}
	if req.GetLogprobs() {
		// A request for logprobs neither uses nor fills the cache
		// (x-vigil-cache: bypass): cached answers do not keep them.
		return ""
	}
	if storesUpstream(req) {
		// store: true asks OpenAI to keep the completion: an answer
		// from the cache would silently skip that.
		return ""
	}
	switch strings.ToLower(r.Header.Get("x-vigil-cache")) {
	case "bypass":
		return ""
	case "use":
	default:
		if req.Temperature == nil || *req.Temperature != 0 {
			return ""
		}
	}
	token := ""
	if g.cfg.Cache.Scope == CacheByToken && g.TokenName != nil {
		// Answers are kept apart by token: a hit tells no token what
		// another one asked.
		token = "token:" + g.TokenName(r)
	}
	return cacheKey(a.name, token, req)
}

// cached looks key up, counting the hit or miss.
func (g *Gateway) cached(a *alias, key string) *cachedAnswer {
	if key == "" {
		return nil
	}
	if ans, ok := g.cache.get(key); ok {
		g.m.cacheRequests.WithLabelValues(a.name, "hit").Inc()
		return ans
	}
	g.m.cacheRequests.WithLabelValues(a.name, "miss").Inc()
	return nil
}

// inCache reports whether key has a live answer, without counting a hit
// or miss.
func (g *Gateway) inCache(key string) bool {
	if key == "" {
		return false
	}
	_, ok := g.cache.get(key)
	return ok
}

func cacheLabel(key string) string {
	if key == "" {
		return cacheBypass
	}
	return cacheMiss
}

func (g *Gateway) count(endpoint string, o outcome, status int, start time.Time) {
	g.countCode(endpoint, o, strconv.Itoa(status), start)
}

// countCode records a finished request; code is the HTTP status, or
// stream_error for a stream that failed after it began.
func (g *Gateway) countCode(endpoint string, o outcome, code string, start time.Time) {
	provider, model := "", ""
	if o.target != nil {
		provider, model = o.target.provider, o.target.model
	}
	elapsed := time.Since(start)
	if o.target != nil && o.target.requestsOK != nil && code == "200" {
		o.target.requestsOK.Inc()
	} else {
		g.m.requests.WithLabelValues(o.alias, provider, model, code).Inc()
	}
	if a := g.aliases[o.alias]; a != nil && a.duration[endpoint] != nil {
		a.duration[endpoint].Observe(elapsed.Seconds())
	} else {
		g.m.duration.WithLabelValues(o.alias, endpoint).Observe(elapsed.Seconds())
	}
	g.record(o, code, elapsed)
}

func (g *Gateway) countTokens(o outcome, u *pb.Usage, source string) {
	if u == nil || o.target == nil {
		return
	}
	if t := o.target; t.prompt != nil && source == sourceReported {
		t.prompt.Add(float64(max(u.GetPromptTokens(), 0)))
		t.completion.Add(float64(max(u.GetCompletionTokens(), 0)))
		return
	}
	g.m.tokens.WithLabelValues(o.alias, o.target.provider, o.target.model, "prompt", source).Add(float64(max(u.GetPromptTokens(), 0)))
	g.m.tokens.WithLabelValues(o.alias, o.target.provider, o.target.model, "completion", source).Add(float64(max(u.GetCompletionTokens(), 0)))
}

// HandleModels serves GET /openai/v1/models: the configured aliases.
func (g *Gateway) HandleModels(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	data := make([]map[string]any, 0, len(g.names))
	for _, n := range g.names {
		data = append(data, g.modelObject(n))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

// HandleModel serves GET /openai/v1/models/{model}. The path with no
// model (a trailing slash) names no resource: 404, as an unknown route
// is, not the 400 that a request body without a model gets.
func (g *Gateway) HandleModel(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	name := r.PathValue("model")
	if name == "" {
		writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
			Message: fmt.Sprintf("%s %s names no model: GET /openai/v1/models lists the gateway's aliases, GET /openai/v1/models/{model} retrieves one", r.Method, r.URL.Path)})
		return
	}
	if _, e := g.lookup(name); e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, g.modelObject(name))
}

func (g *Gateway) modelObject(name string) map[string]any {
	return map[string]any{"id": name, "object": "model", "created": g.created, "owned_by": "vigil"}
}

// --- chat completions ---------------------------------------------------

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	MaxTokens           *int32          `json:"max_tokens"`
	MaxCompletionTokens *int32          `json:"max_completion_tokens"`
	Stop                json.RawMessage `json:"stop"`
	Seed                *int64          `json:"seed"`
	User                string          `json:"user"`
	N                   *int            `json:"n"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	ReasoningEffort     *string         `json:"reasoning_effort"`
	Logprobs            *bool           `json:"logprobs"`
	TopLogprobs         *int32          `json:"top_logprobs"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
		// IncludeObfuscation is accepted either way (OpenAI's SDKs
		// type it): the gateway adds no obfuscation padding.
		IncludeObfuscation *bool `json:"include_obfuscation"`
	} `json:"stream_options"`
	ResponseFormat *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict"`
		} `json:"json_schema"`
	} `json:"response_format"`
	// Tool calling (tools.go). functions and function_call, OpenAI's
	// deprecated form, are decoded only to be refused with a hint.
	Tools             *[]toolJSON     `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Functions         json.RawMessage `json:"functions"`
	FunctionCall      json.RawMessage `json:"function_call"`
	// OpenAI parameters passed through uninterpreted (passthrough.go):
	// allocated only when the request has one.
	*OpenAIParams
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
	Name    string          `json:"name"`
	// ToolCalls are an assistant message's calls; ToolCallID is, in a
	// tool message, the call it answers.
	ToolCalls  []openaiwire.ToolCall `json:"tool_calls"`
	ToolCallID string                `json:"tool_call_id"`
	// Refusal is accepted (and ignored unless the content is empty) so
	// that an answer's message can be sent back as it came, as the SDKs'
	// examples do.
	Refusal *string `json:"refusal"`
	// FunctionCall is the deprecated form of ToolCalls: refused.
	FunctionCall json.RawMessage `json:"function_call"`
	// ReasoningContent (accepted, not passed on) and ThinkingBlocks
	// (passed on) are what an answer's assistant message carries
	// (thinking.go).
	ReasoningContent json.RawMessage `json:"reasoning_content"`
	ThinkingBlocks   json.RawMessage `json:"thinking_blocks"`
}

// contract checks a chat request and turns it into the provider
// contract's form (without the upstream model, set per target).
func (req *chatRequest) contract() (*pb.ChatRequest, *Error) {
	if len(req.Messages) == 0 {
		return nil, invalid("messages", "messages must hold at least one message")
	}
	out := &pb.ChatRequest{User: req.User, Seed: req.Seed}
	var e *Error
	for i, m := range req.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		role := m.Role
		switch role {
		case "system", "user", "assistant", "tool":
		case "developer":
			role = "system" // OpenAI's newer name for system instructions
		case "function":
			return nil, invalid(field+".role", "%s: role \"function\" is deprecated and not supported by the gateway; answer a tool call with a message of role \"tool\" and its tool_call_id", field)
		default:
			return nil, invalid(field+".role", "%s: role %q is not system, developer, user, assistant or tool", field, m.Role)
		}
		if role != "assistant" && isNull(m.Content) {
			// Only an assistant message (one with tool_calls) may go
			// without content, as OpenAI answers; sending "" upstream
			// would turn a broken request into a billed one.
			return nil, invalid(field+".content", "%s.content is required in a message of role %q: a string or an array of content parts", field, m.Role)
		}
		text, parts, param, err := messageContent(m.Content, role)
		if err != nil {
			return nil, invalid(field+".content"+param, "%s.content: %v", field, err)
		}
		if text == "" && role == "assistant" && m.Refusal != nil {
			text = *m.Refusal
		}
		pm := &pb.Message{Role: role, Content: text, Name: m.Name, Parts: parts}
		if !isNull(m.FunctionCall) {
			return nil, invalid(field+".function_call", "%s.function_call is deprecated and not supported by the gateway; send tool_calls instead", field)
		}
		if len(m.ToolCalls) > 0 {
			if role != "assistant" {
				return nil, invalid(field+".tool_calls", "%s.tool_calls is only allowed in assistant messages", field)
			}
			if pm.ToolCalls, e = contractToolCalls(field, m.ToolCalls); e != nil {
				return nil, e
			}
		}
		if len(m.ReasoningContent) > 0 || len(m.ThinkingBlocks) > 0 {
			if e = contractThinking(field, &req.Messages[i], pm); e != nil {
				return nil, e
			}
		}
		if role == "tool" {
			if m.ToolCallID == "" {
				return nil, invalid(field+".tool_call_id", "%s.tool_call_id is required in a message of role \"tool\": the id of the tool call it answers", field)
			}
			pm.ToolCallId = m.ToolCallID
		} else if m.ToolCallID != "" {
			return nil, invalid(field+".tool_call_id", "%s.tool_call_id is only allowed in messages of role \"tool\"", field)
		}
		out.Messages = append(out.Messages, pm)
	}
	if e = checkToolMessages(out.Messages); e != nil {
		return nil, e
	}
	if e = req.contractTools(out); e != nil {
		return nil, e
	}
	if t := req.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return nil, invalid("temperature", "temperature must be from 0 to 2, got %v", *t)
		}
		out.Temperature = t
	}
	if p := req.TopP; p != nil {
		// From 0 to 1, as OpenAI's and Anthropic's APIs take it; an
		// upstream that wants it above 0 (vLLM) answers 400 itself.
		if *p < 0 || *p > 1 {
			return nil, invalid("top_p", "top_p must be from 0 to 1, got %v", *p)
		}
		out.TopP = p
	}
	if e = req.contractParams(out); e != nil {
		return nil, e
	}
	if e = req.OpenAIParams.contract(out); e != nil {
		return nil, e
	}
	if len(req.Stop) > 0 && string(req.Stop) != "null" {
		var one string
		var many []string
		switch {
		case json.Unmarshal(req.Stop, &one) == nil:
			out.Stop = []string{one}
		case json.Unmarshal(req.Stop, &many) == nil && len(many) <= 4:
			out.Stop = many
		default:
			return nil, invalid("stop", "stop must be a string or an array of at most 4 strings")
		}
	}
	if req.N != nil && *req.N != 1 {
		return nil, invalid("n", "n must be 1: the gateway returns one choice")
	}
	if req.StreamOptions != nil && !req.Stream {
		return nil, invalid("stream_options", "stream_options is only allowed with stream: true")
	}
	if rf := req.ResponseFormat; rf != nil {
		switch rf.Type {
		case "text", "json_object":
			out.ResponseFormat = rf.Type
		case "json_schema":
			js := rf.JSONSchema
			if js == nil {
				return nil, invalid("response_format.json_schema", "response_format json_schema needs a json_schema object")
			}
			if js.Name == "" {
				return nil, invalid("response_format.json_schema.name", "response_format.json_schema.name is required")
			}
			if !validToolName(js.Name) {
				// OpenAI's rule for the name, as for a tool's.
				return nil, invalid("response_format.json_schema.name", "response_format.json_schema.name %q must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -", js.Name)
			}
			var schema map[string]any
			if len(js.Schema) == 0 || json.Unmarshal(js.Schema, &schema) != nil {
				return nil, invalid("response_format.json_schema.schema", "response_format.json_schema.schema must be a JSON object")
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, js.Schema)
			out.ResponseFormat, out.JsonSchema, out.JsonSchemaName = "json_schema", compact.String(), js.Name
			out.JsonSchemaStrict = js.Strict != nil && *js.Strict
		default:
			return nil, invalid("response_format.type", "response_format.type %q is not text, json_object or json_schema", rf.Type)
		}
	}
	return out, nil
}

type usageJSON struct {
	PromptTokens            int32              `json:"prompt_tokens"`
	CompletionTokens        int32              `json:"completion_tokens"`
	TotalTokens             int32              `json:"total_tokens"`
	PromptTokensDetails     *promptDetails     `json:"prompt_tokens_details,omitempty"`
	CompletionTokensDetails *completionDetails `json:"completion_tokens_details,omitempty"`
}

type promptDetails struct {
	CachedTokens int32 `json:"cached_tokens"`
}

// completionDetails, when the upstream reported any of them, holds all
// three, zeros included, as OpenAI's does.
type completionDetails struct {
	ReasoningTokens          int32 `json:"reasoning_tokens"`
	AcceptedPredictionTokens int32 `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int32 `json:"rejected_prediction_tokens"`
}

func usageOf(u *pb.Usage) *usageJSON {
	if u == nil {
		return nil
	}
	out := &usageJSON{PromptTokens: u.GetPromptTokens(), CompletionTokens: u.GetCompletionTokens(), TotalTokens: u.GetTotalTokens()}
	if c := u.GetCachedPromptTokens(); c > 0 {
		out.PromptTokensDetails = &promptDetails{CachedTokens: c}
	}
	if r, a, x := u.GetReasoningTokens(), u.GetAcceptedPredictionTokens(), u.GetRejectedPredictionTokens(); r > 0 || a > 0 || x > 0 {
		out.CompletionTokensDetails = &completionDetails{ReasoningTokens: r, AcceptedPredictionTokens: a, RejectedPredictionTokens: x}
	}
	return out
}

// costHeader carries a request's cost: a header on whole answers and on
// answers from the cache (0), a trailer on streams from an upstream.
const costHeader = "X-Vigil-Cost-Usd"

func setCost(w http.ResponseWriter, usd float64, priced bool) {
	if priced {
		w.Header().Set(costHeader, formatUSD(usd))
	}
}

// HandleChat serves POST /openai/v1/chat/completions.
func (g *Gateway) HandleChat(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	if !g.admit(w) {
		return
	}
	defer g.done()
	start := time.Now()
	var req chatRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	a, e := g.lookup(req.Model)
	if e == nil {
		var creq *pb.ChatRequest
		var check *outputCheck
		if creq, e = req.contract(); e == nil {
			check, e = newOutputCheck(creq)
		}
		if e == nil {
			e = cacheHeaderError(r)
		}
		if e == nil {
			g.serveChat(w, r, a, creq, check, req.Stream, req.StreamOptions != nil && req.StreamOptions.IncludeUsage, chatAPI{}, start)
			return
		}
	}
	g.refuse(w, "chat", a, e, start)
}

// decodeBody decodes r's JSON body into req; a body that is not a valid
// request is answered and counted (with no alias yet), and it returns
// false.
func (g *Gateway) decodeBody(w http.ResponseWriter, r *http.Request, req any) bool {
	e := decode(r, req)
	if e == nil {
		return true
	}
	g.m.requests.WithLabelValues("", "", "", strconv.Itoa(e.Status)).Inc()
	writeError(w, e)
	return false
}

// refuse answers and counts a request refused before any upstream call;
// a is its alias, nil when the model named none.
func (g *Gateway) refuse(w http.ResponseWriter, endpoint string, a *alias, e *Error, start time.Time) {
	name := ""
	if a != nil {
		name = a.name
	}
	g.count(endpoint, outcome{alias: name}, e.Status, start)
	writeError(w, e)
}

// serveChat answers a checked chat request, whole or streamed, in the
// wire format wr (chat completions, or the Responses API): the response
// cache, budgets, routing, validation, cost and counting are the same for
// both.
func (g *Gateway) serveChat(w http.ResponseWriter, r *http.Request, a *alias, creq *pb.ChatRequest, check *outputCheck, stream, includeUsage bool, wr wire, start time.Time) {
	ctx, cancel := context.WithTimeout(g.withToken(r), g.cfg.RequestTimeout)
	defer cancel()
	key := g.cacheKeyFor(r, a, creq)
	exchangeOf(ctx).setCache(cacheLabel(key))
	ctx, e := g.overBudget(ctx, a.name)
	if e != nil {
		if !g.inCache(key) {
			g.count(wr.endpoint(false), outcome{alias: a.name}, e.Status, start)
			wr.fail(w, e)
			return
		}
		// A cached answer costs nothing: served even over budget.
	}
	if stream {
		g.stream(ctx, w, a, creq, check, key, includeUsage, wr, start)
	} else {
		g.chat(ctx, w, a, creq, check, key, wr, start)
	}
}

// wire is the HTTP API an answer is written in: OpenAI's chat completions
// (chatAPI) or its Responses API (responses.go). Everything else about a
// chat request is the same for both.
type wire interface {
	// endpoint is the endpoint label of the request-duration metric.
	endpoint(stream bool) string
	// whole writes a whole answer.
	whole(w http.ResponseWriter, ans answer)
	// fail writes an error instead of an answer.
	fail(w http.ResponseWriter, e *Error)
	// events starts a streamed answer's encoder; nothing is written yet.
	events(w http.ResponseWriter, creq *pb.ChatRequest, includeUsage bool) streamEncoder
}

// answer is a whole answer as the gateway hands it to its wire format.
type answer struct {
	// id is the upstream's id for it ("" when none, or from the cache).
	id, model, content, finish string
	// refusal is the model's refusal, given instead of content.
	refusal string
	calls   []*pb.ToolCall
	usage   *usageJSON
	// logprobs are the answer's, when the request asked for them.
	logprobsAsked bool
	logprobs      []*pb.TokenLogprob
	serviceTier   string
	// fingerprint is the upstream's system_fingerprint, when it gave one.
	fingerprint string
	// reasoning and thinking are the answer's reasoning text and signed
	// reasoning blocks (thinking.go), when the upstream gave them.
	reasoning string
	thinking  []*pb.ThinkingBlock
}

// streamEncoder writes a streamed answer's events in one wire format, as
// stream() hands it the pieces. The headers are out before begin.
type streamEncoder interface {
	// begin writes the first event(s); toolFirst says the answer begins
	// with a tool call.
	begin(model string, toolFirst bool) error
	// delta writes a piece of the answer: text, tool-call pieces (index,
	// id and name first, then argument fragments), logprobs.
	delta(text string, calls []*pb.ToolCallDelta, lps []*pb.TokenLogprob) error
	// finish writes the upstream's finish reason.
	finish(reason string) error
	// fail ends the stream with an error event: what was sent is
	// incomplete, or fails its check.
	fail(e *Error)
	// end ends a complete stream: its usage (nil when unknown), marked
	// estimated when the gateway counted it, and the tier the upstream
	// used.
	end(u *usageJSON, estimated bool, serviceTier string)
	// upstream is the service tier the upstream says it uses and its
	// system_fingerprint, once known.
	upstream(serviceTier, fingerprint string)
	// reasoning writes a piece of the answer's reasoning text and
	// completed thinking blocks (either may be empty).
	reasoning(text string, blocks []*pb.ThinkingBlock) error
	// refusal writes a piece of the model's refusal.
	refusal(text string) error
	// err is the first write error (the client went away).
	err() error
}

// chatAPI is OpenAI's chat completions: a chat.completion object, or
// chat.completion.chunk events ending in data: [DONE].
type chatAPI struct{}

func (chatAPI) endpoint(stream bool) string {
	if stream {
		return "chat_stream"
	}
	return "chat"
}

func (chatAPI) whole(w http.ResponseWriter, ans answer) {
	id := ans.id
	if id == "" {
		id = newID("chatcmpl-")
	}
	c := completion(id, ans.model, ans.content, ans.calls, ans.finish, ans.usage)
	if ans.refusal != "" {
		// OpenAI's refusal: message.refusal, content null unless the
		// upstream gave content too.
		m := &c.Choices[0].Message
		m.Refusal = &ans.refusal
		if ans.content == "" {
			m.Content = nil
		}
	}
	c.Choices[0].Logprobs = logprobsOut(ans.logprobsAsked, ans.logprobs)
	c.ServiceTier = ans.serviceTier
	if ans.fingerprint != "" {
		c.SystemFingerprint = &ans.fingerprint
	}
	c.Choices[0].Message.ReasoningContent = ans.reasoning
	c.Choices[0].Message.ThinkingBlocks = thinkingBlocksOut(ans.thinking)
	writeJSON(w, http.StatusOK, c)
}

func (chatAPI) fail(w http.ResponseWriter, e *Error) { writeError(w, e) }

func (chatAPI) events(w http.ResponseWriter, creq *pb.ChatRequest, includeUsage bool) streamEncoder {
	return &chatChunks{out: sse{w: w, rc: http.NewResponseController(w)}, id: newID("chatcmpl-"), created: time.Now().Unix(),
		includeUsage: includeUsage, logprobs: creq.GetLogprobs()}
}

// chatChunks streams a chat completion as OpenAI does: a role chunk, a
// chunk per piece, the finish chunk, the usage chunk when asked
// (stream_options.include_usage), data: [DONE].
type chatChunks struct {
	out                    sse
	id, model, serviceTier string
	// fingerprint is the upstream's system_fingerprint, repeated in every
	// chunk as OpenAI does; null until known.
	fingerprint            any
	created                int64
	includeUsage, logprobs bool
}

func (c *chatChunks) chunk(delta map[string]any, finish any) map[string]any {
	m := map[string]any{"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model, "system_fingerprint": c.fingerprint,
		"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}
	if c.includeUsage {
		m["usage"] = nil
	}
	if c.serviceTier != "" {
		m["service_tier"] = c.serviceTier
	}
	return m
}

func (c *chatChunks) begin(model string, toolFirst bool) error {
	c.model = model
	first := c.chunk(roleDelta(toolFirst), nil)
	if c.logprobs {
		// OpenAI's role chunk carries an empty list.
		first["choices"].([]any)[0].(map[string]any)["logprobs"] = logprobsOut(true, nil)
	}
	return c.out.event(first)
}

func (c *chatChunks) delta(text string, calls []*pb.ToolCallDelta, lps []*pb.TokenLogprob) error {
	if text == "" && len(calls) == 0 && !(c.logprobs && len(lps) > 0) {
		return nil
	}
	delta := map[string]any{}
	if text != "" {
		delta["content"] = text
	}
	if len(calls) > 0 {
		delta["tool_calls"] = toolCallDeltasOut(calls)
	}
	m := c.chunk(delta, nil)
	if c.logprobs && (text != "" || len(lps) > 0) {
		// OpenAI's shape: each content chunk carries its tokens'
		// logprobs.
		m["choices"].([]any)[0].(map[string]any)["logprobs"] = logprobsOut(true, lps)
	}
	return c.out.event(m)
}

// refusal writes a delta with a piece of the refusal, as OpenAI streams
// message.refusal.
func (c *chatChunks) refusal(text string) error {
	if text == "" {
		return nil
	}
	return c.out.event(c.chunk(map[string]any{"refusal": text}, nil))
}

func (c *chatChunks) finish(reason string) error {
	return c.out.event(c.chunk(map[string]any{}, reason))
}

// fail ends the stream with an error event and without [DONE], so that no
// client takes it for a complete answer (the OpenAI SDKs raise an
// APIError).
func (c *chatChunks) fail(e *Error) {
	_ = c.out.event(map[string]any{"error": e})
}

func (c *chatChunks) end(u *usageJSON, estimated bool, serviceTier string) {
	if u != nil && c.includeUsage {
		last := map[string]any{"id": c.id, "object": "chat.completion.chunk", "created": c.created, "model": c.model,
			"system_fingerprint": c.fingerprint, "choices": []any{}, "usage": streamUsage{u, estimated}}
		if serviceTier != "" {
			last["service_tier"] = serviceTier
		}
		_ = c.out.event(last)
	}
	c.out.done()
}

func (c *chatChunks) upstream(tier, fingerprint string) {
	c.serviceTier = tier
	if fingerprint != "" {
		c.fingerprint = fingerprint
	}
}

// reasoning writes a delta with reasoning_content (a piece of the
// reasoning text) and/or thinking_blocks (completed blocks), LiteLLM's
// fields.
func (c *chatChunks) reasoning(text string, blocks []*pb.ThinkingBlock) error {
	if text == "" && len(blocks) == 0 {
		return nil
	}
	delta := map[string]any{}
	if text != "" {
		delta["reasoning_content"] = text
	}
	if len(blocks) > 0 {
		delta["thinking_blocks"] = thinkingBlocksOut(blocks)
	}
	return c.out.event(c.chunk(delta, nil))
}

func (c *chatChunks) err() error { return c.out.err }

func (g *Gateway) chat(ctx context.Context, w http.ResponseWriter, a *alias, creq *pb.ChatRequest, check *outputCheck, key string, wr wire, start time.Time) {
	endpoint := wr.endpoint(false)
	if hit := g.cached(a, key); hit != nil {
		o := outcome{alias: a.name, target: &target{provider: hit.Provider, model: hit.Model}, ex: exchangeOf(ctx)}
		o.ex.setCache(cacheHit)
		g.setHeaders(w, o, cacheHit)
		setCost(w, 0, true) // nothing was spent upstream
		setUsageHeader(w, hit.UsageEstimated)
		g.count(endpoint, o, http.StatusOK, start)
		wr.whole(w, answer{model: hit.Model, content: hit.Content, refusal: hit.Refusal, calls: hit.toolCalls(), finish: hit.FinishReason, usage: hit.Usage,
			fingerprint: hit.SystemFingerprint, reasoning: hit.ReasoningContent, thinking: hit.thinkingBlocks()})
		return
	}
	var resp *pb.ChatResponse
	call := func(fit *promptFit) attemptFunc {
		return func(ctx context.Context, t *target, _ int) (bool, error) {
			base, _ := fit.request(t)
			req := cloneChat(base, t.model)
			return false, g.providers.WithProvider(ctx, t.provider, "Chat", func(ctx context.Context, c sdk.ProviderClient) error {
				if err := g.checkSupport(t, req); err != nil {
					return err
				}
				var err error
				resp, err = c.Chat(ctx, req)
				return err
			})
		}
	}
	fit := g.newFit(creq)
	o := g.route(ctx, requestID(w), a, call(fit), fit.check)
	var invalidErr error
	var usd float64
	var priced bool
	// An answer is checked against the response format when it has no
	// tool calls, and against the strict tools' schemas when it calls one
	// of them (outputCheck.applies).
	var invalidWhat string
	if what := check.applies(resp.GetToolCalls()); o.err == nil && what != "" && !refused(resp.GetContent(), resp.GetRefusal(), len(resp.GetToolCalls())) {
		if why := check.verify(resp.GetContent(), resp.GetToolCalls()); why != nil {
			// One repair attempt, quoting the validation error, through
			// the same routing (it may land on another target).
			g.logger.Info("answer failed validation; asking once more", "request_id", requestID(w), "alias", o.alias, "target", o.target.String(), "check", what, "err", why)
			u, est := fit.chatUsage(o.target, resp.GetUsage(), answerText(resp.GetContent()+resp.GetRefusal(), resp.GetToolCalls()))
			g.spendAs(ctx, o, u, est, &usd, &priced)
			first := o.attempts
			fit = g.newFit(repairRequest(creq, resp, why))
			o = g.route(ctx, requestID(w), a, call(fit), fit.check)
			o.attempts += first
			if o.err == nil {
				// The second answer may be of the other kind (calls
				// instead of content): it gets the check that applies
				// to it, or none.
				if invalidWhat = check.applies(resp.GetToolCalls()); invalidWhat != "" && !refused(resp.GetContent(), resp.GetRefusal(), len(resp.GetToolCalls())) {
					invalidErr = check.verify(resp.GetContent(), resp.GetToolCalls())
				}
				if invalidErr == nil {
					g.m.validations.WithLabelValues(o.alias, what, "repaired").Inc()
				} else {
					g.m.validations.WithLabelValues(o.alias, what, "invalid").Inc()
				}
			}
		} else {
			g.m.validations.WithLabelValues(o.alias, what, "valid").Inc()
		}
	}
	g.setHeaders(w, o, cacheLabel(key))
	fit.setHeader(w, o.target)
	var usage *pb.Usage
	var estimated bool
	if o.err == nil {
		usage, estimated = fit.chatUsage(o.target, resp.GetUsage(), answerText(resp.GetContent()+resp.GetRefusal(), resp.GetToolCalls()))
		setUsageHeader(w, estimated)
	}
	if invalidErr != nil {
		g.spendAs(ctx, o, usage, estimated, &usd, &priced)
		setCost(w, usd, priced)
		e := invalidOutput(o, invalidWhat, invalidErr)
		g.count(endpoint, o, e.Status, start)
		wr.fail(w, e)
		return
	}
	if o.err != nil && clientGone(ctx) {
		g.countCode(endpoint, o, codeClientClosed, start)
		return
	}
	if o.err != nil {
		e := upstreamError(o)
		g.count(endpoint, o, e.Status, start)
		wr.fail(w, e)
		return
	}
	g.spendAs(ctx, o, usage, estimated, &usd, &priced)
	setCost(w, usd, priced)
	finish := finishOr(resp.GetFinishReason(), len(resp.GetToolCalls()) > 0)
	model := modelOr(resp.GetModel(), o.target.model)
	if key != "" {
		g.cache.put(key, cachedAnswer{Provider: o.target.provider, Model: model, Content: resp.GetContent(), Refusal: resp.GetRefusal(), FinishReason: finish, Usage: usageOf(usage), UsageEstimated: estimated,
			SystemFingerprint: resp.GetSystemFingerprint(), ToolCalls: cacheToolCalls(resp.GetToolCalls()), ReasoningContent: resp.GetReasoningContent(), ThinkingBlocks: cacheThinking(resp.GetThinkingBlocks())})
	}
	g.count(endpoint, o, http.StatusOK, start)
	wr.whole(w, answer{id: resp.GetId(), model: model, content: resp.GetContent(), refusal: resp.GetRefusal(), calls: resp.GetToolCalls(), finish: finish, usage: usageOf(usage),
		logprobsAsked: creq.GetLogprobs(), logprobs: resp.GetLogprobs(), serviceTier: resp.GetServiceTier(),
		fingerprint: resp.GetSystemFingerprint(), reasoning: resp.GetReasoningContent(), thinking: resp.GetThinkingBlocks()})
}

// completionJSON is a chat.completion object with one choice; a struct,
// not a map, since it is encoded for every answer.
type completionJSON struct {
	ID                string           `json:"id"`
	Object            string           `json:"object"`
	Created           int64            `json:"created"`
	Model             string           `json:"model"`
	Choices           [1]completionOne `json:"choices"`
	Usage             *usageJSON       `json:"usage,omitempty"`
	SystemFingerprint *string          `json:"system_fingerprint"`
	// ServiceTier is the tier the upstream says it used; absent when it
	// says none (and for answers from the cache, which used none).
	ServiceTier string `json:"service_tier,omitempty"`
}

type completionOne struct {
	Index   int `json:"index"`
	Message struct {
		Role string `json:"role"`
		// Content is null in an answer that only calls tools, as
		// OpenAI's is.
		Content   *string               `json:"content"`
		Refusal   *string               `json:"refusal"`
		ToolCalls []openaiwire.ToolCall `json:"tool_calls,omitempty"`
		// ReasoningContent and ThinkingBlocks are the answer's reasoning
		// (LiteLLM's fields), only when the upstream gave it.
		ReasoningContent string              `json:"reasoning_content,omitempty"`
		ThinkingBlocks   []thinkingBlockJSON `json:"thinking_blocks,omitempty"`
		// text is what Content points to, so that it costs no allocation
		// of its own.
		text string
	} `json:"message"`
	// Logprobs is null unless the request asked for them.
	Logprobs     *logprobsJSON `json:"logprobs"`
	FinishReason string        `json:"finish_reason"`
}

// completion is a chat.completion object with one choice.
func completion(id, model, content string, calls []*pb.ToolCall, finish string, usage *usageJSON) *completionJSON {
	c := &completionJSON{ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: model, Usage: usage}
	msg := &c.Choices[0].Message
	msg.Role = "assistant"
	if content != "" || len(calls) == 0 {
		msg.text = content
		msg.Content = &msg.text
	}
	msg.ToolCalls = toolCallsOut(calls)
	c.Choices[0].FinishReason = finish
	return c
}

// finishOr is the finish reason an upstream gave, or, when it gave none,
// tool_calls for an answer that calls tools and stop for another.
func finishOr(finish string, calls bool) string {
	switch {
	case finish != "":
		return finish
	case calls:
		return "tool_calls"
	}
	return "stop"
}

// codeClientClosed counts requests whose client went away before the
// answer was complete (nginx's 499).
const codeClientClosed = "499"

// clientGone reports whether ctx, derived from the request's context,
// ended because the client went away rather than by the deadline.
func clientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

func modelOr(m, fallback string) string {
	if m != "" {
		return m
	}
	return fallback
}

func cloneChat(req *pb.ChatRequest, model string) *pb.ChatRequest {
	c := &pb.ChatRequest{
		Model: model, Messages: req.Messages, Temperature: req.Temperature, TopP: req.TopP, MaxTokens: req.MaxTokens,
		Stop: req.Stop, Seed: req.Seed, ResponseFormat: req.ResponseFormat, JsonSchema: req.JsonSchema,
		JsonSchemaStrict: req.JsonSchemaStrict, JsonSchemaName: req.JsonSchemaName, User: req.User,
		Tools: req.Tools, ToolChoice: req.ToolChoice, ToolChoiceFunction: req.ToolChoiceFunction, ParallelToolCalls: req.ParallelToolCalls,
		MaxCompletionTokens: req.MaxCompletionTokens, PresencePenalty: req.PresencePenalty, FrequencyPenalty: req.FrequencyPenalty,
		ReasoningEffort: req.ReasoningEffort, Logprobs: req.Logprobs, TopLogprobs: req.TopLogprobs, OpenaiParams: req.OpenaiParams,
	}
	return c
}

// sse writes server-sent events and flushes each one.
type sse struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	err error
}

func (s *sse) event(v any) error {
	if s.err != nil {
		return s.err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, s.err = fmt.Fprintf(s.w, "data: %s\n\n", b); s.err == nil {
		s.err = s.rc.Flush()
	}
	return s.err
}

func (s *sse) done() {
	if s.err == nil {
		_, s.err = s.w.Write([]byte("data: [DONE]\n\n"))
		if s.err == nil {
			s.err = s.rc.Flush()
		}
	}
}

func (g *Gateway) stream(ctx context.Context, w http.ResponseWriter, a *alias, creq *pb.ChatRequest, check *outputCheck, key string, includeUsage bool, wr wire, start time.Time) {
	// The answer is kept to validate or cache it, and to count its tokens
	// if the upstream reports no usage.
	// One variable for these (the closure below moves what it captures to
	// the heap: one allocation, not one each).
	var ans struct {
		content strings.Builder
		refusal strings.Builder
		calls   toolCallBuilder
		// serviceTier is the tier the upstream's events say it used;
		// fingerprint its system_fingerprint.
		serviceTier, fingerprint string
		// reasoning and thinking are the answer's reasoning text and
		// thinking blocks, for the cache.
		reasoning strings.Builder
		thinking  []*pb.ThinkingBlock
		// What the routing closure below sets: the finish reason, the
		// usage and model the upstream reported, whether the stream started.
		finishReason string
		usage        *pb.Usage
		model        string
		streaming    bool
	}
	endpoint := wr.endpoint(true)
	out := wr.events(w, creq, includeUsage)
	var o outcome
	if hit := g.cached(a, key); hit != nil {
		// Served from the cache, re-streamed as the same events an
		// upstream answer would produce.
		o = outcome{alias: a.name, target: &target{provider: hit.Provider, model: hit.Model}, ex: exchangeOf(ctx)}
		o.ex.setCache(cacheHit)
		g.setHeaders(w, o, cacheHit)
		// Known before the first byte: a header, not a trailer.
		setCost(w, 0, true)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		out.upstream("", hit.SystemFingerprint)
		_ = out.begin(hit.Model, hit.Content == "" && len(hit.ToolCalls) > 0)
		// The reasoning first, as it came: its text, then its blocks.
		_ = out.reasoning(hit.ReasoningContent, nil)
		_ = out.reasoning("", hit.thinkingBlocks())
		_ = out.delta(hit.Content, nil, nil)
		_ = out.refusal(hit.Refusal)
		// Each tool call as OpenAI streams one: id and name first, then
		// the arguments.
		for i, c := range hit.ToolCalls {
			_ = out.delta("", []*pb.ToolCallDelta{{Index: int32(i), Id: c.ID, Name: c.Name}}, nil)
			if c.Arguments != "" {
				_ = out.delta("", []*pb.ToolCallDelta{{Index: int32(i), Arguments: c.Arguments}}, nil)
			}
		}
		_ = out.finish(hit.FinishReason)
		out.end(hit.Usage, hit.UsageEstimated, "")
		g.count(endpoint, o, http.StatusOK, start)
		return
	}
	fit := g.newFit(creq)
	o = g.route(ctx, requestID(w), a, func(ctx context.Context, t *target, attempt int) (bool, error) {
		started := false
		ans.usage, ans.model, ans.serviceTier, ans.fingerprint = nil, t.model, "", ""
		ans.content.Reset()
		ans.refusal.Reset()
		ans.calls.reset()
		ans.reasoning.Reset()
		ans.thinking = nil
		base, _ := fit.request(t)
		req := cloneChat(base, t.model)
		err := g.providers.WithProvider(ctx, t.provider, "ChatStream", func(ctx context.Context, c sdk.ProviderClient) error {
			if err := g.checkSupport(t, req); err != nil {
				return err
			}
			return c.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
				if ev.GetUsage() != nil {
					ans.usage = ev.GetUsage()
				}
				if st, fp := ev.GetServiceTier(), ev.GetSystemFingerprint(); st != "" || fp != "" {
					if st != "" {
						ans.serviceTier = st
					}
					if fp != "" {
						ans.fingerprint = fp
					}
					if started {
						out.upstream(ans.serviceTier, ans.fingerprint)
					}
				}
				if ev.GetDelta() == "" && ev.GetRefusal() == "" && ev.GetFinishReason() == "" && len(ev.GetToolCalls()) == 0 && len(ev.GetLogprobs()) == 0 &&
					ev.GetReasoningContent() == "" && len(ev.GetThinkingBlocks()) == 0 {
					return nil
				}
				if !started {
					// The first byte: from here on nothing is retried.
					started, ans.streaming = true, true
					ans.model = modelOr(ev.GetModel(), t.model)
					g.setHeaders(w, outcome{target: t, attempts: attempt}, cacheLabel(key))
					fit.setHeader(w, t)
					w.Header().Set("Content-Type", "text/event-stream")
					w.Header().Set("Cache-Control", "no-cache")
					w.Header().Set("X-Accel-Buffering", "no")
					// The cost is known only at the end: an HTTP trailer.
					w.Header().Set("Trailer", costHeader)
					w.WriteHeader(http.StatusOK)
					ttft := time.Since(start)
					g.m.ttft.WithLabelValues(a.name).Observe(ttft.Seconds())
					exchangeOf(ctx).firstToken(ttft)
					out.upstream(ans.serviceTier, ans.fingerprint)
					if err := out.begin(ans.model, ev.GetDelta() == "" && len(ev.GetToolCalls()) > 0); err != nil {
						return err
					}
				}
				if r, tb := ev.GetReasoningContent(), ev.GetThinkingBlocks(); r != "" || len(tb) > 0 {
					ans.reasoning.WriteString(r)
					ans.thinking = append(ans.thinking, tb...)
					if err := out.reasoning(r, tb); err != nil {
						return err
					}
				}
				ans.content.WriteString(ev.GetDelta())
				if tc := ev.GetToolCalls(); len(tc) > 0 {
					ans.calls.add(tc)
				}
				if err := out.delta(ev.GetDelta(), ev.GetToolCalls(), ev.GetLogprobs()); err != nil {
					return err
				}
				if r := ev.GetRefusal(); r != "" {
					ans.refusal.WriteString(r)
					if err := out.refusal(r); err != nil {
						return err
					}
				}
				if f := ev.GetFinishReason(); f != "" {
					ans.finishReason = f
					return out.finish(f)
				}
				return nil
			})
		})
		if err == nil && !started {
			// A stream that ended without a single event is an upstream
			// fault: an empty answer would hide it.
			err = sdk.Errorf(sdk.Unavailable, "upstream stream ended without any content or finish reason")
		}
		return started, err
	}, fit.check)
	if clientGone(ctx) || out.err() != nil {
		// The client went away (or stopped reading): nobody to tell.
		g.countCode(endpoint, o, codeClientClosed, start)
		return
	}
	if !ans.streaming {
		g.setHeaders(w, o, cacheLabel(key))
		e := upstreamError(o)
		g.count(endpoint, o, e.Status, start)
		wr.fail(w, e)
		return
	}
	if o.err != nil {
		// Mid-stream failure: say so in the stream, and end it without
		// the end marker so that no client takes it for a complete
		// answer.
		class := sdk.ClassOf(o.err)
		g.logger.Warn("upstream failed mid-stream", "request_id", requestID(w), "alias", o.alias, "target", o.target.String(), "class", class, "err", o.err)
		out.fail(&Error{Type: "upstream_error", Code: string(class),
			Message: fmt.Sprintf("upstream %s failed mid-stream (%s): %v; the answer above is incomplete", o.target, class, o.err)})
		g.countCode(endpoint, o, "stream_error", start)
		return
	}
	var usd float64
	var priced bool
	toolCalls := ans.calls.list()
	usage, estimated := fit.chatUsage(o.target, ans.usage, answerText(ans.content.String()+ans.refusal.String(), toolCalls))
	g.spendAs(ctx, o, usage, estimated, &usd, &priced)
	if priced {
		// Too late for a header: the trailer declared at the first byte.
		// Set before the output check, since an answer that fails it is
		// charged all the same.
		w.Header().Set(costHeader, formatUSD(usd))
	}
	if what := check.applies(toolCalls); what != "" && !refused(ans.content.String(), ans.refusal.String(), len(toolCalls)) {
		// What was streamed cannot be taken back, so there is no repair
		// attempt; an answer that fails its check (the response format,
		// or a strict tool's schema) ends with an error event instead of
		// the end marker.
		if why := check.verify(ans.content.String(), toolCalls); why != nil {
			g.m.validations.WithLabelValues(o.alias, what, "invalid").Inc()
			e := invalidOutput(o, what, why)
			e.Message = fmt.Sprintf("alias %q: the streamed answer from %s fails %s: %v", o.alias, o.target, checkName(what), why)
			out.fail(e)
			g.countCode(endpoint, o, "stream_error", start)
			return
		}
		g.m.validations.WithLabelValues(o.alias, what, "valid").Inc()
	}
	// The usage reports what the upstream reported or, when it reported
	// nothing, the gateway's count, marked "estimated": true.
	out.end(usageOf(usage), estimated, ans.serviceTier)
	if key != "" && out.err() == nil {
		g.cache.put(key, cachedAnswer{Provider: o.target.provider, Model: ans.model, Content: ans.content.String(), Refusal: ans.refusal.String(), FinishReason: finishOr(ans.finishReason, len(toolCalls) > 0),
			Usage: usageOf(usage), UsageEstimated: estimated, SystemFingerprint: ans.fingerprint, ToolCalls: cacheToolCalls(toolCalls),
			ReasoningContent: ans.reasoning.String(), ThinkingBlocks: cacheThinking(ans.thinking)})
	}
	g.count(endpoint, o, http.StatusOK, start)
}

// roleDelta is a stream's first delta. Its content is null when the
// answer begins with a tool call, as OpenAI's is.
func roleDelta(toolCall bool) map[string]any {
	if toolCall {
		return map[string]any{"role": "assistant", "content": nil, "refusal": nil}
	}
	return map[string]any{"role": "assistant", "content": "", "refusal": nil}
}

// --- embeddings --------------------------------------------------------

type embedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int32          `json:"dimensions"`
	User           string          `json:"user"`
}

// maxEmbedInputs is OpenAI's own limit per request.
const maxEmbedInputs = 2048

// maxEmbedInputTokens is OpenAI's limit on one input given as token ids
// (its embedding models' context).
const maxEmbedInputTokens = 8192

// embedTokenEncoding is the encoding token-array inputs are read in: the
// one of every OpenAI embedding model, and what tiktoken (and so
// LangChain's OpenAIEmbeddings, which sends token arrays by default)
// falls back to for a model name it does not know, such as an alias.
const embedTokenEncoding = tokens.Cl100kBase

// inputs are the texts to embed: a string, an array of strings, or token
// ids (an array of integers, or an array of such arrays), which are
// decoded to text in embedTokenEncoding so that every provider can take
// them.
func (req *embedRequest) inputs() ([]string, *Error) {
	if isNull(req.Input) {
		return nil, invalid("input", "input is required: a string or an array of strings")
	}
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		if one == "" {
			return nil, invalid("input", "input must not be empty")
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(req.Input, &many); err != nil {
		if len(req.Input) == 0 {
			return nil, invalid("input", "input is required: a string or an array of strings")
		}
		return req.tokenInputs()
	}
	if len(many) == 0 || len(many) > maxEmbedInputs {
		return nil, invalid("input", "input must hold from 1 to %d strings, got %d", maxEmbedInputs, len(many))
	}
	for i, s := range many {
		if s == "" {
			return nil, invalid(fmt.Sprintf("input[%d]", i), "input[%d] is empty", i)
		}
	}
	return many, nil
}

// tokenInputs reads input as token ids: one array of integers, or an
// array of them.
func (req *embedRequest) tokenInputs() ([]string, *Error) {
	var arrays [][]int
	var one []int
	single := json.Unmarshal(req.Input, &one) == nil
	switch {
	case single:
		arrays = [][]int{one}
	case json.Unmarshal(req.Input, &arrays) == nil:
		if len(arrays) == 0 || len(arrays) > maxEmbedInputs {
			return nil, invalid("input", "input must hold from 1 to %d token arrays, got %d", maxEmbedInputs, len(arrays))
		}
	default:
		return nil, invalid("input", "input must be a string, an array of strings, an array of token ids or an array of such arrays")
	}
	out := make([]string, len(arrays))
	for i, ids := range arrays {
		field := "input"
		if !single {
			field = fmt.Sprintf("input[%d]", i)
		}
		if len(ids) == 0 || len(ids) > maxEmbedInputTokens {
			return nil, invalid(field, "%s must hold from 1 to %d token ids, got %d", field, maxEmbedInputTokens, len(ids))
		}
		text, err := tokens.Decode(embedTokenEncoding, ids)
		if err != nil {
			return nil, invalid(field, "%s: %v (token arrays are read as %s)", field, err, embedTokenEncoding)
		}
		out[i] = text
	}
	return out, nil
}

// HandleEmbeddings serves POST /openai/v1/embeddings.
func (g *Gateway) HandleEmbeddings(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	if !g.admit(w) {
		return
	}
	defer g.done()
	start := time.Now()
	var req embedRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	fail := func(alias string, e *Error) {
		g.count("embeddings", outcome{alias: alias}, e.Status, start)
		writeError(w, e)
	}
	a, e := g.lookup(req.Model)
	if e != nil {
		fail("", e)
		return
	}
	inputs, e := req.inputs()
	if e != nil {
		fail(a.name, e)
		return
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		fail(a.name, invalid("encoding_format", "encoding_format must be float or base64, got %q", req.EncodingFormat))
		return
	}
	if d := req.Dimensions; d != nil && *d < 1 {
		fail(a.name, invalid("dimensions", "dimensions must be at least 1, got %d", *d))
		return
	}
	ctx, cancel := context.WithTimeout(g.withToken(r), g.cfg.RequestTimeout)
	defer cancel()
	exchangeOf(ctx).setCache(cacheBypass)
	ctx, over := g.overBudget(ctx, a.name)
	if over != nil {
		fail(a.name, over)
		return
	}
	var resp *pb.EmbedResponse
	o := g.route(ctx, requestID(w), a, func(ctx context.Context, t *target, _ int) (bool, error) {
		ereq := &pb.EmbedRequest{Model: t.model, Input: inputs, Dimensions: req.Dimensions}
		return false, g.providers.WithProvider(ctx, t.provider, "Embed", func(ctx context.Context, c sdk.ProviderClient) error {
			var err error
			resp, err = c.Embed(ctx, ereq)
			if err == nil && len(resp.GetEmbeddings()) != len(inputs) {
				err = sdk.Errorf(sdk.Internal, "provider returned %d embeddings for %d inputs", len(resp.GetEmbeddings()), len(inputs))
			}
			return err
		})
	})
	g.setHeaders(w, o, cacheBypass)
	if o.err != nil && clientGone(ctx) {
		g.countCode("embeddings", o, codeClientClosed, start)
		return
	}
	if o.err != nil {
		e := upstreamError(o)
		g.count("embeddings", o, e.Status, start)
		writeError(w, e)
		return
	}
	data := make([]map[string]any, len(inputs))
	for i, emb := range resp.GetEmbeddings() {
		var v any = emb.GetValues()
		if req.EncodingFormat == "base64" {
			v = float32Base64(emb.GetValues())
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": v}
	}
	u, estimated := embedUsage(o.target, inputs, resp.GetUsage())
	var usd float64
	var priced bool
	g.spendAs(ctx, o, u, estimated, &usd, &priced)
	setCost(w, usd, priced)
	setUsageHeader(w, estimated)
	g.count("embeddings", o, http.StatusOK, start)
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": modelOr(resp.GetModel(), o.target.model),
		"usage": map[string]any{"prompt_tokens": u.GetPromptTokens(), "total_tokens": max(u.GetTotalTokens(), u.GetPromptTokens())},
	})
}

// float32Base64 is OpenAI's base64 encoding of an embedding: the
// little-endian float32 bytes, base64 (standard alphabet, padded).
func float32Base64(v []float32) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// withToken puts the request's API token name (for budgets) into its
// context.
// It also carries the request's exchange, when requests are recorded as
// observations.
func (g *Gateway) withToken(r *http.Request) context.Context {
	ctx := r.Context()
	if g.obs != nil {
		ctx = context.WithValue(ctx, exchangeKey{}, &exchange{})
	}
	if g.TokenName == nil {
		return ctx
	}
	return context.WithValue(ctx, tokenKey{}, g.TokenName(r))
}
