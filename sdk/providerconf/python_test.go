package providerconf

// The Python SDK's vigil_plugin.providerconf words its problems as this
// package does; these tests hold the two to it, and run the Python
// module's own unit tests, with Debian's Python (the one the Python SDK
// runs on).

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

const python = "/usr/bin/python3"

// pythonSDK is sdk/python, holding the vigil_plugin package.
const pythonSDK = "../python"

func needPython(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
		t.Fatalf("the Python SDK needs Debian's python3-grpcio and python3-protobuf (make test-deps): %v: %s", err, out)
	}
}

// readAll is one provider's whole reading of cfg: unknown keys, the HTTP
// settings and a getter of each other type. The Python driver below does
// the same in the same order.
func readAll(cfg map[string]any) (HTTP, []string) {
	r := New(cfg)
	r.LookupEnv = func(name string) (string, bool) {
		if name == "KEY" {
			return "sk-env", true
		}
		return "", false
	}
	r.Known(append(HTTPKeys(), "n", "f", "b", "s")...)
	h := r.HTTP(HTTP{BaseURL: "https://default.example", Timeout: 60e9, MaxConcurrency: 64}, "Authorization", "Content-Type")
	r.Int("n", 1, 10)
	r.Number("f", 0, 1)
	r.Bool("b")
	r.String("s")
	return h, fieldErrors(r.Errors())
}

const pythonDriver = `
import json, sys
from vigil_plugin import providerconf as pc
out = []
for cfg in json.load(sys.stdin):
    r = pc.Reader(cfg, lookup_env={"KEY": "sk-env"}.get)
    r.known(*pc.HTTP_KEYS, "n", "f", "b", "s")
    h = r.http(pc.HTTP(base_url="https://default.example", timeout=60.0, max_concurrency=64),
               reserved_headers=("Authorization", "Content-Type"))
    r.int("n", 1, 10)
    r.number("f", 0, 1)
    r.bool("b")
    r.string("s")
    out.append({"http": [h.base_url, h.api_key, h.timeout, h.max_concurrency, h.headers],
                "errors": ["%s: %s" % (e.field, e.message) for e in r.errors]})
json.dump(out, sys.stdout)
`

// TestPythonWordsAsGo: the same configurations read by the Go and the
// Python readers give the same settings and the same problems, word for
// word.
func TestPythonWordsAsGo(t *testing.T) {
	needPython(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("sk-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(dir, "empty")
	if err := os.WriteFile(emptyFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []map[string]any{
		{},
		{"base_url": "http://127.0.0.1:8000/v1/", "api_key": "sk", "timeout": "1m30s", "max_concurrency": 8.0,
			"headers": map[string]any{"X-Org": "o"}, "n": 3.0, "f": 0.25, "b": true, "s": "x"},
		{"api_key_file": keyFile, "timeout": "250ms"},
		{"api_key_env": "KEY", "timeout": "1h2m3.5s"},
		{"api_key_file": emptyFile},
		{"api_key_file": filepath.Join(dir, "missing")},
		{"api_key_file": dir},
		{"api_key_env": "NOPE"},
		{"api_key": "sk", "api_key_file": keyFile, "api_key_env": "KEY"},
		{"api_key": 5.0},
		{"base_url": "ftp://x", "timeout": "soon", "max_concurrency": 0.5, "bogus": 1.0, "zz": nil},
		{"base_url": "http:///v1", "timeout": "0s", "max_concurrency": 1e6},
		{"base_url": "localhost:8000", "timeout": "-5s", "max_concurrency": "8"},
		{"base_url": true, "timeout": 60.0, "max_concurrency": map[string]any{}},
		{"timeout": "5", "n": 11.0, "f": 1.5, "b": "yes", "s": []any{"x"}},
		{"timeout": "1.5.s", "n": 2.5, "f": true, "b": 1.0, "s": 1e-7},
		{"headers": "X-Org: o"},
		{"headers": map[string]any{"authorization": "k", "Bad Name": "v", "X-Num": 1.0, "X-Split": "a\r\nX-Evil: b", "X-Ok": "ok", "content-type": 2.0}},
		{"timeout": "say \"hi\"\t"},
	}
	in, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-c", pythonDriver)
	cmd.Dir = pythonSDK
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var got []struct {
		HTTP   []any    `json:"http"`
		Errors []string `json:"errors"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("python's answer %s: %v", out, err)
	}
	if len(got) != len(cases) {
		t.Fatalf("python answered %d cases of %d", len(got), len(cases))
	}
	for i, cfg := range cases {
		h, errs := readAll(cfg)
		headers := map[string]any{}
		for k, v := range h.Headers {
			headers[k] = v
		}
		want := []any{h.BaseURL, h.APIKey, h.Timeout.Seconds(), float64(h.MaxConcurrency), headers}
		if !reflect.DeepEqual(got[i].HTTP, want) {
			t.Errorf("case %d %v: python read %v, go %v", i, cfg, got[i].HTTP, want)
		}
		if !reflect.DeepEqual(got[i].Errors, errs) {
			t.Errorf("case %d %v: errors\npython %q\n    go %q", i, cfg, got[i].Errors, errs)
		}
	}
}

// TestPythonUnitTests runs sdk/python/tests.
func TestPythonUnitTests(t *testing.T) {
	needPython(t)
	cmd := exec.Command(python, "-m", "unittest", "discover", "-s", "tests")
	cmd.Dir = pythonSDK
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python -m unittest: %v\n%s", err, out)
	}
	// Python 3.11 passes a discovery that found nothing.
	if !regexp.MustCompile(`(?m)^Ran [1-9][0-9]* tests? `).Match(out) {
		t.Fatalf("python -m unittest ran no tests:\n%s", out)
	}
}
