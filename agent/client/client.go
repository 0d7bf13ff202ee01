// Package client is a small Go client for the agent's HTTP API, used by the
// vigil CLI. It speaks to a TCP address (http or https) or a unix socket and
// turns API errors into *APIError.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Environment variables the CLI reads, Consul-style.
const (
	EnvAddr      = "VIGIL_HTTP_ADDR"
	EnvToken     = "VIGIL_TOKEN"
	EnvTokenFile = "VIGIL_TOKEN_FILE"
	EnvCAFile    = "VIGIL_CACERT"
	// EnvClientCert and EnvClientKey name the certificate and key the CLI
	// presents to an agent that requires one (api.tls.client_ca_file).
	EnvClientCert = "VIGIL_CLIENT_CERT"
	EnvClientKey  = "VIGIL_CLIENT_KEY"
)

// DefaultAddr is where the CLI looks for the agent.
const DefaultAddr = "127.0.0.1:7070"

// Config says how to reach the agent.
type Config struct {
	// Addr is host:port, http://host:port, https://host:port or
	// unix:///path/to/socket.
	Addr string
	// Token is sent as a bearer token when not empty.
	Token string
	// CAFile verifies an https agent signed by a private CA.
	CAFile string
	// ClientCert and ClientKey are PEM files of a certificate and its key,
	// presented to an https agent that requires client certificates
	// (mutual TLS). Both or neither.
	ClientCert string
	ClientKey  string
	Timeout    time.Duration
}

// Client talks to one agent.
type Client struct {
	base       string
	addr       string // the address as given, for messages (base is http://vigil for a unix socket)
	token      string
	clientCert string // the -client-cert file, for hints
	// certAsked is set when an agent asked for a client certificate
	// during a handshake, so that a refused handshake can say why.
	certAsked *atomic.Bool
	tls       *tls.Config // for a second handshake that reads a lost refusal
	http      *http.Client
}

// Addr is the agent's address as given, for messages.
func (c *Client) Addr() string { return c.addr }

// APIError is an error the agent answered with.
type APIError struct {
	Status  int
	Code    string
	Message string
	// Body is the answer as it came, for errors that carry more than the
	// error object (keyring_incomplete holds the partial result).
	Body []byte
}

func (e *APIError) Error() string {
	return fmt.Sprintf("agent answered %d %s: %s", e.Status, e.Code, e.Message)
}

// New builds a client.
func New(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	base := cfg.Addr
	switch {
	case strings.HasPrefix(base, "unix://"):
		path := strings.TrimPrefix(base, "unix://")
		if path == "" {
			return nil, fmt.Errorf("agent address %q: no socket path (want unix:///path/to/socket)", cfg.Addr)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		base = "http://vigil"
	case strings.HasPrefix(base, "http://"), strings.HasPrefix(base, "https://"):
	case strings.Contains(base, "://"):
		scheme, _, _ := strings.Cut(base, "://")
		return nil, fmt.Errorf("agent address %q: unknown scheme %q (want host:port, http://host:port, https://host:port or unix:///path)", cfg.Addr, scheme)
	default:
		if _, _, err := net.SplitHostPort(base); err != nil {
			return nil, fmt.Errorf("agent address %q: want host:port (such as %s), http(s)://host:port or unix:///path", cfg.Addr, DefaultAddr)
		}
		base = "http://" + base
	}
	certAsked := new(atomic.Bool)
	tc, err := tlsConfig(cfg, certAsked)
	if err != nil {
		return nil, err
	}
	tr.TLSClientConfig = tc
	return &Client{
		base:       strings.TrimRight(base, "/"),
		addr:       strings.TrimRight(cfg.Addr, "/"),
		token:      cfg.Token,
		clientCert: cfg.ClientCert,
		certAsked:  certAsked,
		tls:        tc,
		http:       &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}, nil
}

// tlsConfig builds the client side of TLS from the CA file (the system's
// roots when empty) and the client certificate. The files are read here, so
// that a missing file or a certificate that does not match its key is an
// error before anything is sent. asked is set when an agent asks for a
// client certificate.
func tlsConfig(cfg Config, asked *atomic.Bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificates", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case cfg.ClientCert != "" && cfg.ClientKey == "":
		return nil, fmt.Errorf("client certificate %s given without its key: set -client-key or %s as well", cfg.ClientCert, EnvClientKey)
	case cfg.ClientCert == "" && cfg.ClientKey != "":
		return nil, fmt.Errorf("client key %s given without its certificate: set -client-cert or %s as well", cfg.ClientKey, EnvClientCert)
	case cfg.ClientCert != "":
		certPEM, err := os.ReadFile(cfg.ClientCert)
		if err != nil {
			return nil, fmt.Errorf("read client certificate: %w", err)
		}
		keyPEM, err := os.ReadFile(cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("read client key: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s and key %s: %w", cfg.ClientCert, cfg.ClientKey, err)
		}
		// Sent whichever CAs the agent names as acceptable (crypto/tls
		// would otherwise send nothing), so that the agent checks it and
		// says why it refuses it.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked.Store(true)
			return &cert, nil
		}
		return tc, nil
	}
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked.Store(true)
		return &tls.Certificate{}, nil // none to send
	}
	return tc, nil
}

// Get fetches path and decodes the JSON answer into out. A non-2xx answer
// is returned as *APIError, except when okStatus lists its code: then the
// body is decoded into out as well (health answers 503 with a body).
func (c *Client) Get(ctx context.Context, path string, out any, okStatus ...int) (int, error) {
	return c.Do(ctx, http.MethodGet, path, nil, out, okStatus...)
}

// Do sends a request with in (when not nil) encoded as its JSON body and
// decodes the JSON answer into out, with Get's handling of errors.
func (c *Client) Do(ctx context.Context, method, path string, in, out any, okStatus ...int) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var certErr *tls.CertificateVerificationError
		if errors.As(err, &certErr) {
			return 0, fmt.Errorf("cannot reach the agent at %s: %w (its certificate is not trusted: give the CA that signed it with -ca-file or %s)", c.addr, err, EnvCAFile)
		}
		if errors.Is(err, http.ErrSchemeMismatch) {
			return 0, fmt.Errorf("cannot reach the agent at %s: it answers plain HTTP, not TLS: give the address with http:// or none (-http-addr or %s)", c.addr, EnvAddr)
		}
		if hint := c.clientCertHint(ctx, err); hint != "" {
			return 0, fmt.Errorf("cannot reach the agent at %s: %w (%s)", c.addr, err, hint)
		}
		return 0, fmt.Errorf("cannot reach the agent at %s: %w (is it running? set -http-addr or %s)", c.addr, err, EnvAddr)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("read answer: %w", err)
	}
	ok := resp.StatusCode/100 == 2
	for _, s := range okStatus {
		ok = ok || resp.StatusCode == s
	}
	if !ok {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		apiErr := &APIError{Status: resp.StatusCode, Code: "unknown", Message: strings.TrimSpace(string(answer)), Body: answer}
		switch {
		case json.Unmarshal(answer, &e) == nil && e.Error.Code != "":
			apiErr.Code, apiErr.Message = e.Error.Code, e.Error.Message
		case resp.StatusCode == http.StatusBadRequest && strings.HasPrefix(c.base, "http://") &&
			strings.Contains(apiErr.Message, "HTTP request to an HTTPS server"):
			apiErr.Message += fmt.Sprintf(" (the agent serves TLS: give the address as https://%s)", strings.TrimPrefix(c.base, "http://"))
		default:
			// Not a Vigil error body: another server listens there, or
			// a proxy answered.
			const maxShown = 200
			if len(apiErr.Message) > maxShown {
				apiErr.Message = strings.ToValidUTF8(apiErr.Message[:maxShown], "") + "..."
			}
			if apiErr.Message == "" {
				apiErr.Message = "(empty body)"
			}
			apiErr.Message += fmt.Sprintf(" (not a Vigil API error: is %s a Vigil agent?)", c.addr)
		}
		if resp.StatusCode == http.StatusUnauthorized && c.token == "" {
			apiErr.Message += fmt.Sprintf(" (no token was given: set %s or %s, or pass -token-file)", EnvToken, EnvTokenFile)
		}
		return resp.StatusCode, apiErr
	}
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode answer from %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

// clientCertHint explains a handshake the agent refused after asking for a
// client certificate (api.tls.client_ca_file): TLS 1.3 agents then send
// "certificate required" when none was presented, TLS 1.2 agents
// "handshake failure", and both "unknown certificate authority", "bad
// certificate" or "expired certificate" for one they do not accept.
//
// Under TLS 1.3 the refusal comes after the client's side of the handshake
// has finished, while the request is already on its way, so the alert can
// be lost: the transport may close the connection on reading it and report
// only "use of closed network connection", or the agent's close may reset
// the connection before the alert is read. When a connection ends that way
// after the agent asked for a certificate, a second handshake that sends
// no request (so the agent's close cannot overtake its alert) reads the
// refusal; should that fail too, the hint says what the refusal most
// likely was.
func (c *Client) clientCertHint(ctx context.Context, err error) string {
	if !c.certAsked.Load() {
		return ""
	}
	alert, again := remoteAlert(err), ""
	if alert == "" {
		if !droppedConn(err) {
			return ""
		}
		var accepted bool
		if alert, accepted = c.readRefusal(ctx); accepted {
			return "" // the certificate is not the problem
		}
		if alert != "" {
			again = fmt.Sprintf(" (a second handshake, sending no request, was answered %q)", alert)
		}
	}
	give := fmt.Sprintf("give one with -client-cert and -client-key, or %s and %s", EnvClientCert, EnvClientKey)
	switch {
	case c.clientCert == "" && alert != "":
		return "the agent requires a client certificate (api.tls.client_ca_file is set): " + give
	case c.clientCert == "":
		return "the agent asked for a client certificate and closed the connection when none was sent, so it most likely requires one (api.tls.client_ca_file is set): " + give
	}
	const rule = "it must be signed by a CA in the agent's api.tls.client_ca_file, be valid now, and allow client authentication"
	if alert != "" {
		return fmt.Sprintf("the agent refused the client certificate %s%s: %s", c.clientCert, again, rule)
	}
	return fmt.Sprintf("the agent closed the connection after it asked for a client certificate and was sent %s, so it most likely refused the certificate: %s", c.clientCert, rule)
}

// remoteAlert returns the TLS alert the peer sent ("remote error: tls:
// bad certificate") when err carries one, else "".
func remoteAlert(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if i := strings.Index(msg, "remote error: tls: "); i >= 0 {
		return msg[i:]
	}
	return ""
}

// readRefusal shakes hands with the agent once more, sends nothing, and
// returns the alert it answers with: a refused client certificate (TLS 1.2
// refuses during the handshake, TLS 1.3 right after it). accepted is true
// when the handshake finished and no alert came within two seconds: the
// agent took the certificate, or took none.
func (c *Client) readRefusal(ctx context.Context) (alert string, accepted bool) {
	u, err := url.Parse(c.base)
	if err != nil || u.Scheme != "https" {
		return "", false
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "443")
	}
	probe, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: c.tls}
	conn, err := d.DialContext(probe, "tcp", addr)
	if err != nil {
		return remoteAlert(err), false
	}
	defer conn.Close()
	stop := context.AfterFunc(probe, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	_, err = conn.Read(make([]byte, 1))
	if alert = remoteAlert(err); alert != "" {
		return alert, false
	}
	var ne net.Error
	return "", errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil
}

// droppedConn reports whether err is a connection that ended without an
// answer (closed, reset or cut short) rather than a timeout.
func droppedConn(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	for _, target := range []error{net.ErrClosed, syscall.ECONNRESET, syscall.EPIPE, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// FromEnv fills a Config from the VIGIL_* environment variables, reading
// the token from VIGIL_TOKEN_FILE when VIGIL_TOKEN is unset.
func FromEnv() (Config, error) {
	cfg := Config{
		Addr:       os.Getenv(EnvAddr),
		Token:      os.Getenv(EnvToken),
		CAFile:     os.Getenv(EnvCAFile),
		ClientCert: os.Getenv(EnvClientCert),
		ClientKey:  os.Getenv(EnvClientKey),
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Token == "" {
		if f := os.Getenv(EnvTokenFile); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return cfg, fmt.Errorf("%s: %w", EnvTokenFile, err)
			}
			cfg.Token = strings.TrimSpace(string(b))
			if cfg.Token == "" {
				return cfg, fmt.Errorf("%s: %s is empty", EnvTokenFile, f)
			}
		}
	}
	return cfg, nil
}
