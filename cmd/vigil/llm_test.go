package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLLMUsageArgs: a stray argument is a usage error (exit 2) naming
// it, before any call to the agent.
func TestLLMUsageArgs(t *testing.T) {
	var out, errb bytes.Buffer
	code := runLLM([]string{"usage", "extra", "-http-addr", "127.0.0.1:1"}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
