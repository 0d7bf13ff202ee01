package config

import (
	"fmt"
	"os"
)

// SecretWarnings lists secrets that every user of the host can read: a
// secret file (api.tokens[].secret_file, the TLS private keys of the API and
// the forwarder, gossip.encrypt_key_file, the forwarder's and the alert
// receivers' token and password files, the gateway providers'
// api_key_file) with read
// permission for others, and an inline secret (api.tokens[].secret,
// gossip.encrypt_key) written in a configuration file with read permission
// for others (the packaged /etc/vigil/vigil.yaml is 0644). Each names the
// file and line of its key. The agent logs them at start and `vigil config
// validate` prints them; neither refuses to run, since the owner may know
// better (a single-user host, say).
func (l *Loaded) SecretWarnings() []string {
	var out []string
	file := func(key, path string) {
		if path == "" {
			return
		}
		if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o004 != 0 {
			out = append(out, l.errAt(key, "%s is readable by every user (mode %#o); make it 0640, group vigil", path, st.Mode().Perm()).Error())
		}
	}
	inline := func(key, value string) {
		if value == "" {
			return
		}
		p := l.where(key)
		if st, err := os.Stat(p.file); err == nil && st.Mode().Perm()&0o004 != 0 {
			out = append(out, l.errAt(key, "an inline secret in a file readable by every user (mode %#o); use a secret file or variable instead", st.Mode().Perm()).Error())
		}
	}
	for i, t := range l.API.Tokens {
		key := fmt.Sprintf("api.tokens[%d]", i)
		file(key+".secret_file", t.SecretFile)
		if t.SecretFile == "" && t.SecretEnv == "" {
			inline(key+".secret", t.Secret)
		}
	}
	file("api.tls.key_file", l.API.TLS.KeyFile)
	inline("gossip.encrypt_key", l.Gossip.EncryptKey)
	file("gossip.encrypt_key_file", l.Gossip.EncryptKeyFile)
	for i, r := range l.Forward.RemoteWrite {
		file(fmt.Sprintf("forward.remote_write[%d].bearer_token_file", i), r.BearerTokenFile)
		file(fmt.Sprintf("forward.remote_write[%d].basic_auth.password_file", i), r.BasicAuth.PasswordFile)
		file(fmt.Sprintf("forward.remote_write[%d].tls.key_file", i), r.TLS.KeyFile)
	}
	for i, r := range l.Alerts.Alertmanagers {
		file(fmt.Sprintf("alerts.alertmanagers[%d].bearer_token_file", i), r.BearerTokenFile)
	}
	for i, r := range l.Alerts.Webhooks {
		file(fmt.Sprintf("alerts.webhooks[%d].bearer_token_file", i), r.BearerTokenFile)
	}
	for i, p := range l.Gateway.Providers {
		file(fmt.Sprintf("gateway.providers[%d].api_key_file", i), p.APIKeyFile)
	}
	return out
}
