// Package anthropicstub is an upstream speaking Anthropic's Messages API
// (POST /v1/messages, streamed or not, POST /v1/messages/count_tokens,
// GET /v1/models) for Vigil's tests, with fault injection. Answers are
// deterministic: the reply echoes the last user message; tokens are
// whitespace-separated words.
//
// The wire format follows Anthropic's: x-api-key and anthropic-version
// headers, a top-level system prompt, content blocks, error bodies
// {"type":"error","error":{"type","message"}}, and the stream's named
// events message_start, content_block_start, ping, content_block_delta,
// content_block_stop, message_delta, message_stop (and error).
package anthropicstub

import (
	"encoding/json"
	"fmt"
	"net/http"
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
	RetryAfter    string
	// StreamErrorAfter, for a stream, sends an error event after this many
	// text deltas.
	StreamErrorAfter int
}

// Server is the stub.
type Server struct {
	APIKey string
	Models []string

	mu       sync.Mutex
	faults   map[string][]Fault
	calls    map[string]int
	requests map[string]map[string]any
}

// New returns a stub serving models.
func New(models ...string) *Server {
	return &Server{Models: models, faults: map[string][]Fault{}, calls: map[string]int{}, requests: map[string]map[string]any{}}
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

// LastRequest is the last body sent for model on path.
func (s *Server) LastRequest(path, model string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path+" "+model]
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
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
			writeError(w, f.Status, typ, msg)
			return
		}
		if !s.known(model) {
			writeError(w, 404, "not_found_error", "model: "+model)
			return
		}
		if _, ok := body["max_tokens"]; !ok && r.URL.Path == "/v1/messages" {
			writeError(w, 400, "invalid_request_error", "max_tokens: Field required")
			return
		}
		text, inTokens, err := reply(body)
		if err != nil {
			writeError(w, 400, "invalid_request_error", err.Error())
			return
		}
		if r.URL.Path == "/v1/messages/count_tokens" {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"input_tokens": inTokens})
			return
		}
		if stream, _ := body["stream"].(bool); stream {
			s.stream(w, model, text, inTokens, f, faulty)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"id": "msg_stub", "type": "message", "role": "assistant", "model": model,
			"content":     []any{map[string]any{"type": "text", "text": text}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": inTokens, "output_tokens": len(strings.Fields(text))},
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

// reply checks the conversation as Anthropic does (roles user and
// assistant only, starting with user, alternating) and echoes the last
// user message.
func reply(body map[string]any) (string, int, error) {
	tokens := 0
	if sys, ok := body["system"].(string); ok {
		tokens += len(strings.Fields(sys))
	}
	msgs, _ := body["messages"].([]any)
	if len(msgs) == 0 {
		return "", 0, fmt.Errorf("messages: at least one message is required")
	}
	last, prev := "", ""
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		role, _ := mm["role"].(string)
		if role != "user" && role != "assistant" {
			return "", 0, fmt.Errorf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		}
		if i == 0 && role != "user" {
			return "", 0, fmt.Errorf("messages: first message must use the \"user\" role")
		}
		if role == prev {
			return "", 0, fmt.Errorf("messages: roles must alternate between \"user\" and \"assistant\"")
		}
		prev = role
		var text string
		switch c := mm["content"].(type) {
		case string:
			text = c
		case []any:
			for _, b := range c {
				bb, _ := b.(map[string]any)
				t, _ := bb["text"].(string)
				text += t
			}
		}
		tokens += len(strings.Fields(text))
		if role == "user" {
			last = text
		}
	}
	return "echo: " + last, tokens, nil
}

func (s *Server) stream(w http.ResponseWriter, model, text string, inTokens int, f Fault, faulty bool) {
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
		"stop_reason": nil, "stop_sequence": nil, "usage": map[string]any{"input_tokens": inTokens, "output_tokens": 1}}})
	event("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
	event("ping", map[string]any{"type": "ping"})
	words := strings.SplitAfter(text, " ")
	for i, word := range words {
		if faulty && f.StreamErrorAfter > 0 && i == f.StreamErrorAfter {
			event("error", map[string]any{"type": "error", "error": map[string]any{"type": "overloaded_error", "message": "Overloaded"}})
			return
		}
		event("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": word}})
	}
	event("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	event("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
		"usage": map[string]any{"output_tokens": len(strings.Fields(text))}})
	event("message_stop", map[string]any{"type": "message_stop"})
}
