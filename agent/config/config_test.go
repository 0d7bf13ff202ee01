package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func noEnv(string) (string, bool) { return "", false }

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "ops.token", "  0123456789abcdef-ops\n")
	p := writeFile(t, dir, "vigil.yaml", `
node_name: gpu-17
data_dir: /tmp/vigil-data
log_level: debug
log_format: json
shutdown_timeout: 20s
api:
  addr: 0.0.0.0:7171
  unix_socket: /run/vigil/api.sock
  max_body_bytes: 16MiB
  request_timeout: 2m
  tokens:
    - name: ops
      scope: write
      secret_file: `+tokenFile+`
    - name: grafana
      scope: read
      secret: 0123456789abcdef-read
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	c := l.Config
	if c.NodeName != "gpu-17" || c.DataDir != "/tmp/vigil-data" || c.LogLevel != "debug" || c.LogFormat != "json" {
		t.Errorf("top-level keys not applied: %+v", c)
	}
	if c.ShutdownTimeout != 20*time.Second || c.API.RequestTimeout != 2*time.Minute {
		t.Errorf("durations: got %s, %s", c.ShutdownTimeout, c.API.RequestTimeout)
	}
	if c.API.MaxBodyBytes != 16<<20 {
		t.Errorf("max_body_bytes = %d", c.API.MaxBodyBytes)
	}
	if got := c.API.Tokens[0].Secret; got != "0123456789abcdef-ops" {
		t.Errorf("secret_file not read and trimmed: %q", got)
	}
	if c.API.Addr != "0.0.0.0:7171" {
		t.Errorf("addr = %q", c.API.Addr)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	for _, dev := range []bool{false, true} {
		if _, err := Load(Options{Dev: dev, Env: noEnv}); err != nil {
			t.Errorf("defaults (dev=%v) do not validate: %v", dev, err)
		}
	}
}

// TestLoadErrors checks that each kind of mistake is reported with the file,
// the line and the key.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "node_name: a\nlog_levl: debug\n", []string{"vigil.yaml:2: log_levl: unknown key", `did you mean "log_level"`}},
		// Keys are lower case with underscores: a key written in capitals
		// or with dashes gets the real one suggested.
		{"upper-case key", "API:\n  addr: 127.0.0.1:1\n", []string{`vigil.yaml:1: API: unknown key "API" (did you mean "api"?)`}},
		{"dashed key", "api:\n  request-timeout: 5s\n", []string{`vigil.yaml:2: api.request-timeout: unknown key "request-timeout" (did you mean "request_timeout"?)`}},
		{"shouted key", "LOG_LEVEL: debug\n", []string{`(did you mean "log_level"?)`}},
		{"unknown nested key", "api:\n  addr: 127.0.0.1:1\n  max_body_byte: 1MiB\n", []string{"vigil.yaml:3: api.max_body_byte: unknown key", `"max_body_bytes"`}},
		{"bad duration", "shutdown_timeout: ten seconds\n", []string{"vigil.yaml:1: shutdown_timeout: invalid duration \"ten seconds\""}},
		{"duration without unit", "api:\n  request_timeout: 30\n", []string{"vigil.yaml:2: api.request_timeout: invalid duration \"30\""}},
		{"wrong type string", "node_name: [a, b]\n", []string{"vigil.yaml:1: node_name: expected a string, got a list"}},
		{"wrong type bool", "api:\n  access_log: sometimes\n", []string{"vigil.yaml:2: api.access_log: expected true or false"}},
		{"number for a string", "node_name: 12\n", []string{"vigil.yaml:1: node_name: expected a string, got int 12"}},
		{"bad size", "api:\n  max_body_bytes: huge\n", []string{"vigil.yaml:2: api.max_body_bytes: invalid size \"huge\""}},
		{"mapping expected", "api: 5\n", []string{"vigil.yaml:1: api: expected a mapping"}},
		{"duplicate key", "log_level: info\nlog_level: debug\n", []string{"vigil.yaml:2: log_level: key set twice"}},
		{"syntax error", "api:\n  addr: [\n", []string{"vigil.yaml:", "invalid YAML"}},
		{"two documents", "log_level: info\n---\nlog_level: debug\n", []string{"more than one YAML document"}},
		{"bad enum", "log_level: verbose\n", []string{"vigil.yaml:1: log_level: \"verbose\" is not one of"}},
		{"addr with a scheme", "api:\n  addr: https://127.0.0.1:7070\n", []string{`vigil.yaml:2: api.addr: "https://127.0.0.1:7070" is not host:port: write the address to listen on without a scheme`, "https comes from api.tls"}},
		{"remote without tokens", "api:\n  addr: 0.0.0.0:7070\n", []string{"vigil.yaml:2: api.addr:", "no api.tokens"}},
		{"token scope", "api:\n  tokens:\n    - name: x\n      scope: admin\n      secret: 0123456789abcdefgh\n", []string{"vigil.yaml:4: api.tokens[0].scope: \"admin\" is not read, write or llm"}},
		{"budget for no token", "gateway:\n  budgets:\n    - name: b\n      token: ghost\n      window: 1d\n      usd: 5\n", []string{"vigil.yaml:4: gateway.budgets[0].token: \"ghost\" is not the name of any api.tokens entry"}},
		{"short token", "api:\n  tokens:\n    - name: x\n      scope: read\n      secret: short\n", []string{"vigil.yaml:3: api.tokens[0]: token \"x\" is shorter than 16"}},
		{"two secrets", "api:\n  tokens:\n    - name: x\n      scope: read\n      secret: 0123456789abcdefgh\n      secret_env: X\n", []string{"api.tokens[0]: set exactly one of"}},
		{"tls half", "api:\n  tls:\n    cert_file: /x.pem\n", []string{"vigil.yaml:2: api.tls: set both"}},
		{"telemetry section checked", "telemetry:\n  gpu:\n    interval: 1ms\n", []string{"vigil.yaml:3: telemetry.gpu.interval: must be at least 100ms"}},
		{"telemetry unknown key", "telemetry:\n  gpu:\n    simulated: 2\n", []string{"vigil.yaml:3: telemetry.gpu.simulated: unknown key", `"simulate"`}},
		{"store section checked", "store:\n  partition: 7h\n", []string{"vigil.yaml:2: store.partition: must divide 24h"}},
		{"store size", "store:\n  max_bytes: 1KiB\n", []string{"vigil.yaml:2: store.max_bytes: must be at least 1MiB"}},
		{"several errors at once", "foo: 1\nbar: 2\n", []string{"vigil.yaml:1: foo:", "vigil.yaml:2: bar:"}},
		// A secret that cannot be read does not hide the value errors:
		// both are reported in one go.
		{"secret and value errors at once", "log_level: verbose\napi:\n  tokens:\n    - name: x\n      scope: read\n      secret_env: VIGIL_TEST_UNSET_TOKEN\n", []string{"vigil.yaml:6: api.tokens[0].secret_env: environment variable VIGIL_TEST_UNSET_TOKEN is not set", `vigil.yaml:1: log_level: "verbose" is not one of`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "vigil.yaml", tt.body)
			_, err := Load(Options{Path: p, Env: noEnv})
			if err == nil {
				t.Fatalf("Load succeeded; want an error containing %q", tt.want)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(p)+"/", "")
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestDirectoryMergedInNameOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "10-base.yaml", "node_name: base\nlog_level: debug\napi:\n  addr: 127.0.0.1:7000\n")
	writeFile(t, dir, "20-site.yaml", "node_name: site\napi:\n  access_log: true\n")
	writeFile(t, dir, "README.md", "not yaml: [")
	l, err := Load(Options{Path: dir, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if l.NodeName != "site" || l.LogLevel != "debug" || l.API.Addr != "127.0.0.1:7000" || !l.API.AccessLog {
		t.Errorf("merge wrong: %+v", l.Config)
	}
	if len(l.Files) != 2 {
		t.Errorf("files = %v", l.Files)
	}
	// An error in the second file names that file.
	writeFile(t, dir, "30-bad.yaml", "api:\n  adr: x\n")
	_, err = Load(Options{Path: dir, Env: noEnv})
	if err == nil || !strings.Contains(err.Error(), "30-bad.yaml:2: api.adr") {
		t.Errorf("error = %v", err)
	}
}

func TestEnvOverride(t *testing.T) {
	p := writeFile(t, t.TempDir(), "vigil.yaml", "log_level: info\napi:\n  addr: 127.0.0.1:7000\n")
	env := map[string]string{
		"VIGIL_LOG_LEVEL":           "warn",
		"VIGIL_API_MAX_BODY_BYTES":  "1MiB",
		"VIGIL_API_REQUEST_TIMEOUT": "5s",
		"VIGIL_API_ACCESS_LOG":      "true",
		"VIGIL_API_ENABLE_PPROF":    "true",
		"VIGIL_OPS_TOKEN":           "0123456789abcdef-env",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	l, err := Load(Options{Path: p, Env: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if l.LogLevel != "warn" || l.API.MaxBodyBytes != 1<<20 || l.API.RequestTimeout != 5*time.Second || !l.API.AccessLog || !l.API.EnablePprof {
		t.Errorf("env not applied: %+v", l.Config)
	}

	env["VIGIL_SHUTDOWN_TIMEOUT"] = "soon"
	_, err = Load(Options{Path: p, Env: lookup})
	if err == nil || !strings.Contains(err.Error(), "environment VIGIL_SHUTDOWN_TIMEOUT: shutdown_timeout: invalid duration") {
		t.Errorf("error = %v", err)
	}
	delete(env, "VIGIL_SHUTDOWN_TIMEOUT")

	// A token's secret from the environment.
	p2 := writeFile(t, t.TempDir(), "vigil.yaml", "api:\n  tokens:\n    - name: ops\n      scope: write\n      secret_env: VIGIL_OPS_TOKEN\n")
	l, err = Load(Options{Path: p2, Env: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if l.API.Tokens[0].Secret != "0123456789abcdef-env" {
		t.Errorf("secret_env not read: %q", l.API.Tokens[0].Secret)
	}
	delete(env, "VIGIL_OPS_TOKEN")
	if _, err := Load(Options{Path: p2, Env: lookup}); err == nil || !strings.Contains(err.Error(), "VIGIL_OPS_TOKEN is not set") {
		t.Errorf("missing env secret: %v", err)
	}
}

func TestOverrideRunsAfterEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		if k == "VIGIL_API_ADDR" {
			return "127.0.0.1:1", true
		}
		return "", false
	}
	l, err := Load(Options{Dev: true, Env: lookup, Override: func(c *Config) { c.API.Addr = "127.0.0.1:2" }})
	if err != nil {
		t.Fatal(err)
	}
	if l.API.Addr != "127.0.0.1:2" {
		t.Errorf("addr = %q; the flag should win", l.API.Addr)
	}
}

func TestMissingPath(t *testing.T) {
	_, err := Load(Options{Path: filepath.Join(t.TempDir(), "nope.yaml"), Env: noEnv})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error = %v; want not-exist", err)
	}
}

func TestDiff(t *testing.T) {
	a, b := Default(), Default()
	b.LogLevel = "debug"
	b.API.Addr = "127.0.0.1:1"
	b.API.Tokens = []Token{{Name: "x"}}
	got := Diff(a, b)
	want := []string{"log_level", "api.addr", "api.tokens"}
	if !slices.Equal(got, want) {
		t.Errorf("Diff = %v, want %v", got, want)
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.API.Tokens = []Token{{Name: "x", Secret: "supersecretvalue123"}}
	r := c.Redacted()
	if r.API.Tokens[0].Secret == c.API.Tokens[0].Secret {
		t.Error("secret not redacted")
	}
	if c.API.Tokens[0].Secret != "supersecretvalue123" {
		t.Error("Redacted changed the original")
	}
	c.Gossip.EncryptKey = "hpQ58IdFG44TpH719ZSfCgKGCCBoFkAcY912ldmoLk0="
	if r := c.Redacted(); r.Gossip.EncryptKey == c.Gossip.EncryptKey || c.Gossip.EncryptKey == "<redacted>" {
		t.Error("gossip key not redacted, or the original changed")
	}
	c.Plugins.Env = map[string][]string{"openai": {"HTTPS_PROXY=http://u:pw@proxy:3128", "GOMAXPROCS=1"}}
	r = c.Redacted()
	if !slices.Equal(r.Plugins.Env["openai"], []string{"HTTPS_PROXY=<redacted>", "GOMAXPROCS=<redacted>"}) || c.Plugins.Env["openai"][0] != "HTTPS_PROXY=http://u:pw@proxy:3128" {
		t.Errorf("plugins.env: redacted %q, original %q", r.Plugins.Env["openai"], c.Plugins.Env["openai"])
	}
}

func TestKeysHaveEnvNames(t *testing.T) {
	keys := Keys()
	for _, want := range []string{"node_name", "api.addr", "api.max_body_bytes", "api.tls.cert_file"} {
		if !slices.Contains(keys, want) {
			t.Errorf("Keys() lacks %q", want)
		}
	}
	if got := EnvName("api.max_body_bytes"); got != "VIGIL_API_MAX_BODY_BYTES" {
		t.Errorf("EnvName = %q", got)
	}
}

// Dev mode serves local embeddings (hashembed) when the files configure no
// gateway, and leaves a file's gateway alone, whole.
func TestDevGateway(t *testing.T) {
	l, err := Load(Options{Dev: true, Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	g := l.Gateway
	if len(g.Providers) != 1 || g.Providers[0].Plugin != "hashembed" || len(g.Models) != 1 || g.Models[0].Name != DevEmbedAlias ||
		len(g.Models[0].Targets) != 1 || g.Models[0].Targets[0].Provider != g.Providers[0].Name || g.Models[0].Targets[0].Model != "hashembed-v1" {
		t.Errorf("dev gateway = %+v", g)
	}
	if l, err := Load(Options{Env: noEnv}); err != nil || len(l.Gateway.Providers)+len(l.Gateway.Models) != 0 {
		t.Errorf("production defaults configure a gateway: %+v, %v", l.Gateway, err)
	}
	for name, body := range map[string]string{
		"providers only": "gateway:\n  providers:\n    - {name: mine, plugin: openai}\n",
		"both":           "gateway:\n  providers:\n    - {name: mine, plugin: openai}\n  models:\n    - {name: chat, targets: [{provider: mine, model: gpt-4o-mini}]}\n",
	} {
		path := writeFile(t, t.TempDir(), "vigil.yaml", body)
		l, err := Load(Options{Dev: true, Path: path, Env: noEnv})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, p := range l.Gateway.Providers {
			if p.Plugin == "hashembed" {
				t.Errorf("%s: the dev provider joined the file's: %+v", name, l.Gateway.Providers)
			}
		}
		for _, m := range l.Gateway.Models {
			if m.Name == DevEmbedAlias {
				t.Errorf("%s: the dev alias joined the file's: %+v", name, l.Gateway.Models)
			}
		}
	}
}

// A value the environment set is blamed on the environment variable, not on
// the file line that the environment overrode.
func TestEnvErrorNamesTheVariable(t *testing.T) {
	path := writeFile(t, t.TempDir(), "vigil.yaml", "log_level: info\napi:\n  request_timeout: 30s\n")
	lookup := func(k string) (string, bool) {
		if k == "VIGIL_API_REQUEST_TIMEOUT" {
			return "-5s", true
		}
		return "", false
	}
	_, err := Load(Options{Path: path, Env: lookup})
	if err == nil || !strings.Contains(err.Error(), "environment VIGIL_API_REQUEST_TIMEOUT: api.request_timeout") || strings.Contains(err.Error(), "vigil.yaml") {
		t.Errorf("error = %v; want it to name VIGIL_API_REQUEST_TIMEOUT, not the file", err)
	}
}

// TestSecretValueNotInErrors: an unquoted secret that YAML reads as a
// number or a boolean is an error that does not repeat the value (it ends
// up in the agent's log and in vigil config validate's output).
func TestSecretValueNotInErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vigil.yaml")
	yml := "api:\n  tokens:\n    - {name: a, scope: read, secret: 98765432109876543210}\n" +
		"gossip:\n  encrypt_key: 1234567890123456\n"
	if err := os.WriteFile(p, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(Options{Path: p, Env: func(string) (string, bool) { return "", false }})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, secret := range []string{"98765432109876543210", "9.876", "1234567890123456"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error repeats the secret %s: %s", secret, msg)
		}
	}
	for _, want := range []string{"api.tokens[0].secret: expected a string", "gossip.encrypt_key: expected a string", "quote it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
}
