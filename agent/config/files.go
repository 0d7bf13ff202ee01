package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vigilml/vigil/agent/alert"
)

// CheckFiles reads what subsystems read only when the agent starts, and
// whose absence then stops the start: the API's TLS certificate, key and
// client CA bundle, the directory of its unix socket, the forwarder's secrets and TLS files, the alert receivers' token files and variables, and the gateway
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
	errs = append(errs, l.checkAPITLS()...)
	if e := l.checkDataDir(); e != nil {
		errs = append(errs, e)
	}
	if sock := l.API.UnixSocket; sock != "" {
		d := filepath.Dir(sock)
		if st, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, l.errAt("api.unix_socket", "directory %s does not exist (systemd creates /run/vigil for vigil.service; without systemd create it: install -d -o vigil -g vigil -m 0750 %s)", d, d))
		} else if err != nil {
			errs = append(errs, l.errAt("api.unix_socket", "directory %s: %v", d, pathErr(err)))
		} else if !st.IsDir() {
			errs = append(errs, l.errAt("api.unix_socket", "%s is not a directory", d))
		}
	}
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

// checkAPITLS loads api.tls as the API server does when it starts to
// listen: the certificate with its key, and the client CA bundle.
func (l *Loaded) checkAPITLS() Errors {
	c := l.API.TLS
	var errs Errors
	if c.CertFile != "" && c.KeyFile != "" {
		if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
			errs = append(errs, l.errAt("api.tls.cert_file", "cannot load the certificate %s and key %s: %v", c.CertFile, c.KeyFile, err))
		}
	}
	if f := c.ClientCAFile; f != "" {
		b, err := os.ReadFile(f)
		switch {
		case err != nil:
			errs = append(errs, l.errAt("api.tls.client_ca_file", "cannot read %s: %v", f, pathErr(err)))
		case !x509.NewCertPool().AppendCertsFromPEM(b):
			errs = append(errs, l.errAt("api.tls.client_ca_file", "%s holds no PEM certificates", f))
		}
	}
	return errs
}

// checkDataDir checks data_dir as far as it exists: the path, or the
// nearest path above it that exists, must be a directory. Whether it is
// writable depends on the user the agent will run as, which validate does
// not know; the agent names the owner and the fix when it is not.
func (l *Loaded) checkDataDir() *Error {
	if l.DataDir == "" {
		return nil
	}
	p, err := filepath.Abs(l.DataDir)
	if err != nil {
		return nil
	}
	for {
		st, err := os.Stat(p)
		switch {
		case err == nil && !st.IsDir():
			return l.errAt("data_dir", "%s is not a directory", p)
		case err == nil:
			return nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return nil
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// pathErr drops the operation and path that a *fs.PathError repeats.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
