// Package anthropicstub is an upstream speaking Anthropic's Messages API
// (POST /v1/messages, streamed or not, POST /v1/messages/count_tokens,
// GET /v1/models) for Vigil's tests, with fault injection. Answers are
// deterministic: the reply echoes the last user message; tokens are
// whitespace-separated words.
//
// Tools: with tools defined (and tool_choice not none), a user turn
// without tool results is answered with a tool_use block (stop_reason
// tool_use) for the forced tool or else the first one, or for every tool
// when ParallelToolUse is set and disable_parallel_tool_use is not; its
// input puts the user's text in the schema's first property (by name), {}
// for a tool without properties. Under tool_choice auto a short text
// block comes first, as Claude writes. A user turn carrying tool_result
// blocks is answered with text quoting the results. Requests the real API
// refuses are refused the same way (400 invalid_request_error): roles not
// alternating, a tool without input_schema, tool_result blocks that do
// not answer the previous turn's tool_use ids or do not come first,
// tool_use ids left unanswered, tool blocks without tools defined.
// Image blocks in user turns are checked as the Messages API checks them
// (base64 with a JPEG, PNG, GIF or WebP media type and valid data, or an
// http(s) url) and read as "[image TYPE N bytes]" or "[image URL]" in the
// echo. Document blocks in user turns are checked likewise (a base64 PDF
// with media_type application/pdf that starts with %PDF-, or an http(s)
// url) and read as "[document TITLE N bytes]" or "[document URL]".
//
// Extended thinking: a thinking parameter is checked as the Messages API
// checks it (type enabled or disabled; enabled: an integer budget_tokens
// of at least 1024 and below max_tokens; no temperature other than 1, no
// top_k, no top_p below 0.95, no forced tool_choice any or tool; a
// request continuing a tool loop, its last user turn carrying tool
// results, whose assistant turn before does not start with a thinking or
// redacted_thinking block is refused). Assistant turns may carry thinking
// blocks (with a signature) and redacted_thinking blocks (with data),
// which must come back unchanged: a thinking block whose signature is not
// the one the stub gave its text is refused ("Invalid `signature` in
// `thinking` block"), as is redacted data the stub did not make. With
// thinking enabled the answer starts with a thinking block ("Thinking
// about: " and the user's text, signed with Signature(text)), whole or
// streamed (thinking_delta fragments, then one signature_delta), counted
// in output_tokens, before the text and tool_use blocks; when the user's
// text holds "[redacted-thinking]" a redacted_thinking block (data
// RedactedData(text), streamed whole in its content_block_start)
// follows the thinking block.
//
// Adaptive thinking: the models are told apart by their ids as
// Anthropic's are (ModelThinking): the adaptive-only models (Opus 4.7 and
// 4.8, Mythos, Fable, Opus 5, Sonnet 5) refuse thinking type enabled with
// the 400 Anthropic gives them ("\"thinking.type.enabled\" is not
// supported for this model. ..."), Mythos and Fable also type disabled;
// Opus 4.6 and Sonnet 4.6 take both; every other model (claude-test
// included) refuses type adaptive ("adaptive thinking is not supported
// on this model") and, but for Opus 4.5, output_config.effort ("This
// model does not support the effort parameter."). output_config.effort
// must be low, medium, high or max, and xhigh on the models that take it
// (not Opus 4.5, 4.6, Sonnet 4.6 or Mythos Preview; max not on Opus 4.5).
// Adaptive thinking takes no budget_tokens, and a display of summarized
// or omitted; it rules out what enabled thinking rules out (temperature,
// top_k, top_p, forced tools, a tool loop continued without its thinking
// blocks), and the stub's model always thinks under it, whatever the
// effort. Its display defaults to omitted on the adaptive-only models (as
// on Opus 4.7) and summarized on the others: omitted, the thinking block
// comes with an empty text (streamed: no thinking_delta, only the
// signature_delta) and an OmittedSignature that carries the thinking, as
// Anthropic's encrypted signatures do; such a block must come back with
// its empty text. The thinking's words count in output_tokens either way.
// Message texts: the refusals of enabled thinking on the adaptive-only
// models, of adaptive thinking and of the effort parameter on models
// without them are Anthropic's own, as clients logged them; the others
// (disabled thinking on Mythos and Fable, effort values, display) are
// paraphrased in the API's style. Not modelled: Opus 4.7's refusal of
// non-default temperature, top_p and top_k with or without thinking, and
// adaptive thinking skipping the thinking of simple requests at lower
// efforts.
//
// A top-level field the Messages API does not know (presence_penalty,
// logprobs, an OpenAI name such as max_completion_tokens) is refused as
// the real API refuses it: "NAME: Extra inputs are not permitted".
//
// The wire format follows Anthropic's: x-api-key and anthropic-version
// headers, a top-level system prompt, content blocks, error bodies
// {"type":"error","error":{"type","message"}}, and the stream's named
// events message_start, content_block_start, ping, content_block_delta,
// content_block_stop, message_delta, message_stop (and error).
package anthropicstub

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Fault is one injected failure, consumed by the next request for its
// model.
type Fault struct {
	// Status, when set, answers with this status and an error body of
	// Type (defaults by status) and Message.
	Status        int
	Type, Message string
	// ErrorCode, when set, is sent as error.details.error_code (as on a
	// spend-limit 429: enforced_spend_limit_reached).
	ErrorCode  string
	RetryAfter string
	// StreamErrorAfter, for a stream, sends an error event after this many
	// content deltas (text, or a tool call's input fragments).
	StreamErrorAfter int
}

// Server is the stub.
type Server struct {
	APIKey string
	Models []string
	// ParallelToolUse makes the model call every tool at once unless a
	// tool is forced or the request sets disable_parallel_tool_use.
	ParallelToolUse bool

	mu       sync.Mutex
	faults   map[string][]Fault
	calls    map[string]int
	requests map[string]map[string]any
	all      map[string][]map[string]any
}

// New returns a stub serving models.
func New(models ...string) *Server {
	return &Server{Models: models, faults: map[string][]Fault{}, calls: map[string]int{}, requests: map[string]map[string]any{}, all: map[string][]map[string]any{}}
}

// Fail queues faults for model.
func (s *Server) Fail(model string, f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[model] = append(s.faults[model], f...)
}

// Calls counts requests for model on path.
func (s *Server) Calls(path, model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[path+" "+model]
}

// Requests are the bodies sent for model on path, in order.
func (s *Server) Requests(path, model string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.all[path+" "+model]...)
}

// LastRequest is the last body sent for model on path.
func (s *Server) LastRequest(path, model string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path+" "+model]
}

func writeError(w http.ResponseWriter, status int, typ, msg string, code ...string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	e := map[string]any{"type": typ, "message": msg}
	if len(code) > 0 && code[0] != "" {
		e["details"] = map[string]any{"error_code": code[0]}
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": e})
}

func defaultType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

// ServeHTTP routes the Messages API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.APIKey != "" && r.Header.Get("x-api-key") != s.APIKey {
		writeError(w, 401, "authentication_error", "invalid x-api-key")
		return
	}
	if r.Header.Get("anthropic-version") == "" {
		writeError(w, 400, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	w.Header().Set("request-id", "req_stub")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/models":
		data := []map[string]any{}
		for _, m := range s.Models {
			data = append(data, map[string]any{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"data": data, "has_more": false, "first_id": nil, "last_id": nil})
	case r.Method == http.MethodPost && (r.URL.Path == "/v1/messages" || r.URL.Path == "/v1/messages/count_tokens"):
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, 400, "invalid_request_error", "invalid JSON body")
			return
		}
		model, _ := body["model"].(string)
		s.mu.Lock()
		s.calls[r.URL.Path+" "+model]++
		s.requests[r.URL.Path+" "+model] = body
		s.all[r.URL.Path+" "+model] = append(s.all[r.URL.Path+" "+model], body)
		var f Fault
		faulty := false
		if q := s.faults[model]; len(q) > 0 {
			f, faulty, s.faults[model] = q[0], true, q[1:]
		}
		s.mu.Unlock()
		if faulty && f.Status != 0 {
			if f.RetryAfter != "" {
				w.Header().Set("retry-after", f.RetryAfter)
			}
			typ, msg := f.Type, f.Message
			if typ == "" {
				typ = defaultType(f.Status)
			}
			if msg == "" {
				msg = fmt.Sprintf("injected fault: HTTP %d", f.Status)
			}
			writeError(w, f.Status, typ, msg, f.ErrorCode)
			return
		}
		if !s.known(model) {
			writeError(w, 404, "not_found_error", "model: "+model)
			return
		}
		if k := unknownField(r.URL.Path, body); k != "" {
			writeError(w, 400, "invalid_request_error", k+": Extra inputs are not permitted")
			return
		}
		if _, ok := body["max_tokens"]; !ok && r.URL.Path == "/v1/messages" {
			writeError(w, 400, "invalid_request_error", "max_tokens: Field required")
			return
		}
		a, err := s.reply(body)
		if err != nil {
			writeError(w, 400, "invalid_request_error", err.Error())
			return
		}
		if r.URL.Path == "/v1/messages/count_tokens" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"input_tokens": a.inTokens})
			return
		}
		if stream, _ := body["stream"].(bool); stream {
			s.stream(w, model, a, f, faulty)
			return
		}
		content := []any{}
		switch {
		case a.thinking != "" && a.omitted:
			content = append(content, map[string]any{"type": "thinking", "thinking": "", "signature": OmittedSignature(a.thinking)})
		case a.thinking != "":
			content = append(content, map[string]any{"type": "thinking", "thinking": a.thinking, "signature": Signature(a.thinking)})
		}
		if a.redacted != "" {
			content = append(content, map[string]any{"type": "redacted_thinking", "data": a.redacted})
		}
		if a.text != "" {
			content = append(content, map[string]any{"type": "text", "text": a.text})
		}
		for _, c := range a.calls {
			content = append(content, map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": c.input})
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "msg_stub", "type": "message", "role": "assistant", "model": model,
			"content": content, "stop_reason": a.stop, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": a.inTokens, "output_tokens": a.outTokens()},
		})
	default:
		writeError(w, 404, "not_found_error", "Not found: "+r.URL.Path)
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

// refuse is a 400 invalid_request_error's message, worded as the real
// API words it (capitals and full stops included).
func refuse(format string, args ...any) error { return fmt.Errorf(format, args...) }

// toolUse is one call the stub's model makes.
type toolUse struct {
	id, name string
	input    map[string]any
}

// Signature is the signature the stub gives a thinking block's text (a
// keyed hash, base64 as Anthropic's are): the block comes back with it,
// unchanged, or is refused.
func Signature(thinking string) string {
	sum := sha256.Sum256([]byte("anthropicstub thinking\x00" + thinking))
	return "EqQB" + base64.StdEncoding.EncodeToString(sum[:24])
}

// OmittedSignature is the signature of a thinking block whose text was
// omitted (display omitted): it carries the thinking (base64, with a
// keyed hash), as Anthropic's encrypted signatures do, so that the block
// comes back with an empty text.
func OmittedSignature(thinking string) string {
	s := base64.StdEncoding.EncodeToString([]byte(thinking))
	sum := sha256.Sum256([]byte("anthropicstub omitted\x00" + s))
	return "EqQO" + s + "." + base64.StdEncoding.EncodeToString(sum[:12])
}

// validSignature says whether sig is the one the stub gave a thinking
// block sent back with text: Signature(text), or an OmittedSignature
// with the text empty.
func validSignature(text, sig string) bool {
	if sig == Signature(text) {
		return true
	}
	body, ok := strings.CutPrefix(sig, "EqQO")
	s, _, cut := strings.Cut(body, ".")
	if !ok || !cut || text != "" {
		return false
	}
	seed, err := base64.StdEncoding.DecodeString(s)
	return err == nil && OmittedSignature(string(seed)) == sig
}

// RedactedData is the data of the redacted_thinking block the stub adds
// after thinking (the text of the user's turn it answers): opaque, and
// checked when it comes back.
func RedactedData(seed string) string {
	s := base64.StdEncoding.EncodeToString([]byte(seed))
	sum := sha256.Sum256([]byte("anthropicstub redacted\x00" + s))
	return "EmwKAhgB" + s + "." + base64.StdEncoding.EncodeToString(sum[:12])
}

// validRedacted says whether data is one the stub made.
func validRedacted(data string) bool {
	body, ok := strings.CutPrefix(data, "EmwKAhgB")
	s, _, cut := strings.Cut(body, ".")
	if !ok || !cut {
		return false
	}
	seed, err := base64.StdEncoding.DecodeString(s)
	return err == nil && RedactedData(string(seed)) == data
}

// answer is the stub's reply: thinking, text, then tool calls.
type answer struct {
	thinking string
	// omitted: the thinking block is sent with an empty text and an
	// OmittedSignature (display omitted).
	omitted bool
	// redacted is the data of a redacted_thinking block after the
	// thinking block ("": none).
	redacted string
	text     string
	calls    []toolUse
	stop     string
	inTokens int
}

func (a answer) outTokens() int {
	n := len(strings.Fields(a.thinking)) + len(strings.Fields(a.text))
	if a.redacted != "" {
		n += 8
	}
	for _, c := range a.calls {
		b, _ := json.Marshal(c.input)
		n += len(strings.Fields(string(b)))
	}
	return n
}

var (
	toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	toolIDRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// tool is a tool of the request, as the stub needs it.
type tool struct {
	name  string
	props []string // the input_schema's properties, sorted
}

// tools checks the request's tools and tool_choice as Anthropic does and
// returns the tools, the choice's type ("" when none was sent), the forced
// tool's name and whether parallel use was disabled.
func tools(body map[string]any) (ts []tool, choice, forced string, noParallel bool, err error) {
	raw, set := body["tools"]
	list, ok := raw.([]any)
	if set && !ok {
		return nil, "", "", false, refuse("tools: Input should be a valid list")
	}
	seen := map[string]bool{}
	for i, t := range list {
		tm, _ := t.(map[string]any)
		name, _ := tm["name"].(string)
		if !toolNameRE.MatchString(name) {
			return nil, "", "", false, refuse("tools.%d.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'", i)
		}
		if seen[name] {
			return nil, "", "", false, refuse("tools: Tool names must be unique.")
		}
		seen[name] = true
		schema, ok := tm["input_schema"]
		if !ok {
			return nil, "", "", false, refuse("tools.%d.custom.input_schema: Field required", i)
		}
		sm, ok := schema.(map[string]any)
		if !ok || sm["type"] != "object" {
			return nil, "", "", false, refuse("tools.%d.custom.input_schema.type: Input should be 'object'", i)
		}
		if d, ok := tm["description"]; ok {
			if _, isStr := d.(string); !isStr {
				return nil, "", "", false, refuse("tools.%d.custom.description: Input should be a valid string", i)
			}
		}
		var props []string
		pm, _ := sm["properties"].(map[string]any)
		for p := range pm {
			props = append(props, p)
		}
		sort.Strings(props)
		ts = append(ts, tool{name: name, props: props})
	}
	rc, set := body["tool_choice"]
	if !set {
		return ts, "", "", false, nil
	}
	tc, ok := rc.(map[string]any)
	if !ok {
		return nil, "", "", false, refuse("tool_choice: Input should be a valid dictionary")
	}
	if len(ts) == 0 {
		return nil, "", "", false, refuse("tool_choice: tool_choice may only be specified while providing tools.")
	}
	choice, _ = tc["type"].(string)
	for k, v := range tc {
		switch {
		case k == "type":
		case k == "disable_parallel_tool_use" && choice != "none":
			b, ok := v.(bool)
			if !ok {
				return nil, "", "", false, refuse("tool_choice.%s.disable_parallel_tool_use: Input should be a valid boolean", choice)
			}
			noParallel = b
		case k == "name" && choice == "tool":
		default:
			return nil, "", "", false, refuse("tool_choice.%s.%s: Extra inputs are not permitted", choice, k)
		}
	}
	switch choice {
	case "auto", "any", "none":
	case "tool":
		forced, _ = tc["name"].(string)
		if !seen[forced] {
			return nil, "", "", false, refuse("tool_choice.tool.name: tool %q is not among the tools", forced)
		}
	default:
		return nil, "", "", false, refuse("tool_choice: Input tag '%s' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'", choice)
	}
	return ts, choice, forced, noParallel, nil
}

// readImage checks an image block's source as the Messages API does and
// describes it for the echo: "[image TYPE N bytes]" for base64 data (N
// decoded), "[image URL]" for a URL source.
func readImage(at string, b map[string]any) (string, error) {
	src, ok := b["source"].(map[string]any)
	if !ok {
		return "", refuse("%s.image.source: Field required", at)
	}
	switch src["type"] {
	case "base64":
		mt, _ := src["media_type"].(string)
		if !contains([]string{"image/jpeg", "image/png", "image/gif", "image/webp"}, mt) {
			return "", refuse("%s.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'", at)
		}
		data, _ := src["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || data == "" {
			return "", refuse("%s.image.source.base64.data: invalid base64 data", at)
		}
		return fmt.Sprintf("[image %s %d bytes]", mt, len(raw)), nil
	case "url":
		u, _ := src["url"].(string)
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return "", refuse("%s.image.source.url.url: Input should be a valid URL", at)
		}
		return "[image " + u + "]", nil
	}
	return "", refuse("%s.image.source: Input tag '%v' found using 'type' does not match any of the expected tags: 'base64', 'url'", at, src["type"])
}

// readDocument checks a document block's source as the Messages API does
// for PDFs (base64 data with media_type application/pdf, a PDF file, or
// an http(s) url) and describes it for the echo: "[document TITLE N
// bytes]" (N decoded) or "[document URL]".
func readDocument(at string, b map[string]any) (string, error) {
	src, ok := b["source"].(map[string]any)
	if !ok {
		return "", refuse("%s.document.source: Field required", at)
	}
	if t, ok := b["title"]; ok {
		if _, isStr := t.(string); !isStr {
			return "", refuse("%s.document.title: Input should be a valid string", at)
		}
	}
	title, _ := b["title"].(string)
	switch src["type"] {
	case "base64":
		if mt, _ := src["media_type"].(string); mt != "application/pdf" {
			return "", refuse("%s.document.source.base64.media_type: Input should be 'application/pdf'", at)
		}
		data, _ := src["data"].(string)
		raw, err := base64.StdEncoding.DecodeString(data)
		if err != nil || data == "" {
			return "", refuse("%s.document.source.base64.data: invalid base64 data", at)
		}
		if !strings.HasPrefix(string(raw), "%PDF-") {
			return "", refuse("%s.document.source.base64.data: The PDF specified was not valid.", at)
		}
		return fmt.Sprintf("[document %s %d bytes]", title, len(raw)), nil
	case "url":
		u, _ := src["url"].(string)
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			return "", refuse("%s.document.source.url.url: Input should be a valid URL", at)
		}
		return "[document " + u + "]", nil
	}
	return "", refuse("%s.document.source: Input tag '%v' found using 'type' does not match any of the expected tags: 'base64', 'content', 'text', 'url'", at, src["type"])
}

// turn is one message as the stub reads it.
type turn struct {
	role    string
	text    string   // its text blocks (or string content), joined
	uses    []string // tool_use ids, in an assistant turn
	results []string // tool_result contents, in a user turn
	first   string   // the type of its first block ("text" for string content)
	// thinking are an assistant turn's thinking and redacted_thinking
	// blocks, checked, in order.
	thinking []map[string]any
}

// readTurn checks one message's content blocks as Anthropic does and
// checks its tool_result blocks answer prev's tool_use ids.
func readTurn(i int, role string, content any, prev *turn) (turn, error) {
	t := turn{role: role}
	switch c := content.(type) {
	case string:
		t.text, t.first = c, "text"
		if prev != nil && len(prev.uses) > 0 {
			return t, refuse("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(prev.uses, ", "))
		}
		return t, nil
	case []any:
		answered := map[string]bool{}
		for j, b := range c {
			bm, _ := b.(map[string]any)
			typ, _ := bm["type"].(string)
			at := fmt.Sprintf("messages.%d.content.%d", i, j)
			if j == 0 {
				t.first = typ
			}
			switch {
			case typ == "thinking" && role == "assistant":
				text, ok := bm["thinking"].(string)
				if !ok {
					return t, refuse("%s.thinking.thinking: Field required", at)
				}
				sig, _ := bm["signature"].(string)
				if sig == "" {
					return t, refuse("%s.thinking.signature: Field required", at)
				}
				if !validSignature(text, sig) {
					return t, refuse("%s: Invalid `signature` in `thinking` block", at)
				}
				t.thinking = append(t.thinking, map[string]any{"type": "thinking", "thinking": text, "signature": sig})
			case typ == "redacted_thinking" && role == "assistant":
				d, _ := bm["data"].(string)
				if d == "" {
					return t, refuse("%s.redacted_thinking.data: Field required", at)
				}
				if !validRedacted(d) {
					return t, refuse("%s: Invalid `data` in `redacted_thinking` block", at)
				}
				t.thinking = append(t.thinking, map[string]any{"type": "redacted_thinking", "data": d})
			case typ == "text":
				s, ok := bm["text"].(string)
				if !ok {
					return t, refuse("%s.text.text: Field required", at)
				}
				if s == "" {
					return t, refuse("messages: text content blocks must be non-empty")
				}
				if strings.TrimSpace(s) == "" {
					return t, refuse("messages: text content blocks must contain non-whitespace text")
				}
				t.text += s
			case typ == "image" && role == "user":
				desc, err := readImage(at, bm)
				if err != nil {
					return t, err
				}
				t.text += desc
			case typ == "document" && role == "user":
				desc, err := readDocument(at, bm)
				if err != nil {
					return t, err
				}
				t.text += desc
			case typ == "tool_use" && role == "assistant":
				id, _ := bm["id"].(string)
				name, _ := bm["name"].(string)
				if !toolIDRE.MatchString(id) {
					return t, refuse("%s.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'", at)
				}
				if name == "" {
					return t, refuse("%s.tool_use.name: Field required", at)
				}
				if _, ok := bm["input"].(map[string]any); !ok {
					return t, refuse("%s.tool_use.input: Input should be a valid dictionary", at)
				}
				t.uses = append(t.uses, id)
			case typ == "tool_result" && role == "user":
				if j != len(t.results) {
					return t, refuse("%s: tool_result blocks must come first in the user message's content, before any other block", at)
				}
				id, _ := bm["tool_use_id"].(string)
				if prev == nil || !contains(prev.uses, id) || answered[id] {
					return t, refuse("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", at, id)
				}
				answered[id] = true
				var text string
				switch rc := bm["content"].(type) {
				case nil:
				case string:
					text = rc
				case []any:
					for _, x := range rc {
						xm, _ := x.(map[string]any)
						s, _ := xm["text"].(string)
						text += s
					}
				default:
					return t, refuse("%s.tool_result.content: Input should be a valid string or list", at)
				}
				t.results = append(t.results, text)
			default:
				return t, refuse("%s: Input tag '%s' found using 'type' does not match any of the expected tags in a %s message", at, typ, role)
			}
		}
		if prev != nil {
			var missing []string
			for _, id := range prev.uses {
				if !answered[id] {
					missing = append(missing, id)
				}
			}
			if len(missing) > 0 {
				return t, refuse("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(missing, ", "))
			}
		}
		return t, nil
	}
	return t, refuse("messages.%d.content: Input should be a valid string or list", i)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// reply checks the request as Anthropic does (roles user and assistant
// only, starting with user, alternating; tools and tool blocks as in the
// package doc) and answers it.
func (s *Server) reply(body map[string]any) (answer, error) {
	var a answer
	switch sys := body["system"].(type) {
	case string:
		a.inTokens += len(strings.Fields(sys))
	case []any:
		for _, b := range sys {
			bm, _ := b.(map[string]any)
			t, _ := bm["text"].(string)
			a.inTokens += len(strings.Fields(t))
		}
	}
	ts, choice, forced, noParallel, err := tools(body)
	if err != nil {
		return a, err
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return a, refuse("messages: at least one message is required")
	}
	var turns []turn
	toolBlocks := false
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		if role != "user" && role != "assistant" {
			return a, refuse("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if i == 0 && role != "user" {
			return a, refuse("messages: first message must use the \"user\" role")
		}
		if i > 0 && role == turns[i-1].role {
			return a, refuse("messages: roles must alternate between \"user\" and \"assistant\"")
		}
		var prev *turn
		if i > 0 {
			prev = &turns[i-1]
		}
		t, err := readTurn(i, role, mm["content"], prev)
		if err != nil {
			return a, err
		}
		toolBlocks = toolBlocks || len(t.uses) > 0 || len(t.results) > 0
		a.inTokens += len(strings.Fields(t.text))
		for _, r := range t.results {
			a.inTokens += len(strings.Fields(r))
		}
		turns = append(turns, t)
	}
	if toolBlocks && len(ts) == 0 {
		return a, refuse("Requests which include `tool_use` or `tool_result` blocks must define tools.")
	}
	if n := len(turns); turns[n-1].role == "assistant" && len(turns[n-1].uses) > 0 {
		return a, refuse("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", n-1, strings.Join(turns[n-1].uses, ", "))
	}
	model, _ := body["model"].(string)
	thinking, omitted, err := thinkingOf(model, body, choice)
	if err != nil {
		return a, err
	}
	if n := len(turns); thinking && n >= 2 && len(turns[n-1].results) > 0 && turns[n-2].first != "thinking" && turns[n-2].first != "redacted_thinking" {
		return a, refuse("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `%s`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking", n-2, turns[n-2].first)
	}
	var last turn
	assistantTurns := 0
	for _, t := range turns {
		if t.role == "user" {
			last = t
		} else {
			assistantTurns++
		}
	}
	a.stop = "end_turn"
	switch {
	case len(last.results) > 0:
		a.text = "tool said: " + strings.Join(last.results, "; ")
		if last.text != "" {
			a.text += " (and you said: " + last.text + ")"
		}
	case len(ts) > 0 && choice != "none":
		var call []tool
		switch {
		case forced != "":
			for _, t := range ts {
				if t.name == forced {
					call = []tool{t}
				}
			}
		case s.ParallelToolUse && !noParallel:
			call = ts
		default:
			call = ts[:1]
		}
		var names []string
		for k, t := range call {
			input := map[string]any{}
			if len(t.props) > 0 {
				input[t.props[0]] = last.text
			}
			a.calls = append(a.calls, toolUse{id: fmt.Sprintf("toolu_stub_%d_%d", assistantTurns, k), name: t.name, input: input})
			names = append(names, t.name)
		}
		if choice == "" || choice == "auto" {
			a.text = "Let me call " + strings.Join(names, " and ") + "."
		}
		a.stop = "tool_use"
	default:
		a.text = "echo: " + last.text
	}
	if thinking {
		a.thinking, a.omitted = "Thinking about: "+last.text, omitted
		if strings.Contains(last.text, "[redacted-thinking]") {
			a.redacted = RedactedData(last.text)
		}
	}
	return a, nil
}

// thinkingDocs ends the refusals of thinking requests, as Anthropic's do.
const thinkingDocs = " Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"

// ModelThinking is what a model (by its id, as Anthropic names them)
// takes of thinking and effort, as Anthropic and AWS documented them in
// 2026 (see docs/gateway.md, "Extended thinking (Anthropic)").
type ModelThinking struct {
	// Adaptive: thinking type adaptive; AdaptiveOnly: not type enabled
	// (400); NoDisabled: not type disabled either.
	Adaptive, AdaptiveOnly, NoDisabled bool
	// Effort: output_config.effort (low, medium, high); Max, XHigh: the
	// levels above high.
	Effort, Max, XHigh bool
}

// Thinking says what model takes: the adaptive-only models are Opus 4.7
// and 4.8, Mythos (Preview, 5, 5.1), Fable 5 and 5.1, Opus 5 and
// Sonnet 5 (and their point releases); Opus 4.6 and Sonnet 4.6 take both
// shapes; Opus 4.5 takes effort (low, medium, high) but not adaptive;
// the others neither.
func Thinking(model string) ModelThinking {
	m := strings.ToLower(model)
	has := func(prefixes ...string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(m, p) {
				return true
			}
		}
		return false
	}
	switch {
	case has("claude-mythos-preview"):
		return ModelThinking{Adaptive: true, AdaptiveOnly: true, NoDisabled: true, Effort: true, Max: true}
	case has("claude-mythos", "claude-fable"):
		return ModelThinking{Adaptive: true, AdaptiveOnly: true, NoDisabled: true, Effort: true, Max: true, XHigh: true}
	case has("claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-sonnet-5"):
		return ModelThinking{Adaptive: true, AdaptiveOnly: true, Effort: true, Max: true, XHigh: true}
	case has("claude-opus-4-6", "claude-sonnet-4-6"):
		return ModelThinking{Adaptive: true, Effort: true, Max: true}
	case has("claude-opus-4-5"):
		return ModelThinking{Effort: true}
	}
	return ModelThinking{}
}

// effortOf checks the request's output_config as the Messages API does
// for a model that takes mt.
func effortOf(mt ModelThinking, body map[string]any) error {
	raw, set := body["output_config"]
	if !set {
		return nil
	}
	oc, ok := raw.(map[string]any)
	if !ok {
		return refuse("output_config: Input should be a valid dictionary")
	}
	for _, k := range slices.Sorted(maps.Keys(oc)) {
		if k != "effort" && k != "format" {
			return refuse("output_config.%s: Extra inputs are not permitted", k)
		}
	}
	e, set := oc["effort"]
	switch {
	case !set:
	case !mt.Effort:
		return refuse("This model does not support the effort parameter.")
	case e != "low" && e != "medium" && e != "high" && e != "xhigh" && e != "max":
		return refuse("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
	case e == "xhigh" && !mt.XHigh, e == "max" && !mt.Max:
		return refuse("output_config.effort: %q is not supported by this model", e)
	}
	return nil
}

// thinkingOf checks the request's thinking and output_config parameters,
// and the parameters thinking rules out, as the Messages API does for
// model, and says whether the model thinks and whether its thinking text
// is omitted. choice is the tool_choice type.
func thinkingOf(model string, body map[string]any, choice string) (thinking, omitted bool, err error) {
	mt := Thinking(model)
	raw, set := body["thinking"]
	if !set {
		return false, false, effortOf(mt, body)
	}
	th, ok := raw.(map[string]any)
	if !ok {
		return false, false, refuse("thinking: Input should be a valid dictionary")
	}
	switch th["type"] {
	case "disabled":
		if mt.NoDisabled {
			return false, false, refuse("\"thinking.type.disabled\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior.")
		}
		return false, false, effortOf(mt, body)
	case "enabled":
		if mt.AdaptiveOnly {
			return false, false, refuse("\"thinking.type.enabled\" is not supported for this model. Use \"thinking.type.adaptive\" and \"output_config.effort\" to control thinking behavior.")
		}
		budget, ok := th["budget_tokens"].(float64)
		if !ok || budget != float64(int64(budget)) {
			return false, false, refuse("thinking.enabled.budget_tokens: Input should be a valid integer")
		}
		if budget < 1024 {
			return false, false, refuse("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
		}
		if mt, ok := body["max_tokens"].(float64); ok && mt <= budget {
			return false, false, refuse("`max_tokens` must be greater than `thinking.budget_tokens`." + thinkingDocs)
		}
	case "adaptive":
		if !mt.Adaptive {
			return false, false, refuse("adaptive thinking is not supported on this model")
		}
		for _, k := range slices.Sorted(maps.Keys(th)) {
			if k != "type" && k != "display" {
				return false, false, refuse("thinking.adaptive.%s: Extra inputs are not permitted", k)
			}
		}
		omitted = mt.AdaptiveOnly
		if d, set := th["display"]; set {
			if d != "summarized" && d != "omitted" {
				return false, false, refuse("thinking.adaptive.display: Input should be 'summarized' or 'omitted'")
			}
			omitted = d == "omitted"
		}
	default:
		return false, false, refuse("thinking: Input tag '%v' found using 'type' does not match any of the expected tags: 'adaptive', 'disabled', 'enabled'", th["type"])
	}
	if err := effortOf(mt, body); err != nil {
		return false, false, err
	}
	if t, ok := body["temperature"]; ok && t != 1.0 {
		return false, false, refuse("`temperature` may only be set to 1 when thinking is enabled." + thinkingDocs)
	}
	if _, ok := body["top_k"]; ok {
		return false, false, refuse("`top_k` must be unset when thinking is enabled." + thinkingDocs)
	}
	if p, ok := body["top_p"].(float64); ok && p < 0.95 {
		return false, false, refuse("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled." + thinkingDocs)
	}
	if choice == "any" || choice == "tool" {
		return false, false, refuse("Thinking may not be enabled when tool_choice forces tool use." + thinkingDocs)
	}
	return true, omitted, nil
}

func (s *Server) stream(w http.ResponseWriter, model string, a answer, f Fault, faulty bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl, _ := w.(http.Flusher)
	event := func(name string, v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		if fl != nil {
			fl.Flush()
		}
	}
	event("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_stub", "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": a.inTokens, "output_tokens": 1}}})
	index, deltas := 0, 0
	// start opens a block; a ping follows the first, as the real API
	// sends one.
	start := func(block map[string]any) {
		event("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": block})
		if index == 0 {
			event("ping", map[string]any{"type": "ping"})
		}
	}
	// delta sends one content_block_delta, or the injected error event in
	// its place (false: the stream is over).
	delta := func(d map[string]any) bool {
		if faulty && f.StreamErrorAfter > 0 && deltas == f.StreamErrorAfter {
			event("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
			return false
		}
		deltas++
		event("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d})
		return true
	}
	if a.thinking != "" {
		start(map[string]any{"type": "thinking", "thinking": "", "signature": ""})
		sig := OmittedSignature(a.thinking)
		if !a.omitted {
			sig = Signature(a.thinking)
			for _, word := range strings.SplitAfter(a.thinking, " ") {
				if !delta(map[string]any{"type": "thinking_delta", "thinking": word}) {
					return
				}
			}
		}
		if !delta(map[string]any{"type": "signature_delta", "signature": sig}) {
			return
		}
		event("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	if a.redacted != "" {
		start(map[string]any{"type": "redacted_thinking", "data": a.redacted})
		event("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	if a.text != "" {
		start(map[string]any{"type": "text", "text": ""})
		for _, word := range strings.SplitAfter(a.text, " ") {
			if !delta(map[string]any{"type": "text_delta", "text": word}) {
				return
			}
		}
		event("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	for _, c := range a.calls {
		// As the real API does, the start carries an empty input and the
		// arguments come as partial JSON, the first fragment empty; a
		// call without arguments gets no fragment at all.
		start(map[string]any{"type": "tool_use", "id": c.id, "name": c.name, "input": map[string]any{}})
		if len(c.input) > 0 {
			b, _ := json.Marshal(c.input)
			frags := []string{""}
			for len(b) > 0 {
				n := min(7, len(b))
				frags, b = append(frags, string(b[:n])), b[n:]
			}
			for _, fr := range frags {
				if !delta(map[string]any{"type": "input_json_delta", "partial_json": fr}) {
					return
				}
			}
		}
		event("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
		index++
	}
	event("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": a.stop, "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": a.outTokens()}})
	event("message_stop", map[string]any{"type": "message_stop"})
}

// messagesFields and countFields are the top-level fields of the Messages
// API and of its token counting.
var (
	messagesFields = map[string]bool{
		"model": true, "messages": true, "max_tokens": true, "system": true, "temperature": true, "top_p": true, "top_k": true,
		"stop_sequences": true, "stream": true, "metadata": true, "tools": true, "tool_choice": true, "thinking": true,
		"output_config": true, "service_tier": true, "container": true, "mcp_servers": true, "context_management": true,
	}
	countFields = map[string]bool{
		"model": true, "messages": true, "system": true, "tools": true, "tool_choice": true, "thinking": true, "mcp_servers": true,
		"context_management": true,
	}
)

// unknownField is the first (by name) top-level field of body that the
// endpoint at path does not know, or "".
func unknownField(path string, body map[string]any) string {
	known := messagesFields
	if path == "/v1/messages/count_tokens" {
		known = countFields
	}
	var bad []string
	for k := range body {
		if !known[k] {
			bad = append(bad, k)
		}
	}
	sort.Strings(bad)
	if len(bad) == 0 {
		return ""
	}
	return bad[0]
}
