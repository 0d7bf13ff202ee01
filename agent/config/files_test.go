package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckFilesFindsWhatTheAgentWouldFailOn checks that the files the
// forwarder reads at start (secrets, TLS) are checked by CheckFiles, with
// the file and line of their key, so that `vigil config validate` does not
// call valid a configuration the agent refuses to start with.
func TestCheckFilesFindsWhatTheAgentWouldFailOn(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "secret\n")
	missing := filepath.Join(dir, "missing")
	p := writeFile(t, dir, "vigil.yaml", `forward:
  remote_write:
    - name: good
      url: http://127.0.0.1:9090/api/v1/write
      bearer_token_file: `+token+`
    - name: bad
      url: https://127.0.0.1:9090/api/v1/write
      bearer_token_file: `+missing+`
      tls:
        ca_file: `+missing+`
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = l.CheckFiles(noEnv)
	if err == nil {
		t.Fatal("CheckFiles found nothing wrong")
	}
	for _, want := range []string{
		"vigil.yaml:8: forward.remote_write[1].bearer_token_file: cannot read " + missing,
		"vigil.yaml:10: forward.remote_write[1].tls.ca_file: cannot read " + missing,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "remote_write[0]") {
		t.Errorf("readable file reported:\n%v", err)
	}

	if err := os.WriteFile(missing, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFiles(noEnv); err != nil {
		t.Errorf("all files readable: %v", err)
	}
}

// TestCheckFilesAlertsAndGateway checks the alert receivers' token files
// and variables and the gateway providers' key variables, which the agent
// also needs at start.
func TestCheckFilesAlertsAndGateway(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	p := writeFile(t, dir, "vigil.yaml", `alerts:
  alertmanagers:
    - url: http://127.0.0.1:9093
      bearer_token_file: `+missing+`
  webhooks:
    - url: http://127.0.0.1:9999/hook
      bearer_token_env: HOOK_TOKEN
gateway:
  providers:
    - name: oa
      plugin: openai
      api_key_env: OA_KEY
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = l.CheckFiles(noEnv)
	for _, want := range []string{
		"vigil.yaml:4: alerts.alertmanagers[0].bearer_token_file: cannot read " + missing,
		"vigil.yaml:7: alerts.webhooks[0].bearer_token_env: environment variable HOOK_TOKEN is not set",
		"vigil.yaml:12: gateway.providers[0].api_key_env: environment variable OA_KEY is not set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	env := func(k string) (string, bool) { return "set", k == "HOOK_TOKEN" || k == "OA_KEY" }
	if err := os.WriteFile(missing, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFiles(env); err != nil {
		t.Errorf("everything present: %v", err)
	}
}
