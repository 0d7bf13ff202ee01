package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// MinTokenLength is the shortest API token accepted. `openssl rand -hex 16`
// or `head -c 24 /dev/urandom | base64` make good ones.
const MinTokenLength = 16

func (l *Loaded) errAt(key, format string, args ...any) *Error {
	p := l.where(key)
	return &Error{File: p.file, Line: p.line, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// resolveSecrets reads every token's secret from its file or environment
// variable into Token.Secret.
func (l *Loaded) resolveSecrets(lookup func(string) (string, bool)) Errors {
	var errs Errors
	for i := range l.API.Tokens {
		t := &l.API.Tokens[i]
		key := fmt.Sprintf("api.tokens[%d]", i)
		n := 0
		for _, s := range []string{t.Secret, t.SecretFile, t.SecretEnv} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			errs = append(errs, l.errAt(key, "set exactly one of secret, secret_file and secret_env"))
			continue
		}
		switch {
		case t.SecretFile != "":
			b, err := os.ReadFile(t.SecretFile)
			if err != nil {
				errs = append(errs, l.errAt(key+".secret_file", "cannot read token: %v", err))
				continue
			}
			t.Secret = strings.TrimSpace(string(b))
		case t.SecretEnv != "":
			v, ok := lookup(t.SecretEnv)
			if !ok || strings.TrimSpace(v) == "" {
				errs = append(errs, l.errAt(key+".secret_env", "environment variable %s is not set or empty", t.SecretEnv))
				continue
			}
			t.Secret = strings.TrimSpace(v)
		}
		if len(t.Secret) < MinTokenLength {
			errs = append(errs, l.errAt(key, "token %q is shorter than %d characters; generate one with `openssl rand -hex 16`", t.Name, MinTokenLength))
		}
	}
	return errs
}

// validate checks what strict decoding cannot: allowed values, ranges and
// combinations.
func (l *Loaded) validate() Errors {
	var errs Errors
	add := func(key, format string, args ...any) { errs = append(errs, l.errAt(key, format, args...)) }
	c := l.Config

	if strings.TrimSpace(c.NodeName) == "" {
		add("node_name", "must not be empty (the hostname could not be read; set node_name)")
	}
	if c.DataDir == "" {
		add("data_dir", "must not be empty")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		add("log_level", "%q is not one of debug, info, warn, error", c.LogLevel)
	}
	if !slices.Contains([]string{"auto", "text", "json"}, c.LogFormat) {
		add("log_format", "%q is not one of auto, text, json", c.LogFormat)
	}
	if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 10*time.Minute {
		add("shutdown_timeout", "%s is out of range: use between 1s and 10m", c.ShutdownTimeout)
	}

	a := c.API
	if a.Addr == "" && a.UnixSocket == "" {
		add("api.addr", "the API needs a listener: set api.addr or api.unix_socket")
	}
	if a.Addr != "" {
		host, port, err := net.SplitHostPort(a.Addr)
		switch {
		case strings.Contains(a.Addr, "://"):
			// The CLI's form (VIGIL_HTTP_ADDR) is not the listener's.
			add("api.addr", "%q is not host:port: write the address to listen on without a scheme, such as 0.0.0.0:7070 (https comes from api.tls; unix sockets from api.unix_socket)", a.Addr)
		case err != nil:
			add("api.addr", "%q is not host:port: %v", a.Addr, err)
		case port == "":
			add("api.addr", "%q has no port", a.Addr)
		case !validPort(port):
			add("api.addr", "%q: port %q is not a number from 0 to 65535", a.Addr, port)
		case !isLoopback(host) && len(a.Tokens) == 0 && !a.InsecureAllowRemote:
			add("api.addr", "%q is reachable from other hosts but no api.tokens are configured; add tokens, listen on 127.0.0.1, or set api.insecure_allow_remote: true if something else guards the port", a.Addr)
		}
	}
	if a.MaxBodyBytes <= 0 {
		add("api.max_body_bytes", "must be positive")
	}
	if a.RequestTimeout <= 0 {
		add("api.request_timeout", "must be positive")
	}
	if (a.TLS.CertFile == "") != (a.TLS.KeyFile == "") {
		add("api.tls", "set both cert_file and key_file, or neither")
	}
	if a.TLS.ClientCAFile != "" && !a.TLS.Enabled() {
		add("api.tls.client_ca_file", "needs cert_file and key_file too")
	}
	names := map[string]bool{}
	secrets := map[string]bool{}
	for i, t := range a.Tokens {
		key := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			add(key+".name", "every token needs a name (it is what the logs show)")
		} else if names[t.Name] {
			add(key+".name", "token name %q is used twice", t.Name)
		}
		names[t.Name] = true
		if !slices.Contains([]string{ScopeRead, ScopeWrite, ScopeLLM}, t.Scope) {
			add(key+".scope", "%q is not read, write or llm", t.Scope)
		}
		if t.Secret != "" && secrets[t.Secret] {
			add(key, "two tokens have the same secret")
		}
		secrets[t.Secret] = true
	}
	// Subsystems validate their own sections; their messages start with the
	// key path ("telemetry.gpu.interval: ..."), which locates them.
	for _, err := range []error{c.Telemetry.Validate(), c.Store.Validate(), c.Forward.Validate(), c.Plugins.Validate(), c.Observe.Validate(), c.Gossip.Validate()} {
		errs = append(errs, l.keyedErrors(err)...)
	}
	errs = append(errs, l.keyedErrors(c.Gateway.Validate())...)
	for i, b := range c.Gateway.Budgets {
		if b.Token != "" && !names[b.Token] {
			add(fmt.Sprintf("gateway.budgets[%d].token", i), "%q is not the name of any api.tokens entry, so the budget would never apply", b.Token)
		}
	}
	errs = append(errs, l.keyedErrors(c.Alerts.Validate())...)
	errs = append(errs, l.keyedErrors(errors.Join(c.Drift.Validate(), c.Models.Validate()))...)
	return errs
}

// keyedErrors turns a subsystem's joined "key: message" errors into located
// *Errors.
func (l *Loaded) keyedErrors(err error) Errors {
	if err == nil {
		return nil
	}
	var errs Errors
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		key, msg, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(key, " ") {
			errs = append(errs, &Error{Msg: line})
			continue
		}
		errs = append(errs, l.errAt(key, "%s", msg))
	}
	return errs
}

// validPort reports whether port is one net.Listen accepts: a number from 0
// to 65535 or a service name such as http.
func validPort(port string) bool {
	_, err := net.LookupPort("tcp", port)
	return err == nil
}

// isLoopback reports whether host only accepts connections from this
// machine. An empty host or an unspecified address listens everywhere.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
