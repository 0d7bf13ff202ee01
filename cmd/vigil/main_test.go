package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpPrintedOnce checks that `vigil CMD -help` prints the command's
// usage once, to stdout, and nothing to stderr, and that a bad flag prints
// the error and usage once, to stderr only.
func TestHelpPrintedOnce(t *testing.T) {
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run([]string{c.name, "-help"}, &stdout, &stderr)
			if code != 0 {
				t.Fatalf("exit %d, want 0; stderr: %s", code, stderr.String())
			}
			if n := strings.Count(stdout.String(), "Usage: vigil"); n != 1 {
				t.Errorf("stdout has the usage %d times, want once:\n%s", n, stdout.String())
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr not empty:\n%s", stderr.String())
			}
		})
	}
}

func TestBadFlagUsageOnStderr(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"status", "-no-such-flag"}, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	if stdout.Len() != 0 {
		t.Errorf("stdout not empty:\n%s", stdout.String())
	}
	if !strings.Contains(stderr.String(), "flag provided but not defined: -no-such-flag") {
		t.Errorf("stderr lacks the error:\n%s", stderr.String())
	}
	if n := strings.Count(stderr.String(), "Usage: vigil status"); n != 1 {
		t.Errorf("stderr has the usage %d times, want once:\n%s", n, stderr.String())
	}
}
