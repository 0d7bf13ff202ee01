// Package config defines the agent's configuration, its defaults, and a strict
// YAML loader.
//
// A configuration is built in layers, each overriding the one before:
// built-in defaults (production or dev), then one YAML file or every *.yaml
// file of a directory in name order, then VIGIL_* environment variables, then
// the few command-line flags the agent accepts. Decoding is strict: an unknown
// key, a value of the wrong type or an unparsable duration is an error that
// names the file, the line and the key. Semantic checks (Validate) run once
// all layers are applied and name the file and line where the offending key
// was last set.
//
// Secrets (API tokens) may be written inline, read from a file (*_file) or
// from an environment variable (*_env); they are never taken from the command
// line, and they are redacted whenever a Config is printed.
package config

import (
	"os"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/drift"
	"github.com/vigilml/vigil/agent/fleet"
	"github.com/vigilml/vigil/agent/forward"
	"github.com/vigilml/vigil/agent/gateway"
	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/agent/telemetry"
	"github.com/vigilml/vigil/agent/units"
)

// Config is the whole agent configuration. The yaml tags are the key names in
// the configuration file; docs/configuration.md documents every key.
type Config struct {
	// NodeName identifies this agent in its fleet. Default: the hostname.
	NodeName string `yaml:"node_name"`
	// DataDir holds the agent's state. It is created with mode 0700 and
	// locked so that only one agent uses it at a time.
	DataDir string `yaml:"data_dir"`
	// LogLevel is one of debug, info, warn, error. Reloadable with SIGHUP.
	LogLevel string `yaml:"log_level"`
	// LogFormat is auto (text on a terminal, JSON otherwise), text or json.
	LogFormat string `yaml:"log_format"`
	// ShutdownTimeout bounds how long SIGINT/SIGTERM may take to drain.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	API API `yaml:"api"`

	// Telemetry configures the GPU, host and model-server process
	// collectors (agent/telemetry).
	Telemetry telemetry.Config `yaml:"telemetry"`
	// Store configures the durable sample store (agent/store).
	Store store.Config `yaml:"store"`
	// Forward configures shipping samples upstream (agent/forward).
	Forward forward.Config `yaml:"forward"`
	// Plugins configures where plugins come from and how they are run
	// (agent/pluginhost).
	Plugins pluginhost.Config `yaml:"plugins"`
	// Observe configures model observations and their stats
	// (agent/observe).
	Observe observe.Config `yaml:"observe"`
	// Gossip configures fleet membership with serf (agent/fleet).
	Gossip fleet.Config `yaml:"gossip"`
	// Gateway configures the LLM gateway (agent/gateway).
	Gateway gateway.Config `yaml:"gateway"`
	// Alerts configures alert rules and their delivery (agent/alert).
	Alerts alert.Config `yaml:"alerts"`
	// Drift configures drift evaluation (agent/drift); Models holds the
	// per-model settings (models.<model>.features.<feature>.detector).
	Drift  drift.Config `yaml:"drift"`
	Models drift.Models `yaml:"models"`
}

// API configures the local HTTP API.
type API struct {
	// Addr is the TCP listen address (host:port). Empty disables TCP, in
	// which case UnixSocket must be set.
	Addr string `yaml:"addr"`
	// UnixSocket, when set, also serves the API on this unix socket (0660).
	UnixSocket string `yaml:"unix_socket"`
	// Tokens, when any are configured, are required on every request.
	Tokens []Token `yaml:"tokens"`
	// TLS serves the TCP listener over TLS when cert_file and key_file are set.
	TLS TLS `yaml:"tls"`
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes units.Bytes `yaml:"max_body_bytes"`
	// RequestTimeout bounds the time a handler may spend on one request.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// InsecureAllowRemote permits a non-loopback Addr with no tokens.
	InsecureAllowRemote bool `yaml:"insecure_allow_remote"`
	// AccessLog logs one line per request at info level (otherwise debug).
	AccessLog bool `yaml:"access_log"`
	// EnablePprof serves Go's runtime profiles under /debug/pprof/ (write
	// scope), for profiling the agent where it runs. Off by default.
	EnablePprof bool `yaml:"enable_pprof"`
}

// Token is one bearer token accepted by the API. Exactly one of Secret,
// SecretFile and SecretEnv must be set; after Load, Secret holds the value.
type Token struct {
	// Name identifies the token in logs; never the secret itself.
	Name string `yaml:"name"`
	// Scope is read (GET requests), write (everything; implies read) or
	// llm (the LLM gateway under /openai/v1 and GET /v1/llm/usage only).
	Scope string `yaml:"scope"`
	// Secret is the token value written inline (prefer secret_file).
	Secret string `yaml:"secret"`
	// SecretFile is a file holding the token value (surrounding space trimmed).
	SecretFile string `yaml:"secret_file"`
	// SecretEnv is the name of an environment variable holding the value.
	SecretEnv string `yaml:"secret_env"`
}

// TLS configures TLS for the API's TCP listener.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile, when set, requires clients to present a certificate
	// signed by one of these CAs (mutual TLS).
	ClientCAFile string `yaml:"client_ca_file"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Token scopes.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeLLM   = "llm"
)

// DefaultAddr is where the API listens unless configured otherwise.
const DefaultAddr = "127.0.0.1:7070"

// DefaultDevDataDir is the data directory of `vigil agent -dev`, relative to
// the working directory.
const DefaultDevDataDir = ".vigil-dev"

// Default returns the production defaults.
func Default() *Config {
	host, _ := os.Hostname()
	return &Config{
		NodeName:        host,
		DataDir:         "/var/lib/vigil",
		LogLevel:        "info",
		LogFormat:       "auto",
		ShutdownTimeout: 10 * time.Second,
		API: API{
			Addr:           DefaultAddr,
			MaxBodyBytes:   8 << 20,
			RequestTimeout: 60 * time.Second,
		},
		Telemetry: telemetry.DefaultConfig(),
		Store:     store.DefaultConfig(),
		Forward:   forward.DefaultConfig(),
		Plugins:   pluginhost.DefaultConfig(),
		Observe:   observe.DefaultConfig(),
		Gossip:    fleet.DefaultConfig(),
		Gateway:   gateway.DefaultConfig(),
		Alerts:    alert.DefaultConfig(),
		Drift:     drift.DefaultConfig(),
	}
}

// Dev returns the defaults of `vigil agent -dev`: everything local, data in
// ./.vigil-dev, one log line per API request.
func Dev() *Config {
	c := Default()
	c.DataDir = DefaultDevDataDir
	c.API.AccessLog = true
	c.Plugins.Start = "boot"
	c.Gossip = fleet.DevConfig()
	return c
}

// DevEmbedAlias is the embeddings alias dev mode serves when the
// configuration has no gateway of its own: the hashembed plugin's local,
// lexical embeddings, so that /openai/v1/embeddings answers out of the box
// with no network and no model file.
const DevEmbedAlias = "hashembed"

// devGateway is dev mode's gateway: one hashembed instance behind the
// DevEmbedAlias alias.
func devGateway() ([]gateway.Provider, []gateway.Model) {
	return []gateway.Provider{{Name: "dev-hashembed", Plugin: "hashembed"}},
		[]gateway.Model{{Name: DevEmbedAlias, Targets: []gateway.Target{{Provider: "dev-hashembed", Model: "hashembed-v1"}}}}
}

// Redacted returns a copy of c with every secret replaced, for printing.
func (c *Config) Redacted() *Config {
	out := *c
	out.API.Tokens = make([]Token, len(c.API.Tokens))
	for i, t := range c.API.Tokens {
		if t.Secret != "" {
			t.Secret = "<redacted>"
		}
		out.API.Tokens[i] = t
	}
	if c.Gossip.EncryptKey != "" {
		out.Gossip.EncryptKey = "<redacted>"
	}
	if len(c.Plugins.Env) > 0 {
		// Values may be credentials (a proxy URL's password, a key).
		out.Plugins.Env = make(map[string][]string, len(c.Plugins.Env))
		for name, kvs := range c.Plugins.Env {
			red := make([]string, len(kvs))
			for i, kv := range kvs {
				k, _, _ := strings.Cut(kv, "=")
				red[i] = k + "=<redacted>"
			}
			out.Plugins.Env[name] = red
		}
	}
	return &out
}
