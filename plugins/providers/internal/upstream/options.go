package upstream

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// Options reads a plugin's configuration (a protobuf Struct as a map:
// numbers arrive as float64) and gathers every problem by field, so that
// Configure reports them all at once.
type Options struct {
	m    map[string]any
	errs []sdk.FieldError
}

// NewOptions reads m.
func NewOptions(m map[string]any) *Options { return &Options{m: m} }

// Errors returns the problems found so far.
func (o *Options) Errors() []sdk.FieldError { return o.errs }

// Bad records a problem with field.
func (o *Options) Bad(field, format string, args ...any) {
	o.errs = append(o.errs, sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Known reports every key that is not one of known, naming the known ones
// in the order given.
func (o *Options) Known(known ...string) {
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, kk := range known {
			found = found || k == kk
		}
		if !found {
			o.Bad(k, "unknown key (known: %s)", strings.Join(known, ", "))
		}
	}
}

// Value returns the raw value of key and whether it is set at all.
func (o *Options) Value(key string) (any, bool) {
	v, ok := o.m[key]
	return v, ok
}

// Str reads a string option; absent or null is (“”, false), another type
// a problem.
func (o *Options) Str(key string) (string, bool) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		o.Bad(key, "must be a string, got %T", v)
		return "", false
	}
	return s, true
}

// Whole reads a whole number from lo to hi.
func (o *Options) Whole(key string, lo, hi float64) (int, bool) {
	v, ok := o.m[key]
	if !ok {
		return 0, false
	}
	f, isNum := v.(float64)
	if !isNum || f != float64(int64(f)) || f < lo || f > hi {
		o.Bad(key, "must be a whole number from %v to %v, got %v", lo, hi, v)
		return 0, false
	}
	return int(f), true
}

// Bool reads true or false.
func (o *Options) Bool(key string) (bool, bool) {
	v, ok := o.m[key]
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		o.Bad(key, "must be true or false, got %v", v)
		return false, false
	}
	return b, true
}

// Duration reads a positive Go duration such as 60s.
func (o *Options) Duration(key string) (time.Duration, bool) {
	s, ok := o.Str(key)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		o.Bad(key, "%q is not a positive duration such as 60s", s)
		return 0, false
	}
	return d, true
}

// URL reads an http(s) URL with a host.
func (o *Options) URL(key string) (string, bool) {
	s, ok := o.Str(key)
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		o.Bad(key, "not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		o.Bad(key, "%q must start with http:// or https://", s)
	case u.Host == "":
		o.Bad(key, "%q has no host", s)
	default:
		return s, true
	}
	return "", false
}

// Headers reads a map of extra request headers. reserved are the headers
// the plugin sets itself; naming one is a problem explained by why.
func (o *Options) Headers(key, why string, reserved ...string) (map[string]string, bool) {
	v, ok := o.m[key]
	if !ok || v == nil {
		return nil, false
	}
	hm, isMap := v.(map[string]any)
	if !isMap {
		o.Bad(key, "must be a map of header names to values")
		return nil, false
	}
	out := map[string]string{}
	for k, hv := range hm {
		s, isStr := hv.(string)
		isReserved := false
		for _, r := range reserved {
			isReserved = isReserved || strings.EqualFold(k, r)
		}
		switch {
		case !isStr:
			o.Bad(key+"."+k, "must be a string")
		case isReserved:
			o.Bad(key+"."+k, "%s", why)
		case strings.ContainsAny(k, " :\r\n") || strings.ContainsAny(s, "\r\n"):
			o.Bad(key+"."+k, "is not a valid header")
		default:
			out[k] = s
		}
	}
	return out, true
}

// APIKey reads the key from api_key, api_key_file or api_key_env (see the
// function APIKey).
func (o *Options) APIKey(getenv func(string) (string, bool)) string {
	return APIKey(o.Str, getenv, o.Bad)
}

// JSONObjectInstruction and SchemaInstruction are appended to the system
// prompt for upstreams that cannot be asked for JSON natively (Anthropic,
// and OpenAI-compatible servers configured with structured_output: prompt
// or json_object). The gateway validates and repairs the answer either way.
const JSONObjectInstruction = "Respond with a single JSON object and nothing else: no prose, no code fences."

// SchemaInstruction asks for a JSON value matching schema (JSON text).
func SchemaInstruction(schema string) string {
	return "Respond with a single JSON value that matches this JSON Schema, and nothing else (no prose, no code fences):\n" + schema
}
