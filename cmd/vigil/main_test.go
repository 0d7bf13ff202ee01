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

// TestBadFormatRefused checks that every command refuses a -format it does
// not know before asking the agent, instead of printing its default output.
func TestBadFormatRefused(t *testing.T) {
	for _, args := range [][]string{
		{"status"}, {"gpu"}, {"host"}, {"query", "vigil_host_load1"}, {"models"}, {"alerts"},
		{"members"}, {"version"}, {"drift", "fraud"}, {"llm", "usage"}, {"plugins", "list"},
		{"fleet", "stats", "fraud"}, {"keyring", "list"},
	} {
		var stdout, stderr bytes.Buffer
		t.Setenv("VIGIL_HTTP_ADDR", "127.0.0.1:1")
		code := run(append(args, "-format", "xml"), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), `-format "xml"`) || strings.Contains(stderr.String(), "cannot reach") {
			t.Errorf("%v -format xml: exit %d, stderr %q; want exit 2 naming -format", args, code, stderr.String())
		}
	}
}

// TestQueryRefusesBadDurations checks that vigil query refuses a negative
// -step (it printed raw points as if none was given) and a -since that is
// not positive, before asking the agent.
func TestQueryRefusesBadDurations(t *testing.T) {
	t.Setenv("VIGIL_HTTP_ADDR", "127.0.0.1:1")
	for _, args := range [][]string{{"-step", "-1m"}, {"-since", "0s"}, {"-since", "-1h"}} {
		var stdout, stderr bytes.Buffer
		code := run(append([]string{"query", "vigil_host_load1"}, args...), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), args[0]) || strings.Contains(stderr.String(), "cannot reach") {
			t.Errorf("query %v: exit %d, stderr %q; want exit 2 naming %s", args, code, stderr.String(), args[0])
		}
	}
}
