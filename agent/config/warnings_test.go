package config

import (
	"os"
	"strings"
	"testing"
)

// TestSecretWarnings checks that secrets other users can read are warned
// about: a secret file readable by every user, and an inline secret in a
// configuration file readable by every user.
func TestSecretWarnings(t *testing.T) {
	dir := t.TempDir()
	open := writeFile(t, dir, "open.token", "0123456789abcdef-open\n")
	closed := writeFile(t, dir, "closed.token", "0123456789abcdef-closed\n")
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "vigil.yaml", `api:
  tokens:
    - {name: a, scope: read, secret_file: `+open+`}
    - {name: b, scope: read, secret_file: `+closed+`}
    - {name: c, scope: write, secret: 0123456789abcdef-inline}
`)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.SecretWarnings(), "\n")
	for _, want := range []string{
		"vigil.yaml:3: api.tokens[0].secret_file: " + open + " is readable by every user (mode 0644)",
		"vigil.yaml:5: api.tokens[2].secret: an inline secret in a file readable by every user (mode 0644)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "tokens[1]") {
		t.Errorf("a private secret file is warned about:\n%s", got)
	}

	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o640); err != nil {
		t.Fatal(err)
	}
	if w := l.SecretWarnings(); len(w) != 0 {
		t.Errorf("private files: warnings %v", w)
	}
}

// TestSecretWarningsTLSKeys checks the private keys of TLS: api.tls.key_file
// and a remote_write entry's tls.key_file are secrets like tokens, and a
// copy left readable by every user (cp keeps no 0600) is warned about.
func TestSecretWarningsTLSKeys(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "vigil.yaml", `api:
  addr: 127.0.0.1:0
  tls:
    cert_file: `+cert+`
    key_file: `+key+`
forward:
  remote_write:
    - name: central
      url: https://127.0.0.1:9090/api/v1/write
      tls:
        cert_file: `+cert+`
        key_file: `+key+`
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(l.SecretWarnings(), "\n")
	for _, want := range []string{
		"vigil.yaml:5: api.tls.key_file: " + key + " is readable by every user (mode 0644)",
		"vigil.yaml:12: forward.remote_write[0].tls.key_file: " + key + " is readable by every user (mode 0644)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("warnings lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "cert_file") {
		t.Errorf("a certificate, which is public, is warned about:\n%s", got)
	}
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	if w := l.SecretWarnings(); len(w) != 0 {
		t.Errorf("private key: warnings %v", w)
	}
}

// TestSecretWarningsProviderKey: a gateway provider's api_key_file holds an
// upstream API key (money spent on the operator's account); a copy every
// user can read is warned about like the other secret files.
func TestSecretWarningsProviderKey(t *testing.T) {
	dir := t.TempDir()
	key := writeFile(t, dir, "openai.key", "sk-0123456789abcdef\n")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "vigil.yaml", `gateway:
  providers:
    - {name: oa, plugin: openai, api_key_file: `+key+`}
  models:
    - {name: m, targets: [{provider: oa, model: x}]}
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	want := "vigil.yaml:3: gateway.providers[0].api_key_file: " + key + " is readable by every user (mode 0644)"
	if got := strings.Join(l.SecretWarnings(), "\n"); !strings.Contains(got, want) {
		t.Errorf("warnings lack %q:\n%s", want, got)
	}
}
