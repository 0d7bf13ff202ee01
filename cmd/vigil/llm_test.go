package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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

// TestLLMUsageTable: every amount (limit, spent, left, estimated) has
// the same four decimals, right-aligned under its header, so that the
// decimal points line up; a non-zero amount below them still shows (the
// limit had two decimals and the others four). No line ends in padding.
func TestLLMUsageTable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/llm/usage" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"budgets":[
			{"name":"app-daily","token":"app","window":"1d","limit_usd":100,"spent_usd":2.41,"remaining_usd":97.59,"estimated_usd":0.12},
			{"name":"tiny","alias":"cheap","window":"1h","limit_usd":0.5,"spent_usd":0.000035,"remaining_usd":0.499965,"estimated_usd":0}],
			"prices_as_of":"2026-03"}`))
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"llm", "usage", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(stdout.String(), "\n")
	if len(lines) < 3 {
		t.Fatalf("output:\n%s", stdout.String())
	}
	want := []string{
		"BUDGET     TOKEN  ALIAS  WINDOW  LIMIT USD  SPENT USD  LEFT USD  ESTIMATED USD",
		"app-daily  app    -      1d       100.0000     2.4100   97.5900         0.1200",
		"tiny       -      cheap  1h         0.5000  0.0000350    0.5000         0.0000",
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d:\n got %q\nwant %q", i, lines[i], w)
		}
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("line ends in spaces: %q", l)
		}
	}
}

// TestLLMAndFleetSubcommandErrors: "vigil llm" alone prints the subcommands on
// stderr and exits 2, an unknown subcommand is named (both printed a bare
// usage line), and -help prints the usage on stdout. vigil fleet, with one
// subcommand too, printed its usage for an unknown one without naming it.
func TestLLMAndFleetSubcommandErrors(t *testing.T) {
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"llm"}, 2, "", "usage   each gateway budget"},
		{[]string{"llm", "usgae"}, 2, "", `vigil llm: unknown subcommand "usgae" (want usage)`},
		{[]string{"llm", "help"}, 2, "", `vigil llm: unknown subcommand "help" (want usage)`},
		{[]string{"llm", "-help"}, 0, "usage   each gateway budget", ""},
		{[]string{"fleet"}, 2, "", "stats MODEL   merged latency"},
		{[]string{"fleet", "stat", "m"}, 2, "", `vigil fleet: unknown subcommand "stat" (want stats)`},
		{[]string{"fleet", "--help"}, 0, "stats MODEL   merged latency", ""},
		// vigil keyring said "want 1 argument(s), got 0" and showed
		// "[KEY]" in every subcommand's usage, list included.
		{[]string{"keyring", "install"}, 2, "", "vigil keyring install: want the KEY, base64 as vigil keyring list shows it (vigil keygen makes a new one)"},
		{[]string{"keyring", "use", "a", "b"}, 2, "", `vigil keyring use: want one KEY, got 2 arguments: ["a" "b"]`},
		{[]string{"keyring", "list", "x"}, 2, "", `vigil keyring list: takes no arguments, got ["x"]`},
		{[]string{"keyring", "list", "-help"}, 0, "Usage: vigil keyring list [flags]", ""},
		{[]string{"keyring", "remove", "-help"}, 0, "Usage: vigil keyring remove KEY [flags]", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, &stdout, &stderr)
		if code != c.code || !strings.Contains(stdout.String(), c.out) || !strings.Contains(stderr.String(), c.errs) ||
			(c.out == "" && stdout.Len() != 0) || (c.errs == "" && stderr.Len() != 0) {
			t.Errorf("vigil %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				strings.Join(c.args, " "), code, stdout.String(), stderr.String(), c.code, c.out, c.errs)
		}
	}
}

// TestKeyringRemoveAbsent: removing a key no node has printed "remove:
// done on 3 of 3 nodes", so a mistyped key looked removed; it now says
// nothing was done and why, and still exits 0 (running a rotation step
// again is safe).
func TestKeyringRemoveAbsent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/fleet/keyring" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"keys":{"l0a64WDoinJF67RzrHqy4BObFGPXeZ6Iar1plcaAOKA=":3},"primary_keys":{"l0a64WDoinJF67RzrHqy4BObFGPXeZ6Iar1plcaAOKA=":3},
			"nodes":3,"responses":3,"errors":0,"absent":true}`))
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"keyring", "remove", "wViWbAZYt8tceKgbgXBUaU0RuwknqfacbtMmx4szqjU=", "-http-addr", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr)
	want := "remove: no node has this key; nothing done (already removed, or mistyped: vigil keyring list shows the installed keys)\n"
	if code != 0 || stdout.String() != want || stderr.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 0, stdout %q", code, stdout.String(), stderr.String(), want)
	}
}
