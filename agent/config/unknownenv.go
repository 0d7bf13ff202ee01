package config

import (
	"reflect"
	"sort"
	"strings"

	"github.com/vigilml/vigil/agent/alert"
)

// cliEnv are VIGIL_* variables that are not settings: the vigil CLI's, and
// the plugin handshake's.
var cliEnv = []string{"VIGIL_HTTP_ADDR", "VIGIL_TOKEN", "VIGIL_TOKEN_FILE", "VIGIL_CACERT", "VIGIL_CLIENT_CERT", "VIGIL_CLIENT_KEY", "VIGIL_PLUGIN"}

// UnknownEnv returns, sorted, the names of the VIGIL_* variables in environ
// (os.Environ form) that override no setting of c: most likely typos, or
// lists, which are set in files only. Load ignores them; the agent and
// `vigil config validate` warn about them. Variables that c names as
// holding a secret (api.tokens[].secret_env, the alert receivers'
// bearer_token_env, gateway.providers[].api_key_env) and the CLI's are not
// listed.
func UnknownEnv(environ []string, c *Config) []string {
	known := map[string]bool{}
	for _, n := range cliEnv {
		known[n] = true
	}
	walkLeaves(reflect.ValueOf(c).Elem(), "", func(key string, _ reflect.Value) {
		known[EnvName(key)] = true
	})
	for _, t := range c.API.Tokens {
		known[t.SecretEnv] = true
	}
	for _, r := range append(append([]alert.Receiver(nil), c.Alerts.Alertmanagers...), c.Alerts.Webhooks...) {
		known[r.BearerTokenEnv] = true
	}
	for _, p := range c.Gateway.Providers {
		known[p.APIKeyEnv] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, EnvPrefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return unknown
}
