package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigilml/vigil/internal/openaiwire"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is OpenAI's Responses API (POST /openai/v1/responses) as a
// translation onto the chat path: a Responses request becomes the chat
// completions request it means (instructions and input items become
// messages, flat function tools become chat tools, text.format becomes
// response_format, ...), which is checked by the chat request's own
// contract() and served by serveChat (cache, budgets, routing, retries,
// fallback, breakers, validation, cost, observations); the answer is
// written as a Response object, or as the Responses API's named stream
// events. No Response object is stored: conversations, background
// responses and GET /responses/{id} are refused. The output items of
// answers to requests with store true (or absent) are kept a while,
// bounded, for item_reference input items, and each such answer's turn
// (its request's input items as resolved, and its output items) for
// previous_response_id (itemstore.go).

// responsesRequest is a Responses API request. Fields the gateway cannot
// honour are decoded only to be refused by name; any other unknown field
// is refused by decode.
type responsesRequest struct {
	Model             string          `json:"model"`
	Input             json.RawMessage `json:"input"`
	Instructions      *string         `json:"instructions"`
	MaxOutputTokens   *int32          `json:"max_output_tokens"`
	Temperature       *float64        `json:"temperature"`
	TopP              *float64        `json:"top_p"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Text              *struct {
		Format    json.RawMessage `json:"format"`
		Verbosity json.RawMessage `json:"verbosity"`
	} `json:"text"`
	Reasoning *struct {
		Effort          *string         `json:"effort"`
		Summary         json.RawMessage `json:"summary"`
		GenerateSummary json.RawMessage `json:"generate_summary"`
		Context         json.RawMessage `json:"context"`
		Mode            json.RawMessage `json:"mode"`
	} `json:"reasoning"`
	Stream             bool            `json:"stream"`
	StreamOptions      json.RawMessage `json:"stream_options"`
	Metadata           json.RawMessage `json:"metadata"`
	User               *string         `json:"user"`
	SafetyIdentifier   json.RawMessage `json:"safety_identifier"`
	PromptCacheKey     json.RawMessage `json:"prompt_cache_key"`
	ServiceTier        json.RawMessage `json:"service_tier"`
	Store              json.RawMessage `json:"store"`
	Truncation         json.RawMessage `json:"truncation"`
	PreviousResponseID json.RawMessage `json:"previous_response_id"`
	// MaxToolCalls caps OpenAI's built-in tool calls, which the gateway
	// does not serve: checked, echoed, no effect (maxToolCalls).
	MaxToolCalls json.RawMessage `json:"max_tool_calls"`
	maxToolCalls *int64
	// Refused when set (not null): decoded to say why.
	Conversation         json.RawMessage `json:"conversation"`
	Background           json.RawMessage `json:"background"`
	Include              json.RawMessage `json:"include"`
	Prompt               json.RawMessage `json:"prompt"`
	TopLogprobs          json.RawMessage `json:"top_logprobs"`
	ContextManagement    json.RawMessage `json:"context_management"`
	Moderation           json.RawMessage `json:"moderation"`
	PromptCacheOptions   json.RawMessage `json:"prompt_cache_options"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
	// encrypted: include has reasoning.encrypted_content (read by
	// logprobs).
	encrypted bool
}

// notStored is why the gateway answers nothing about earlier responses.
const notStored = "Vigil's gateway does not store responses (with \"store\": true it keeps only the answers' output items and turns, a while, in memory, for item_reference input items and previous_response_id)"

// refusals checks the parameters the gateway does not serve.
func (req *responsesRequest) refusals() *Error {
	if !isNull(req.PreviousResponseID) && !isNull(req.Conversation) {
		return invalid("conversation", "previous_response_id and conversation cannot both be given: they are mutually exclusive (and the gateway keeps no conversations: continue with previous_response_id, or send the whole conversation in input)")
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		why  string
	}{
		{"conversation", req.Conversation, notStored + " or conversations: send the whole conversation in input"},
		{"prompt", req.Prompt, "prompt templates are kept by OpenAI, and the gateway does not fetch them: send instructions and input"},
		{"context_management", req.ContextManagement, "context management (compaction) is not supported by the gateway; an alias's truncation setting decides what happens to a prompt that is too long"},
		{"moderation", req.Moderation, "moderation is not supported by the gateway"},
	} {
		if isNull(f.raw) {
			continue
		}
		return invalid(f.name, "%s is not supported: %s", f.name, f.why)
	}
	if !isNull(req.Background) {
		v, e := checkBool("background", req.Background)
		if e != nil {
			return e
		}
		if v.(bool) {
			return invalid("background", "background: true is not supported: %s, so there would be nothing to poll; leave it out and wait for the answer (or stream it)", notStored)
		}
	}
	if !isNull(req.MaxToolCalls) {
		var n int64
		if json.Unmarshal(req.MaxToolCalls, &n) != nil || n < 0 {
			return invalid("max_tool_calls", "max_tool_calls must be a non-negative integer, got %s", compactJSON(req.MaxToolCalls))
		}
		req.maxToolCalls = &n
	}
	if !isNull(req.Truncation) {
		var s string
		_ = json.Unmarshal(req.Truncation, &s)
		switch s {
		case "disabled":
		case "auto":
			return invalid("truncation", "truncation \"auto\" is not supported per request: the alias's truncation setting in the gateway's configuration (drop_oldest) decides it; send \"disabled\" or leave it out")
		default:
			return invalid("truncation", "truncation must be \"disabled\" (\"auto\" is the alias's truncation setting), got %s", req.Truncation)
		}
	}
	if r := req.Reasoning; r != nil {
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"context", r.Context}, {"mode", r.Mode}} {
			if !isNull(f.raw) {
				return invalid("reasoning."+f.name, "reasoning.%s is not supported: the gateway carries reasoning.effort (and takes reasoning.summary)", f.name)
			}
		}
		// A summary is asked for, not promised (OpenAI's models may
		// give none): taken; a reasoning item's summary is whatever
		// reasoning text the upstream gave (responses_reasoning.go).
		for _, f := range []struct {
			name string
			raw  json.RawMessage
		}{{"summary", r.Summary}, {"generate_summary", r.GenerateSummary}} {
			if isNull(f.raw) {
				continue
			}
			var v string
			if json.Unmarshal(f.raw, &v) != nil || v != "auto" && v != "concise" && v != "detailed" {
				return invalid("reasoning."+f.name, "reasoning.%s must be \"auto\", \"concise\" or \"detailed\", got %s", f.name, compactJSON(f.raw))
			}
		}
	}
	if !isNull(req.StreamOptions) {
		if !req.Stream {
			return invalid("stream_options", "stream_options is only allowed with stream: true")
		}
		keys, e := object("stream_options", req.StreamOptions)
		if e != nil {
			return e
		}
		for _, k := range sortedKeys(keys) {
			if k != "include_obfuscation" {
				return invalid("stream_options."+k, "stream_options.%s is not supported: stream_options takes include_obfuscation", k)
			}
			if _, e := checkBool("stream_options.include_obfuscation", keys[k]); e != nil {
				return e
			}
		}
	}
	return nil
}

// logprobs reads include and top_logprobs: whether the answer's logprobs
// are asked for (include "message.output_text.logprobs", or top_logprobs
// above 0), and how many top tokens per position. Of OpenAI's include
// values the gateway serves that one, and takes
// "reasoning.encrypted_content" (the encrypted reasoning of reasoning
// items, which clients ask for when they keep a conversation themselves,
// store: false), which puts the packed thinking blocks into reasoning
// items (responses_reasoning.go). The others name the outputs of
// built-in tools, which the gateway does not run, or stored inputs: 400
// naming the value.
func (req *responsesRequest) logprobs() (asked bool, top *int32, e *Error) {
	if !isNull(req.Include) {
		var list []json.RawMessage
		if json.Unmarshal(req.Include, &list) != nil {
			return false, nil, invalid("include", "include must be an array of strings, got %s", jsonType(req.Include))
		}
		for i, raw := range list {
			name := fmt.Sprintf("include[%d]", i)
			var v string
			if json.Unmarshal(raw, &v) != nil {
				return false, nil, invalid(name, "%s must be a string, got %s", name, jsonType(raw))
			}
			switch v {
			case "message.output_text.logprobs":
				asked = true
			case "reasoning.encrypted_content":
				req.encrypted = true
			default:
				return false, nil, invalid(name, "%s %q is not supported: the gateway serves message.output_text.logprobs (the answer's logprobs) and reasoning.encrypted_content (the thinking blocks of reasoning items); it runs no built-in tools and keeps no input", name, v)
			}
		}
	}
	if !isNull(req.TopLogprobs) {
		var n int32
		if json.Unmarshal(req.TopLogprobs, &n) != nil || n < 0 || n > maxTopLogprobs {
			return false, nil, invalid("top_logprobs", "top_logprobs must be an integer from 0 to %d, got %s", maxTopLogprobs, compactJSON(req.TopLogprobs))
		}
		if n > 0 {
			asked = true
		}
		top = &n
	}
	if !asked {
		top = nil
	}
	return asked, top, nil
}

// Kinds of a chat message's source, for error names.
const (
	srcText    = iota // instructions, or input given as a string
	srcMessage        // a message item
	srcCalls          // function_call items (an assistant message)
	srcOutput         // a function_call_output item (a tool message)
)

// msgSource is where a chat message came from in the Responses request.
type msgSource struct {
	path string // "instructions", "input", "input[3]"
	kind int
	// calls are the paths of the function_call items of an assistant
	// message, in order.
	calls []string
}

// fieldMap names the Responses request's fields for errors that the chat
// path reports in its own names (messages[2].content, tools[0].function.name,
// response_format.json_schema.schema, ...).
type fieldMap struct {
	msgs []msgSource
}

var (
	chatFieldRE = regexp.MustCompile(`messages\[\d+\](?:\.[a-z_]+(?:\[\d+\])?)*|tools\[\d+\](?:\.[a-z_]+)*|tool_choice\.function\.name|response_format(?:\.[a-z_]+)*|max_completion_tokens|reasoning_effort`)
	indexRE     = regexp.MustCompile(`^\[(\d+)\]`)
)

// param maps one chat field name to the Responses request's.
func (m *fieldMap) param(p string) string {
	switch {
	case p == "messages":
		return "input"
	case strings.HasPrefix(p, "messages["):
		i, rest, ok := cutIndex(strings.TrimPrefix(p, "messages"))
		if !ok || m == nil || i >= len(m.msgs) {
			return p
		}
		src := m.msgs[i]
		switch {
		case src.path == "previous_response_id":
			// A message rebuilt from a kept turn: named by the field
			// that brought it.
			return src.path
		case strings.HasPrefix(rest, ".tool_calls["):
			j, rest2, ok := cutIndex(strings.TrimPrefix(rest, ".tool_calls"))
			if !ok || j >= len(src.calls) {
				return src.path
			}
			switch rest2 {
			case ".id":
				return src.calls[j] + ".call_id"
			case ".function.name":
				return src.calls[j] + ".name"
			case ".function.arguments":
				return src.calls[j] + ".arguments"
			}
			return src.calls[j] + rest2
		case rest == ".tool_calls":
			if len(src.calls) > 0 {
				return src.calls[0]
			}
			return src.path
		case rest == ".tool_call_id":
			return src.path + ".call_id"
		case strings.HasPrefix(rest, ".content"):
			switch src.kind {
			case srcText:
				return src.path
			case srcOutput:
				return src.path + ".output" + strings.TrimPrefix(rest, ".content")
			}
			rest = strings.Replace(rest, ".image_url.url", ".image_url", 1)
			rest = strings.Replace(rest, ".image_url.detail", ".detail", 1)
			return src.path + rest
		case src.kind == srcText:
			return src.path
		}
		return src.path + rest
	case strings.HasPrefix(p, "tools["):
		p = strings.Replace(p, ".function.", ".", 1)
		return strings.TrimSuffix(p, ".function")
	case p == "tool_choice.function.name":
		return "tool_choice.name"
	case strings.HasPrefix(p, "response_format"):
		rest := strings.TrimPrefix(p, "response_format")
		if r, ok := strings.CutPrefix(rest, ".json_schema"); ok {
			rest = r
		}
		return "text.format" + rest
	case p == "max_completion_tokens" || p == "max_tokens":
		return "max_output_tokens"
	case p == "reasoning_effort":
		return "reasoning.effort"
	case p == "verbosity":
		return "text.verbosity"
	}
	return p
}

// cutIndex reads "[N]" at the start of s.
func cutIndex(s string) (int, string, bool) {
	m := indexRE.FindStringSubmatch(s)
	if m == nil {
		return 0, s, false
	}
	n, err := strconv.Atoi(m[1])
	return n, s[len(m[0]):], err == nil
}

// mapError renames the chat fields in e, its param and its message.
func (m *fieldMap) mapError(e *Error) *Error {
	if e == nil {
		return nil
	}
	out := *e
	if r := m.thinkingRefusal(e); r != nil {
		return r
	}
	if e.Param != nil && *e.Param == "messages" {
		p := "input"
		out.Param = &p
		out.Message = "input must hold at least one input item (or send instructions)"
		return &out
	}
	if e.Param != nil {
		p := m.param(*e.Param)
		out.Param = &p
	}
	out.Message = chatFieldRE.ReplaceAllStringFunc(e.Message, m.param)
	out.Message = strings.ReplaceAll(out.Message, "image_url.url", "image_url")
	return &out
}

// item keys allowed per input item type (besides type).
var itemKeys = map[string][]string{
	"message":              {"role", "content", "id", "status", "phase"},
	"function_call":        {"call_id", "name", "arguments", "id", "status"},
	"function_call_output": {"call_id", "output", "id", "status"},
	"reasoning":            {"id", "summary", "encrypted_content", "content", "status"},
}

// contract checks a Responses request and turns it into the provider
// contract's chat request, through the chat request it means (so that
// every check of the chat path applies); errors name the Responses
// request's fields. The returned wire writes the answer.
//
// items are the kept output items that item_reference input items may
// name (nil: none), for the API token scope; the answer's output items
// are kept there too unless store is false.
func (req *responsesRequest) contract(items *itemStore, scope string) (*pb.ChatRequest, *responsesAPI, *Error) {
	if e := req.refusals(); e != nil {
		return nil, nil, e
	}
	rw := &responsesAPI{fields: &fieldMap{}, req: req, items: items, scope: scope}
	if !isNull(req.Store) {
		v, e := checkBool("store", req.Store)
		if e != nil {
			return nil, nil, e
		}
		rw.store = v.(bool)
	} else {
		rw.store = true // OpenAI's default
	}
	rw.store = rw.store && items != nil
	var prior []json.RawMessage
	if !isNull(req.PreviousResponseID) {
		var e *Error
		if prior, e = rw.previous(); e != nil {
			return nil, nil, e
		}
	}
	chat := map[string]any{"model": req.Model}
	msgs, input, e := req.messages(rw.fields, rw.resolve, rw.reasoningIn, prior, rw.store)
	if e != nil {
		return nil, nil, e
	}
	rw.input = input
	chat["messages"] = msgs
	if req.Temperature != nil {
		chat["temperature"] = *req.Temperature
	}
	if req.TopP != nil {
		chat["top_p"] = *req.TopP
	}
	if req.MaxOutputTokens != nil {
		// The cap includes reasoning tokens, as max_completion_tokens
		// does (and what reasoning models need).
		chat["max_completion_tokens"] = *req.MaxOutputTokens
	}
	if req.User != nil {
		chat["user"] = *req.User
	}
	lp, top, e := req.logprobs()
	if e != nil {
		return nil, nil, e
	}
	if lp {
		chat["logprobs"] = true
		if top != nil {
			chat["top_logprobs"] = *top
		}
	}
	if r := req.Reasoning; r != nil && r.Effort != nil {
		chat["reasoning_effort"] = *r.Effort
	}
	// Passed through to OpenAI-speaking plugins as on the chat path.
	for name, raw := range map[string]json.RawMessage{"safety_identifier": req.SafetyIdentifier, "prompt_cache_key": req.PromptCacheKey, "prompt_cache_options": req.PromptCacheOptions, "prompt_cache_retention": req.PromptCacheRetention, "service_tier": req.ServiceTier} {
		if !isNull(raw) {
			chat[name] = raw
		}
	}
	if req.Text != nil {
		if !isNull(req.Text.Verbosity) {
			chat["verbosity"] = req.Text.Verbosity
		}
		if !isNull(req.Text.Format) {
			rf, e := textFormat(req.Text.Format)
			if e != nil {
				return nil, nil, e
			}
			chat["response_format"] = rf
		}
	}
	hasTools, e := rw.tools(chat)
	if e != nil {
		return nil, nil, e
	}
	if !isNull(req.ToolChoice) {
		tc, e := toolChoice(req.ToolChoice)
		if e != nil {
			return nil, nil, e
		}
		var s string
		// "auto" and "none" without tools say nothing: OpenAI takes them.
		if hasTools || json.Unmarshal(req.ToolChoice, &s) != nil || (s != "auto" && s != "none") {
			chat["tool_choice"] = tc
		}
	}
	if req.ParallelToolCalls != nil && hasTools {
		chat["parallel_tool_calls"] = *req.ParallelToolCalls
	}
	// Echoed only: Vigil keeps no response to attach them to.
	if !isNull(req.Metadata) {
		md, e := checkMetadata("metadata", req.Metadata)
		if e != nil {
			return nil, nil, e
		}
		rw.metadata = md.(map[string]string)
	}
	b, err := json.Marshal(chat)
	if err != nil {
		return nil, nil, invalid("", "the request cannot be translated: %v", err)
	}
	var cr chatRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cr); err != nil {
		return nil, nil, invalid("", "the request cannot be translated: %v", err)
	}
	creq, e := cr.contract()
	if e != nil {
		return nil, nil, rw.fields.mapError(e)
	}
	return creq, rw, nil
}

// inputItem is one input item to read, with its name for errors; text
// marks input given as a string (read as a user message).
type inputItem struct {
	path string
	raw  json.RawMessage
	text bool
}

// messages turns instructions, the items of the previous responses'
// turns (prior, oldest first: see previous) and input into chat messages,
// recording where each came from, and checks the function calls' turns as
// OpenAI does: every function_call is answered by a function_call_output
// (with its call_id) before the next message. An item_reference is
// replaced by the item resolve finds for its id, and read as if sent by
// value. With keep, it also returns the request's input items as
// resolved, to be kept with the answer for previous_response_id.
func (req *responsesRequest) messages(fm *fieldMap, resolve func(path string, fields map[string]json.RawMessage) (map[string]json.RawMessage, *Error), reasoning func(path string, fields map[string]json.RawMessage) ([]*pb.ThinkingBlock, *Error), prior []json.RawMessage, keep bool) ([]map[string]any, []json.RawMessage, *Error) {
	var msgs []map[string]any
	var kept []json.RawMessage
	// pending are the thinking blocks of the reasoning items read since
	// the last assistant item: they go first in the assistant turn of the
	// message or function call that follows them (dropped when another
	// item comes first: they belong to no assistant turn).
	var pending []*pb.ThinkingBlock
	attach := func(m map[string]any) {
		if len(pending) == 0 {
			return
		}
		blocks, _ := m["thinking_blocks"].([]thinkingBlockJSON)
		m["thinking_blocks"] = append(blocks, thinkingBlocksOut(pending)...)
		pending = nil
	}
	add := func(m map[string]any, src msgSource) {
		msgs = append(msgs, m)
		fm.msgs = append(fm.msgs, src)
	}
	if req.Instructions != nil && *req.Instructions != "" {
		add(map[string]any{"role": "system", "content": *req.Instructions}, msgSource{path: "instructions", kind: srcText})
	}
	items := make([]inputItem, 0, len(prior))
	for _, raw := range prior {
		items = append(items, inputItem{path: "previous_response_id", raw: raw})
	}
	if !isNull(req.Input) {
		var s string
		var list []json.RawMessage
		switch {
		case json.Unmarshal(req.Input, &s) == nil:
			raw, _ := json.Marshal(map[string]string{"role": "user", "content": s})
			items = append(items, inputItem{path: "input", raw: raw, text: true})
		case json.Unmarshal(req.Input, &list) == nil:
			for k, raw := range list {
				items = append(items, inputItem{path: fmt.Sprintf("input[%d]", k), raw: raw})
			}
		default:
			return nil, nil, invalid("input", "input must be a string or an array of input items, got %s", jsonType(req.Input))
		}
	}
	// The function calls of the current turn: call_id -> answered.
	turn := map[string]bool{}
	var turnIDs, turnPaths []string
	outputs := false // the turn's outputs have begun
	closeTurn := func() *Error {
		for i, id := range turnIDs {
			if !turn[id] {
				return invalid(turnPaths[i], "%s is a function_call (call_id %q) with no function_call_output after it: every function call must be answered by a function_call_output item with its call_id before the conversation goes on", turnPaths[i], id)
			}
		}
		turn, turnIDs, turnPaths, outputs = map[string]bool{}, nil, nil, false
		return nil
	}
	for _, in := range items {
		path := in.path
		fields, e := object(path, in.raw)
		if e != nil {
			return nil, nil, e
		}
		typ, e := itemType(path, fields)
		if e != nil {
			return nil, nil, e
		}
		raw := in.raw
		if typ == "item_reference" {
			if fields, e = resolve(path, fields); e != nil {
				return nil, nil, e
			}
			if typ, e = itemType(path, fields); e != nil {
				return nil, nil, e
			}
			raw = nil
		}
		if keep && path != "previous_response_id" {
			if raw == nil { // as resolved
				raw, _ = json.Marshal(fields)
			}
			kept = append(kept, raw)
		}
		allowed, ok := itemKeys[typ]
		if !ok {
			return nil, nil, invalid(path+".type", "%s.type %q is not supported: the gateway takes message, function_call, function_call_output, reasoning and item_reference items (built-in tools' items are not)", path, typ)
		}
		for _, key := range sortedKeys(fields) {
			if key != "type" && !contains(allowed, key) {
				return nil, nil, invalid(path+"."+key, "%s.%s is not supported in a %s item", path, key, typ)
			}
		}
		str := func(key string, required bool) (string, *Error) {
			raw, ok := fields[key]
			var v string
			if !ok || isNull(raw) {
				if required {
					return "", invalid(path+"."+key, "%s.%s is required in a %s item", path, key, typ)
				}
				return "", nil
			}
			if json.Unmarshal(raw, &v) != nil {
				return "", invalid(path+"."+key, "%s.%s must be a string, got %s", path, key, jsonType(raw))
			}
			return v, nil
		}
		last := len(msgs) - 1
		switch typ {
		case "message":
			if e := closeTurn(); e != nil {
				return nil, nil, e
			}
			role, e := str("role", true)
			if e != nil {
				return nil, nil, e
			}
			switch role {
			case "user", "system", "developer", "assistant":
			default:
				return nil, nil, invalid(path+".role", "%s.role %q is not user, system, developer or assistant", path, role)
			}
			content, e := inputContent(path, fields["content"], role)
			if e != nil {
				return nil, nil, e
			}
			src := msgSource{path: path, kind: srcMessage}
			if in.text {
				src.kind = srcText
			}
			m := map[string]any{"role": role, "content": content}
			if role == "assistant" {
				attach(m)
			}
			pending = nil
			add(m, src)
		case "function_call":
			if outputs {
				if e := closeTurn(); e != nil {
					return nil, nil, e
				}
			}
			callID, e := str("call_id", true)
			if e != nil {
				return nil, nil, e
			}
			name, e := str("name", true)
			if e != nil {
				return nil, nil, e
			}
			args, e := str("arguments", false)
			if e != nil {
				return nil, nil, e
			}
			if _, dup := turn[callID]; dup {
				return nil, nil, invalid(path+".call_id", "%s.call_id %q is the call_id of another function_call of the same turn", path, callID)
			}
			turn[callID] = false
			turnIDs, turnPaths = append(turnIDs, callID), append(turnPaths, path)
			call := map[string]any{"id": callID, "type": "function", "function": map[string]any{"name": name, "arguments": args}}
			// Calls join the assistant message (or calls) just before
			// them: one chat assistant turn.
			if last >= 0 && msgs[last]["role"] == "assistant" {
				calls, _ := msgs[last]["tool_calls"].([]any)
				msgs[last]["tool_calls"] = append(calls, call)
				fm.msgs[last].calls = append(fm.msgs[last].calls, path)
				attach(msgs[last])
				continue
			}
			m := map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{call}}
			attach(m)
			add(m, msgSource{path: path, kind: srcCalls, calls: []string{path}})
		case "function_call_output":
			callID, e := str("call_id", true)
			if e != nil {
				return nil, nil, e
			}
			answered, ok := turn[callID]
			switch {
			case !ok:
				return nil, nil, invalid(path+".call_id", "%s.call_id %q does not answer a function_call of the turn before it (the function_call items just before this run of function_call_output items)", path, callID)
			case answered:
				return nil, nil, invalid(path+".call_id", "%s.call_id %q was answered already", path, callID)
			}
			turn[callID], outputs, pending = true, true, nil
			out, e := callOutput(path, fields["output"])
			if e != nil {
				return nil, nil, e
			}
			add(map[string]any{"role": "tool", "tool_call_id": callID, "content": out}, msgSource{path: path, kind: srcOutput})
		case "reasoning":
			// The reasoning of the assistant turn that follows (a new
			// turn when the outputs of the last one have begun).
			if outputs {
				if e := closeTurn(); e != nil {
					return nil, nil, e
				}
			}
			blocks, e := reasoning(path, fields)
			if e != nil {
				return nil, nil, e
			}
			pending = append(pending, blocks...)
			if keep && path != "previous_response_id" {
				// Kept as resolved: with the blocks it stood for, so that
				// a follow-up does not depend on the item's own entry.
				var id string
				_ = json.Unmarshal(fields["id"], &id)
				kept[len(kept)-1], _ = json.Marshal(keptReasoningOf(&reasoningItemJSON{ID: id, blocks: blocks}))
			}
		}
	}
	if e := closeTurn(); e != nil {
		return nil, nil, e
	}
	return msgs, kept, nil
}

// itemType is an input item's type: its type field, message for an item
// with a role, item_reference for one with only an id (as OpenAI reads
// them).
func itemType(path string, fields map[string]json.RawMessage) (string, *Error) {
	if t, ok := fields["type"]; ok {
		var typ string
		if json.Unmarshal(t, &typ) != nil {
			return "", invalid(path+".type", "%s.type must be a string", path)
		}
		return typ, nil
	}
	if _, ok := fields["role"]; ok {
		return "message", nil
	}
	if _, ok := fields["id"]; ok && len(fields) == 1 {
		return "item_reference", nil
	}
	return "", invalid(path+".type", "%s.type is required (message, function_call, function_call_output or item_reference), or a role for a message", path)
}

// previous reads previous_response_id: the items of the chain of
// responses it ends (oldest first), kept for the request's API token. An
// id that is unknown, expired, evicted, kept for another token, or whose
// chain has lost a link gets the same answer: OpenAI's for a response it
// does not have (404, code previous_response_not_found, param
// previous_response_id), saying what Vigil keeps and what to do instead.
func (rw *responsesAPI) previous() ([]json.RawMessage, *Error) {
	raw := rw.req.PreviousResponseID
	var id string
	if jsonType(raw) != "a string" || json.Unmarshal(raw, &id) != nil || id == "" {
		return nil, invalid("previous_response_id", "previous_response_id must be the id of an earlier response (resp_...), got %s", compactJSON(raw))
	}
	rw.prev = id
	items, ok := rw.items.chain(rw.scope, id)
	if !ok {
		why := "this agent keeps the answers given with store true (or absent) in memory, for the API token that asked, within gateway.responses.item_store's bounds (max_items, max_bytes) and for its ttl after last use: this one is unknown, was given with store false, is no longer kept, or an earlier response of its chain is no longer kept"
		if rw.items == nil {
			why = "this agent keeps no responses (gateway.responses.item_store.max_items is 0)"
		}
		param := "previous_response_id"
		return nil, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "previous_response_not_found", Param: &param,
			Message: fmt.Sprintf("Previous response with id %q not found: %s; send the whole conversation in input instead (the earlier input and output items, without previous_response_id)", id, why)}
	}
	return items, nil
}

// resolve reads an item_reference: the item it names, kept from an
// earlier answer for the same API token. An id that is unknown, expired,
// evicted or kept for another token gets the same answer, OpenAI's
// status and shape for an item it does not have (404, param input),
// with the field named.
func (rw *responsesAPI) resolve(path string, fields map[string]json.RawMessage) (map[string]json.RawMessage, *Error) {
	for _, key := range sortedKeys(fields) {
		if key != "type" && key != "id" {
			return nil, invalid(path+"."+key, "%s.%s is not supported in an item_reference item (it takes type and id)", path, key)
		}
	}
	var id string
	if jsonType(fields["id"]) != "a string" || json.Unmarshal(fields["id"], &id) != nil || id == "" {
		return nil, invalid(path+".id", "%s.id is required in an item_reference item: the id of an output item of an earlier answer", path)
	}
	raw, ok := rw.items.get(rw.scope, id)
	if !ok {
		why := "this agent keeps the output items of answers given with store true (or absent) for a while, within gateway.responses.item_store's bounds, in memory, for the API token that asked: this one is unknown, or no longer kept"
		if rw.items == nil {
			why = "this agent keeps no items (gateway.responses.item_store.max_items is 0)"
		}
		param := path + ".id"
		return nil, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "item_not_found", Param: &param,
			Message: fmt.Sprintf("Item with id %q not found (%s): %s; send the item itself instead of a reference (with the Vercel AI SDK: providerOptions.openai.store: false)", id, path, why)}
	}
	kept, e := object(path, raw)
	if e != nil {
		return nil, e
	}
	return kept, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// inputContent turns a message item's content (a string, or an array of
// input_text, input_image, and for assistant messages output_text and
// refusal parts) into chat content.
func inputContent(path string, raw json.RawMessage, role string) (any, *Error) {
	field := path + ".content"
	if isNull(raw) {
		return nil, invalid(field, "%s is required in a message item", field)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return nil, invalid(field, "%s must be a string or an array of content parts, got %s", field, jsonType(raw))
	}
	out := make([]map[string]any, 0, len(parts))
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		keys, e := object(pf, p)
		if e != nil {
			return nil, e
		}
		var typ string
		_ = json.Unmarshal(keys["type"], &typ)
		text := func(key string, allowed ...string) (string, *Error) {
			for _, k := range sortedKeys(keys) {
				if k != "type" && k != key && !contains(allowed, k) {
					return "", invalid(pf+"."+k, "%s.%s is not supported in an %s part", pf, k, typ)
				}
			}
			var t string
			if jsonType(keys[key]) != "a string" || json.Unmarshal(keys[key], &t) != nil {
				return "", invalid(pf+"."+key, "%s.%s must be a string", pf, key)
			}
			return t, nil
		}
		switch typ {
		case "input_text":
			t, e := text("text")
			if e != nil {
				return nil, e
			}
			out = append(out, map[string]any{"type": "text", "text": t})
		case "output_text", "refusal":
			if role != "assistant" {
				return nil, invalid(pf+".type", "%s.type %q is only allowed in assistant messages", pf, typ)
			}
			key := "text"
			if typ == "refusal" {
				key = "refusal"
			}
			t, e := text(key, "annotations", "logprobs")
			if e != nil {
				return nil, e
			}
			out = append(out, map[string]any{"type": "text", "text": t})
		case "input_image":
			for _, k := range sortedKeys(keys) {
				if k != "type" && k != "image_url" && k != "detail" && k != "file_id" {
					return nil, invalid(pf+"."+k, "%s.%s is not supported in an input_image part", pf, k)
				}
			}
			if !isNull(keys["file_id"]) {
				return nil, invalid(pf+".file_id", "%s.file_id names a file in OpenAI's Files API, which the gateway does not reach: send image_url (an http(s) URL or a data: URL)", pf)
			}
			var u, detail string
			if jsonType(keys["image_url"]) != "a string" || json.Unmarshal(keys["image_url"], &u) != nil {
				return nil, invalid(pf+".image_url", "%s.image_url is required: an http(s) URL or a data: URL", pf)
			}
			if !isNull(keys["detail"]) && json.Unmarshal(keys["detail"], &detail) != nil {
				return nil, invalid(pf+".detail", "%s.detail must be auto, low or high", pf)
			}
			img := map[string]any{"url": u}
			if detail != "" {
				img["detail"] = detail
			}
			out = append(out, map[string]any{"type": "image_url", "image_url": img})
		case "input_file":
			part, e := inputFile(pf, keys, role)
			if e != nil {
				return nil, e
			}
			out = append(out, part)
		case "input_audio":
			return nil, invalid(pf+".type", "%s.type %q is not supported: the gateway takes input_text, input_image and input_file parts", pf, typ)
		default:
			return nil, invalid(pf+".type", "%s.type %q is not input_text, input_image or input_file (or output_text or refusal in an assistant message)", pf, typ)
		}
	}
	return out, nil
}

// callOutput is a function_call_output's output: a string, or an array of
// input_text parts (a chat tool message holds text only).
func callOutput(path string, raw json.RawMessage) (any, *Error) {
	field := path + ".output"
	if isNull(raw) {
		return nil, invalid(field, "%s is required in a function_call_output item", field)
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		return nil, invalid(field, "%s must be a string or an array of input_text parts, got %s", field, jsonType(raw))
	}
	out := make([]map[string]any, 0, len(parts))
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		var part struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		dec := json.NewDecoder(bytes.NewReader(p))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&part); err != nil || part.Type != "input_text" || part.Text == nil {
			return nil, invalid(pf, "%s must be {\"type\": \"input_text\", \"text\": ...}: a function's output is carried as text (images and files are not)", pf)
		}
		out = append(out, map[string]any{"type": "text", "text": *part.Text})
	}
	return out, nil
}

// textFormat turns text.format into the chat request's response_format.
func textFormat(raw json.RawMessage) (any, *Error) {
	keys, e := object("text.format", raw)
	if e != nil {
		return nil, e
	}
	var typ string
	if _, ok := keys["type"]; !ok {
		return nil, invalid("text.format.type", "text.format.type is required: text, json_object or json_schema")
	}
	_ = json.Unmarshal(keys["type"], &typ)
	allowed := []string{}
	switch typ {
	case "text", "json_object":
	case "json_schema":
		allowed = []string{"name", "schema", "description", "strict"}
	default:
		return nil, invalid("text.format.type", "text.format.type %s is not text, json_object or json_schema", keys["type"])
	}
	js := map[string]json.RawMessage{}
	for _, k := range sortedKeys(keys) {
		if k == "type" {
			continue
		}
		if !contains(allowed, k) {
			return nil, invalid("text.format."+k, "text.format.%s is not a field of a %s format", k, typ)
		}
		js[k] = keys[k]
	}
	if typ != "json_schema" {
		return map[string]any{"type": typ}, nil
	}
	return map[string]any{"type": typ, "json_schema": js}, nil
}

// toolChoice turns tool_choice into the chat request's.
func toolChoice(raw json.RawMessage) (any, *Error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	keys, e := object("tool_choice", raw)
	if e != nil {
		return nil, e
	}
	var typ, name string
	_ = json.Unmarshal(keys["type"], &typ)
	if typ != "function" {
		return nil, invalid("tool_choice.type", "tool_choice.type %s is not supported: the gateway takes \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"name\": ...}", keys["type"])
	}
	for _, k := range sortedKeys(keys) {
		if k != "type" && k != "name" {
			return nil, invalid("tool_choice."+k, "tool_choice.%s is not a field of a function tool choice", k)
		}
	}
	if json.Unmarshal(keys["name"], &name) != nil || name == "" {
		return nil, invalid("tool_choice.name", "tool_choice.name is required")
	}
	return map[string]any{"type": "function", "function": map[string]any{"name": name}}, nil
}

// toolEcho is a function tool as the Response object repeats it.
type toolEcho struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      bool            `json:"strict"`
}

// tools turns the flat function tools into the chat request's, into chat,
// and reports whether there are any. A tool whose strict is absent (or
// null) is strict, as on OpenAI's Responses API, with its schema
// normalized for strict mode as OpenAI documents it (strictSchema).
func (rw *responsesAPI) tools(chat map[string]any) (bool, *Error) {
	raw := rw.req.Tools
	if isNull(raw) {
		return false, nil
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return false, invalid("tools", "tools must be an array of tools, got %s", jsonType(raw))
	}
	if len(list) == 0 {
		return false, nil
	}
	out := make([]any, len(list))
	for i, t := range list {
		field := fmt.Sprintf("tools[%d]", i)
		keys, e := object(field, t)
		if e != nil {
			return false, e
		}
		var typ string
		_ = json.Unmarshal(keys["type"], &typ)
		if typ != "function" {
			return false, invalid(field+".type", "%s.type %s is not supported: the gateway serves function tools only (OpenAI's built-in tools, such as web_search, file_search, code_interpreter or computer_use, run at OpenAI)", field, keys["type"])
		}
		for _, k := range sortedKeys(keys) {
			switch k {
			case "type", "name", "description", "parameters", "strict":
			default:
				return false, invalid(field+"."+k, "%s.%s is not supported by the gateway", field, k)
			}
		}
		var f struct {
			Name        string          `json:"name"`
			Description *string         `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			Strict      *bool           `json:"strict"`
		}
		if err := json.Unmarshal(t, &f); err != nil {
			return false, invalid(field, "%s: %v", field, err)
		}
		strict := f.Strict == nil || *f.Strict
		params := f.Parameters
		if f.Strict == nil && !isNull(params) {
			params = strictSchema(params)
		}
		fn := map[string]any{"name": f.Name, "strict": strict}
		if f.Description != nil {
			fn["description"] = *f.Description
		}
		if !isNull(params) {
			fn["parameters"] = params
		}
		out[i] = map[string]any{"type": "function", "function": fn}
		echo := toolEcho{Type: "function", Name: f.Name, Description: f.Description, Parameters: params, Strict: strict}
		if isNull(echo.Parameters) {
			echo.Parameters = json.RawMessage("null")
		}
		rw.echoTools = append(rw.echoTools, echo)
	}
	chat["tools"] = out
	return true, nil
}

// strictSchema normalizes a function's parameters for strict mode as
// OpenAI's Responses API does for a tool that does not say strict: every
// object schema gets additionalProperties: false (unless it sets it) and
// lists all its properties as required. Key order is kept (a model writes
// the arguments in the schema's order). A schema that is not a JSON
// object is left as it is, for the chat path to refuse.
func strictSchema(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if !normalizeSchema(&buf, raw) {
		return raw
	}
	return buf.Bytes()
}

// orderedObject reads a JSON object keeping its keys' order.
func orderedObject(raw json.RawMessage) (keys []string, vals []json.RawMessage, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals, true
}

// normalizeSchema writes the normalized form of one schema to buf.
func normalizeSchema(buf *bytes.Buffer, raw json.RawMessage) bool {
	keys, vals, ok := orderedObject(raw)
	if !ok {
		return false
	}
	var props []string
	isObject, hasAdditional := false, false
	for i, k := range keys {
		switch k {
		case "type":
			var s string
			var list []string
			if json.Unmarshal(vals[i], &s) == nil {
				isObject = isObject || s == "object"
			} else if json.Unmarshal(vals[i], &list) == nil {
				isObject = isObject || contains(list, "object")
			}
		case "properties":
			isObject = true
			props, _, _ = orderedObject(vals[i])
		case "additionalProperties":
			hasAdditional = true
		}
	}
	sub := func(v json.RawMessage) {
		var b bytes.Buffer
		if normalizeSchema(&b, v) {
			buf.Write(b.Bytes())
		} else {
			buf.Write(v)
		}
	}
	// each normalizes the schemas in an object of schemas or an array of
	// them.
	each := func(v json.RawMessage) {
		if ks, vs, ok := orderedObject(v); ok {
			buf.WriteByte('{')
			for i := range ks {
				if i > 0 {
					buf.WriteByte(',')
				}
				kb, _ := json.Marshal(ks[i])
				buf.Write(kb)
				buf.WriteByte(':')
				sub(vs[i])
			}
			buf.WriteByte('}')
			return
		}
		var arr []json.RawMessage
		if json.Unmarshal(v, &arr) != nil {
			buf.Write(v)
			return
		}
		buf.WriteByte('[')
		for i, x := range arr {
			if i > 0 {
				buf.WriteByte(',')
			}
			sub(x)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		switch {
		case k == "required" && isObject && props != nil:
			rb, _ := json.Marshal(props)
			buf.Write(rb)
		case k == "properties" || k == "$defs" || k == "definitions" || k == "anyOf" || k == "oneOf" || k == "allOf" || k == "prefixItems":
			each(vals[i])
		case k == "items":
			sub(vals[i])
		default:
			var c bytes.Buffer
			if json.Compact(&c, vals[i]) == nil {
				buf.Write(c.Bytes())
			} else {
				buf.Write(vals[i])
			}
		}
	}
	if isObject {
		if props != nil && !contains(keys, "required") {
			if len(keys) > 0 {
				buf.WriteByte(',')
			}
			rb, _ := json.Marshal(props)
			buf.WriteString(`"required":`)
			buf.Write(rb)
		}
		if !hasAdditional {
			if len(keys) > 0 || props != nil {
				buf.WriteByte(',')
			}
			buf.WriteString(`"additionalProperties":false`)
		}
	}
	buf.WriteByte('}')
	return true
}

// --- the answer ---------------------------------------------------------

// responsesAPI writes answers as OpenAI's Responses API does: a Response
// object, or its stream events.
type responsesAPI struct {
	req       *responsesRequest
	fields    *fieldMap
	echoTools []toolEcho
	metadata  map[string]string
	// items keep output items for item_reference (nil: off), for the
	// API token scope; store says this answer's items are kept (the
	// request's store, true when absent, and a store to keep them in).
	items *itemStore
	scope string
	store bool
	// prev is the request's previous_response_id ("": none); input its
	// input items as resolved, kept with the answer when store is set.
	prev  string
	input []json.RawMessage
}

func (*responsesAPI) endpoint(stream bool) string {
	if stream {
		return "responses_stream"
	}
	return "responses"
}

func (rw *responsesAPI) fail(w http.ResponseWriter, e *Error) { writeError(w, rw.fields.mapError(e)) }

func (rw *responsesAPI) whole(w http.ResponseWriter, ans answer) {
	r := rw.object(time.Now().Unix(), ans.model)
	r.Status, r.IncompleteDetails = statusOf(ans.finish)
	if ans.reasoning != "" || len(ans.thinking) > 0 {
		r.Output = append(r.Output, reasoningItem(newID("rs_"), ans.reasoning, ans.thinking, rw.req.encrypted))
	}
	if ans.content != "" || ans.refusal != "" || len(ans.calls) == 0 {
		m := messageItem(newID("msg_"), ans.content, ans.refusal, itemStatus(r.Status))
		if ans.logprobsAsked && m.Content[0].Type == partText {
			m.Content[0].Logprobs = responseLogprobs(ans.logprobs)
		}
		r.Output = append(r.Output, m)
	}
	for _, c := range ans.calls {
		r.Output = append(r.Output, callItem(newID("fc_"), c.GetId(), c.GetName(), c.GetArguments(), "completed"))
	}
	r.Usage = responseUsageOf(ans.usage, false)
	if ans.serviceTier != "" {
		r.ServiceTier = &ans.serviceTier
	}
	now := time.Now().Unix()
	r.CompletedAt = &now
	rw.keepOutput(r.ID, r.Output)
	writeJSON(w, http.StatusOK, r)
}

// responseJSON is a Response object.
type responseJSON struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	CompletedAt        *int64             `json:"completed_at"`
	Error              *responseErrorJSON `json:"error"`
	IncompleteDetails  *incompleteJSON    `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int32             `json:"max_output_tokens"`
	MaxToolCalls       *int64             `json:"max_tool_calls"`
	Model              string             `json:"model"`
	Output             []any              `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          reasoningEcho      `json:"reasoning"`
	ServiceTier        *string            `json:"service_tier,omitempty"`
	Store              bool               `json:"store"`
	Temperature        *float64           `json:"temperature"`
	Text               textEcho           `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []toolEcho         `json:"tools"`
	TopP               *float64           `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *responseUsageJSON `json:"usage"`
	User               *string            `json:"user,omitempty"`
	SafetyIdentifier   json.RawMessage    `json:"safety_identifier,omitempty"`
	PromptCacheKey     json.RawMessage    `json:"prompt_cache_key,omitempty"`
	TopLogprobs        json.RawMessage    `json:"top_logprobs,omitempty"`
	Metadata           map[string]string  `json:"metadata"`
}

type responseErrorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type incompleteJSON struct {
	Reason string `json:"reason"`
}

type reasoningEcho struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

type textEcho struct {
	Format    json.RawMessage `json:"format"`
	Verbosity json.RawMessage `json:"verbosity,omitempty"`
}

type responseUsageJSON struct {
	InputTokens        int32 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int32 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int32 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int32 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int32 `json:"total_tokens"`
	// Estimated: the gateway counted it (a stream's usage; a whole answer
	// says so in x-vigil-usage).
	Estimated bool `json:"estimated,omitempty"`
}

func responseUsageOf(u *usageJSON, estimated bool) *responseUsageJSON {
	if u == nil {
		return nil
	}
	out := &responseUsageJSON{InputTokens: u.PromptTokens, OutputTokens: u.CompletionTokens, TotalTokens: u.TotalTokens, Estimated: estimated}
	if out.TotalTokens == 0 {
		out.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	if d := u.PromptTokensDetails; d != nil {
		out.InputTokensDetails.CachedTokens = d.CachedTokens
	}
	if d := u.CompletionTokensDetails; d != nil {
		out.OutputTokensDetails.ReasoningTokens = d.ReasoningTokens
	}
	return out
}

// object is the Response object for this request, without its output,
// status and usage.
func (rw *responsesAPI) object(created int64, model string) *responseJSON {
	req := rw.req
	r := &responseJSON{ID: newID("resp_"), Object: "response", CreatedAt: created, Status: "in_progress", Model: model,
		Output: []any{}, ParallelToolCalls: true, Temperature: req.Temperature, TopP: req.TopP, MaxOutputTokens: req.MaxOutputTokens, MaxToolCalls: req.maxToolCalls,
		Truncation: "disabled", Tools: rw.echoTools, User: req.User, Metadata: rw.metadata, Store: rw.store,
		Text: textEcho{Format: json.RawMessage(`{"type":"text"}`)}, ToolChoice: json.RawMessage(`"auto"`)}
	if req.Instructions != nil {
		r.Instructions = req.Instructions
	}
	if rw.prev != "" {
		r.PreviousResponseID = &rw.prev
	}
	if req.ParallelToolCalls != nil {
		r.ParallelToolCalls = *req.ParallelToolCalls
	}
	if r.Tools == nil {
		r.Tools = []toolEcho{}
	}
	if r.Metadata == nil {
		r.Metadata = map[string]string{}
	}
	if t := req.Text; t != nil {
		if !isNull(t.Format) {
			r.Text.Format = compactJSON(t.Format)
		}
		if !isNull(t.Verbosity) {
			r.Text.Verbosity = t.Verbosity
		}
	}
	if !isNull(req.ToolChoice) {
		r.ToolChoice = compactJSON(req.ToolChoice)
	}
	if req.Reasoning != nil {
		r.Reasoning.Effort = req.Reasoning.Effort
		for _, raw := range []json.RawMessage{req.Reasoning.Summary, req.Reasoning.GenerateSummary} {
			var v string
			if json.Unmarshal(raw, &v) == nil && v != "" {
				r.Reasoning.Summary = &v
			}
		}
	}
	if !isNull(req.SafetyIdentifier) {
		r.SafetyIdentifier = req.SafetyIdentifier
	}
	if !isNull(req.PromptCacheKey) {
		r.PromptCacheKey = req.PromptCacheKey
	}
	if !isNull(req.TopLogprobs) {
		r.TopLogprobs = compactJSON(req.TopLogprobs)
	}
	return r
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// statusOf is a Response's status for the upstream's finish reason: an
// answer cut by the output cap (length) or a content filter is
// incomplete, as OpenAI's is.
func statusOf(finish string) (string, *incompleteJSON) {
	switch finish {
	case "length":
		return "incomplete", &incompleteJSON{Reason: "max_output_tokens"}
	case "content_filter":
		return "incomplete", &incompleteJSON{Reason: "content_filter"}
	}
	return "completed", nil
}

func itemStatus(responseStatus string) string {
	if responseStatus == "incomplete" {
		return "incomplete"
	}
	return "completed"
}

// contentPart is a content part of an output message: output_text, or
// refusal (a model's refusal, given instead of the answer), which OpenAI
// keeps apart so that clients (the SDKs' responses.parse) do not take it
// for the answer and output_text leaves it out.
type contentPart struct {
	Type string // "output_text" or "refusal"
	// Text is the text, or the refusal.
	Text string
	// Logprobs are an output_text's.
	Logprobs []openaiwire.TokenLogprob
}

const (
	partText    = "output_text"
	partRefusal = "refusal"
)

func (p contentPart) MarshalJSON() ([]byte, error) {
	if p.Type == partRefusal {
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Text})
	}
	lps := p.Logprobs
	if lps == nil {
		lps = []openaiwire.TokenLogprob{}
	}
	return json.Marshal(struct {
		Type        string                    `json:"type"`
		Text        string                    `json:"text"`
		Annotations []any                     `json:"annotations"`
		Logprobs    []openaiwire.TokenLogprob `json:"logprobs"`
	}{p.Type, p.Text, []any{}, lps})
}

// responseLogprobs are tokens' logprobs as the Responses API writes them:
// the chat shape, with bytes a list (empty when the upstream gave none).
func responseLogprobs(lps []*pb.TokenLogprob) []openaiwire.TokenLogprob {
	out := logprobsOut(true, lps).Content
	for i := range out {
		if out[i].Bytes == nil {
			out[i].Bytes = []int{}
		}
		for j := range out[i].TopLogprobs {
			if out[i].TopLogprobs[j].Bytes == nil {
				out[i].TopLogprobs[j].Bytes = []int{}
			}
		}
	}
	return out
}

type messageItemJSON struct {
	ID      string        `json:"id"`
	Type    string        `json:"type"`
	Status  string        `json:"status"`
	Role    string        `json:"role"`
	Content []contentPart `json:"content"`
}

// messageItem is an output message: its text (an output_text part, empty
// if there is neither text nor refusal), then its refusal (a refusal
// part). In progress, it has no parts yet.
func messageItem(id, text, refusal, status string) *messageItemJSON {
	m := &messageItemJSON{ID: id, Type: "message", Status: status, Role: "assistant", Content: []contentPart{}}
	if status == "in_progress" {
		return m
	}
	if text != "" || refusal == "" {
		m.Content = append(m.Content, contentPart{Type: partText, Text: text})
	}
	if refusal != "" {
		m.Content = append(m.Content, contentPart{Type: partRefusal, Text: refusal})
	}
	return m
}

type callItemJSON struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

func callItem(id, callID, name, args, status string) *callItemJSON {
	if callID == "" {
		callID = newID("call_")
	}
	return &callItemJSON{ID: id, Type: "function_call", Status: status, CallID: callID, Name: name, Arguments: args}
}

// --- streaming ----------------------------------------------------------

func (rw *responsesAPI) events(w http.ResponseWriter, creq *pb.ChatRequest, _ bool) streamEncoder {
	return &responseEvents{rw: rw, out: sse{w: w, rc: http.NewResponseController(w)}, calls: map[int32]*streamCall{}, logprobs: creq.GetLogprobs()}
}

// responseEvents streams a Response as OpenAI does: response.created and
// response.in_progress; per output item output_item.added, its content
// (per content part content_part.added, output_text.delta...,
// output_text.done or refusal.delta..., refusal.done, then
// content_part.done for a message; function_call_arguments.delta...,
// .done for a function call) and output_item.done; then
// response.completed (or response.incomplete) with the whole Response,
// usage included. Every event has a sequence_number; there is no
// data: [DONE]. A failure after the first event sends an error event and
// response.failed.
type responseEvents struct {
	rw    *responsesAPI
	out   sse
	seq   int
	resp  *responseJSON
	items []any
	// open is the output index of the item being written (-1: none).
	// Of the open message, parts are the content parts done, part the
	// type of the one being written ("" none) and text its text so far.
	open         int
	isText       bool
	parts        []contentPart
	part         string
	text         strings.Builder
	msgID        string
	calls        map[int32]*streamCall
	finishReason string
	tierSeen     string
	// logprobs says the request asked for them; lps are the open
	// output_text part's so far, pending those not yet sent with a text
	// delta.
	logprobs bool
	lps      []openaiwire.TokenLogprob
	pending  []*pb.TokenLogprob
	// rs is the last reasoning item (open while s.open is its index).
	rs *streamReasoning
}

// textItem is the open message as an item with status: its parts done
// and the one being written.
func (s *responseEvents) textItem(status string) *messageItemJSON {
	item := messageItem(s.msgID, "", "", "in_progress")
	item.Status = status
	item.Content = append(item.Content, s.parts...)
	if s.part != "" {
		item.Content = append(item.Content, s.openPart())
	}
	return item
}

// openPart is the content part being written, as it is so far.
func (s *responseEvents) openPart() contentPart {
	p := contentPart{Type: s.part, Text: s.text.String()}
	if s.part == partText {
		p.Logprobs = s.lps
	}
	return p
}

// startPart opens a content part of type typ in the open message (after
// ending the one being written, if of another type).
func (s *responseEvents) startPart(typ string) error {
	if s.part == typ {
		return nil
	}
	if err := s.endPart(); err != nil {
		return err
	}
	s.part = typ
	s.text.Reset()
	s.lps = nil
	return s.named("response.content_part.added", map[string]any{"item_id": s.msgID, "output_index": s.open, "content_index": len(s.parts), "part": contentPart{Type: typ}})
}

// endPart ends the content part being written: output_text.done (or
// refusal.done) and content_part.done.
func (s *responseEvents) endPart() error {
	if s.part == "" {
		return nil
	}
	p := s.openPart()
	s.part = ""
	at := map[string]any{"item_id": s.msgID, "output_index": s.open, "content_index": len(s.parts)}
	done := map[string]any{"text": p.Text, "logprobs": p.Logprobs}
	typ := "response.output_text.done"
	if p.Type == partRefusal {
		typ, done = "response.refusal.done", map[string]any{"refusal": p.Text}
	}
	if p.Type == partText && p.Logprobs == nil {
		done["logprobs"] = []openaiwire.TokenLogprob{}
	}
	maps.Copy(done, at)
	if err := s.named(typ, done); err != nil {
		return err
	}
	s.parts = append(s.parts, p)
	at["part"] = p
	return s.named("response.content_part.done", at)
}

// startMessage opens a message item, unless one is being written.
func (s *responseEvents) startMessage() error {
	if s.open >= 0 && s.isText {
		return nil
	}
	if err := s.closeOpen("completed"); err != nil {
		return err
	}
	s.open, s.isText, s.msgID = len(s.items), true, newID("msg_")
	s.parts, s.part = nil, ""
	item := messageItem(s.msgID, "", "", "in_progress")
	s.items = append(s.items, item)
	return s.named("response.output_item.added", map[string]any{"output_index": s.open, "item": item})
}

type streamCall struct {
	index int
	item  *callItemJSON
	args  strings.Builder
	// announced: its output_item.added was sent; held are its argument
	// fragments not sent yet (it began while another call was streamed).
	announced bool
	held      []string
	// done: its output_item.done was sent.
	done bool
}

// named writes one event, with its type as the SSE event name and its
// sequence number.
func (s *responseEvents) named(typ string, fields map[string]any) error {
	fields["type"] = typ
	fields["sequence_number"] = s.seq
	s.seq++
	if s.out.err != nil {
		return s.out.err
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	if _, s.out.err = fmt.Fprintf(s.out.w, "event: %s\ndata: %s\n\n", typ, b); s.out.err == nil {
		s.out.err = s.out.rc.Flush()
	}
	return s.out.err
}

func (s *responseEvents) begin(model string, _ bool) error {
	s.resp = s.rw.object(time.Now().Unix(), model)
	s.open = -1
	if err := s.named("response.created", map[string]any{"response": s.resp}); err != nil {
		return err
	}
	return s.named("response.in_progress", map[string]any{"response": s.resp})
}

// closeOpen ends the item being written with status.
func (s *responseEvents) closeOpen(status string) error {
	if s.open < 0 {
		return nil
	}
	idx := s.open
	if s.rs != nil && idx == s.rs.index {
		s.open = -1
		return s.closeReasoning()
	}
	if s.isText {
		if err := s.endPart(); err != nil {
			return err
		}
		s.open = -1
		item := s.textItem(status)
		s.items[idx] = item
		return s.named("response.output_item.done", map[string]any{"output_index": idx, "item": item})
	}
	// The call being streamed ends here, then each call that began
	// behind it is sent whole, in output order (see delta).
	open := make([]*streamCall, 0, len(s.calls))
	for _, c := range s.calls {
		if !c.done {
			open = append(open, c)
		}
	}
	slices.SortFunc(open, func(a, b *streamCall) int { return a.index - b.index })
	for _, c := range open {
		if !c.announced {
			if err := s.announce(c); err != nil {
				return err
			}
			for _, a := range c.held {
				if err := s.argsDelta(c, a); err != nil {
					return err
				}
			}
			c.held = nil
		}
		c.done = true
		c.item.Arguments, c.item.Status = c.args.String(), status
		if err := s.named("response.function_call_arguments.done", map[string]any{"item_id": c.item.ID, "output_index": c.index, "name": c.item.Name, "arguments": c.item.Arguments}); err != nil {
			return err
		}
		if err := s.named("response.output_item.done", map[string]any{"output_index": c.index, "item": c.item}); err != nil {
			return err
		}
	}
	return nil
}

// announce sends a call's output_item.added.
func (s *responseEvents) announce(c *streamCall) error {
	c.announced = true
	added := *c.item
	added.Arguments, added.Status = "", "in_progress"
	return s.named("response.output_item.added", map[string]any{"output_index": c.index, "item": &added})
}

func (s *responseEvents) argsDelta(c *streamCall, a string) error {
	return s.named("response.function_call_arguments.delta", map[string]any{"item_id": c.item.ID, "output_index": c.index, "delta": a})
}

func (s *responseEvents) delta(text string, calls []*pb.ToolCallDelta, lps []*pb.TokenLogprob) error {
	if s.logprobs {
		s.pending = append(s.pending, lps...)
	}
	if text != "" {
		if err := s.startMessage(); err != nil {
			return err
		}
		if err := s.startPart(partText); err != nil {
			return err
		}
		s.text.WriteString(text)
		sent := []openaiwire.TokenLogprob{}
		if len(s.pending) > 0 {
			sent = responseLogprobs(s.pending)
			s.pending = s.pending[:0]
			s.lps = append(s.lps, sent...)
		}
		if err := s.named("response.output_text.delta", map[string]any{"item_id": s.msgID, "output_index": s.open, "content_index": len(s.parts), "delta": text, "logprobs": sent}); err != nil {
			return err
		}
	}
	for _, d := range calls {
		c := s.calls[d.GetIndex()]
		if c == nil {
			// A message or reasoning item ends where a call begins. The
			// first call is streamed as it comes; a call that begins while
			// another is streamed is held and sent whole when that one
			// ends (closeOpen), since an upstream may interleave parallel
			// calls' fragments and a call's item is done only once its
			// arguments are all in. An upstream that sends its calls one
			// after the other so gets OpenAI's order of events.
			if s.open >= 0 && (s.isText || s.rs != nil && s.open == s.rs.index) {
				if err := s.closeOpen("completed"); err != nil {
					return err
				}
			}
			c = &streamCall{index: len(s.items), item: callItem(newID("fc_"), d.GetId(), d.GetName(), "", "in_progress")}
			s.calls[d.GetIndex()] = c
			s.items = append(s.items, c.item)
			if s.open < 0 {
				s.open, s.isText = c.index, false
				if err := s.announce(c); err != nil {
					return err
				}
			}
		}
		if a := d.GetArguments(); a != "" {
			c.args.WriteString(a)
			if !c.announced {
				c.held = append(c.held, a)
				continue
			}
			if err := s.argsDelta(c, a); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *responseEvents) finish(reason string) error {
	s.finishReason = reason
	status, _ := statusOf(reason)
	return s.closeOpen(itemStatus(status))
}

func (s *responseEvents) upstream(t, _ string) { s.tierSeen = t }

// refusal writes a piece of a refusal, as OpenAI streams one: in the
// open message's refusal part (response.refusal.delta).
func (s *responseEvents) refusal(text string) error {
	if text == "" {
		return nil
	}
	if err := s.startMessage(); err != nil {
		return err
	}
	if err := s.startPart(partRefusal); err != nil {
		return err
	}
	s.text.WriteString(text)
	return s.named("response.refusal.delta", map[string]any{"item_id": s.msgID, "output_index": s.open, "content_index": len(s.parts), "delta": text})
}

// fail sends an error event (with OpenAI's documented fields and the
// nested error object that the SDKs raise as an APIError) and then
// response.failed, so that neither a client reading the events nor an
// SDK takes what was sent for a complete answer.
func (s *responseEvents) fail(e *Error) {
	e = s.rw.fields.mapError(e)
	_ = s.named("error", map[string]any{"code": e.Code, "message": e.Message, "param": e.Param, "error": e})
	if s.resp == nil {
		return
	}
	r := *s.resp
	r.Status, r.Error, r.Output = "failed", &responseErrorJSON{Code: e.Code, Message: e.Message}, s.output()
	_ = s.named("response.failed", map[string]any{"response": &r})
}

// output is the items so far, with the calls' arguments so far.
func (s *responseEvents) output() []any {
	for _, c := range s.calls {
		c.item.Arguments = c.args.String()
	}
	if s.open >= 0 && s.isText {
		s.items[s.open] = s.textItem("incomplete")
	}
	if s.rs != nil && s.open == s.rs.index {
		*s.rs.item = *reasoningItem(s.rs.item.ID, s.rs.text.String(), s.rs.item.blocks, s.rw.req.encrypted)
	}
	out := make([]any, len(s.items))
	copy(out, s.items)
	return out
}

func (s *responseEvents) end(u *usageJSON, estimated bool, serviceTier string) {
	status, incomplete := statusOf(s.finishReason)
	_ = s.closeOpen(itemStatus(status))
	r := *s.resp
	r.Status, r.IncompleteDetails, r.Output = status, incomplete, s.output()
	if !answered(r.Output) {
		r.Output = append(r.Output, messageItem(newID("msg_"), "", "", itemStatus(status)))
	}
	r.Usage = responseUsageOf(u, estimated)
	if serviceTier == "" {
		serviceTier = s.tierSeen
	}
	if serviceTier != "" {
		r.ServiceTier = &serviceTier
	}
	now := time.Now().Unix()
	r.CompletedAt = &now
	typ := "response.completed"
	if status == "incomplete" {
		typ = "response.incomplete"
	}
	if s.out.err == nil {
		s.rw.keepOutput(r.ID, r.Output)
	}
	_ = s.named(typ, map[string]any{"response": &r})
}

func (s *responseEvents) err() error { return s.out.err }

// --- handlers -----------------------------------------------------------

// HandleResponses serves POST /openai/v1/responses.
func (g *Gateway) HandleResponses(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	if !g.admit(w) {
		return
	}
	defer g.done()
	start := time.Now()
	var req responsesRequest
	if !g.decodeBody(w, r, &req) {
		return
	}
	a, e := g.lookup(req.Model)
	if e == nil {
		var creq *pb.ChatRequest
		var rw *responsesAPI
		var check *outputCheck
		scope := ""
		if g.TokenName != nil {
			scope = g.TokenName(r)
		}
		if creq, rw, e = req.contract(g.items, scope); e == nil {
			if check, e = newOutputCheck(creq); e != nil {
				e = rw.fields.mapError(e)
			}
		}
		if e == nil {
			e = cacheHeaderError(r)
		}
		if e == nil {
			g.serveChat(w, r, a, creq, check, req.Stream, true, rw, start)
			return
		}
	}
	g.refuse(w, "responses", a, e, start)
}

// HandleResponseByID serves the Responses API's paths below
// /openai/v1/responses: GET and DELETE of a response (and its input items)
// and POST .../{id}/cancel answer 404 since the gateway keeps no
// response; any other POST (input_tokens, compact) or DELETE below a
// response is not built: 404 too, saying so. A path that names no
// response (a trailing slash) is 404 saying that, for every method.
func (g *Gateway) HandleResponseByID(w http.ResponseWriter, r *http.Request) {
	requestID(w)
	rest := r.PathValue("id")
	id, sub, _ := strings.Cut(rest, "/")
	if (r.Method == http.MethodPost && sub != "cancel") || (r.Method == http.MethodDelete && sub != "") {
		writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
			Message: fmt.Sprintf("%s /openai/v1/responses/%s is not served by the gateway: of the Responses API it serves POST /openai/v1/responses", r.Method, rest)})
		return
	}
	if id == "" {
		writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
			Message: fmt.Sprintf("%s %s names no response: %s, so none can be retrieved, cancelled or deleted", r.Method, r.URL.Path, notStored)})
		return
	}
	writeError(w, &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
		Message: fmt.Sprintf("no response %q: %s, so it cannot be retrieved, cancelled or deleted; keep the answer (and the conversation) on the client", id, notStored)})
}

// sortedKeys is for deterministic messages.
func sortedKeys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
