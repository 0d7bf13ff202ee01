package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/vigilml/vigil/agent/alert"
)

// CheckFiles reads what subsystems read only when the agent starts, and
// whose absence then stops the start: the forwarder's secrets and TLS
// files, the alert receivers' token files and variables, and the gateway
// providers' key variables. Each problem names the file and line of its
// key. Load does not do this, so that a reload is not refused while such a
// file is being replaced; `vigil config validate` does, so that it does not
// call valid a configuration the agent would refuse to start with. env
// looks up environment variables; nil means os.LookupEnv.
func (l *Loaded) CheckFiles(env func(string) (string, bool)) error {
	if env == nil {
		env = os.LookupEnv
	}
	errs := l.keyedErrors(l.Forward.CheckFiles())
	for _, list := range []struct {
		key       string
		receivers []alert.Receiver
	}{{"alerts.alertmanagers", l.Alerts.Alertmanagers}, {"alerts.webhooks", l.Alerts.Webhooks}} {
		for i, r := range list.receivers {
			key := fmt.Sprintf("%s[%d]", list.key, i)
			if f := r.BearerTokenFile; f != "" {
				if _, err := os.ReadFile(f); err != nil {
					errs = append(errs, l.errAt(key+".bearer_token_file", "cannot read %s: %v", f, pathErr(err)))
				}
			}
			if v := r.BearerTokenEnv; v != "" {
				if s, ok := env(v); !ok || strings.TrimSpace(s) == "" {
					errs = append(errs, l.errAt(key+".bearer_token_env", "environment variable %s is not set or empty", v))
				}
			}
		}
	}
	for i, p := range l.Gateway.Providers {
		if v := p.APIKeyEnv; v != "" {
			if s, ok := env(v); !ok || strings.TrimSpace(s) == "" {
				errs = append(errs, l.errAt(fmt.Sprintf("gateway.providers[%d].api_key_env", i), "environment variable %s is not set or empty", v))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// pathErr drops the operation and path that a *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
