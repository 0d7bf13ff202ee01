package providerconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// fieldErrors lays errs out as "field: message" lines.
func fieldErrors(errs []sdk.FieldError) []string {
	out := []string{}
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Message)
	}
	return out
}

// TestGetterWording: each getter's problems, word for word, under the key
// it read; a value it accepts records nothing.
func TestGetterWording(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    map[string]any
		read func(r *Reader) (any, bool)
		want any
		errs []string
	}{
		{"string", map[string]any{"k": "v"}, func(r *Reader) (any, bool) { return r.String("k") }, "v", nil},
		{"string wrong type", map[string]any{"k": 3.0}, func(r *Reader) (any, bool) { return r.String("k") }, "", []string{"k: must be a string, got a number"}},
		{"string absent", map[string]any{}, func(r *Reader) (any, bool) { return r.String("k") }, "", nil},
		{"string null", map[string]any{"k": nil}, func(r *Reader) (any, bool) { return r.String("k") }, "", nil},

		{"int", map[string]any{"k": 7.0}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 7, nil},
		{"int go int", map[string]any{"k": 7}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 7, nil},
		{"int fraction", map[string]any{"k": 2.5}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 0, []string{"k: must be a whole number from 1 to 10, got 2.5"}},
		{"int range", map[string]any{"k": 11.0}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 0, []string{"k: must be a whole number from 1 to 10, got 11"}},
		{"int string", map[string]any{"k": "7"}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 0, []string{`k: must be a whole number from 1 to 10, got "7"`}},
		{"int map", map[string]any{"k": map[string]any{}}, func(r *Reader) (any, bool) { return r.Int("k", 1, 10) }, 0, []string{"k: must be a whole number from 1 to 10, got a map"}},

		{"number", map[string]any{"k": 0.25}, func(r *Reader) (any, bool) { return r.Number("k", 0, 1) }, 0.25, nil},
		{"number range", map[string]any{"k": 1.5}, func(r *Reader) (any, bool) { return r.Number("k", 0, 1) }, 0.0, []string{"k: must be a number from 0 to 1, got 1.5"}},
		{"number bool", map[string]any{"k": true}, func(r *Reader) (any, bool) { return r.Number("k", 0, 1) }, 0.0, []string{"k: must be a number from 0 to 1, got true"}},

		{"bool", map[string]any{"k": false}, func(r *Reader) (any, bool) { return r.Bool("k") }, false, nil},
		{"bool string", map[string]any{"k": "yes"}, func(r *Reader) (any, bool) { return r.Bool("k") }, false, []string{`k: must be true or false, got "yes"`}},
		{"bool list", map[string]any{"k": []any{true}}, func(r *Reader) (any, bool) { return r.Bool("k") }, false, []string{"k: must be true or false, got a list"}},

		{"duration", map[string]any{"k": "1m0s"}, func(r *Reader) (any, bool) { return r.Duration("k") }, time.Minute, nil},
		{"duration words", map[string]any{"k": "soon"}, func(r *Reader) (any, bool) { return r.Duration("k") }, time.Duration(0), []string{`k: "soon" is not a positive duration such as 60s`}},
		{"duration zero", map[string]any{"k": "0s"}, func(r *Reader) (any, bool) { return r.Duration("k") }, time.Duration(0), []string{`k: "0s" is not a positive duration such as 60s`}},
		{"duration negative", map[string]any{"k": "-5s"}, func(r *Reader) (any, bool) { return r.Duration("k") }, time.Duration(0), []string{`k: "-5s" is not a positive duration such as 60s`}},
		{"duration number", map[string]any{"k": 60.0}, func(r *Reader) (any, bool) { return r.Duration("k") }, time.Duration(0), []string{`k: must be a duration string such as "60s", got 60`}},

		{"url", map[string]any{"k": "https://h/v1"}, func(r *Reader) (any, bool) { return r.URL("k") }, "https://h/v1", nil},
		{"url scheme", map[string]any{"k": "ftp://h"}, func(r *Reader) (any, bool) { return r.URL("k") }, "", []string{`k: "ftp://h" must start with http:// or https://`}},
		{"url no host", map[string]any{"k": "http:///v1"}, func(r *Reader) (any, bool) { return r.URL("k") }, "", []string{`k: "http:///v1" has no host`}},
		{"url unparsable", map[string]any{"k": "http://h\x7f"}, func(r *Reader) (any, bool) { return r.URL("k") }, "", []string{`k: not a URL: parse "http://h\x7f": net/url: invalid control character in URL`}},
		{"url wrong type", map[string]any{"k": true}, func(r *Reader) (any, bool) { return r.URL("k") }, "", []string{"k: must be a string, got a boolean"}},

		{"headers", map[string]any{"h": map[string]any{"X-A": "1"}}, func(r *Reader) (any, bool) { return r.Headers("h", "Authorization") }, map[string]string{"X-A": "1"}, nil},
		{"headers not a map", map[string]any{"h": "X-A: 1"}, func(r *Reader) (any, bool) { return r.Headers("h") }, map[string]string(nil), []string{"h: must be a map of header names to string values"}},
		{"headers each problem", map[string]any{"h": map[string]any{
			"authorization": "Bearer k", "Bad Name": "v", "X-Num": 1.0, "X-Split": "a\r\nX-Evil: b", "X-Ok": "ok",
		}}, func(r *Reader) (any, bool) { return r.Headers("h", "Authorization") }, map[string]string{"X-Ok": "ok"}, []string{
			"h.Bad Name: is not a valid header name",
			"h.X-Num: must be a string, got a number",
			"h.X-Split: value has a line break or NUL byte",
			"h.authorization: is set by the plugin",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(tc.m)
			got, ok := tc.read(r)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("value %#v, want %#v", got, tc.want)
			}
			// ok: the key is set and read; a headers map with bad
			// entries is still read (its good entries are returned).
			v := tc.m[firstKey(tc.m)]
			wantOK := v != nil && (len(tc.errs) == 0 || strings.HasPrefix(tc.name, "headers each"))
			if ok != wantOK {
				t.Errorf("ok %v, want %v", ok, wantOK)
			}
			if errs := fieldErrors(r.Errors()); !reflect.DeepEqual(errs, append([]string{}, tc.errs...)) {
				t.Errorf("errors\n got %q\nwant %q", errs, tc.errs)
			}
		})
	}
}

// firstKey is the one key of a test's map ("" for an empty map).
func firstKey(m map[string]any) string {
	for k := range m {
		return k
	}
	return ""
}

func TestKnown(t *testing.T) {
	r := New(map[string]any{"b": 1.0, "zz": true, "a": "x", "timeot": "5s"})
	r.Known("b", "a", "timeout")
	want := []string{"timeot: unknown key (known: b, a, timeout)", "zz: unknown key (known: b, a, timeout)"}
	if got := fieldErrors(r.Errors()); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBad(t *testing.T) {
	r := New(nil)
	r.Bad("mode", "%q is not fast or slow", "medium")
	if got := fieldErrors(r.Errors()); !reflect.DeepEqual(got, []string{`mode: "medium" is not fast or slow`}) {
		t.Errorf("got %q", got)
	}
}

func TestAPIKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(keyFile, []byte(" sk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	env := func(name string) (string, bool) {
		switch name {
		case "KEY":
			return "sk-env", true
		case "BLANK":
			return " ", true
		}
		return "", false
	}
	for _, tc := range []struct {
		name string
		m    map[string]any
		key  string
		errs []string
	}{
		{"none", map[string]any{}, "", nil},
		{"api_key", map[string]any{"api_key": "sk-direct"}, "sk-direct", nil},
		{"file", map[string]any{"api_key_file": keyFile}, "sk-file", nil},
		{"env", map[string]any{"api_key_env": "KEY"}, "sk-env", nil},
		{"file missing", map[string]any{"api_key_file": missing}, "", []string{"api_key_file: cannot read the key: open " + missing + ": no such file or directory"}},
		{"file empty", map[string]any{"api_key_file": emptyFile}, "", []string{"api_key_file: " + emptyFile + " is empty"}},
		{"env unset", map[string]any{"api_key_env": "NOPE"}, "", []string{"api_key_env: environment variable NOPE is not set or empty in the plugin's environment"}},
		{"env blank", map[string]any{"api_key_env": "BLANK"}, "", []string{"api_key_env: environment variable BLANK is not set or empty in the plugin's environment"}},
		{"two", map[string]any{"api_key": "sk-direct", "api_key_env": "KEY"}, "sk-env", []string{"api_key: set at most one of api_key, api_key_file and api_key_env"}},
		{"wrong type", map[string]any{"api_key": 5.0}, "", []string{"api_key: must be a string, got a number"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := New(tc.m)
			r.LookupEnv = env
			if got := r.APIKey(); got != tc.key && len(tc.errs) == 0 {
				t.Errorf("key %q, want %q", got, tc.key)
			}
			if errs := fieldErrors(r.Errors()); !reflect.DeepEqual(errs, append([]string{}, tc.errs...)) {
				t.Errorf("errors\n got %q\nwant %q", errs, tc.errs)
			}
		})
	}
}

// TestAPIKeyProcessEnv: without LookupEnv the plugin's own environment is
// read.
func TestAPIKeyProcessEnv(t *testing.T) {
	t.Setenv("PROVIDERCONF_TEST_KEY", "sk-process")
	r := New(map[string]any{"api_key_env": "PROVIDERCONF_TEST_KEY"})
	if got := r.APIKey(); got != "sk-process" || len(r.Errors()) != 0 {
		t.Errorf("key %q, errors %v", got, r.Errors())
	}
}

// TestHTTP: set keys override the defaults, unset and wrong ones keep
// them.
func TestHTTP(t *testing.T) {
	def := HTTP{BaseURL: "https://api.example.com", Timeout: time.Minute, MaxConcurrency: 64, Headers: map[string]string{"X-Default": "1"}}
	r := New(map[string]any{})
	if got := r.HTTP(def); !reflect.DeepEqual(got, def) || len(r.Errors()) != 0 {
		t.Errorf("empty config: %+v %v", got, r.Errors())
	}
	r = New(map[string]any{
		"base_url": "http://127.0.0.1:8000/v1//", "api_key": "sk", "timeout": "5s",
		"max_concurrency": 3.0, "headers": map[string]any{"X-Org": "o"},
	})
	want := HTTP{BaseURL: "http://127.0.0.1:8000/v1", APIKey: "sk", Timeout: 5 * time.Second, MaxConcurrency: 3, Headers: map[string]string{"X-Org": "o"}}
	if got := r.HTTP(def, "Authorization"); !reflect.DeepEqual(got, want) || len(r.Errors()) != 0 {
		t.Errorf("full config: %+v %v", got, r.Errors())
	}
	r = New(map[string]any{"base_url": "x", "timeout": 5.0, "max_concurrency": 100001.0, "headers": map[string]any{"authorization": "k"}})
	got := r.HTTP(def, "Authorization")
	if got.BaseURL != def.BaseURL || got.Timeout != def.Timeout || got.MaxConcurrency != def.MaxConcurrency {
		t.Errorf("bad config changed the defaults: %+v", got)
	}
	wantErrs := []string{
		`base_url: "x" must start with http:// or https://`,
		`timeout: must be a duration string such as "60s", got 5`,
		"max_concurrency: must be a whole number from 1 to 100000, got 100001",
		"headers.authorization: is set by the plugin",
	}
	if errs := fieldErrors(r.Errors()); !reflect.DeepEqual(errs, wantErrs) {
		t.Errorf("errors\n got %q\nwant %q", errs, wantErrs)
	}
	keys := HTTPKeys()
	keys[0] = "changed"
	if HTTPKeys()[0] != "base_url" {
		t.Error("HTTPKeys returned a slice its caller can change for everyone")
	}
}
