package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/client"
)

// TestClientCertificateFlags checks that the commands that talk to an
// agent take -client-cert and -client-key, default them from
// VIGIL_CLIENT_CERT and VIGIL_CLIENT_KEY next to -ca-file, let the flags
// override the environment, and refuse a half-given pair.
func TestClientCertificateFlags(t *testing.T) {
	dir := t.TempDir()
	envCert, envKey := filepath.Join(dir, "env-cert.pem"), filepath.Join(dir, "env-key.pem")
	flagCert := filepath.Join(dir, "flag-cert.pem")
	t.Setenv(client.EnvClientCert, envCert)
	t.Setenv(client.EnvClientKey, envKey)

	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	newClient := clientFlags(fs)
	for name, want := range map[string]string{"client-cert": envCert, "client-key": envKey} {
		f := fs.Lookup(name)
		if f == nil {
			t.Fatalf("-%s is not a flag", name)
		}
		if f.DefValue != want {
			t.Errorf("-%s defaults to %q; want %q from the environment", name, f.DefValue, want)
		}
	}
	// Files that do not exist: the error names the one the flag gave.
	if err := fs.Parse([]string{"-client-cert", flagCert}); err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(); err == nil || !strings.Contains(err.Error(), "read client certificate") || !strings.Contains(err.Error(), flagCert) {
		t.Errorf("missing certificate file: error = %v; want it to name %s", err, flagCert)
	}

	t.Setenv(client.EnvClientKey, "")
	fs = flag.NewFlagSet("status", flag.ContinueOnError)
	newClient = clientFlags(fs)
	if _, err := newClient(); err == nil || !strings.Contains(err.Error(), "-client-key") {
		t.Errorf("certificate without key: error = %v; want a hint at -client-key", err)
	}

	// Every command's help lists them next to -ca-file.
	for _, args := range [][]string{{"status", "-help"}, {"gpu", "-help"}, {"models", "-help"}, {"alerts", "-help"}, {"members", "-help"}, {"llm", "usage", "-help"}, {"plugins", "list", "-help"}} {
		var stdout, stderr bytes.Buffer
		run(args, &stdout, &stderr)
		for _, want := range []string{"-ca-file", "-client-cert", "-client-key", client.EnvClientCert, client.EnvClientKey} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%v: help does not list %s:\n%s", args, want, stdout.String())
			}
		}
	}
}

// TestClientTimeoutFlag: -timeout 0 or below is refused naming the flag,
// before any call: the client read 0 as 10s and a negative timeout as
// none, so "vigil llm usage -timeout -1s" waited forever.
func TestClientTimeoutFlag(t *testing.T) {
	for _, args := range [][]string{
		{"llm", "usage", "-timeout", "-1s"},
		{"llm", "usage", "-timeout", "0"},
		{"status", "-timeout", "-5s"},
		{"models", "-timeout", "0s"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(append(args, "-http-addr", "127.0.0.1:1"), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "-timeout") || !strings.Contains(stderr.String(), "want a positive duration") || strings.Contains(stderr.String(), "cannot reach") {
			t.Errorf("vigil %s: exit %d, stderr %q; want exit 2 naming -timeout", strings.Join(args, " "), code, stderr.String())
		}
	}
}

// TestClientTokenFile: -token-file overrides VIGIL_TOKEN_FILE (so a stale
// variable naming a missing file does not stop a command given a good
// file), and an empty token file, from either, is an error naming the
// file, not a request without a token answered by a 401 that tells to set
// a token.
func TestClientTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "ops.token")
	empty := filepath.Join(dir, "empty.token")
	if err := os.WriteFile(good, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, envFile string
		args          []string
		want          string // error text; empty: no error
	}{
		{"flag over a missing env file", filepath.Join(dir, "missing"), []string{"-token-file", good}, ""},
		{"env file", good, nil, ""},
		{"missing env file", filepath.Join(dir, "missing"), nil, client.EnvTokenFile + ": open " + filepath.Join(dir, "missing")},
		{"empty flag file", "", []string{"-token-file", empty}, "token file " + empty + " is empty"},
		{"empty env file", empty, nil, client.EnvTokenFile + ": " + empty + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(client.EnvToken, "")
			t.Setenv(client.EnvTokenFile, tc.envFile)
			fs := flag.NewFlagSet("status", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			newClient := clientFlags(fs)
			if err := fs.Parse(append(tc.args, "-http-addr", "127.0.0.1:1")); err != nil {
				t.Fatal(err)
			}
			_, err := newClient()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("error %v; want none", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
}
