package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strings"

	"github.com/vigilml/vigil/sdk"
)

// ownKeys are the chat.completions keys the plugin sets itself (the JSON
// names of chatRequest's fields): ChatRequest.openai_params may not set
// them, so that a pass-through parameter never overrides the model, the
// messages, stream or anything the contract carries in its own fields.
var ownKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeFor[chatRequest]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys[name] = true
	}
	return keys
}()

// withParams is the upstream request body: b itself when the request has
// no openai_params (nothing more is allocated), else b with those
// parameters spliced in. A key the plugin sets itself is refused as
// invalid_request naming it.
func withParams(b *chatRequest, params string) (any, error) {
	if params == "" {
		return b, nil
	}
	var m map[string]json.RawMessage
	trimmed := bytes.TrimSpace([]byte(params))
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &m) != nil {
		return nil, sdk.FieldErrorf("openai_params", "openai_params must be a JSON object")
	}
	if len(m) == 0 {
		return b, nil
	}
	var clash []string
	for k := range m {
		if ownKeys[k] {
			clash = append(clash, k)
		}
	}
	if len(clash) > 0 {
		slices.Sort(clash)
		return nil, sdk.FieldErrorf(clash[0], "openai_params may not set %s: the plugin sets it from the request's own fields", strings.Join(clash, ", "))
	}
	return &mergedBody{b: b, params: trimmed}, nil
}

// mergedBody is a chatRequest with further keys: the struct is encoded
// as usual, and the keys of params (a JSON object) are spliced in before
// its closing brace.
type mergedBody struct {
	b      *chatRequest
	params []byte
}

func (m *mergedBody) MarshalJSON() ([]byte, error) {
	body, err := json.Marshal(m.b)
	if err != nil {
		return nil, err
	}
	inner := bytes.TrimSpace(m.params[1 : len(m.params)-1])
	out := make([]byte, 0, len(body)+1+len(inner))
	out = append(out, body[:len(body)-1]...) // body is an object: {...}
	out = append(out, ',')
	out = append(out, inner...)
	return append(out, '}'), nil
}
