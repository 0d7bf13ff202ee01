package main

import (
	"bytes"
	"github.com/vigilml/vigil/agent"
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

// TestHelpCommand: "vigil help CMD" prints CMD's own usage, as "vigil CMD
// -help" does (it printed the list of commands instead), and "vigil help
// NOSUCH" is an unknown command, not a success.
func TestHelpCommand(t *testing.T) {
	for _, c := range commands() {
		var stdout, stderr bytes.Buffer
		code := run([]string{"help", c.name}, &stdout, &stderr)
		if code != 0 || stderr.Len() != 0 || !strings.Contains(stdout.String(), "Usage: vigil "+c.name) || strings.Contains(stdout.String(), "Commands:\n") {
			t.Errorf("help %s: exit %d, stderr %q, stdout %q; want %s's own usage", c.name, code, stderr.String(), stdout.String(), c.name)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help", "nosuch"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), `unknown command "nosuch"`) {
		t.Errorf("help nosuch: exit %d, stderr %q; want an unknown command error", code, stderr.String())
	}
}

// TestExtraArgumentsRefused: commands that take flags only refuse a
// positional argument before asking the agent ("vigil models fraud" listed
// every model, as if the name had been read).
func TestExtraArgumentsRefused(t *testing.T) {
	t.Setenv("VIGIL_HTTP_ADDR", "127.0.0.1:1")
	for _, args := range [][]string{
		{"status", "extra"}, {"gpu", "extra"}, {"host", "extra"}, {"models", "fraud"},
		{"version", "extra"}, {"plugins", "list", "extra"}, {"models", "-window", "1m", "fraud"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(args, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "unexpected argument") || strings.Contains(stderr.String(), "cannot reach") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming the unexpected argument", args, code, stderr.String())
		}
	}
}

// TestConfigUsageErrorsExit2: "vigil config" without a subcommand or with
// an unknown one exits 2, like every other command's usage errors, so that
// exit 1 from vigil config validate always means an invalid configuration.
func TestConfigUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "valdate", "x.yaml"}, {"config", "validate"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a message", args, code, stderr.String())
		}
	}
}

// alerts and drift call their text output "table", the other commands
// "text": both names are taken.
func TestTableCommandsTakeText(t *testing.T) {
	for _, full := range [][]string{
		{"alerts", "-format", "text", "-http-addr", "127.0.0.1:1"},
		{"drift", "-format", "text", "-http-addr", "127.0.0.1:1", "m"},
		{"drift", "compare", "-format", "text"},
	} {
		var out, errb bytes.Buffer
		run(full, &out, &errb)
		if strings.Contains(errb.String(), "-format \"text\"") || strings.Contains(errb.String(), "Usage:") && !strings.Contains(errb.String(), "required") {
			t.Errorf("vigil %s: -format text refused: %s", strings.Join(full, " "), errb.String())
		}
	}
}

// The other way round: the commands whose text output is "text" take
// "table", alerts' and drift's name for it, and print text.
func TestTextCommandsTakeTable(t *testing.T) {
	for _, full := range [][]string{
		{"models", "-format", "table", "-http-addr", "127.0.0.1:1"},
		{"status", "-format", "table", "-http-addr", "127.0.0.1:1"},
		{"plugins", "list", "-format", "table", "-http-addr", "127.0.0.1:1"},
	} {
		var out, errb bytes.Buffer
		run(full, &out, &errb)
		if strings.Contains(errb.String(), "-format") || !strings.Contains(errb.String(), "cannot reach") {
			t.Errorf("vigil %s: %s", strings.Join(full, " "), errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version", "-format", "table"}, &out, &errb); code != 0 || strings.HasPrefix(strings.TrimSpace(out.String()), "{") {
		t.Errorf("vigil version -format table: exit %d, %q %q; want the text output", code, out.String(), errb.String())
	}
}

// Trouble (bad arguments, an agent that cannot be reached or answers an
// error) exits 2 from every command; 1 is kept for findings.
func TestTroubleExits2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nosuch"},
		{"members", "-http-addr", "127.0.0.1:1"},
		{"keyring", "list", "-http-addr", "127.0.0.1:1"},
		{"fleet", "stats", "-http-addr", "127.0.0.1:1", "m"},
		{"llm", "usage", "-http-addr", "127.0.0.1:1"},
		{"plugins", "register", "-http-addr", "127.0.0.1:1", "/bin/true"},
		{"plugins", "restart", "-http-addr", "127.0.0.1:1", "p"},
		{"plugins", "unregister", "-http-addr", "127.0.0.1:1", "p"},
		{"models", "-http-addr", "127.0.0.1:1"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("vigil %s: exit %d, want 2 (stderr: %s)", strings.Join(args, " "), code, errb.String())
		}
	}
}

// vigil status ends no line in padding, even for a subsystem with no
// reason, and keeps the columns aligned.
func TestStatusNoTrailingSpaces(t *testing.T) {
	var out bytes.Buffer
	printStatus(&out, agent.Status{Subsystems: []agent.SubsystemStatus{
		{Name: "api", State: agent.StateRunning},
		{Name: "telemetry.gpu", State: "disabled", Reason: "no NVIDIA driver"},
	}}, "ok", nil)
	_, table, _ := strings.Cut(out.String(), "Subsystems:")
	for line := range strings.Lines(table) {
		if strings.HasSuffix(strings.TrimSuffix(line, "\n"), " ") {
			t.Errorf("line ends in spaces: %q", line)
		}
	}
	if !strings.Contains(out.String(), "  telemetry.gpu  disabled  no NVIDIA driver\n") || !strings.Contains(out.String(), "  api            running\n") {
		t.Errorf("table:\n%s", out.String())
	}
}

// drift compare has a -timeout of its own: zero or below is refused as the
// agent commands' is, before any file is read.
func TestDriftCompareTimeoutFlag(t *testing.T) {
	for _, v := range []string{"0", "-1s"} {
		var out, errb bytes.Buffer
		code := run([]string{"drift", "compare", "-reference", "/nonexistent/r.csv", "-current", "/nonexistent/c.csv", "-timeout", v}, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "-timeout") || !strings.Contains(errb.String(), "want a positive duration") {
			t.Errorf("-timeout %s: exit %d, stderr %q", v, code, errb.String())
		}
	}
}
