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
	err = l.CheckFiles()
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
	if err := l.CheckFiles(); err != nil {
		t.Errorf("all files readable: %v", err)
	}
}
