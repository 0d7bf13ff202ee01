package gateway

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is the pass-through of OpenAI chat parameters that the gateway
// has no reason to interpret (logit_bias, store, metadata, ...): their
// JSON shape is checked as OpenAI documents it, and they travel to the
// plugin as one JSON object (ChatRequest.openai_params), for an
// OpenAI-speaking plugin to merge into its upstream request. Every other
// unknown parameter is still refused (decode's DisallowUnknownFields).

// OpenAIParamsCapability: the plugin merges ChatRequest.openai_params into
// an OpenAI request. A request with any of those parameters goes only to
// a running plugin that declares it.
const OpenAIParamsCapability = "openai_params"

// OpenAIParams are the pass-through parameters as the client sent them.
// It is embedded in chatRequest as a pointer, so that encoding/json
// allocates it only for a request that has one of them: requests without
// them cost nothing more. (Exported only because encoding/json cannot set
// an embedded pointer to an unexported struct.)
type OpenAIParams struct {
	LogitBias      json.RawMessage `json:"logit_bias"`
	Metadata       json.RawMessage `json:"metadata"`
	Prediction     json.RawMessage `json:"prediction"`
	PromptCacheKey json.RawMessage `json:"prompt_cache_key"`
	// PromptCacheOptions ({mode, ttl}) and PromptCacheRetention
	// ("in_memory", "24h") are OpenAI's prompt caching settings.
	PromptCacheOptions   json.RawMessage `json:"prompt_cache_options"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
	SafetyIdentifier     json.RawMessage `json:"safety_identifier"`
	ServiceTier          json.RawMessage `json:"service_tier"`
	Store                json.RawMessage `json:"store"`
	Verbosity            json.RawMessage `json:"verbosity"`
}

// OpenAI's documented limits on metadata.
const (
	maxMetadataPairs = 16
	maxMetadataKey   = 64
	maxMetadataValue = 512
	maxLogitBias     = 100
)

// contract checks the parameters and encodes those set (not null) as one
// compact JSON object, keys in alphabetical order and object keys sorted,
// so that equal requests have equal strings (the cache key holds it).
func (p *OpenAIParams) contract(out *pb.ChatRequest) *Error {
	if p == nil {
		return nil
	}
	var buf bytes.Buffer
	for _, f := range []struct {
		name  string
		raw   json.RawMessage
		check func(name string, raw json.RawMessage) (any, *Error)
	}{
		// In the order of the names: the canonical order.
		{"logit_bias", p.LogitBias, checkLogitBias},
		{"metadata", p.Metadata, checkMetadata},
		{"prediction", p.Prediction, checkPrediction},
		{"prompt_cache_key", p.PromptCacheKey, checkString},
		{"prompt_cache_options", p.PromptCacheOptions, checkPromptCacheOptions},
		{"prompt_cache_retention", p.PromptCacheRetention, checkString},
		{"safety_identifier", p.SafetyIdentifier, checkString},
		{"service_tier", p.ServiceTier, checkWord},
		{"store", p.Store, checkBool},
		{"verbosity", p.Verbosity, checkWord},
	} {
		if isNull(f.raw) {
			continue
		}
		v, e := f.check(f.name, f.raw)
		if e != nil {
			return e
		}
		b, err := json.Marshal(v) // maps are written with sorted keys
		if err != nil {
			return invalid(f.name, "%s cannot be encoded: %v", f.name, err)
		}
		if buf.Len() == 0 {
			buf.WriteByte('{')
		} else {
			buf.WriteByte(',')
		}
		buf.WriteString(strconv.Quote(f.name))
		buf.WriteByte(':')
		buf.Write(b)
	}
	if buf.Len() > 0 {
		buf.WriteByte('}')
		out.OpenaiParams = buf.String()
	}
	return nil
}

// jsonType names a JSON value's type for messages.
func jsonType(raw json.RawMessage) string {
	switch b := bytes.TrimSpace(raw); {
	case len(b) == 0:
		return "nothing"
	case b[0] == '{':
		return "an object"
	case b[0] == '[':
		return "an array"
	case b[0] == '"':
		return "a string"
	case b[0] == 't' || b[0] == 'f':
		return "a boolean"
	case b[0] == 'n':
		return "null"
	}
	return "a number"
}

// object decodes raw as a JSON object, keeping the values raw.
func object(name string, raw json.RawMessage) (map[string]json.RawMessage, *Error) {
	var m map[string]json.RawMessage
	if bytes.TrimSpace(raw)[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, invalid(name, "%s must be a JSON object, got %s", name, jsonType(raw))
	}
	return m, nil
}

// checkLogitBias: an object mapping token ids (strings of digits) to a
// bias from -100 to 100.
func checkLogitBias(name string, raw json.RawMessage) (any, *Error) {
	m, e := object(name, raw)
	if e != nil {
		return nil, e
	}
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if _, err := strconv.ParseUint(k, 10, 32); err != nil {
			return nil, invalid(name, "%s keys must be token ids (integers as strings), got %q", name, k)
		}
		var f float64
		if jsonType(v) != "a number" || json.Unmarshal(v, &f) != nil {
			return nil, invalid(name, "%s[%q] must be a number from -%d to %d, got %s", name, k, maxLogitBias, maxLogitBias, jsonType(v))
		}
		if f < -maxLogitBias || f > maxLogitBias {
			return nil, invalid(name, "%s[%q] must be from -%d to %d, got %v", name, k, maxLogitBias, maxLogitBias, f)
		}
		out[k] = f
	}
	return out, nil
}

// checkMetadata: at most 16 pairs of strings, keys of at most 64
// characters and values of at most 512.
func checkMetadata(name string, raw json.RawMessage) (any, *Error) {
	m, e := object(name, raw)
	if e != nil {
		return nil, e
	}
	if len(m) > maxMetadataPairs {
		return nil, invalid(name, "%s holds %d pairs, more than the %d allowed", name, len(m), maxMetadataPairs)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if n := utf8.RuneCountInString(k); n > maxMetadataKey {
			return nil, invalid(name, "%s key %q is %d characters long, more than %d", name, k, n, maxMetadataKey)
		}
		var s string
		if jsonType(v) != "a string" || json.Unmarshal(v, &s) != nil {
			return nil, invalid(name, "%s[%q] must be a string, got %s", name, k, jsonType(v))
		}
		if n := utf8.RuneCountInString(s); n > maxMetadataValue {
			return nil, invalid(name, "%s[%q] is %d characters long, more than %d", name, k, n, maxMetadataValue)
		}
		out[k] = s
	}
	return out, nil
}

// checkPrediction: {"type": "content", "content": a string or an array of
// text parts}.
func checkPrediction(name string, raw json.RawMessage) (any, *Error) {
	m, e := object(name, raw)
	if e != nil {
		return nil, e
	}
	for k := range m {
		if k != "type" && k != "content" {
			return nil, invalid(name, "%s has an unknown field %q: it takes type and content", name, k)
		}
	}
	var typ string
	if json.Unmarshal(m["type"], &typ) != nil || typ != "content" {
		return nil, invalid(name, "%s.type must be \"content\"", name)
	}
	content := m["content"]
	switch jsonType(content) {
	case "a string":
		var s string
		_ = json.Unmarshal(content, &s)
		return map[string]any{"type": typ, "content": s}, nil
	case "an array":
		var parts []map[string]json.RawMessage
		if json.Unmarshal(content, &parts) != nil {
			return nil, invalid(name, "%s.content must be a string or an array of text parts", name)
		}
		out := make([]map[string]string, len(parts))
		for i, part := range parts {
			var t, text string
			if len(part) != 2 || json.Unmarshal(part["type"], &t) != nil || t != "text" || jsonType(part["text"]) != "a string" || json.Unmarshal(part["text"], &text) != nil {
				return nil, invalid(name, "%s.content[%d] must be {\"type\": \"text\", \"text\": a string}", name, i)
			}
			out[i] = map[string]string{"type": "text", "text": text}
		}
		return map[string]any{"type": typ, "content": out}, nil
	}
	return nil, invalid(name, "%s.content must be a string or an array of text parts, got %s", name, jsonType(content))
}

// checkPromptCacheOptions: an object of strings (OpenAI documents mode,
// "implicit" or "explicit", and ttl, "30m"); which keys and values the
// upstream knows, it checks.
func checkPromptCacheOptions(name string, raw json.RawMessage) (any, *Error) {
	m, e := object(name, raw)
	if e != nil {
		return nil, e
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		var s string
		if jsonType(v) != "a string" || json.Unmarshal(v, &s) != nil {
			return nil, invalid(name, "%s.%s must be a string, got %s", name, k, jsonType(v))
		}
		out[k] = s
	}
	return out, nil
}

func checkString(name string, raw json.RawMessage) (any, *Error) {
	var s string
	if jsonType(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		return nil, invalid(name, "%s must be a string, got %s", name, jsonType(raw))
	}
	return s, nil
}

// checkWord: a lowercase word (service_tier's auto, default, flex,
// priority, ...; verbosity's low, medium, high): the upstream checks which
// it knows, as for reasoning_effort.
func checkWord(name string, raw json.RawMessage) (any, *Error) {
	v, e := checkString(name, raw)
	if e != nil {
		return nil, e
	}
	if s := v.(string); !lowerWord(s) {
		return nil, invalid(name, "%s must be a lowercase word such as \"low\" or \"auto\" (the upstream checks which it knows), got %q", name, s)
	}
	return v, nil
}

func checkBool(name string, raw json.RawMessage) (any, *Error) {
	var b bool
	if jsonType(raw) != "a boolean" || json.Unmarshal(raw, &b) != nil {
		return nil, invalid(name, "%s must be true or false, got %s", name, jsonType(raw))
	}
	return b, nil
}

// openAIParamNames are the names of the parameters in params (an
// openai_params object), for messages.
func openAIParamNames(params string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(params), &m) != nil {
		return "openai_params"
	}
	names := make([]string, 0, len(m))
	for _, k := range []string{"logit_bias", "metadata", "prediction", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "safety_identifier", "service_tier", "store", "verbosity"} {
		if _, ok := m[k]; ok {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return "openai_params"
	}
	return strings.Join(names, ", ")
}

// storesUpstream reports whether req passes store: true through.
func storesUpstream(req *pb.ChatRequest) bool {
	if req.GetOpenaiParams() == "" {
		return false
	}
	var p struct {
		Store bool `json:"store"`
	}
	return json.Unmarshal([]byte(req.GetOpenaiParams()), &p) == nil && p.Store
}
