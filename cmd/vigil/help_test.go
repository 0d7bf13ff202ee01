package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpPrintedOnceSubcommands: "vigil <command> -help" prints the command's usage
// once, on stdout, and exits 0; a bad flag prints it once, on stderr, and
// exits 2. (The flag package prints the usage itself on -help; printing
// it again gave every command's help twice, once on each stream.)
func TestHelpPrintedOnceSubcommands(t *testing.T) {
	for _, args := range [][]string{
		{"models", "-help"}, {"alerts", "--help"}, {"status", "-h"}, {"drift", "fraud", "-help"},
		{"drift", "compare", "-help"}, {"agent", "-help"}, {"query", "-help"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != 0 || stderr.Len() != 0 || strings.Count(stdout.String(), "Usage: vigil ") != 1 {
			t.Errorf("%v: exit %d, %d usages on stdout, stderr %q", args, code, strings.Count(stdout.String(), "Usage: vigil "), stderr.String())
		}
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"models", "-bogus"}, &stdout, &stderr)
	if code != 2 || stdout.Len() != 0 || strings.Count(stderr.String(), "Usage: vigil models") != 1 || !strings.Contains(stderr.String(), "-bogus") {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
