package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	"github.com/vigilml/vigil/internal/openaiwire"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is tool calling (OpenAI's function calling) on the gateway's
// side: the request's tools, tool_choice and parallel_tool_calls, the
// assistant messages that carry tool_calls and the tool messages that
// answer them, checked and turned into the provider contract; the
// answer's tool calls in a chat.completion and as streamed deltas; and
// their share of the token counts.

// maxTools is OpenAI's limit on tools per request.
const maxTools = 128

// toolJSON is one entry of a request's tools.
type toolJSON struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
}

// validToolName is OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$.
func validToolName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

// contractTools checks the request's tools, tool_choice and
// parallel_tool_calls into out.
func (req *chatRequest) contractTools(out *pb.ChatRequest) *Error {
	if !isNull(req.Functions) {
		return invalid("functions", "functions is deprecated and not supported by the gateway; send tools: [{\"type\": \"function\", \"function\": {...}}] instead")
	}
	if !isNull(req.FunctionCall) {
		return invalid("function_call", "function_call is deprecated and not supported by the gateway; send tool_choice instead (\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}})")
	}
	if req.Tools != nil {
		if len(*req.Tools) == 0 {
			return invalid("tools", "tools must hold at least one tool when present; leave it out for none")
		}
		if len(*req.Tools) > maxTools {
			return invalid("tools", "tools holds %d tools; at most %d are allowed", len(*req.Tools), maxTools)
		}
	}
	var tools []toolJSON
	if req.Tools != nil {
		tools = *req.Tools
	}
	names := make(map[string]bool, len(tools))
	for i, t := range tools {
		field := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return invalid(field+".type", "%s.type must be \"function\", got %q", field, t.Type)
		}
		f := t.Function
		if f == nil {
			return invalid(field+".function", "%s.function is required", field)
		}
		if !validToolName(f.Name) {
			return invalid(field+".function.name", "%s.function.name %q must be 1 to 64 characters of a-z, A-Z, 0-9, _ and -", field, f.Name)
		}
		if names[f.Name] {
			return invalid(field+".function.name", "%s.function.name %q is not unique: another tool has the same name", field, f.Name)
		}
		names[f.Name] = true
		pt := &pb.Tool{Name: f.Name, Description: f.Description, Strict: f.Strict != nil && *f.Strict}
		if !isNull(f.Parameters) {
			var obj map[string]any
			if json.Unmarshal(f.Parameters, &obj) != nil {
				return invalid(field+".function.parameters", "%s.function.parameters must be a JSON object (a JSON Schema)", field)
			}
			var compact bytes.Buffer
			_ = json.Compact(&compact, f.Parameters)
			pt.Parameters = compact.String()
		}
		out.Tools = append(out.Tools, pt)
	}
	if !isNull(req.ToolChoice) {
		if len(tools) == 0 {
			return invalid("tool_choice", "tool_choice is only allowed when tools are specified")
		}
		var s string
		if json.Unmarshal(req.ToolChoice, &s) == nil {
			switch s {
			case "none", "auto", "required":
				out.ToolChoice = s
			default:
				return invalid("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}, got %q", s)
			}
		} else {
			var obj struct {
				Type     string `json:"type"`
				Function *struct {
					Name string `json:"name"`
				} `json:"function"`
			}
			dec := json.NewDecoder(bytes.NewReader(req.ToolChoice))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&obj); err != nil {
				return invalid("tool_choice", "tool_choice must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}: %v", err)
			}
			if obj.Type != "function" {
				return invalid("tool_choice.type", "tool_choice.type must be \"function\", got %q", obj.Type)
			}
			if obj.Function == nil || obj.Function.Name == "" {
				return invalid("tool_choice.function.name", "tool_choice.function.name is required")
			}
			if !names[obj.Function.Name] {
				return invalid("tool_choice.function.name", "tool_choice.function.name %q is not one of the request's tools", obj.Function.Name)
			}
			out.ToolChoice, out.ToolChoiceFunction = "function", obj.Function.Name
		}
	}
	if req.ParallelToolCalls != nil {
		if len(tools) == 0 {
			return invalid("parallel_tool_calls", "parallel_tool_calls is only allowed when tools are specified")
		}
		out.ParallelToolCalls = req.ParallelToolCalls
	}
	return nil
}

// contractToolCalls checks an assistant message's tool_calls.
func contractToolCalls(field string, calls []openaiwire.ToolCall) ([]*pb.ToolCall, *Error) {
	out := make([]*pb.ToolCall, 0, len(calls))
	for j, c := range calls {
		f := fmt.Sprintf("%s.tool_calls[%d]", field, j)
		if c.ID == "" {
			return nil, invalid(f+".id", "%s.id is required", f)
		}
		if c.Type != "function" {
			return nil, invalid(f+".type", "%s.type must be \"function\", got %q", f, c.Type)
		}
		if c.Function.Name == "" {
			return nil, invalid(f+".function.name", "%s.function.name is required", f)
		}
		out = append(out, &pb.ToolCall{Id: c.ID, Name: c.Function.Name, Arguments: c.Function.Arguments})
	}
	return out, nil
}

// checkToolMessages checks the tool-call turns as OpenAI does: every tool
// message answers a call of the assistant message before it (the run of
// tool messages that follows it), and every call of an assistant message
// is answered in that run.
func checkToolMessages(msgs []*pb.Message) *Error {
	var open map[string]bool // the calls of the assistant message before the run, id -> answered
	asst := -1               // its index
	closeRun := func() *Error {
		var missing []string
		if asst >= 0 {
			for _, c := range msgs[asst].GetToolCalls() {
				if !open[c.GetId()] {
					missing = append(missing, c.GetId())
				}
			}
		}
		if len(missing) > 0 {
			return invalid(messageField(asst)+".tool_calls", "the assistant message messages[%d] with tool_calls must be followed by tool messages answering each call; these tool_call_ids have none: %s", asst, strings.Join(missing, ", "))
		}
		open, asst = nil, -1
		return nil
	}
	for i, m := range msgs {
		if m.GetRole() == "tool" {
			field := messageField(i)
			if open == nil {
				return invalid(field+".role", "%s: a message with role \"tool\" must answer a tool call of the assistant message before it (with tool_calls)", field)
			}
			answered, ok := open[m.GetToolCallId()]
			if !ok {
				return invalid(field+".tool_call_id", "%s.tool_call_id %q is not the id of a tool call of the assistant message before it", field, m.GetToolCallId())
			}
			if answered {
				return invalid(field+".tool_call_id", "%s.tool_call_id %q was answered already", field, m.GetToolCallId())
			}
			open[m.GetToolCallId()] = true
			continue
		}
		if e := closeRun(); e != nil {
			return e
		}
		if m.GetRole() == "assistant" && len(m.GetToolCalls()) > 0 {
			open, asst = make(map[string]bool, len(m.GetToolCalls())), i
			for _, c := range m.GetToolCalls() {
				if _, dup := open[c.GetId()]; dup {
					return invalid(messageField(i)+".tool_calls", "%s.tool_calls holds the id %q twice", messageField(i), c.GetId())
				}
				open[c.GetId()] = false
			}
		}
	}
	return closeRun()
}

func messageField(i int) string { return fmt.Sprintf("messages[%d]", i) }

// toolCallsOut are an answer's tool calls in OpenAI's shape.
func toolCallsOut(calls []*pb.ToolCall) []openaiwire.ToolCall {
	if len(calls) == 0 {
		return nil
	}
	out := make([]openaiwire.ToolCall, len(calls))
	for i, c := range calls {
		out[i].ID, out[i].Type = c.GetId(), "function"
		out[i].Function.Name, out[i].Function.Arguments = c.GetName(), c.GetArguments()
	}
	return out
}

// toolCallDeltaJSON is a streamed piece of a tool call, as OpenAI sends
// it: index, id, type and the function's name on a call's first chunk,
// then argument fragments under the same index.
type toolCallDeltaJSON struct {
	Index    int32             `json:"index"`
	ID       string            `json:"id,omitempty"`
	Type     string            `json:"type,omitempty"`
	Function toolFunctionDelta `json:"function"`
}

type toolFunctionDelta struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

func toolCallDeltasOut(ds []*pb.ToolCallDelta) []toolCallDeltaJSON {
	out := make([]toolCallDeltaJSON, len(ds))
	for i, d := range ds {
		out[i] = toolCallDeltaJSON{Index: d.GetIndex(), ID: d.GetId(), Function: toolFunctionDelta{Name: d.GetName(), Arguments: d.GetArguments()}}
		if d.GetId() != "" || d.GetName() != "" {
			out[i].Type = "function"
		}
	}
	return out
}

// toolCallBuilder collects a streamed answer's tool calls from their
// deltas (to cache, validate and count them).
type toolCallBuilder struct {
	calls map[int32]*pb.ToolCall
}

func (b *toolCallBuilder) add(ds []*pb.ToolCallDelta) {
	for _, d := range ds {
		if b.calls == nil {
			b.calls = map[int32]*pb.ToolCall{}
		}
		c := b.calls[d.GetIndex()]
		if c == nil {
			c = &pb.ToolCall{}
			b.calls[d.GetIndex()] = c
		}
		if d.GetId() != "" {
			c.Id = d.GetId()
		}
		if d.GetName() != "" {
			c.Name = d.GetName()
		}
		c.Arguments += d.GetArguments()
	}
}

func (b *toolCallBuilder) reset() { b.calls = nil }

// list returns the calls in index order.
func (b *toolCallBuilder) list() []*pb.ToolCall {
	if len(b.calls) == 0 {
		return nil
	}
	idx := make([]int32, 0, len(b.calls))
	for i := range b.calls {
		idx = append(idx, i)
	}
	sort.Slice(idx, func(i, j int) bool { return idx[i] < idx[j] })
	out := make([]*pb.ToolCall, len(idx))
	for k, i := range idx {
		out[k] = b.calls[i]
	}
	return out
}

// --- token counts -------------------------------------------------------
//
// OpenAI does not publish how it renders tool definitions and tool calls
// into the prompt, so their counts are an approximation (docs/gateway.md):
// each function costs toolFraming tokens plus the tokens of its name,
// description and parameters (the compact JSON text); the definitions
// cost toolsFraming tokens once; each tool call of an assistant message
// costs callFraming tokens plus its id, name and arguments; a tool
// message's tool_call_id is counted like a name.
const (
	toolFraming  = 7
	toolsFraming = 12
	callFraming  = 3
)

// toolsTokens counts the request's tool definitions in encoding enc.
func toolsTokens(enc tokens.Encoding, tools []*pb.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	n := toolsFraming
	for _, t := range tools {
		n += toolFraming + tokens.Count(enc, t.GetName()) + tokens.Count(enc, t.GetDescription()) + tokens.Count(enc, t.GetParameters())
	}
	return n
}

// toolsBytes bounds toolsTokens by the definitions' bytes.
func toolsBytes(tools []*pb.Tool) int {
	if len(tools) == 0 {
		return 0
	}
	n := toolsFraming
	for _, t := range tools {
		n += toolFraming + len(t.GetName()) + len(t.GetDescription()) + len(t.GetParameters())
	}
	return n
}

// messageToolTokens counts what a message carries besides its role,
// content and name: its tool calls, or the id of the call it answers.
func messageToolTokens(enc tokens.Encoding, m *pb.Message) int {
	n := 0
	for _, c := range m.GetToolCalls() {
		n += callFraming + tokens.Count(enc, c.GetId()) + tokens.Count(enc, c.GetName()) + tokens.Count(enc, c.GetArguments())
	}
	if id := m.GetToolCallId(); id != "" {
		n += tokens.Count(enc, id) + tokens.PerName
	}
	return n
}

// messageToolBytes bounds messageToolTokens by bytes.
func messageToolBytes(m *pb.Message) int {
	n := 0
	for _, c := range m.GetToolCalls() {
		n += callFraming + len(c.GetId()) + len(c.GetName()) + len(c.GetArguments())
	}
	if id := m.GetToolCallId(); id != "" {
		n += len(id) + tokens.PerName
	}
	return n
}

// answerText is the text of an answer whose tokens are counted when the
// upstream reports no usage: its content and its tool calls' names and
// arguments.
func answerText(content string, calls []*pb.ToolCall) string {
	if len(calls) == 0 {
		return content
	}
	var b strings.Builder
	b.WriteString(content)
	for _, c := range calls {
		b.WriteString("\n")
		b.WriteString(c.GetName())
		b.WriteString("\n")
		b.WriteString(c.GetArguments())
	}
	return b.String()
}

// ToolsCapability is the provider capability that says a plugin carries
// tool definitions and calls. A plugin built on a contract without them
// would drop them without a word (protobuf ignores fields it does not
// know), so a request with tools, or with tool calls in its history, is
// not sent to a running plugin that does not declare it.
const ToolsCapability = "tools"

// usesTools reports whether req carries tools or tool calls.
func usesTools(req *pb.ChatRequest) bool {
	if len(req.GetTools()) > 0 {
		return true
	}
	for _, m := range req.GetMessages() {
		if len(m.GetToolCalls()) > 0 || m.GetToolCallId() != "" {
			return true
		}
	}
	return false
}
