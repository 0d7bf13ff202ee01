// Package providerconf reads the settings a plugin's Configure receives
// (sdk.Configurer) into typed values, and reports every problem as an
// sdk.FieldError naming its key, worded the way Vigil's own plugins word
// them.
//
// It is written for LLM provider plugins run by the agent's gateway, whose
// Configure gets a gateway.providers entry (docs/plugins.md, "Settings a
// provider instance receives"): Reader.HTTP reads the settings every HTTP
// upstream shares (base_url, api_key / api_key_file / api_key_env,
// timeout, max_concurrency, headers) in one call. The typed getters suit
// any plugin's configuration, detectors' included.
//
// A Reader gathers problems instead of stopping at the first, so that an
// operator sees them all at once. The agent prefixes each Field with where
// the settings came from, so a bad timeout of the second gateway provider
// is reported as
//
//	gateway.providers[1].timeout: "soon" is not a positive duration such as 60s
//
// Values arrive as JSON's (the configuration travels as a protobuf
// Struct): string, float64 for every number, bool, nil, []any and
// map[string]any. A key that is absent or null counts as not set: its
// getter returns ok false and records nothing, and the caller keeps its
// default.
//
// The messages are tested word for word, and the Python SDK's
// vigil_plugin.providerconf words its own the same way: tests of plugins
// and of the agent may match them.
package providerconf

import (
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// Reader reads one configuration map and records its problems.
// A Reader is not safe for concurrent use; Configure needs only one.
type Reader struct {
	// LookupEnv looks up the variable that api_key_env names, in the
	// plugin's own environment. Nil means os.LookupEnv; a test sets its
	// own.
	LookupEnv func(name string) (string, bool)

	m    map[string]any
	errs []sdk.FieldError
}

// New returns a Reader of m (the map Configure received).
func New(m map[string]any) *Reader { return &Reader{m: m} }

// Errors returns every problem recorded so far, in the order found. It is
// what Configure returns: empty accepts the configuration.
func (r *Reader) Errors() []sdk.FieldError { return r.errs }

// Bad records a problem with key, for checks of the plugin's own (a value
// that is not one of a set of names, say), so that they read like the
// getters' own.
func (r *Reader) Bad(key, format string, args ...any) {
	r.errs = append(r.errs, sdk.FieldError{Field: key, Message: fmt.Sprintf(format, args...)})
}

// Known records every key of the map that is not one of known, as
// "unknown key (known: a, b, c)" with the known keys in the order given.
// Unknown keys are reported in sorted order. A plugin should reject keys
// it does not take: a misspelt key would otherwise be ignored silently.
func (r *Reader) Known(known ...string) {
	keys := make([]string, 0, len(r.m))
	for k := range r.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found := false
		for _, kk := range known {
			found = found || k == kk
		}
		if !found {
			r.Bad(k, "unknown key (known: %s)", strings.Join(known, ", "))
		}
	}
}

// value returns key's value; absent and null are not set.
func (r *Reader) value(key string) (any, bool) {
	v, ok := r.m[key]
	return v, ok && v != nil
}

// String reads a string. Another type records
// "must be a string, got TYPE".
func (r *Reader) String(key string) (string, bool) {
	v, ok := r.value(key)
	if !ok {
		return "", false
	}
	s, isStr := v.(string)
	if !isStr {
		r.Bad(key, "must be a string, got %s", typeName(v))
		return "", false
	}
	return s, true
}

// Int reads a whole number from lo to hi. Anything else records
// "must be a whole number from LO to HI, got VALUE".
func (r *Reader) Int(key string, lo, hi int) (int, bool) {
	v, ok := r.value(key)
	if !ok {
		return 0, false
	}
	f, isNum := number(v)
	if !isNum || f != float64(int64(f)) || f < float64(lo) || f > float64(hi) {
		r.Bad(key, "must be a whole number from %d to %d, got %s", lo, hi, show(v))
		return 0, false
	}
	return int(f), true
}

// Number reads a number from lo to hi. Anything else records
// "must be a number from LO to HI, got VALUE".
func (r *Reader) Number(key string, lo, hi float64) (float64, bool) {
	v, ok := r.value(key)
	if !ok {
		return 0, false
	}
	f, isNum := number(v)
	if !isNum || f < lo || f > hi {
		r.Bad(key, "must be a number from %v to %v, got %s", lo, hi, show(v))
		return 0, false
	}
	return f, true
}

// Bool reads true or false. Anything else records
// "must be true or false, got VALUE".
func (r *Reader) Bool(key string) (bool, bool) {
	v, ok := r.value(key)
	if !ok {
		return false, false
	}
	b, isBool := v.(bool)
	if !isBool {
		r.Bad(key, "must be true or false, got %s", show(v))
		return false, false
	}
	return b, true
}

// Duration reads a positive Go duration written as a string, such as
// "60s" or "1m30s" (the agent sends gateway.providers[].timeout as
// "1m0s"). A string that is not one records
// `"TEXT" is not a positive duration such as 60s`; another type
// `must be a duration string such as "60s", got VALUE`.
func (r *Reader) Duration(key string) (time.Duration, bool) {
	v, ok := r.value(key)
	if !ok {
		return 0, false
	}
	s, isStr := v.(string)
	if !isStr {
		r.Bad(key, "must be a duration string such as \"60s\", got %s", show(v))
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		r.Bad(key, "%q is not a positive duration such as 60s", s)
		return 0, false
	}
	return d, true
}

// URL reads an absolute http:// or https:// URL with a host, returned as
// written. Otherwise it records `"TEXT" must start with http:// or
// https://`, `"TEXT" has no host` or "not a URL: REASON".
func (r *Reader) URL(key string) (string, bool) {
	s, ok := r.String(key)
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		r.Bad(key, "not a URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		r.Bad(key, "%q must start with http:// or https://", s)
	case u.Host == "":
		r.Bad(key, "%q has no host", s)
	default:
		return s, true
	}
	return "", false
}

// Headers reads a map of extra request headers (name to value). reserved
// are the headers the plugin sets itself (its authentication header,
// Content-Type), compared without regard to case. Problems are recorded
// per header, under KEY.NAME: "is set by the plugin" for a reserved one,
// "must be a string, got TYPE", "is not a valid header name" and "value
// has a line break or NUL byte"; a key that is not a map records
// "must be a map of header names to string values". ok is true when the
// key is a map; the result then holds the headers that are valid.
func (r *Reader) Headers(key string, reserved ...string) (map[string]string, bool) {
	v, ok := r.value(key)
	if !ok {
		return nil, false
	}
	hm, isMap := v.(map[string]any)
	if !isMap {
		r.Bad(key, "must be a map of header names to string values")
		return nil, false
	}
	names := make([]string, 0, len(hm))
	for k := range hm {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]string, len(hm))
	for _, k := range names {
		hv := hm[k]
		s, isStr := hv.(string)
		isReserved := false
		for _, rh := range reserved {
			isReserved = isReserved || strings.EqualFold(k, rh)
		}
		field := key + "." + k
		switch {
		case isReserved:
			r.Bad(field, "is set by the plugin")
		case !validHeaderName(k):
			r.Bad(field, "is not a valid header name")
		case !isStr:
			r.Bad(field, "must be a string, got %s", typeName(hv))
		case strings.ContainsAny(s, "\r\n\x00"):
			r.Bad(field, "value has a line break or NUL byte")
		default:
			out[k] = s
		}
	}
	return out, true
}

// APIKey reads the upstream's secret from at most one of three keys:
// api_key (the secret itself; the agent's gateway puts a
// gateway.providers entry's api_key_env there), api_key_file (a file
// holding it; surrounding white space is trimmed) or api_key_env (the
// name of a variable in the plugin's own environment, read with
// LookupEnv). "" with no problem recorded means no key is configured.
// Problems: api_key_file "cannot read the key: REASON" or "PATH is
// empty"; api_key_env "environment variable NAME is not set or empty in
// the plugin's environment"; api_key "set at most one of api_key,
// api_key_file and api_key_env".
func (r *Reader) APIKey() string {
	lookup := r.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var key string
	n := 0
	if s, ok := r.String("api_key"); ok && s != "" {
		key, n = strings.TrimSpace(s), n+1
	}
	if s, ok := r.String("api_key_file"); ok && s != "" {
		n++
		b, err := os.ReadFile(s)
		if err != nil {
			r.Bad("api_key_file", "cannot read the key: %v", err)
		} else if key = strings.TrimSpace(string(b)); key == "" {
			r.Bad("api_key_file", "%s is empty", s)
		}
	}
	if s, ok := r.String("api_key_env"); ok && s != "" {
		n++
		v, found := lookup(s)
		if key = strings.TrimSpace(v); !found || key == "" {
			r.Bad("api_key_env", "environment variable %s is not set or empty in the plugin's environment", s)
		}
	}
	if n > 1 {
		r.Bad("api_key", "set at most one of api_key, api_key_file and api_key_env")
	}
	return key
}

// MaxConcurrencyLimit is the largest max_concurrency HTTP accepts.
const MaxConcurrencyLimit = 100000

// HTTP is the settings of an HTTP upstream that every gateway.providers
// entry may carry.
type HTTP struct {
	// BaseURL is base_url without trailing slashes: the plugin appends
	// its paths ("/chat/completions").
	BaseURL string
	// APIKey is the secret from api_key, api_key_file or api_key_env
	// (Reader.APIKey); "" when none is configured.
	APIKey string
	// Timeout is timeout: how long one upstream call may stay silent.
	Timeout time.Duration
	// MaxConcurrency is max_concurrency: the upstream calls in flight at
	// once, 1 to MaxConcurrencyLimit.
	MaxConcurrency int
	// Headers is headers: extra headers sent with every request.
	Headers map[string]string
}

// HTTPKeys returns the keys Reader.HTTP reads, for Known together with
// the plugin's own:
//
//	r.Known(append(providerconf.HTTPKeys(), "organization")...)
func HTTPKeys() []string {
	return []string{"base_url", "api_key", "api_key_file", "api_key_env", "timeout", "max_concurrency", "headers"}
}

// HTTP reads the keys of HTTPKeys over def, which holds the plugin's
// defaults: a key that is not set, or is set wrong, leaves its default
// (check Errors before using the result). reservedHeaders are the
// headers the plugin sets itself, which headers may not name (see
// Headers). A configured Headers replaces def.Headers.
func (r *Reader) HTTP(def HTTP, reservedHeaders ...string) HTTP {
	h := def
	if s, ok := r.URL("base_url"); ok {
		h.BaseURL = strings.TrimRight(s, "/")
	}
	if k := r.APIKey(); k != "" {
		h.APIKey = k
	}
	if d, ok := r.Duration("timeout"); ok {
		h.Timeout = d
	}
	if n, ok := r.Int("max_concurrency", 1, MaxConcurrencyLimit); ok {
		h.MaxConcurrency = n
	}
	if m, ok := r.Headers("headers", reservedHeaders...); ok {
		h.Headers = m
	}
	return h
}

// number reads a JSON number; Go ints are taken too, for configurations
// built by hand in tests.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// show writes a value the way the operator wrote it: strings quoted,
// numbers and booleans as they are, maps and lists by their kind.
func show(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case float64, int, int64, bool:
		return fmt.Sprint(v)
	}
	return typeName(v)
}

// typeName names a JSON value's type as an operator knows it.
func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case float64, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// validHeaderName reports whether k is an HTTP field name: one or more
// token characters (RFC 9110, section 5.6.2).
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
