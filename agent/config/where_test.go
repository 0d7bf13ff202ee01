package config

import (
	"strings"
	"testing"
)

// TestErrorsNameTheLayerThatSetTheKey checks that a bad value set by an
// environment variable or a flag is reported against that variable or the
// command line, not against the file line it overrode.
func TestErrorsNameTheLayerThatSetTheKey(t *testing.T) {
	p := writeFile(t, t.TempDir(), "vigil.yaml", "log_level: info\napi:\n  addr: 127.0.0.1:7000\n")
	env := func(k string) (string, bool) {
		if k == "VIGIL_API_ADDR" {
			return "0.0.0.0:7000", true
		}
		return "", false
	}
	_, err := Load(Options{Path: p, Env: env})
	if err == nil || !strings.Contains(err.Error(), "environment VIGIL_API_ADDR: api.addr:") {
		t.Errorf("env override: error = %v; want it to name VIGIL_API_ADDR", err)
	}
	if err != nil && strings.Contains(err.Error(), "vigil.yaml") {
		t.Errorf("env override: error = %v; it blames the file", err)
	}

	_, err = Load(Options{Path: p, Env: noEnv, Override: func(c *Config) { c.LogLevel = "loud" }})
	if err == nil || !strings.Contains(err.Error(), "command line: log_level:") {
		t.Errorf("flag override: error = %v; want it to name the command line", err)
	}
}

func TestAPIAddrPort(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:7070", true},
		{"127.0.0.1:0", true},
		{"[::1]:65535", true},
		{"localhost:http", true},
		{"127.0.0.1:99999", false},
		{"127.0.0.1:-1", false},
		{"127.0.0.1:65536", false},
	} {
		p := writeFile(t, t.TempDir(), "vigil.yaml", "api:\n  addr: \""+tc.addr+"\"\n")
		_, err := Load(Options{Path: p, Env: noEnv})
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.addr, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "vigil.yaml:2: api.addr:")) {
			t.Errorf("%s: error = %v; want one naming api.addr", tc.addr, err)
		}
	}
}
