// Package openaistub is an upstream server speaking OpenAI's HTTP API
// (chat completions, streamed chat completions, embeddings, models) for
// Vigil's tests and benchmarks, with fault injection. It answers
// deterministically: a chat reply echoes the last user message, token
// counts are whitespace-separated words, and embeddings are derived from a
// hash of the input.
//
// Tool calls are deterministic too. When a request has tools, tool_choice
// is not "none" and its last message is a user message, the answer calls
// a function: the one tool_choice forces, else the first tool (or, with
// tool_choice "required" and parallel_tool_calls not false, every tool,
// in order), with the arguments {"query": <the user message>}, content
// null and finish_reason "tool_calls"; a stream sends the call's id, type
// and name in its first chunk and the arguments in fragments of a few
// bytes, as OpenAI does (with InvalidArgumentsTrigger in the message, the
// query is a number instead). When the last messages are tool messages, the
// answer is text quoting each result: "tool NAME returned: RESULT"
// (joined by "; "). A tool message that answers no call of the assistant
// message before it, and a call that no tool message answers, are 400s,
// as OpenAI's.
// With PreambleTrigger in the last user message, an answer with calls
// has text too (Preamble), before them. With RefusalTrigger there, the
// answer is a refusal (Refusal) as OpenAI gives one: message.refusal with
// content null, a stream's delta.refusal in pieces, and no calls.
//
// Image parts (image_url, in user messages only) are checked as OpenAI
// checks them and read as "[image TYPE N bytes]" for a base64 data: URL
// (N decoded) or "[image URL]" in the echo. File parts (file, in user
// messages only: file_data a base64 data: URL of a PDF, with filename)
// are checked in the shape OpenAI requires (checkFiles) and read as
// "[file NAME N bytes]".
//
// Parameters are checked as OpenAI checks them, with its error messages:
// an unknown parameter is "Unrecognized request argument supplied";
// max_tokens and max_completion_tokens together are refused; a reasoning
// model (an id starting with "o" and a digit, such as o1, o3-mini,
// o4-mini, or with "gpt-5") refuses max_tokens ("Use
// 'max_completion_tokens' instead"), and any other model refuses
// reasoning_effort; presence_penalty and frequency_penalty must be from
// -2 to 2, reasoning_effort one of none, minimal, low, medium, high and
// xhigh, top_logprobs from 0 to 20 and only with logprobs: true.
// logit_bias, store, metadata, service_tier, prediction, verbosity,
// prompt_cache_key and safety_identifier are checked for the shapes and
// values OpenAI documents (see checkPassThrough), and have no effect on
// the answer: Requests shows what arrived.
//
// Logprobs are deterministic: the answer's tokens are its content split
// after each space (the pieces a stream sends, one per chunk); token i
// (from 0) has logprob -(i+1)/8, the token's UTF-8 bytes, and
// top_logprobs alternatives k = 0, 1, ...: the token itself (k = 0) and
// then "<k>" + the token, with logprob -(i+1)/8 - k (see Logprobs). In a
// stream each content chunk carries its token's, the role chunk an empty
// list, as OpenAI's do.
//
// The wire format follows OpenAI's: bodies, error objects
// ({"error":{"message","type","param","code"}}), server-sent events ending
// in "data: [DONE]", the usage chunk with empty choices asked for by
// stream_options.include_usage, and base64 embeddings as little-endian
// float32. It is not a model; it is a faithful peer for protocol tests.
package openaistub

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Fault is one injected failure, consumed by the next request for its model.
type Fault struct {
	// Status, when non-zero, answers with this HTTP status and an
	// OpenAI-shaped error body.
	Status int
	// Type and Code go into the error body (defaults by status).
	Type, Code string
	// RetryAfter and RetryAfterMs set the retry-after and retry-after-ms
	// headers when not empty.
	RetryAfter, RetryAfterMs string
	// Delay holds the response back this long (a slow upstream).
	Delay time.Duration
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed bool
	// CutAfter, for a stream, closes the connection after this many
	// content chunks, without [DONE].
	CutAfter int
	// StreamError, for a stream, sends an error object as an SSE event
	// after CutAfter chunks instead of cutting the connection.
	StreamError bool
	// NoUsage answers without usage, as some OpenAI-compatible servers
	// do: no "usage" in a whole answer, no usage chunk in a stream even
	// when stream_options.include_usage asks for one.
	NoUsage bool
}

// Server is the stub. Create it with New and serve it with net/http.
type Server struct {
	// APIKey, when set, is required as a bearer token.
	APIKey string
	// Models lists the model ids GET /v1/models returns.
	Models []string

	mu       sync.Mutex
	faults   map[string][]Fault
	calls    map[string]int
	requests map[string][]map[string]any
	headers  []http.Header
}

// New returns a stub serving the given models.
func New(models ...string) *Server {
	return &Server{Models: models, faults: map[string][]Fault{}, calls: map[string]int{}, requests: map[string][]map[string]any{}}
}

// Fail queues faults for the next requests naming model, in order.
func (s *Server) Fail(model string, faults ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[model] = append(s.faults[model], faults...)
}

// Calls returns how many requests named model on path (such as
// "/v1/chat/completions"), faults included.
func (s *Server) Calls(path, model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path+" "+model]
}

// LastRequest returns the last JSON body sent for model on path, or nil.
func (s *Server) LastRequest(path, model string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.requests[path+" "+model]
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
}

// Requests returns the JSON bodies sent for model on path, oldest first.
func (s *Server) Requests(path, model string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.requests[path+" "+model]...)
}

// LastHeaders returns the headers of the last request.
func (s *Server) LastHeaders() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.headers) == 0 {
		return nil
	}
	return s.headers[len(s.headers)-1]
}

func (s *Server) take(path, model string, body map[string]any, h http.Header) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[path+" "+model]++
	s.requests[path+" "+model] = append(s.requests[path+" "+model], body)
	s.headers = append(s.headers, h.Clone())
	q := s.faults[model]
	if len(q) == 0 {
		return Fault{}, false
	}
	s.faults[model] = q[1:]
	return q[0], true
}

// WriteError writes an error in OpenAI's shape.
func WriteError(w http.ResponseWriter, status int, typ, code, param, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if code != "" {
		e["code"] = code
	}
	if param != "" {
		e["param"] = param
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"error": e})
}

func defaultType(status int) string {
	switch {
	case status == 401:
		return "invalid_authentication"
	case status == 429:
		return "rate_limit_exceeded"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP routes /v1/models, /v1/chat/completions and /v1/embeddings.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+s.APIKey {
		WriteError(w, 401, "invalid_request_error", "invalid_api_key", "", "Incorrect API key provided.")
		return
	}
	w.Header().Set("x-request-id", fmt.Sprintf("req_%d", time.Now().UnixNano()))
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		data := []map[string]any{}
		for _, m := range s.Models {
			data = append(data, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "openaistub"})
		}
		writeJSON(w, map[string]any{"object": "list", "data": data})
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/chat/completions" || r.URL.Path == "/v1/embeddings"):
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			WriteError(w, 400, "invalid_request_error", "", "", "We could not parse the JSON body of your request.")
			return
		}
		model, _ := body["model"].(string)
		f, faulty := s.take(r.URL.Path, model, body, r.Header)
		if faulty && f.Delay > 0 {
			select {
			case <-time.After(f.Delay):
			case <-r.Context().Done():
				return
			}
		}
		if faulty && f.Status != 0 {
			if f.RetryAfter != "" {
				w.Header().Set("retry-after", f.RetryAfter)
			}
			if f.RetryAfterMs != "" {
				w.Header().Set("retry-after-ms", f.RetryAfterMs)
			}
			typ := f.Type
			if typ == "" {
				typ = defaultType(f.Status)
			}
			WriteError(w, f.Status, typ, f.Code, "", fmt.Sprintf("injected fault: HTTP %d", f.Status))
			return
		}
		if faulty && f.Malformed {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"id": "chatcmpl-broken", "choices": [{"mess`))
			return
		}
		if !s.known(model) {
			WriteError(w, 404, "invalid_request_error", "model_not_found", "model", fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", model))
			return
		}
		if r.URL.Path == "/v1/embeddings" {
			s.embeddings(w, body, model)
			return
		}
		if param, code, msg := checkParams(body, model); msg != "" {
			WriteError(w, 400, "invalid_request_error", code, param, msg)
			return
		}
		if param, msg := checkTools(body); msg != "" {
			WriteError(w, 400, "invalid_request_error", "", param, msg)
			return
		}
		if param, code, msg := checkImages(body); msg != "" {
			WriteError(w, 400, "invalid_request_error", code, param, msg)
			return
		}
		if param, code, msg := checkFiles(body); msg != "" {
			WriteError(w, 400, "invalid_request_error", code, param, msg)
			return
		}
		if stream, _ := body["stream"].(bool); stream {
			s.stream(w, body, model, f, faulty)
			return
		}
		s.chat(w, body, model, faulty && f.NoUsage)
	default:
		WriteError(w, 404, "invalid_request_error", "unknown_url", "", "Unknown request URL: "+r.Method+" "+r.URL.Path)
	}
}

func (s *Server) known(model string) bool {
	for _, m := range s.Models {
		if m == model {
			return true
		}
	}
	return false
}

// reply is the deterministic answer: JSON when a JSON response format is
// asked for, else an echo of the last message.
func reply(body map[string]any) (content string, promptTokens int) {
	msgs, _ := body["messages"].([]any)
	last := ""
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		c := contentText(mm["content"])
		promptTokens += len(strings.Fields(c))
		last = c
	}
	if quoted := toolResults(msgs); quoted != "" {
		return quoted, promptTokens
	}
	if rf, ok := body["response_format"].(map[string]any); ok {
		if t, _ := rf["type"].(string); t == "json_object" || t == "json_schema" {
			b, _ := json.Marshal(map[string]string{"answer": last})
			return string(b), promptTokens
		}
	}
	return "echo: " + last, promptTokens
}

// usage is the answer's usage. With a prediction (OpenAI's predicted
// outputs), its words the answer has count as accepted prediction tokens
// and the others as rejected ones, which OpenAI bills, and counts, as
// completion tokens.
func usage(body map[string]any, answer string, prompt, completion int) map[string]any {
	u := map[string]any{}
	if p, _ := body["prediction"].(map[string]any); p != nil {
		have := map[string]bool{}
		for _, w := range strings.Fields(answer) {
			have[w] = true
		}
		accepted, rejected := 0, 0
		for _, w := range strings.Fields(contentText(p["content"])) {
			if have[w] {
				accepted++
			} else {
				rejected++
			}
		}
		completion += rejected
		u["completion_tokens_details"] = map[string]any{"reasoning_tokens": 0, "accepted_prediction_tokens": accepted, "rejected_prediction_tokens": rejected}
	}
	u["prompt_tokens"], u["completion_tokens"], u["total_tokens"] = prompt, completion, prompt+completion
	return u
}

// serviceTier is the tier the stub says it used, as OpenAI answers: the
// one asked for, "default" for auto or none.
func serviceTier(body map[string]any) string {
	if t, _ := body["service_tier"].(string); t != "" && t != "auto" {
		return t
	}
	return "default"
}

func (s *Server) chat(w http.ResponseWriter, body map[string]any, model string, noUsage bool) {
	content, pt := reply(body)
	ct := len(strings.Fields(content))
	message := map[string]any{"role": "assistant", "content": content, "refusal": nil}
	finish := "stop"
	if refuses(body) {
		content, ct = Refusal, len(strings.Fields(Refusal))
		message["content"], message["refusal"] = nil, Refusal
	} else if calls := toolCalls(body); len(calls) > 0 {
		message["content"], finish, ct = nil, "tool_calls", 0
		if pre := preamble(body); pre != "" {
			message["content"], ct = pre, len(strings.Fields(pre))
		}
		list := make([]any, len(calls))
		for i, c := range calls {
			list[i] = map[string]any{"id": c.id, "type": "function", "function": map[string]any{"name": c.name, "arguments": c.arguments}}
			ct += len(strings.Fields(c.arguments))
		}
		message["tool_calls"] = list
	}
	var logprobs any
	if body["logprobs"] == true {
		text, _ := message["content"].(string)
		logprobs = map[string]any{"content": Logprobs(text, topLogprobs(body)), "refusal": nil}
	}
	out := map[string]any{
		"id": "chatcmpl-stub", "object": "chat.completion", "created": time.Now().Unix(), "model": model,
		"choices": []any{map[string]any{
			"index": 0, "message": message,
			"logprobs": logprobs, "finish_reason": finish,
		}},
		"usage": usage(body, content, pt, ct), "system_fingerprint": "fp_stub", "service_tier": serviceTier(body),
	}
	if noUsage {
		delete(out, "usage")
	}
	writeJSON(w, out)
}

func (s *Server) stream(w http.ResponseWriter, body map[string]any, model string, f Fault, faulty bool) {
	content, pt := reply(body)
	words := strings.SplitAfter(content, " ")
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(200)
	fl, _ := w.(http.Flusher)
	created := time.Now().Unix()
	asked, top := body["logprobs"] == true, topLogprobs(body)
	token := 0 // the index of the next content token, for its logprobs
	chunk := func(delta map[string]any, finish any, u any) {
		var logprobs any
		if _, role := delta["role"]; role && asked {
			// OpenAI's role chunk carries an empty list.
			logprobs = map[string]any{"content": []any{}, "refusal": nil}
		}
		if text, ok := delta["content"].(string); ok && asked && text != "" {
			// Each content chunk is one token.
			logprobs = map[string]any{"content": []any{tokenLogprob(text, token, top)}, "refusal": nil}
			token++
		}
		choices := []any{map[string]any{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}}
		if delta == nil {
			choices = []any{}
		}
		c := map[string]any{"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": "fp_stub", "service_tier": serviceTier(body), "choices": choices}
		if u != nil {
			c["usage"] = u
		} else if opts, ok := body["stream_options"].(map[string]any); ok && opts["include_usage"] == true {
			c["usage"] = nil
		}
		b, _ := json.Marshal(c)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	}
	finish := "stop"
	deltas := make([]map[string]any, 0, len(words))
	first := map[string]any{"role": "assistant", "content": "", "refusal": nil}
	ct := len(strings.Fields(content))
	if refuses(body) {
		first["content"], first["refusal"] = nil, ""
		content, ct = Refusal, len(strings.Fields(Refusal))
		for _, word := range strings.SplitAfter(Refusal, " ") {
			deltas = append(deltas, map[string]any{"refusal": word})
		}
	} else if calls := toolCalls(body); len(calls) > 0 {
		// OpenAI's shape: the first call's id, type and name with the
		// role, then argument fragments; each further call opens with
		// its own id, type and name under the next index.
		finish, ct = "tool_calls", 0
		first["content"] = nil
		pre := preamble(body)
		if pre != "" {
			// Text first, then the calls.
			first["content"] = ""
			ct = len(strings.Fields(pre))
			for _, word := range strings.SplitAfter(pre, " ") {
				deltas = append(deltas, map[string]any{"content": word})
			}
		}
		for i, c := range calls {
			ct += len(strings.Fields(c.arguments))
			open := []any{map[string]any{"index": i, "id": c.id, "type": "function", "function": map[string]any{"name": c.name, "arguments": ""}}}
			if i == 0 && pre == "" {
				first["tool_calls"] = open
			} else {
				deltas = append(deltas, map[string]any{"tool_calls": open})
			}
			for _, frag := range fragments(c.arguments, 6) {
				deltas = append(deltas, map[string]any{"tool_calls": []any{map[string]any{"index": i, "function": map[string]any{"arguments": frag}}}})
			}
		}
	} else {
		for _, word := range words {
			deltas = append(deltas, map[string]any{"content": word})
		}
	}
	chunk(first, nil, nil)
	for i, delta := range deltas {
		if faulty && (f.CutAfter > 0 || f.StreamError) && i == f.CutAfter {
			if f.StreamError {
				b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": "injected mid-stream error", "type": "server_error", "param": nil, "code": nil}})
				fmt.Fprintf(w, "data: %s\n\n", b)
				if fl != nil {
					fl.Flush()
				}
				return
			}
			// Cut the connection: the client sees the body end early.
			panic(http.ErrAbortHandler)
		}
		chunk(delta, nil, nil)
	}
	chunk(map[string]any{}, finish, nil)
	if opts, ok := body["stream_options"].(map[string]any); ok && opts["include_usage"] == true && !(faulty && f.NoUsage) {
		chunk(nil, nil, usage(body, content, pt, ct))
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	if fl != nil {
		fl.Flush()
	}
}

// Vector is the stub's deterministic embedding of text: dims values from
// an FNV hash of the text, L2-normalised.
func Vector(text string, dims int) []float32 {
	out := make([]float32, dims)
	var norm float64
	for i := range out {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d:%s", i, text)
		v := float64(h.Sum64()%2000)/1000 - 1
		out[i] = float32(v)
		norm += v * v
	}
	norm = math.Sqrt(norm)
	for i := range out {
		out[i] = float32(float64(out[i]) / norm)
	}
	return out
}

func (s *Server) embeddings(w http.ResponseWriter, body map[string]any, model string) {
	var inputs []string
	switch in := body["input"].(type) {
	case string:
		inputs = []string{in}
	case []any:
		for _, v := range in {
			str, ok := v.(string)
			if !ok {
				WriteError(w, 400, "invalid_request_error", "", "input", "input must be a string or an array of strings")
				return
			}
			inputs = append(inputs, str)
		}
	default:
		WriteError(w, 400, "invalid_request_error", "", "input", "input must be a string or an array of strings")
		return
	}
	dims := 8
	if d, ok := body["dimensions"].(float64); ok {
		dims = int(d)
	}
	format, _ := body["encoding_format"].(string)
	data := []any{}
	tokens := 0
	for i, in := range inputs {
		tokens += len(strings.Fields(in))
		vec := Vector(in, dims)
		var emb any = vec
		if format == "base64" {
			buf := make([]byte, 4*len(vec))
			for j, v := range vec {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(v))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": emb})
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": model, "usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens}})
}

// stubCall is one tool call of the stub's answer.
type stubCall struct{ id, name, arguments string }

// toolCalls is the answer's tool calls, or none when the request has no
// tools, tool_choice is "none" or the last message is not a user message.
func toolCalls(body map[string]any) []stubCall {
	tools, _ := body["tools"].([]any)
	msgs, _ := body["messages"].([]any)
	if len(tools) == 0 || len(msgs) == 0 {
		return nil
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if role, _ := last["role"].(string); role != "user" {
		return nil
	}
	text := contentText(last["content"])
	name := func(t any) string {
		tm, _ := t.(map[string]any)
		fn, _ := tm["function"].(map[string]any)
		n, _ := fn["name"].(string)
		return n
	}
	names := []string{name(tools[0])}
	switch choice := body["tool_choice"].(type) {
	case string:
		if choice == "none" {
			return nil
		}
		if choice == "required" && body["parallel_tool_calls"] != false {
			names = names[:0]
			for _, t := range tools {
				names = append(names, name(t))
			}
		}
	case map[string]any:
		fn, _ := choice["function"].(map[string]any)
		if n, _ := fn["name"].(string); n != "" {
			names = []string{n}
		}
	}
	args, _ := json.Marshal(map[string]string{"query": text})
	if strings.Contains(text, InvalidArgumentsTrigger) {
		args, _ = json.Marshal(map[string]int{"query": len(text)})
	}
	out := make([]stubCall, len(names))
	for i, n := range names {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d:%s:%s", i, n, text)
		out[i] = stubCall{id: fmt.Sprintf("call_%016x", h.Sum64()), name: n, arguments: string(args)}
	}
	return out
}

// InvalidArgumentsTrigger, in the last user message, makes the stub's
// calls carry arguments of the wrong type ({"query": <a number>}), as an
// upstream that does not enforce strict tool schemas might.
const InvalidArgumentsTrigger = "[invalid-arguments]"

// PreambleTrigger, in the last user message of a request the stub answers
// with tool calls, gives the answer Preamble as its text before the calls
// (as models often write a line before calling a tool); a stream sends the
// text first.
const PreambleTrigger = "[preamble]"

// Preamble is the text of an answer with PreambleTrigger.
const Preamble = "Let me look that up."

// RefusalTrigger, in the last user message, makes the answer a refusal
// (Refusal) instead of content: OpenAI's message.refusal, content null,
// which a model gives instead of the JSON a json_schema response_format
// asks for.
const RefusalTrigger = "[refuse]"

// Refusal is the refusal of an answer with RefusalTrigger.
const Refusal = "I can't help with that."

// refuses says the last message holds RefusalTrigger.
func refuses(body map[string]any) bool {
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return false
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	return strings.Contains(contentText(last["content"]), RefusalTrigger)
}

// preamble is the answer's text before its calls: Preamble when the last
// message holds PreambleTrigger, else "".
func preamble(body map[string]any) string {
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return ""
	}
	last, _ := msgs[len(msgs)-1].(map[string]any)
	if strings.Contains(contentText(last["content"]), PreambleTrigger) {
		return Preamble
	}
	return ""
}

// toolResults quotes the tool messages that end msgs, naming each call's
// function; "" when the last message is not a tool message.
func toolResults(msgs []any) string {
	end := len(msgs)
	for end > 0 {
		m, _ := msgs[end-1].(map[string]any)
		if role, _ := m["role"].(string); role != "tool" {
			break
		}
		end--
	}
	if end == len(msgs) {
		return ""
	}
	names := map[string]string{}
	if end > 0 {
		a, _ := msgs[end-1].(map[string]any)
		calls, _ := a["tool_calls"].([]any)
		for _, c := range calls {
			cm, _ := c.(map[string]any)
			fn, _ := cm["function"].(map[string]any)
			id, _ := cm["id"].(string)
			names[id], _ = fn["name"].(string)
		}
	}
	var parts []string
	for _, m := range msgs[end:] {
		mm, _ := m.(map[string]any)
		id, _ := mm["tool_call_id"].(string)
		parts = append(parts, fmt.Sprintf("tool %s returned: %s", names[id], contentText(mm["content"])))
	}
	return strings.Join(parts, "; ")
}

// contentText is a message's content: a string or parts. An image part
// reads as "[image TYPE N bytes]" (a data: URL, N the decoded size) or
// "[image URL]", so that a reply shows what image reached the stub.
func contentText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var b strings.Builder
		for _, p := range c {
			pm, _ := p.(map[string]any)
			if pm["type"] == "image_url" {
				b.WriteString(imageText(pm))
				continue
			}
			if pm["type"] == "file" {
				b.WriteString(fileText(pm))
				continue
			}
			t, _ := pm["text"].(string)
			b.WriteString(t)
		}
		return b.String()
	}
	return ""
}

// imageText describes an image part: "[image TYPE N bytes]" for a data:
// URL, "[image URL]" otherwise.
func imageText(part map[string]any) string {
	iu, _ := part["image_url"].(map[string]any)
	u, _ := iu["url"].(string)
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, _ := strings.Cut(rest, ",")
		mediaType, _, _ := strings.Cut(meta, ";")
		raw, _ := base64.StdEncoding.DecodeString(data)
		return fmt.Sprintf("[image %s %d bytes]", mediaType, len(raw))
	}
	return "[image " + u + "]"
}

// checkImages answers what OpenAI answers with a 400 about image parts:
// an image in a message that is not the user's, a part without a URL, a
// data: URL that is not a base64 image. It returns the param, code and
// message, or "" when the request is fine.
func checkImages(body map[string]any) (param, code, msg string) {
	return eachPart(body, "image_url", func(i, j int, role any, pm map[string]any) (string, string, string) {
		at := fmt.Sprintf("messages.[%d].content.[%d].image_url", i, j)
		if role != "user" {
			return at, "", fmt.Sprintf("Invalid 'messages[%d]'. Image URLs are only allowed for messages with role 'user', but this message with role '%v' contains an image URL.", i, role)
		}
		iu, _ := pm["image_url"].(map[string]any)
		u, _ := iu["url"].(string)
		if u == "" {
			return at + ".url", "", "Missing required parameter: '" + at + ".url'."
		}
		if d, ok := iu["detail"]; ok && d != "auto" && d != "low" && d != "high" {
			return at + ".detail", "invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'auto', 'low', and 'high'.", d)
		}
		rest, isData := strings.CutPrefix(u, "data:")
		if !isData {
			if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
				return at + ".url", "invalid_image_url", "Invalid image URL: expected an http(s) URL or a base64-encoded data URL."
			}
			return "", "", ""
		}
		meta, data, _ := strings.Cut(rest, ",")
		mediaType, enc, _ := strings.Cut(meta, ";")
		if _, err := base64.StdEncoding.DecodeString(data); err != nil || enc != "base64" || !strings.HasPrefix(mediaType, "image/") {
			return at + ".url", "invalid_image_format", "Invalid image URL: expected a base64-encoded data URL with an image MIME type (e.g. 'data:image/png;base64,...')."
		}
		return "", "", ""
	})
}

// eachPart calls check with each content part of type typ in body's
// messages (the message's index and role, the part's index) and returns
// the first refusal (param, code, message) it gives, or "" when none.
func eachPart(body map[string]any, typ string, check func(i, j int, role any, part map[string]any) (string, string, string)) (param, code, msg string) {
	msgs, _ := body["messages"].([]any)
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		parts, _ := mm["content"].([]any)
		for j, p := range parts {
			pm, _ := p.(map[string]any)
			if pm["type"] != typ {
				continue
			}
			if param, code, msg = check(i, j, mm["role"], pm); param != "" || msg != "" {
				return param, code, msg
			}
		}
	}
	return "", "", ""
}

// fileText describes a file part: "[file NAME N bytes]", N the decoded
// size of its data: URL.
func fileText(part map[string]any) string {
	f, _ := part["file"].(map[string]any)
	name, _ := f["filename"].(string)
	u, _ := f["file_data"].(string)
	_, data, _ := strings.Cut(u, ",")
	raw, _ := base64.StdEncoding.DecodeString(data)
	return fmt.Sprintf("[file %s %d bytes]", name, len(raw))
}

// checkFiles refuses with a 400 what OpenAI refuses in file parts: a
// file in a message that is not the user's, a part with neither
// file_data nor file_id, file_data without filename, file_data that is
// not a base64 data: URL of a PDF (the data must start with %PDF-). A
// file_id is refused too: the stub has no Files API. It returns the
// param, code and message, or "" when the request is fine.
func checkFiles(body map[string]any) (param, code, msg string) {
	return eachPart(body, "file", func(i, j int, role any, pm map[string]any) (string, string, string) {
		at := fmt.Sprintf("messages[%d].content[%d].file", i, j)
		if role != "user" {
			return fmt.Sprintf("messages[%d].content[%d].type", i, j), "invalid_value", fmt.Sprintf("Invalid value: 'file'. Supported values are: 'text' and 'refusal' in messages with role '%v'.", role)
		}
		f, ok := pm["file"].(map[string]any)
		if !ok {
			return at, "missing_required_parameter", "Missing required parameter: '" + at + "'."
		}
		if _, ok := f["file_id"]; ok {
			return at + ".file_id", "invalid_value", "Invalid 'file_id': the stub has no Files API."
		}
		u, _ := f["file_data"].(string)
		if u == "" {
			return at + ".file_id", "missing_required_parameter", "Missing required parameter: '" + at + ".file_id'."
		}
		if name, _ := f["filename"].(string); name == "" {
			return at + ".filename", "missing_required_parameter", "Missing required parameter: '" + at + ".filename'."
		}
		rest, isData := strings.CutPrefix(u, "data:")
		meta, data, _ := strings.Cut(rest, ",")
		mediaType, enc, _ := strings.Cut(meta, ";")
		raw, err := base64.StdEncoding.DecodeString(data)
		if !isData || enc != "base64" || err != nil || mediaType != "application/pdf" {
			return at + ".file_data", "invalid_value", "Invalid file data: expected a base64-encoded data URL with the application/pdf MIME type (e.g. 'data:application/pdf;base64,...')."
		}
		if !strings.HasPrefix(string(raw), "%PDF-") {
			return at + ".file_data", "invalid_value", "Invalid file data: the file is not a valid PDF."
		}
		return "", "", ""
	})
}

// checkTools answers what OpenAI answers with a 400 about tools: a
// function name off its pattern, and a tool message that answers no call
// of the assistant message before it. It returns the param and message,
// or "" when the request is fine.
func checkTools(body map[string]any) (param, msg string) {
	tools, _ := body["tools"].([]any)
	for i, t := range tools {
		tm, _ := t.(map[string]any)
		fn, _ := tm["function"].(map[string]any)
		n, _ := fn["name"].(string)
		if !validName(n) {
			p := fmt.Sprintf("tools[%d].function.name", i)
			return p, fmt.Sprintf("Invalid '%s': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", p)
		}
	}
	msgs, _ := body["messages"].([]any)
	var open map[string]bool // the last tool-calling assistant message's calls: id -> answered
	unanswered := func() string {
		var missing []string
		for id, done := range open {
			if !done {
				missing = append(missing, id)
			}
		}
		sort.Strings(missing)
		return strings.Join(missing, ", ")
	}
	for _, m := range msgs {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		if role == "tool" {
			id, _ := mm["tool_call_id"].(string)
			if _, ok := open[id]; !ok {
				return "messages", "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'."
			}
			open[id] = true
			continue
		}
		if missing := unanswered(); missing != "" {
			return "messages", "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + missing
		}
		open = nil
		if role == "assistant" {
			calls, _ := mm["tool_calls"].([]any)
			for _, c := range calls {
				cm, _ := c.(map[string]any)
				id, _ := cm["id"].(string)
				if open == nil {
					open = map[string]bool{}
				}
				open[id] = false
			}
		}
	}
	if missing := unanswered(); missing != "" {
		return "messages", "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: " + missing
	}
	return "", ""
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// fragments splits s into pieces of about n bytes, on rune boundaries.
func fragments(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		k := min(n, len(s))
		for k < len(s) && !utf8.RuneStart(s[k]) {
			k++
		}
		out = append(out, s[:k])
		s = s[k:]
	}
	return out
}

// chatParams are the chat.completions parameters OpenAI knows; the stub
// refuses any other, as OpenAI does.
var chatParams = map[string]bool{
	"model": true, "messages": true, "temperature": true, "top_p": true, "max_tokens": true, "max_completion_tokens": true,
	"stop": true, "seed": true, "user": true, "response_format": true, "stream": true, "stream_options": true,
	"tools": true, "tool_choice": true, "parallel_tool_calls": true, "functions": true, "function_call": true,
	"presence_penalty": true, "frequency_penalty": true, "reasoning_effort": true, "logprobs": true, "top_logprobs": true,
	"n": true, "logit_bias": true, "metadata": true, "store": true, "service_tier": true, "modalities": true, "audio": true,
	"prediction": true, "web_search_options": true, "safety_identifier": true, "prompt_cache_key": true, "verbosity": true,
}

// Reasoning reports whether the stub treats model as one of OpenAI's
// reasoning models: an id starting with "o" and a digit (o1, o3-mini,
// o4-mini) or with "gpt-5".
func Reasoning(model string) bool {
	return len(model) > 1 && model[0] == 'o' && model[1] >= '0' && model[1] <= '9' || strings.HasPrefix(model, "gpt-5")
}

// checkParams answers what OpenAI answers with a 400 about the request's
// parameters: param, code and message, or "" when they are fine.
func checkParams(body map[string]any, model string) (param, code, msg string) {
	names := make([]string, 0, len(body))
	for k := range body {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if !chatParams[k] {
			return "", "", "Unrecognized request argument supplied: " + k
		}
	}
	_, maxTokens := body["max_tokens"]
	if _, mct := body["max_completion_tokens"]; maxTokens && mct {
		return "max_tokens", "invalid_parameter_combination", "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported."
	}
	if maxTokens && Reasoning(model) {
		return "max_tokens", "unsupported_parameter", "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
	}
	if _, ok := body["reasoning_effort"]; ok && !Reasoning(model) {
		return "reasoning_effort", "unsupported_parameter", "Unsupported parameter: 'reasoning_effort' is not supported with this model."
	}
	if v, ok := body["reasoning_effort"]; ok {
		switch v {
		case "none", "minimal", "low", "medium", "high", "xhigh":
		default:
			return "reasoning_effort", "invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'.", v)
		}
	}
	for _, p := range []string{"presence_penalty", "frequency_penalty"} {
		v, ok := body[p]
		if !ok {
			continue
		}
		f, isNum := v.(float64)
		switch {
		case !isNum:
			return p, "invalid_type", fmt.Sprintf("Invalid type for '%s': expected a decimal, but got %T instead.", p, v)
		case f > 2:
			return p, "decimal_above_max_value", fmt.Sprintf("Invalid '%s': decimal above maximum value. Expected a value <= 2, but got %v instead.", p, f)
		case f < -2:
			return p, "decimal_below_min_value", fmt.Sprintf("Invalid '%s': decimal below minimum value. Expected a value >= -2, but got %v instead.", p, f)
		}
	}
	if param, code, msg := checkPassThrough(body); msg != "" {
		return param, code, msg
	}
	if v, ok := body["top_logprobs"]; ok {
		n, _ := v.(float64)
		switch {
		case n > 20:
			return "top_logprobs", "integer_above_max_value", fmt.Sprintf("Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got %v instead.", n)
		case n < 0:
			return "top_logprobs", "integer_below_min_value", fmt.Sprintf("Invalid 'top_logprobs': integer below minimum value. Expected a value >= 0, but got %v instead.", n)
		case body["logprobs"] != true:
			return "top_logprobs", "invalid_value", "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used."
		}
	}
	return "", "", ""
}

// topLogprobs is the request's top_logprobs (0 when absent).
func topLogprobs(body map[string]any) int {
	n, _ := body["top_logprobs"].(float64)
	return int(n)
}

// Logprobs is the stub's logprobs of an answer's content with top
// alternatives per token, in OpenAI's shape (choices[].logprobs.content):
// the content split after each space, token i with logprob -(i+1)/8.
func Logprobs(content string, top int) []any {
	out := []any{}
	if content == "" {
		return out
	}
	for i, tok := range strings.SplitAfter(content, " ") {
		if tok == "" {
			continue
		}
		out = append(out, tokenLogprob(tok, i, top))
	}
	return out
}

func tokenLogprob(tok string, i, top int) any {
	lp := -float64(i+1) / 8
	alts := []any{}
	for k := range top {
		alt := tok
		if k > 0 {
			alt = fmt.Sprintf("<%d>%s", k, tok)
		}
		alts = append(alts, map[string]any{"token": alt, "logprob": lp - float64(k), "bytes": byteList(alt)})
	}
	return map[string]any{"token": tok, "logprob": lp, "bytes": byteList(tok), "top_logprobs": alts}
}

// byteList is s's UTF-8 bytes as OpenAI writes them: a list of integers.
func byteList(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

// jsonTypeName names a decoded JSON value's type as OpenAI's messages do.
func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	}
	return "an object"
}

func invalidType(param, want string, v any) (string, string, string) {
	return param, "invalid_type", fmt.Sprintf("Invalid type for '%s': expected %s, but got %s instead.", param, want, jsonTypeName(v))
}

func oneOf(param string, v any, values ...string) (string, string, string) {
	s, ok := v.(string)
	if !ok {
		return invalidType(param, "one of "+strings.Join(values, ", "), v)
	}
	for _, w := range values {
		if s == w {
			return "", "", ""
		}
	}
	quoted := make([]string, len(values))
	for i, w := range values {
		quoted[i] = "'" + w + "'"
	}
	return param, "invalid_value", fmt.Sprintf("Invalid value: '%s'. Supported values are: %s and %s.", s, strings.Join(quoted[:len(quoted)-1], ", "), quoted[len(quoted)-1])
}

// checkPassThrough checks the parameters the gateway passes through
// without interpreting them, as OpenAI documents them: logit_bias an
// object of token ids to numbers from -100 to 100; store a boolean;
// metadata at most 16 string values, keys of at most 64 characters,
// values of at most 512; service_tier auto, default, flex, scale or
// priority; verbosity low, medium or high; prediction {"type": "content",
// "content": a string or text parts}; prompt_cache_key and
// safety_identifier strings. null is taken as absent.
func checkPassThrough(body map[string]any) (param, code, msg string) {
	if v, ok := body["logit_bias"]; ok && v != nil {
		m, isObj := v.(map[string]any)
		if !isObj {
			return invalidType("logit_bias", "an object", v)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if k == "" || strings.Trim(k, "0123456789") != "" {
				return "logit_bias", "invalid_value", fmt.Sprintf("Invalid key in 'logit_bias': %s. You should only be submitting non-negative integers.", k)
			}
			f, isNum := m[k].(float64)
			if !isNum {
				return invalidType("logit_bias."+k, "a number", m[k])
			}
			if f < -100 || f > 100 {
				return "logit_bias", "invalid_value", fmt.Sprintf("Invalid 'logit_bias' value for token %s: %v. Values must be between -100 and 100.", k, f)
			}
		}
	}
	if v, ok := body["store"]; ok && v != nil {
		if _, isBool := v.(bool); !isBool {
			return invalidType("store", "a boolean", v)
		}
	}
	if v, ok := body["metadata"]; ok && v != nil {
		m, isObj := v.(map[string]any)
		if !isObj {
			return invalidType("metadata", "an object", v)
		}
		if len(m) > 16 {
			return "metadata", "object_above_max_properties", fmt.Sprintf("Invalid 'metadata': too many properties. Expected an object with at most 16 properties, but got an object with %d properties instead.", len(m))
		}
		for k, mv := range m {
			if n := utf8.RuneCountInString(k); n > 64 {
				return "metadata", "invalid_value", fmt.Sprintf("Invalid 'metadata': key '%s' is too long. Expected a maximum length of 64, but got %d instead.", k, n)
			}
			s, isStr := mv.(string)
			if !isStr {
				return invalidType("metadata."+k, "a string", mv)
			}
			if n := utf8.RuneCountInString(s); n > 512 {
				return "metadata." + k, "string_above_max_length", fmt.Sprintf("Invalid 'metadata.%s': string too long. Expected a string with maximum length 512, but got a string with length %d instead.", k, n)
			}
		}
	}
	if v, ok := body["service_tier"]; ok && v != nil {
		if p, c, m := oneOf("service_tier", v, "auto", "default", "flex", "scale", "priority"); m != "" {
			return p, c, m
		}
	}
	if v, ok := body["verbosity"]; ok && v != nil {
		if p, c, m := oneOf("verbosity", v, "low", "medium", "high"); m != "" {
			return p, c, m
		}
	}
	for _, p := range []string{"prompt_cache_key", "safety_identifier"} {
		if v, ok := body[p]; ok && v != nil {
			if _, isStr := v.(string); !isStr {
				return invalidType(p, "a string", v)
			}
		}
	}
	if v, ok := body["prediction"]; ok && v != nil {
		m, isObj := v.(map[string]any)
		if !isObj {
			return invalidType("prediction", "an object", v)
		}
		for k := range m {
			if k != "type" && k != "content" {
				return "prediction." + k, "unknown_parameter", fmt.Sprintf("Unknown parameter: 'prediction.%s'.", k)
			}
		}
		if m["type"] != "content" {
			return "prediction.type", "invalid_value", fmt.Sprintf("Invalid value: '%v'. Supported values are: 'content'.", m["type"])
		}
		switch c := m["content"].(type) {
		case string:
		case []any:
			for i, part := range c {
				pm, _ := part.(map[string]any)
				if _, isStr := pm["text"].(string); pm["type"] != "text" || !isStr || len(pm) != 2 {
					return fmt.Sprintf("prediction.content[%d]", i), "invalid_value", fmt.Sprintf("Invalid 'prediction.content[%d]': expected a text content part {\"type\": \"text\", \"text\": string}.", i)
				}
			}
		case nil:
			return "prediction.content", "missing_required_parameter", "Missing required parameter: 'prediction.content'."
		default:
			return invalidType("prediction.content", "a string or an array of content parts", c)
		}
	}
	return "", "", ""
}
