package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/santhosh-tekuri/jsonschema/v6"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// outputCheck validates a final answer: its content against the
// request's response_format (a JSON object for json_object, the schema for
// json_schema), and the arguments of its calls to strict tools against
// those tools' parameter schemas. The gateway never returns an answer that
// fails it as a success.
type outputCheck struct {
	kind   string // "", "json_object" or "json_schema"
	schema *jsonschema.Schema
	// tools are the parameter schemas of the request's tools with
	// "strict": true, by name. Calls to other tools are passed on as
	// they come, as OpenAI does for tools that are not strict.
	tools map[string]*jsonschema.Schema
}

// What an answer is checked against, as the check label of
// vigil_llm_output_validations_total says it.
const (
	checkResponseFormat = "response_format"
	checkToolArguments  = "tool_arguments"
)

// schemaURL names a schema inside its own compiler; nothing is
// ever loaded from it.
const schemaURL = "urn:vigil:schema"

// maxValidationMessage caps a validation error quoted to a model or a
// client.
const maxValidationMessage = 2000

// newOutputCheck compiles the request's schemas; nil when the request asks
// for no JSON and has no strict tool. A schema that does not compile is
// the client's error.
func newOutputCheck(req *pb.ChatRequest) (*outputCheck, *Error) {
	c := &outputCheck{}
	switch req.GetResponseFormat() {
	case "json_object":
		c.kind = "json_object"
	case "json_schema":
		sch, err := schemas.compile(req.GetJsonSchema())
		if err != nil {
			return nil, invalid("response_format.json_schema.schema", "%s", err)
		}
		c.kind, c.schema = "json_schema", sch
	}
	for i, t := range req.GetTools() {
		if !t.GetStrict() {
			continue
		}
		params := t.GetParameters()
		if params == "" {
			params = `{"type":"object"}` // no parameters: any object, as OpenAI reads it
		}
		sch, err := schemas.compile(params)
		if err != nil {
			field := fmt.Sprintf("tools[%d].function.parameters", i)
			return nil, invalid(field, "%s of a strict tool: %s", field, err)
		}
		if c.tools == nil {
			c.tools = make(map[string]*jsonschema.Schema)
		}
		c.tools[t.GetName()] = sch
	}
	if c.kind == "" && c.tools == nil {
		return nil, nil
	}
	return c, nil
}

// schemaCache keeps compiled schemas by their text's SHA-256: clients send
// the same response format and tool schemas with every request, and
// compiling one costs hundreds of microseconds and hundreds of
// allocations (validation itself is far cheaper). A compiled schema is
// read-only, so concurrent validations may share it.
type schemaCache struct {
	mu       sync.Mutex
	m        map[[sha256.Size]byte]*jsonschema.Schema
	compiles atomic.Int64 // schemas compiled, for tests
}

// Bounds of the schema cache: entries (an arbitrary one goes when it is
// full) and the largest schema text kept.
const (
	maxCachedSchemas    = 512
	maxCachedSchemaText = 256 << 10
)

var schemas = &schemaCache{m: map[[sha256.Size]byte]*jsonschema.Schema{}}

// compile returns text's compiled schema, compiling it on a miss. Errors
// are not kept: a schema that does not compile is the client's to fix.
func (c *schemaCache) compile(text string) (*jsonschema.Schema, error) {
	if len(text) > maxCachedSchemaText {
		c.compiles.Add(1)
		return compileSchema(text)
	}
	key := sha256.Sum256([]byte(text))
	c.mu.Lock()
	sch, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return sch, nil
	}
	c.compiles.Add(1)
	sch, err := compileSchema(text)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxCachedSchemas {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[key] = sch
	c.mu.Unlock()
	return sch, nil
}

// compileSchema compiles one JSON Schema (2020-12 unless its $schema says
// otherwise) whose $refs may only point inside itself.
func compileSchema(text string) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, fmt.Errorf("the schema is not valid JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	// No $ref may reach the file system or the network: an empty scheme
	// table refuses every URL that is not inside the schema itself.
	c.UseLoader(jsonschema.SchemeURLLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseRegexpEngine(compilePattern)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("the schema cannot be used: %v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("the schema does not compile (JSON Schema 2020-12 unless $schema says otherwise; $ref may only point inside the schema): %s", clip(err.Error()))
	}
	return sch, nil
}

// refused says an answer is a refusal (OpenAI's message.refusal) and
// nothing else: not the answer a response_format asks for, and so not
// checked against it, as OpenAI's strict structured outputs give a
// refusal instead of JSON.
func refused(content, refusal string, calls int) bool {
	return refusal != "" && content == "" && calls == 0
}

// applies says which check an answer with these calls gets: the response
// format for an answer without calls, the strict tools' schemas for one
// that calls a strict tool, "" for none.
func (c *outputCheck) applies(calls []*pb.ToolCall) string {
	if c == nil {
		return ""
	}
	if len(calls) == 0 {
		if c.kind != "" {
			return checkResponseFormat
		}
		return ""
	}
	for _, tc := range calls {
		if c.tools[tc.GetName()] != nil {
			return checkToolArguments
		}
	}
	return ""
}

// verify returns why the answer fails the check that applies to it; nil
// when it passes or none applies.
func (c *outputCheck) verify(content string, calls []*pb.ToolCall) error {
	switch c.applies(calls) {
	case checkResponseFormat:
		return c.check(content)
	case checkToolArguments:
		if bad := c.badCalls(calls); len(bad) > 0 {
			return bad
		}
	}
	return nil
}

// check returns why content does not satisfy the response format.
func (c *outputCheck) check(content string) error {
	if c.kind == "json_object" {
		var obj map[string]any
		if err := json.Unmarshal([]byte(content), &obj); err != nil {
			return fmt.Errorf("the answer is not a JSON object: %s", clip(err.Error()))
		}
		return nil
	}
	return validateJSON(c.schema, content, "the answer", false)
}

// validateJSON returns why text is not JSON that matches sch, as a
// sentence about subject ("the answer", or the plural "the arguments of
// f").
func validateJSON(sch *jsonschema.Schema, text, subject string, plural bool) error {
	is, does := "is", "does"
	if plural {
		is, does = "are", "do"
	}
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return fmt.Errorf("%s %s not valid JSON: %s", subject, is, clip(err.Error()))
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("%s %s not match the schema: %s", subject, does, clip(err.Error()))
	}
	return nil
}

// callErrors are the calls to strict tools whose arguments fail their
// tool's schema, by index in the answer's calls.
type callErrors map[int]error

func (e callErrors) Error() string {
	var parts []string
	for _, i := range slices.Sorted(maps.Keys(e)) {
		parts = append(parts, fmt.Sprintf("tool call %d: %v", i, e[i]))
	}
	return strings.Join(parts, "; ")
}

// badCalls checks each call to a strict tool.
func (c *outputCheck) badCalls(calls []*pb.ToolCall) callErrors {
	var bad callErrors
	for i, tc := range calls {
		sch := c.tools[tc.GetName()]
		if sch == nil {
			continue
		}
		if err := validateJSON(sch, tc.GetArguments(), "the arguments of "+tc.GetName(), true); err != nil {
			if bad == nil {
				bad = callErrors{}
			}
			bad[i] = err
		}
	}
	return bad
}

func clip(s string) string {
	if len(s) > maxValidationMessage {
		return s[:maxValidationMessage] + "..."
	}
	return s
}

// repairRequest asks once more, quoting the invalid answer and why it
// failed. An answer whose tool calls failed is sent back as it was, with
// each call answered by a tool message: an error for a call whose
// arguments failed, "not run" for the others (every call must be
// answered before the conversation may go on).
//
// The rejected answer's thinking blocks go back with it, so that an
// upstream that wants them (Anthropic with extended thinking, continuing
// the tool loop) takes the repair request.
func repairRequest(req *pb.ChatRequest, resp *pb.ChatResponse, why error) *pb.ChatRequest {
	answer, calls := resp.GetContent(), resp.GetToolCalls()
	r := cloneChat(req, req.GetModel())
	r.Messages = append([]*pb.Message(nil), req.GetMessages()...)
	bad, isCalls := why.(callErrors)
	if !isCalls {
		r.Messages = append(r.Messages,
			&pb.Message{Role: "assistant", Content: answer, ThinkingBlocks: resp.GetThinkingBlocks()},
			&pb.Message{Role: "user", Content: "Your previous answer was rejected: " + why.Error() +
				". Reply again with only the JSON value the response format requires, and nothing else."})
		return r
	}
	r.Messages = append(r.Messages, &pb.Message{Role: "assistant", Content: answer, ToolCalls: calls, ThinkingBlocks: resp.GetThinkingBlocks()})
	for i, tc := range calls {
		text := "Not run: another call in the same turn had invalid arguments. Make this call again if it is still needed."
		if err := bad[i]; err != nil {
			text = "Error, not run: " + err.Error() + ". Call " + tc.GetName() + " again with arguments that match its parameters schema."
		}
		r.Messages = append(r.Messages, &pb.Message{Role: "tool", ToolCallId: tc.GetId(), Content: text})
	}
	return r
}

// invalidOutput is the error for an answer that failed validation twice
// (what is the check it failed).
func invalidOutput(o outcome, what string, why error) *Error {
	return &Error{Status: http.StatusBadGateway, Type: "upstream_error", Code: "invalid_output",
		Message: fmt.Sprintf("alias %q: %s answered twice with output that fails %s (once after a repair request quoting the error); last: %v", o.alias, o.target, checkName(what), why)}
}

// checkName is how an error message names a check.
func checkName(what string) string {
	if what == checkToolArguments {
		return "the parameters schema of a strict tool"
	}
	return "the requested response_format"
}
