package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Tool calls: the contract follows OpenAI's shapes (tools[].function,
// assistant tool_calls with JSON-text arguments, one tool message per
// result); the Messages API wants tools with an input_schema, tool_use
// content blocks with an input object in the assistant turn, and
// tool_result blocks at the head of the next user turn.

// block is one content block of a Messages API message: text, tool_use
// or tool_result.
type block struct {
	Type      string          `json:"type"`
	Text      string          `json:"text,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   string          `json:"content,omitempty"`
	Source    *imageSource    `json:"source,omitempty"`
	Title     string          `json:"title,omitempty"` // a document block's title
	// A thinking block's text and signature, a redacted_thinking
	// block's data (thinking.go).
	Thinking  *string `json:"thinking,omitempty"`
	Signature string  `json:"signature,omitempty"`
	Data      string  `json:"data,omitempty"`
}

// imageSource is an image block's image: inline (base64) or by URL.
type imageSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

// imageMediaTypes are the image types the Messages API takes inline.
var imageMediaTypes = []string{"image/jpeg", "image/png", "image/gif", "image/webp"}

// userBlocks are the blocks of a user message with parts: text, image
// and document blocks in order (a file part's filename is the document's
// title). OpenAI's detail has no Anthropic equivalent and
// is dropped.
func userBlocks(i int, parts []*pb.ContentPart) ([]block, error) {
	out := make([]block, 0, len(parts))
	for j, p := range parts {
		field := fmt.Sprintf("messages[%d].parts[%d]", i, j)
		switch p.GetType() {
		case "text":
			out = append(out, block{Type: "text", Text: p.GetText()})
		case "image_url":
			src, err := imageSourceOf(p.GetImageUrl())
			if err != nil {
				return nil, sdk.FieldErrorf(field+".image_url", "%v", err)
			}
			out = append(out, block{Type: "image", Source: src})
		case "file":
			src, err := documentSourceOf(p.GetFileData())
			if err != nil {
				return nil, sdk.FieldErrorf(field+".file_data", "%v", err)
			}
			out = append(out, block{Type: "document", Source: src, Title: p.GetFilename()})
		default:
			return nil, sdk.FieldErrorf(field+".type", "part type %q is not text, image_url or file", p.GetType())
		}
	}
	return out, nil
}

// imageSourceOf turns an image URL (http(s), or a base64 data: URL) into
// an image block's source.
func imageSourceOf(u string) (*imageSource, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, enc, _ := strings.Cut(meta, ";")
		if !ok || enc != "base64" || data == "" {
			return nil, fmt.Errorf("a data: URL must be data:<image type>;base64,<data>")
		}
		if !slices.Contains(imageMediaTypes, mediaType) {
			return nil, fmt.Errorf("the Messages API takes %s images inline, not %q", strings.Join(imageMediaTypes, ", "), mediaType)
		}
		return &imageSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
		return nil, fmt.Errorf("an image must be an http(s) URL or a base64 data: URL")
	}
	return &imageSource{Type: "url", URL: u}, nil
}

// documentSourceOf turns a file's data: URL (a PDF, base64) into a
// document block's source.
func documentSourceOf(u string) (*imageSource, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	meta, data, ok2 := strings.Cut(rest, ",")
	mediaType, enc, _ := strings.Cut(meta, ";")
	if !ok || !ok2 || enc != "base64" || data == "" {
		return nil, fmt.Errorf("a file must be a data: URL, data:application/pdf;base64,<data>")
	}
	if mediaType != "application/pdf" {
		return nil, fmt.Errorf("the Messages API takes PDF documents (application/pdf) inline, not %q", mediaType)
	}
	return &imageSource{Type: "base64", MediaType: mediaType, Data: data}, nil
}

// message is one user or assistant turn. A turn of text only is sent with
// string content, as before tools; any other as a list of blocks.
type message struct {
	Role   string
	Blocks []block
}

func (m message) MarshalJSON() ([]byte, error) {
	if len(m.Blocks) == 1 && m.Blocks[0].Type == "text" {
		return json.Marshal(struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		}{m.Role, m.Blocks[0].Text})
	}
	return json.Marshal(struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	}{m.Role, m.Blocks})
}

// turns builds the alternating user/assistant turns, merging consecutive
// contract messages that land in one role.
type turns struct {
	out []message
}

// add appends blocks in role, to the last turn when it has that role.
// Text following text in one turn is joined by a blank line, as
// consecutive text messages always were.
func (t *turns) add(role string, blocks ...block) {
	n := len(t.out)
	if n == 0 || t.out[n-1].Role != role {
		t.out = append(t.out, message{Role: role, Blocks: blocks})
		return
	}
	last := &t.out[n-1]
	for _, b := range blocks {
		k := len(last.Blocks)
		switch {
		case b.Type == "text" && k > 0 && last.Blocks[k-1].Type == "text":
			last.Blocks[k-1].Text += "\n\n" + b.Text
		case b.Type == "text" && strings.TrimSpace(b.Text) == "":
			// Anthropic refuses empty or blank text blocks; there is
			// nothing to say.
		default:
			last.Blocks = append(last.Blocks, b)
		}
	}
}

// conversation splits contract messages into Anthropic's top-level system
// prompt and user/assistant turns, merging consecutive turns of one role
// (the Messages API wants them alternating). An assistant message's tool
// calls become tool_use blocks after its text; tool messages become
// tool_result blocks of a user turn, the results of one assistant message
// all in one turn, with a user message that follows them merged in after
// the results (Anthropic wants the results first). A tool message must
// answer a call of the assistant message it follows, and every call must
// be answered before the conversation goes on: Anthropic refuses anything
// else, so the error names the contract's field instead.
func conversation(msgs []*pb.Message) (system string, out []message, hasTools bool, err error) {
	var sys []string
	var t turns
	// open are the calls of the assistant message the tool messages now
	// answer (false once answered), callsAt its index (-1: none).
	var open map[string]bool
	var openOrder []string
	callsAt := -1
	unanswered := func() error {
		for _, id := range openOrder {
			if open[id] {
				return sdk.FieldErrorf(fmt.Sprintf("messages[%d].tool_calls", callsAt), "tool call %q has no tool message answering it (each call needs a tool message with its tool_call_id right after the assistant message)", id)
			}
		}
		return nil
	}
	for i, m := range msgs {
		role := m.GetRole()
		if role == "system" {
			sys = append(sys, m.GetContent())
			continue
		}
		if role == "tool" {
			id := m.GetToolCallId()
			switch {
			case id == "":
				return "", nil, false, sdk.FieldErrorf(fmt.Sprintf("messages[%d].tool_call_id", i), "a tool message needs the tool_call_id of the call it answers")
			case callsAt < 0 || !open[id]:
				return "", nil, false, sdk.FieldErrorf(fmt.Sprintf("messages[%d].tool_call_id", i), "%q does not answer an unanswered tool call of the assistant message right before the tool messages", id)
			}
			open[id] = false
			hasTools = true
			t.add("user", block{Type: "tool_result", ToolUseID: toolUseID(id), Content: m.GetContent()})
			continue
		}
		if err := unanswered(); err != nil {
			return "", nil, false, err
		}
		open, openOrder, callsAt = nil, nil, -1
		switch role {
		case "user":
			if len(m.GetParts()) > 0 {
				blocks, err := userBlocks(i, m.GetParts())
				if err != nil {
					return "", nil, false, err
				}
				t.add("user", blocks...)
				continue
			}
			t.add("user", block{Type: "text", Text: m.GetContent()})
		case "assistant":
			thinking, err := thinkingBlocks(i, m.GetThinkingBlocks())
			if err != nil {
				return "", nil, false, err
			}
			if len(m.GetToolCalls()) == 0 {
				if len(thinking) == 0 || strings.TrimSpace(m.GetContent()) != "" {
					thinking = append(thinking, block{Type: "text", Text: m.GetContent()})
				}
				t.add("assistant", thinking...)
				continue
			}
			hasTools = true
			blocks := thinking
			if strings.TrimSpace(m.GetContent()) != "" {
				blocks = append(blocks, block{Type: "text", Text: m.GetContent()})
			}
			open, callsAt = map[string]bool{}, i
			for j, c := range m.GetToolCalls() {
				field := fmt.Sprintf("messages[%d].tool_calls[%d]", i, j)
				if c.GetId() == "" || c.GetName() == "" {
					return "", nil, false, sdk.FieldErrorf(field, "a tool call needs an id and a name")
				}
				if _, dup := open[c.GetId()]; dup {
					return "", nil, false, sdk.FieldErrorf(field+".id", "tool call id %q is used twice in message %d", c.GetId(), i)
				}
				input, err := arguments(c.GetArguments())
				if err != nil {
					return "", nil, false, sdk.FieldErrorf(field+".arguments", "arguments of the call of %q in message %d %v; Anthropic takes a tool call's input as a JSON object", c.GetName(), i, err)
				}
				open[c.GetId()] = true
				openOrder = append(openOrder, c.GetId())
				blocks = append(blocks, block{Type: "tool_use", ID: toolUseID(c.GetId()), Name: c.GetName(), Input: input})
			}
			t.add("assistant", blocks...)
		default:
			return "", nil, false, sdk.FieldErrorf(fmt.Sprintf("messages[%d].role", i), "role %q is not system, user, assistant or tool", role)
		}
	}
	if err := unanswered(); err != nil {
		return "", nil, false, err
	}
	if len(t.out) == 0 {
		return "", nil, false, sdk.FieldErrorf("messages", "at least one user message is required")
	}
	return strings.Join(sys, "\n\n"), t.out, hasTools, nil
}

// toolUseIDRE is what Anthropic accepts as a tool_use id.
var toolUseIDRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// toolUseID is a call id as Anthropic accepts it. Ids made by other
// upstreams (a conversation may have moved here by fallback) can hold
// other characters, such as "functions.get_weather:0": those are replaced
// by '_' and a hash of the whole id is appended, so that the call and its
// result, mapped alike, still pair up and distinct ids stay distinct.
func toolUseID(id string) string {
	if toolUseIDRE.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	var b strings.Builder
	for _, r := range id {
		if r < 128 && (r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_" + hex.EncodeToString(sum[:6])
}

// arguments is a call's JSON-text arguments as an input object; empty
// arguments are an empty object.
func arguments(s string) (json.RawMessage, error) {
	if s == "" {
		return json.RawMessage("{}"), nil
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("are not valid JSON (%v)", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, fmt.Errorf("are JSON but not an object")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		return nil, fmt.Errorf("are not valid JSON (%v)", err)
	}
	return b.Bytes(), nil
}

// emptySchema is the input_schema of a tool that takes no arguments:
// Anthropic requires one.
var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// toolsBody sets tools and tool_choice on the Messages request b.
// hasTools says the conversation holds tool calls or results, which
// Anthropic accepts only with the tools defined.
func toolsBody(req *pb.ChatRequest, b map[string]any, hasTools bool) error {
	tools := req.GetTools()
	choice := req.GetToolChoice()
	if len(tools) == 0 {
		switch {
		case choice == "required" || choice == "function":
			return sdk.FieldErrorf("tool_choice", "tool_choice %q needs tools", choice)
		case choice != "" && choice != "auto" && choice != "none":
			return sdk.FieldErrorf("tool_choice", "%q is not auto, none, required or function", choice)
		case hasTools:
			return sdk.FieldErrorf("tools", "the conversation holds tool calls, and Anthropic accepts them only with the tools defined: send the tools (with tool_choice none to forbid further calls)")
		}
		return nil
	}
	out := make([]map[string]any, 0, len(tools))
	names := map[string]bool{}
	for i, tl := range tools {
		field := fmt.Sprintf("tools[%d]", i)
		if tl.GetName() == "" {
			return sdk.FieldErrorf(field+".name", "a tool needs a name")
		}
		if names[tl.GetName()] {
			return sdk.FieldErrorf(field+".name", "tool %q is defined twice", tl.GetName())
		}
		names[tl.GetName()] = true
		schema, err := inputSchema(tl.GetParameters())
		if err != nil {
			return sdk.FieldErrorf(field+".parameters", "parameters of tool %q %v", tl.GetName(), err)
		}
		t := map[string]any{"name": tl.GetName(), "input_schema": schema}
		if tl.GetDescription() != "" {
			t["description"] = tl.GetDescription()
		}
		out = append(out, t)
	}
	b["tools"] = out
	var tc map[string]any
	switch choice {
	case "", "auto":
		tc = map[string]any{"type": "auto"}
	case "required":
		tc = map[string]any{"type": "any"}
	case "function":
		name := req.GetToolChoiceFunction()
		if !names[name] {
			return sdk.FieldErrorf("tool_choice_function", "tool_choice names function %q, which is not among the tools", name)
		}
		tc = map[string]any{"type": "tool", "name": name}
	case "none":
		b["tool_choice"] = map[string]any{"type": "none"}
		return nil
	default:
		return sdk.FieldErrorf("tool_choice", "%q is not auto, none, required or function", choice)
	}
	if req.ParallelToolCalls != nil && !req.GetParallelToolCalls() {
		tc["disable_parallel_tool_use"] = true
	} else if choice == "" {
		return nil // Anthropic's default is auto, parallel allowed
	}
	b["tool_choice"] = tc
	return nil
}

// inputSchema is a tool's parameters as Anthropic's input_schema: a JSON
// Schema object of type object ("type" is added when left out).
func inputSchema(params string) (json.RawMessage, error) {
	if params == "" {
		return emptySchema, nil
	}
	var v any
	if err := json.Unmarshal([]byte(params), &v); err != nil {
		return nil, fmt.Errorf("are not valid JSON (%v)", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be a JSON object (a JSON Schema)")
	}
	switch typ, set := m["type"]; {
	case !set:
		m["type"] = "object"
		return json.Marshal(m)
	case typ != "object":
		return nil, fmt.Errorf("must be a JSON Schema of type object, not %v", typ)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(params)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// toolCall is a tool_use block of an answer as a contract tool call; the
// arguments are the compact JSON of its input.
func toolCall(id, name string, input json.RawMessage) *pb.ToolCall {
	return &pb.ToolCall{Id: id, Name: name, Arguments: compactInput(input)}
}

func compactInput(input json.RawMessage) string {
	var b bytes.Buffer
	if len(bytes.TrimSpace(input)) == 0 || bytes.Equal(bytes.TrimSpace(input), []byte("null")) || json.Compact(&b, input) != nil {
		return "{}"
	}
	return b.String()
}
