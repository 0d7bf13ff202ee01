package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// outputCheck validates a final answer against the request's
// response_format: a JSON object for json_object, the schema for
// json_schema. The gateway never returns an answer that fails it as a
// success.
type outputCheck struct {
	kind   string
	schema *jsonschema.Schema
}

// schemaURL names the request's schema inside its compiler; nothing is
// ever loaded from it.
const schemaURL = "urn:vigil:response-format"

// maxValidationMessage caps a validation error quoted to a model or a
// client.
const maxValidationMessage = 2000

// newOutputCheck compiles the request's schema; nil when the request asks
// for no JSON. A schema that does not compile is the client's error.
func newOutputCheck(req *pb.ChatRequest) (*outputCheck, *Error) {
	switch req.GetResponseFormat() {
	case "json_object":
		return &outputCheck{kind: "json_object"}, nil
	case "json_schema":
	default:
		return nil, nil
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(req.GetJsonSchema()))
	if err != nil {
		return nil, invalid("response_format.json_schema.schema", "the schema is not valid JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	// No $ref may reach the file system or the network: an empty scheme
	// table refuses every URL that is not inside the schema itself.
	c.UseLoader(jsonschema.SchemeURLLoader{})
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, invalid("response_format.json_schema.schema", "the schema cannot be used: %v", err)
	}
	sch, err := c.Compile(schemaURL)
	if err != nil {
		return nil, invalid("response_format.json_schema.schema", "the schema does not compile (JSON Schema 2020-12 unless $schema says otherwise; $ref may only point inside the schema): %s", clip(err.Error()))
	}
	return &outputCheck{kind: "json_schema", schema: sch}, nil
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
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(content))
	if err != nil {
		return fmt.Errorf("the answer is not valid JSON: %s", clip(err.Error()))
	}
	if err := c.schema.Validate(inst); err != nil {
		return fmt.Errorf("the answer does not match the schema: %s", clip(err.Error()))
	}
	return nil
}

func clip(s string) string {
	if len(s) > maxValidationMessage {
		return s[:maxValidationMessage] + "..."
	}
	return s
}

// repairRequest asks once more, quoting the invalid answer and why it
// failed.
func repairRequest(req *pb.ChatRequest, answer string, why error) *pb.ChatRequest {
	r := cloneChat(req, req.GetModel())
	r.Messages = append(append([]*pb.Message(nil), req.GetMessages()...),
		&pb.Message{Role: "assistant", Content: answer},
		&pb.Message{Role: "user", Content: "Your previous answer was rejected: " + why.Error() +
			". Reply again with only the JSON value the response format requires, and nothing else."})
	return r
}

// invalidOutput is the error for an answer that failed validation twice.
func invalidOutput(o outcome, why error) *Error {
	return &Error{Status: http.StatusBadGateway, Type: "upstream_error", Code: "invalid_output",
		Message: fmt.Sprintf("alias %q: %s answered twice with output that fails the requested response_format (once after a repair request quoting the error); last: %v", o.alias, o.target, why)}
}
