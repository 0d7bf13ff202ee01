package forward

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/units"
)

// Config is the `forward:` section of the agent configuration. With no
// remote_write entries (the default) nothing is forwarded.
type Config struct {
	RemoteWrite []RemoteWrite `yaml:"remote_write" json:"remote_write"`
	// ExternalLabels are added to every series sent (unless the series has
	// a label of that name already), as Prometheus' own external_labels,
	// so that the series of the agents of a fleet that write to one
	// receiver stay apart. Without it they would be one series, and the
	// receiver refuses the interleaved samples as out of order. The agent
	// sets {node: <node_name>} when the key is absent; an explicit empty
	// map adds none.
	ExternalLabels map[string]string `yaml:"external_labels" json:"external_labels,omitempty"`
}

// RemoteWrite is one upstream that receives every sample of the store by
// Prometheus remote_write 1.0. Zero numeric and duration fields take the
// defaults of DefaultRemoteWrite.
type RemoteWrite struct {
	// Name identifies the upstream in metrics, logs and the status, and
	// names its persisted cursor (forward/<name>). Renaming an upstream
	// starts it again from the oldest sample in the store.
	Name string `yaml:"name" json:"name"`
	// URL is the receiver's endpoint, e.g.
	// http://prometheus:9090/api/v1/write. Credentials in the URL are
	// refused: use bearer_token_file or basic_auth.
	URL string `yaml:"url" json:"url"`
	// BearerTokenFile holds a token sent as "Authorization: Bearer ...".
	// The file is read at start (a missing file is an error) and again for
	// every request, so a rotated token takes effect without a restart.
	BearerTokenFile string `yaml:"bearer_token_file" json:"bearer_token_file,omitempty"`
	// BasicAuth sends HTTP basic authentication.
	BasicAuth BasicAuth `yaml:"basic_auth" json:"basic_auth"`
	// TLS configures the client side of TLS for https URLs.
	TLS TLSConfig `yaml:"tls" json:"tls"`
	// Headers are extra HTTP headers sent with every request. The protocol
	// headers (Content-Type, Content-Encoding, User-Agent,
	// X-Prometheus-Remote-Write-Version) and Authorization cannot be set
	// here.
	Headers map[string]string `yaml:"headers" json:"headers,omitempty"`

	// BatchMaxSamples bounds the samples of one request. Default 2000.
	BatchMaxSamples int `yaml:"batch_max_samples" json:"batch_max_samples"`
	// BatchMaxBytes bounds the uncompressed protobuf size of one request
	// (the receiver decompresses it into memory). Default 4MiB.
	BatchMaxBytes units.Bytes `yaml:"batch_max_bytes" json:"batch_max_bytes"`
	// MinBackoff and MaxBackoff bound the exponential backoff (full
	// jitter) between retries of a failed request. Defaults 500ms and 30s.
	MinBackoff time.Duration `yaml:"min_backoff" json:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff" json:"max_backoff"`
	// Timeout bounds one request, from connecting to reading the answer.
	// Default 30s.
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// BasicAuth is HTTP basic authentication; the password only from a file.
type BasicAuth struct {
	Username string `yaml:"username" json:"username,omitempty"`
	// PasswordFile is read at start and for every request, like
	// bearer_token_file. Surrounding whitespace is trimmed.
	PasswordFile string `yaml:"password_file" json:"password_file,omitempty"`
}

func (b BasicAuth) set() bool { return b.Username != "" || b.PasswordFile != "" }

// TLSConfig is the client side of TLS. Files are read when the forwarder
// is created.
type TLSConfig struct {
	// CAFile is a PEM bundle of CAs trusted for the server's certificate,
	// instead of the system roots.
	CAFile string `yaml:"ca_file" json:"ca_file,omitempty"`
	// CertFile and KeyFile are a PEM client certificate and key (mutual TLS).
	CertFile string `yaml:"cert_file" json:"cert_file,omitempty"`
	KeyFile  string `yaml:"key_file" json:"key_file,omitempty"`
	// ServerName overrides the name checked against the server certificate.
	ServerName string `yaml:"server_name" json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify" json:"insecure_skip_verify,omitempty"`
}

// DefaultConfig returns the default: no upstreams, nothing forwarded.
func DefaultConfig() Config { return Config{} }

// DefaultRemoteWrite returns the defaults that zero fields of a
// RemoteWrite take.
func DefaultRemoteWrite() RemoteWrite {
	return RemoteWrite{
		BatchMaxSamples: 2000,
		BatchMaxBytes:   4 << 20,
		MinBackoff:      500 * time.Millisecond,
		MaxBackoff:      30 * time.Second,
		Timeout:         30 * time.Second,
	}
}

func (r RemoteWrite) withDefaults() RemoteWrite {
	d := DefaultRemoteWrite()
	if r.BatchMaxSamples == 0 {
		r.BatchMaxSamples = d.BatchMaxSamples
	}
	if r.BatchMaxBytes == 0 {
		r.BatchMaxBytes = d.BatchMaxBytes
	}
	if r.MinBackoff == 0 {
		r.MinBackoff = d.MinBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = d.MaxBackoff
	}
	if r.Timeout == 0 {
		r.Timeout = d.Timeout
	}
	return r
}

// CheckFiles reads every file the upstreams name (secrets and TLS), as New
// does at start, and reports each that cannot be read, named as Validate
// names fields. Validate does not open files, so that a SIGHUP is not
// refused over a token file being rotated; `vigil config validate` runs
// this too, so that it does not call valid what the agent would refuse.
func (c Config) CheckFiles() error {
	var errs []error
	for i, r := range c.RemoteWrite {
		for _, f := range []struct{ key, path string }{
			{"bearer_token_file", r.BearerTokenFile},
			{"basic_auth.password_file", r.BasicAuth.PasswordFile},
			{"tls.ca_file", r.TLS.CAFile},
			{"tls.cert_file", r.TLS.CertFile},
			{"tls.key_file", r.TLS.KeyFile},
		} {
			if f.path == "" {
				continue
			}
			if _, err := os.ReadFile(f.path); err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				errs = append(errs, fmt.Errorf("forward.remote_write[%d].%s: cannot read %s: %v", i, f.key, f.path, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Limits checked by Validate.
const (
	maxBatchSamples  = 100_000
	minBatchBytes    = 64 << 10 // a single sample may carry up to ~8KiB of labels
	maxBatchBytes    = 64 << 20
	maxBackoffLimit  = time.Hour
	maxTimeoutLimit  = 10 * time.Minute
	minBackoffFloor  = time.Millisecond
	cursorNamePrefix = "forward/"
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// reservedHeaders are set by the forwarder itself.
var reservedHeaders = map[string]bool{
	"Content-Type":                      true,
	"Content-Encoding":                  true,
	"Content-Length":                    true,
	"User-Agent":                        true,
	"X-Prometheus-Remote-Write-Version": true,
	"Authorization":                     true,
	"Host":                              true,
}

// Validate reports every invalid field, each on its own line and named as
// in the configuration file (forward.remote_write[0].url: ...). Zero
// numeric and duration fields are valid: they take their defaults. Files
// are not opened here; New reads them.
func (c Config) Validate() error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(c.ExternalLabels)) {
		switch {
		case !validLabelName(k) || strings.HasPrefix(k, "__"):
			errs = append(errs, fmt.Errorf("forward.external_labels: %q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)", k))
		case c.ExternalLabels[k] == "":
			errs = append(errs, fmt.Errorf("forward.external_labels.%s: must not be empty", k))
		}
	}
	names := map[string]int{}
	for i, r := range c.RemoteWrite {
		bad := func(field, format string, args ...any) {
			errs = append(errs, fmt.Errorf("forward.remote_write[%d].%s: %s", i, field, fmt.Sprintf(format, args...)))
		}
		if !nameRE.MatchString(r.Name) {
			bad("name", "must be 1 to 64 letters, digits, '.', '_' or '-', got %q", r.Name)
		} else if j, dup := names[r.Name]; dup {
			bad("name", "%q is also the name of forward.remote_write[%d]", r.Name, j)
		} else {
			names[r.Name] = i
		}
		u, err := url.Parse(r.URL)
		switch {
		case r.URL == "":
			bad("url", "required")
		case err != nil:
			bad("url", "%v", err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("url", "scheme must be http or https, got %q", u.Scheme)
		case u.Host == "":
			bad("url", "no host in %q", r.URL)
		case u.User != nil:
			bad("url", "must not carry credentials; use basic_auth.password_file or bearer_token_file")
		}
		if r.BearerTokenFile != "" && r.BasicAuth.set() {
			bad("bearer_token_file", "set either bearer_token_file or basic_auth, not both")
		}
		if r.BasicAuth.set() {
			if r.BasicAuth.Username == "" {
				bad("basic_auth.username", "required with basic_auth")
			}
			if r.BasicAuth.PasswordFile == "" {
				bad("basic_auth.password_file", "required with basic_auth (passwords are read from files only)")
			}
		}
		if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
			bad("tls", "cert_file and key_file must be set together")
		}
		if u != nil && u.Scheme == "http" && (r.TLS.CAFile != "" || r.TLS.CertFile != "" || r.TLS.InsecureSkipVerify) {
			bad("tls", "set for an http:// url; use https://")
		}
		for k := range r.Headers {
			ck := http.CanonicalHeaderKey(k)
			switch {
			case k == "" || strings.ContainsAny(k, " \t\r\n:"):
				bad("headers", "invalid header name %q", k)
			case reservedHeaders[ck]:
				bad("headers", "%s is set by the forwarder and cannot be overridden", ck)
			case strings.ContainsAny(r.Headers[k], "\r\n"):
				bad("headers", "value of %s contains a line break", ck)
			}
		}
		if r.BatchMaxSamples < 0 || r.BatchMaxSamples > maxBatchSamples {
			bad("batch_max_samples", "must be between 1 and %d, got %d", maxBatchSamples, r.BatchMaxSamples)
		}
		if r.BatchMaxBytes < 0 || (r.BatchMaxBytes != 0 && (r.BatchMaxBytes < minBatchBytes || r.BatchMaxBytes > maxBatchBytes)) {
			bad("batch_max_bytes", "must be between %s and %s, got %s", units.Bytes(minBatchBytes), units.Bytes(maxBatchBytes), r.BatchMaxBytes)
		}
		if r.MinBackoff < 0 || (r.MinBackoff != 0 && r.MinBackoff < minBackoffFloor) {
			bad("min_backoff", "must be at least %s, got %s", minBackoffFloor, r.MinBackoff)
		}
		if r.MaxBackoff < 0 || r.MaxBackoff > maxBackoffLimit {
			bad("max_backoff", "must be between %s and %s, got %s", minBackoffFloor, maxBackoffLimit, r.MaxBackoff)
		}
		if d := r.withDefaults(); r.MinBackoff >= 0 && r.MaxBackoff >= 0 && d.MinBackoff > d.MaxBackoff {
			bad("min_backoff", "%s is more than max_backoff %s", d.MinBackoff, d.MaxBackoff)
		}
		if r.Timeout < 0 || r.Timeout > maxTimeoutLimit {
			bad("timeout", "must be between 1ms and %s, got %s", maxTimeoutLimit, r.Timeout)
		}
	}
	return errors.Join(errs...)
}
