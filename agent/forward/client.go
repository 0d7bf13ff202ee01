package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/sdk/providerhttp"
)

// maxRetryAfter caps a Retry-After the receiver asks for. A Retry-After
// above max_backoff is honoured (the receiver knows its own overload
// better than our defaults do) up to this bound, so a misconfigured
// receiver cannot park the forwarder for hours. When max_backoff is larger
// it is the cap instead.
const maxRetryAfter = 5 * time.Minute

// outcome classifies one request.
type outcome int

const (
	outcomeSent  outcome = iota // 2xx: the batch is accepted
	outcomeDrop                 // other 4xx: the receiver will never take this batch
	outcomeRetry                // 5xx, 429, network error, timeout
)

type result struct {
	outcome    outcome
	status     int           // HTTP status, 0 for a transport error
	reason     string        // metric label for failures and retries
	retryAfter time.Duration // from Retry-After, 0 when absent
	err        error         // what went wrong, for logs and the status
}

// client sends encoded requests to one upstream.
type client struct {
	url       string
	userAgent string
	headers   map[string]string
	timeout   time.Duration
	http      *http.Client

	token    *secretFile // bearer token, nil when not configured
	username string
	password *secretFile // basic auth password, nil when not configured
}

// secretFile is a secret read from a file at start and again before each
// use; when a re-read fails the last good value is kept (and the failure
// reported through the status).
type secretFile struct {
	path string
	mu   sync.Mutex
	val  string
}

func newSecretFile(path string) (*secretFile, error) {
	s := &secretFile{path: path}
	if _, err := s.get(); err != nil {
		return nil, err
	}
	return s, nil
}

// get re-reads the file. On error it returns the last good value and the
// error.
func (s *secretFile) get() (string, error) {
	b, err := os.ReadFile(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return s.val, fmt.Errorf("read secret file %s: %w", s.path, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return s.val, fmt.Errorf("secret file %s is empty", s.path)
	}
	s.val = v
	return v, nil
}

func newClient(r RemoteWrite, userAgent string) (*client, error) {
	c := &client{
		url:       r.URL,
		userAgent: userAgent,
		headers:   r.Headers,
		timeout:   r.Timeout,
		username:  r.BasicAuth.Username,
	}
	var err error
	if r.BearerTokenFile != "" {
		if c.token, err = newSecretFile(r.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("bearer_token_file: %w", err)
		}
	}
	if r.BasicAuth.PasswordFile != "" {
		if c.password, err = newSecretFile(r.BasicAuth.PasswordFile); err != nil {
			return nil, fmt.Errorf("basic_auth.password_file: %w", err)
		}
	}
	tlsCfg, err := tlsConfig(r.TLS)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   min(r.Timeout, 30*time.Second),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(r.Timeout, 10*time.Second),
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: r.Timeout,
		ForceAttemptHTTP2:     true,
	}
	c.http = &http.Client{
		Transport: tr,
		// A remote_write endpoint that redirects is misconfigured; a POST
		// body cannot be replayed safely by a generic redirect anyway.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

func tlsConfig(t TLSConfig) (*tls.Config, error) {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as for tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// post sends one compressed WriteRequest and classifies the answer.
// secretErr reports a secret file that could not be re-read (the last
// good value was used).
func (c *client) post(ctx context.Context, body []byte, now time.Time) (res result, secretErr error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return result{outcome: outcomeDrop, reason: "http_other", err: err}, nil
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
	var password string // quoted back by a receiver, it is redacted
	if c.token != nil {
		tok, err := c.token.get()
		secretErr = err
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if c.password != nil {
		pw, err := c.password.get()
		secretErr = err
		req.SetBasicAuth(c.username, pw)
		password = pw
	}

	resp, err := c.http.Do(req)
	if err != nil {
		reason := "network"
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			reason = "timeout"
		}
		return result{outcome: outcomeRetry, reason: reason, err: redactURL(err)}, secretErr
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	res = result{status: resp.StatusCode}
	code := resp.StatusCode
	switch {
	case code/100 == 2:
		res.outcome = outcomeSent
		return res, secretErr
	case code == http.StatusTooManyRequests:
		res.outcome, res.reason = outcomeRetry, "http_429"
	case code/100 == 5:
		res.outcome, res.reason = outcomeRetry, "http_5xx"
	case code/100 == 4:
		res.outcome, res.reason = outcomeDrop, "http_4xx"
	default: // 1xx after the final answer, 3xx (redirects are not followed)
		res.outcome, res.reason = outcomeDrop, "http_other"
	}
	// A receiver (or a proxy) that quotes the credential it refused would
	// otherwise put it in the log and the forward status, which a read
	// token sees: the headers' credentials, and the basic-auth password
	// as typed.
	msg = providerhttp.RedactCredentials(msg, req.Header)
	if len(password) >= 4 {
		msg = bytes.ReplaceAll(msg, []byte(password), []byte("[redacted]"))
	}
	res.err = fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	if res.outcome == outcomeRetry {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), now)
	}
	return res, secretErr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// redactURL drops the URL from a *url.Error message: it is in the status
// already and query strings sometimes carry tokens.
func redactURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. It returns 0 when absent, unparsable or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxBackoffLimit/time.Second) {
			return maxBackoffLimit
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
