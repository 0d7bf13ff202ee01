// Package api is the agent's local HTTP API server: routing, bearer-token
// auth with read, write and llm scopes, body limits, timeouts, JSON errors,
// request logs and metrics, and panic recovery. Subsystems register their
// handlers with Handle; the server guarantees every response to a client is
// either the handler's or a JSON error in the shape
// {"error":{"code":"...","message":"..."}}.
//
// The server listens on TCP (optionally TLS) and, when configured, on a unix
// socket. Which addresses are safe is decided by the config package: with no
// tokens the TCP listener must be loopback unless explicitly allowed.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/config"
)

// Scope is what a route requires of the caller's token.
//
// A token's scope (config: read, write or llm) grants some of these: read
// tokens Read and LLMRead; write tokens all four; llm tokens (for LLM
// applications) LLM and LLMRead only, so they can call the gateway under
// /openai/v1 and read their own spend but nothing else of the agent.
type Scope int

const (
	// Read routes need a read or write token.
	Read Scope = iota + 1
	// Write routes need a write token.
	Write
	// LLM routes (the gateway's calls, which spend upstream money) need
	// an llm or write token.
	LLM
	// LLMRead routes (the gateway's model list, LLM spend) take any token.
	LLMRead
)

func (s Scope) String() string {
	switch s {
	case Write:
		return config.ScopeWrite
	case LLM:
		return "llm or write"
	case LLMRead:
		return "read, write or llm"
	}
	return config.ScopeRead
}

// grants is the set of route scopes a token scope allows, one bit each.
type grants uint8

func (g grants) allows(s Scope) bool { return g&(1<<s) != 0 }

func grantsOf(scope string) grants {
	switch scope {
	case config.ScopeWrite:
		return 1<<Read | 1<<Write | 1<<LLM | 1<<LLMRead
	case config.ScopeLLM:
		return 1<<LLM | 1<<LLMRead
	}
	return 1<<Read | 1<<LLMRead
}

// settings is the part of the configuration that SIGHUP can change.
type settings struct {
	tokens    []token
	accessLog bool
}

type token struct {
	name   string
	scope  string // as configured: read, write or llm
	grants grants
	hash   [sha256.Size]byte
}

// Server is the HTTP API server.
type Server struct {
	cfg     config.API
	logger  *slog.Logger
	mux     *http.ServeMux
	current atomic.Pointer[settings]
	// cert is the TLS certificate served, swapped by ReloadCertificate so
	// that a renewed certificate needs no restart; nil without TLS.
	cert atomic.Pointer[tls.Certificate]
	// clientCAs verifies client certificates (api.tls.client_ca_file),
	// swapped by ReloadClientCA; clientCAPEM is the file as last read.
	clientCAs   atomic.Pointer[x509.CertPool]
	clientCAPEM []byte
	// tlsFiles are the api.tls files in use: cfg.TLS at start, then what
	// the reloads took. Read and written by Listen and the reload
	// goroutine only.
	tlsFiles config.TLS

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	// shapes write errors for routes under a path prefix in another
	// shape (OpenAI's under /openai/); set before Serve.
	shapes []errorShape
	// requestIDs give requests under a path prefix an x-request-id
	// response header; set before Serve.
	requestIDs []requestIDs
	// ownDeadline holds the route patterns whose handlers bound their own
	// time (api.request_timeout does not apply); set before Serve.
	ownDeadline map[string]bool
	// tooLarge holds, by route pattern, what to call when the server
	// refuses a body on its Content-Length; set before Serve.
	tooLarge map[string]func()

	srv       *http.Server
	listeners []net.Listener
	errc      chan error
	serveWG   sync.WaitGroup
}

// New builds a server from cfg. Metrics about requests are registered with
// reg when it is not nil.
func New(cfg config.API, logger *slog.Logger, reg prometheus.Registerer) *Server {
	s := &Server{
		cfg:    cfg,
		logger: logger,
		mux:    http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_http_requests_total",
			Help: "HTTP requests served by the agent API, by route, method and status code.",
		}, []string{"handler", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vigil_http_request_duration_seconds",
			Help:    "Time to serve an agent API request, by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"handler"}),
		errc: make(chan error, 2),
	}
	if reg != nil {
		reg.MustRegister(s.requests, s.duration)
	}
	s.Reload(cfg)
	return s
}

// Reload applies the reloadable settings: tokens and the access log.
func (s *Server) Reload(cfg config.API) {
	st := &settings{accessLog: cfg.AccessLog}
	for _, t := range cfg.Tokens {
		st.tokens = append(st.tokens, token{name: t.Name, scope: t.Scope, grants: grantsOf(t.Scope), hash: sha256.Sum256([]byte(t.Secret))})
	}
	s.current.Store(st)
}

// AuthEnabled reports whether requests need a token.
func (s *Server) AuthEnabled() bool { return len(s.current.Load().tokens) > 0 }

// Handle registers h for pattern (net/http ServeMux syntax, such as
// "GET /v1/status") behind a token check for scope.
func (s *Server) Handle(pattern string, scope Scope, h http.Handler) {
	s.mux.Handle(pattern, s.authorize(scope, h))
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, scope Scope, h func(http.ResponseWriter, *http.Request)) {
	s.Handle(pattern, scope, http.HandlerFunc(h))
}

type errorShape struct {
	prefix string
	write  func(http.ResponseWriter, *Error)
}

// ErrorShape makes the server write its own errors (auth, body limit,
// unknown route, panic) for paths under prefix with write instead of in
// Vigil's shape: the OpenAI-compatible endpoints answer like OpenAI, so
// that its SDKs raise the right exception. Call it before Serve.
func (s *Server) ErrorShape(prefix string, write func(http.ResponseWriter, *Error)) {
	s.shapes = append(s.shapes, errorShape{prefix: prefix, write: write})
}

type requestIDs struct {
	prefix string
	gen    func() string
}

// RequestIDHeader is the response header that carries a request's id,
// in Go's canonical form (x-request-id on the wire is the same header).
const RequestIDHeader = "X-Request-Id"

// RequestIDs gives every request for a path under prefix an x-request-id
// response header made by gen before any handler runs, so that the
// server's own errors (auth, body limit, unknown route) carry one too;
// the access log line names it as request_id. Call it before Serve.
func (s *Server) RequestIDs(prefix string, gen func() string) {
	s.requestIDs = append(s.requestIDs, requestIDs{prefix: prefix, gen: gen})
}

// OwnDeadline exempts the routes registered under these patterns from
// api.request_timeout: their handlers apply a deadline of their own (the
// gateway's gateway.request_timeout, which has to cover a whole stream).
// Call it before Serve.
func (s *Server) OwnDeadline(patterns ...string) {
	if s.ownDeadline == nil {
		s.ownDeadline = map[string]bool{}
	}
	for _, p := range patterns {
		s.ownDeadline[p] = true
	}
}

// OnTooLarge makes the server call count when it refuses a request to a
// route registered under one of these patterns because its Content-Length
// is over api.max_body_bytes. That happens before the route's token check
// and handler run, so a handler that counts the 413s it finds while
// reading the body (observations) sees these through count. Call it before
// Serve.
func (s *Server) OnTooLarge(count func(), patterns ...string) {
	if s.tooLarge == nil {
		s.tooLarge = map[string]func(){}
	}
	for _, p := range patterns {
		s.tooLarge[p] = count
	}
}

// writeErr writes e in the shape that r's path calls for.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, e *Error) {
	for _, sh := range s.shapes {
		if strings.HasPrefix(r.URL.Path, sh.prefix) {
			sh.write(w, e)
			return
		}
	}
	WriteError(w, e)
}

type ctxKey int

const (
	tokenNameKey ctxKey = iota
	tokenScopeKey
)

// TokenName returns the name of the token that authenticated r, or "".
func TokenName(r *http.Request) string {
	name, _ := r.Context().Value(tokenNameKey).(string)
	return name
}

// TokenScope returns the configured scope (read, write or llm) of the
// token that authenticated r, or "" when the API has no tokens.
func TokenScope(r *http.Request) string {
	scope, _ := r.Context().Value(tokenScopeKey).(string)
	return scope
}

func (s *Server) authorize(scope Scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens := s.current.Load().tokens
		if len(tokens) == 0 {
			h.ServeHTTP(w, r)
			return
		}
		match := s.authenticate(w, r, tokens)
		if match == nil {
			return
		}
		if !match.grants.allows(scope) {
			s.writeErr(w, r, Errorf(http.StatusForbidden, CodeForbidden, "token %q has scope %s; %s %s needs scope %s", match.name, match.scope, r.Method, r.URL.Path, scope))
			return
		}
		if rec, ok := w.(*recorder); ok {
			rec.token = match.name
		}
		ctx := context.WithValue(r.Context(), tokenNameKey, match.name)
		h.ServeHTTP(w, r.WithContext(context.WithValue(ctx, tokenScopeKey, match.scope)))
	})
}

// authenticate returns the token r carries, or answers 401 and returns
// nil when it carries none of tokens.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, tokens []token) *token {
	secret, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
		s.writeErr(w, r, Errorf(http.StatusUnauthorized, CodeUnauthorized, "this API needs a token: send Authorization: Bearer <token>"))
		return nil
	}
	got := sha256.Sum256([]byte(secret))
	var match *token
	for i := range tokens {
		// Compare every token so timing does not tell which one matched.
		if subtle.ConstantTimeCompare(got[:], tokens[i].hash[:]) == 1 {
			match = &tokens[i]
		}
	}
	if match == nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="invalid_token"`)
		s.writeErr(w, r, Errorf(http.StatusUnauthorized, CodeUnauthorized, "the token is not valid"))
	}
	return match
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	rest = strings.TrimSpace(rest)
	return rest, rest != ""
}

// ServeHTTP runs the common request pipeline around the routes: panic
// recovery, the refusal of browser requests (refuseBrowser), body limit,
// timeout, metrics and the access log.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	for _, ri := range s.requestIDs {
		if strings.HasPrefix(r.URL.Path, ri.prefix) {
			rec.Header()[RequestIDHeader] = []string{ri.gen()}
			break
		}
	}
	_, pattern := s.mux.Handler(r)
	route := pattern
	if route == "" {
		route = "unmatched"
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.logger.Error("panic in API handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			if !rec.wrote {
				s.writeErr(rec, r, Errorf(http.StatusInternalServerError, CodeInternal, "internal error; see the agent's log"))
			}
		}
		s.observe(r, rec, route, start)
	}()

	if e := s.refuseBrowser(r); e != nil {
		s.writeErr(rec, r, e)
		return
	}
	limit := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > limit {
		if count := s.tooLarge[pattern]; count != nil {
			count()
		}
		s.writeErr(rec, r, Errorf(http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "request body of %d bytes is larger than the limit of %d bytes (api.max_body_bytes)", r.ContentLength, limit))
		return
	}
	r.Body = http.MaxBytesReader(rec, r.Body, limit)
	if !s.ownDeadline[pattern] {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}

	if pattern == "" {
		// Which paths and methods exist is told only to a valid token (of
		// any scope), as a route's own answer would be.
		if tokens := s.current.Load().tokens; len(tokens) > 0 && s.authenticate(rec, r, tokens) == nil {
			return
		}
		s.notFound(rec, r)
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// crossOrigin refuses state-changing requests that a browser sends from
// another origin (Sec-Fetch-Site, or else Origin against Host): a web page
// may send a form or a bodyless POST to 127.0.0.1 without a preflight.
var crossOrigin = http.NewCrossOriginProtection()

// refuseBrowser returns the error that refuses r when a web page, rather
// than a client of the API, sent it: a cross-origin write (CSRF), or, when
// the API has no tokens, a request on a loopback listener addressed to a
// name that is not a loopback one (DNS rebinding: the page's own host
// name, resolved to 127.0.0.1, makes it same-origin with the API).
func (s *Server) refuseBrowser(r *http.Request) *Error {
	if err := crossOrigin.Check(r); err != nil {
		return Errorf(http.StatusForbidden, CodeForbidden, "cross-origin request refused: a web page on another site sent %s %s through a browser (%v); the API takes writes from API clients and same-origin pages only", r.Method, r.URL.Path, err)
	}
	if len(s.current.Load().tokens) > 0 || r.Host == "" {
		return nil
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if !ok || !local.IP.IsLoopback() {
		return nil
	}
	if !loopbackHost(r.Host) {
		return Errorf(http.StatusForbidden, CodeForbidden, "Host %q is not a loopback name: an API without api.tokens on a loopback address answers only requests addressed to 127.0.0.1, [::1] or localhost (this refuses web pages that rebind their own name to 127.0.0.1); address the agent so, or configure api.tokens", r.Host)
	}
	return nil
}

// loopbackHost reports whether a Host header names a loopback address:
// a loopback IP literal or localhost, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// notFound answers a request no route matched: 405 with Allow when the path
// exists for other methods, 404 otherwise.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	probe := httptest.NewRecorder()
	h.ServeHTTP(probe, r)
	if probe.Code == http.StatusMethodNotAllowed {
		allow := probe.Header().Get("Allow")
		w.Header().Set("Allow", allow)
		s.writeErr(w, r, Errorf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow))
		return
	}
	s.writeErr(w, r, Errorf(http.StatusNotFound, CodeNotFound, "no API endpoint %s %s; see docs/api.md", r.Method, r.URL.Path))
}

// methodLabel bounds the method label of vigil_http_requests_total: HTTP's
// methods as they are, any other method "other". Requests to no route are
// counted before any token check, so the method as sent would let anyone
// who reaches the port add a series with every request.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

func (s *Server) observe(r *http.Request, rec *recorder, route string, start time.Time) {
	elapsed := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.requests.WithLabelValues(route, methodLabel(r.Method), strconv.Itoa(status)).Inc()
	s.duration.WithLabelValues(route).Observe(elapsed.Seconds())

	level := slog.LevelDebug
	if s.current.Load().accessLog {
		level = slog.LevelInfo
	}
	if status >= 500 {
		level = slog.LevelWarn
	}
	if !s.logger.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Int64("bytes", rec.bytes),
		slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
		slog.String("remote", r.RemoteAddr),
	}
	if rec.token != "" {
		attrs = append(attrs, slog.String("token", rec.token))
	}
	if id := rec.Header()[RequestIDHeader]; len(id) > 0 {
		attrs = append(attrs, slog.String("request_id", id[0]))
	}
	s.logger.LogAttrs(context.Background(), level, "api request", attrs...)
}

// recorder captures the status and size of a response. It passes Flush and
// Unwrap through so streaming handlers (server-sent events) keep working.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
	token  string
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Listen opens the configured listeners. It is separate from Serve so that a
// port conflict fails start-up before anything else runs.
func (s *Server) Listen() error {
	if s.cfg.Addr != "" {
		ln, err := net.Listen("tcp", s.cfg.Addr)
		if err != nil {
			return fmt.Errorf("API listen on %s: %w", s.cfg.Addr, err)
		}
		if s.cfg.TLS.Enabled() {
			s.tlsFiles = s.cfg.TLS
			cert, err := loadCertificate(s.cfg.TLS)
			if err != nil {
				ln.Close()
				return err
			}
			s.cert.Store(cert)
			tc, err := s.tlsConfig()
			if err != nil {
				ln.Close()
				return err
			}
			ln = tls.NewListener(ln, tc)
		} else if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && len(s.cfg.Tokens) > 0 {
			s.logger.Warn("API tokens travel in clear text: the API is reachable from other hosts without TLS; set api.tls.cert_file and api.tls.key_file",
				"addr", ln.Addr().String())
		}
		s.listeners = append(s.listeners, ln)
	}
	if s.cfg.UnixSocket != "" {
		ln, err := listenUnix(s.cfg.UnixSocket)
		if err != nil {
			s.closeListeners()
			return err
		}
		s.listeners = append(s.listeners, ln)
	}
	return nil
}

// loadCertificate reads the certificate and key of api.tls.
func loadCertificate(c config.TLS) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("API TLS: load api.tls.cert_file %s and key_file %s: %w", c.CertFile, c.KeyFile, err)
	}
	return &cert, nil
}

func (s *Server) currentCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// ReloadCertificate reads api.tls.cert_file and key_file again, from the
// paths in next (the running ones, or new ones a reload gives: a renewed
// certificate written over the old files or beside them), and serves them
// from the next handshake on. It reports whether the certificate changed;
// on an error (a file missing or half written, a key that is not the
// certificate's) the running certificate and paths stay. Without TLS it
// does nothing: turning TLS on or off takes a restart.
func (s *Server) ReloadCertificate(next config.TLS) (changed bool, err error) {
	old := s.cert.Load()
	if old == nil || !next.Enabled() {
		return false, nil
	}
	cert, err := loadCertificate(next)
	if err != nil {
		return false, err
	}
	s.tlsFiles.CertFile, s.tlsFiles.KeyFile = next.CertFile, next.KeyFile
	if len(cert.Certificate) == len(old.Certificate) && slices.EqualFunc(cert.Certificate, old.Certificate, bytes.Equal) {
		return false, nil
	}
	s.cert.Store(cert)
	return true, nil
}

// TLSFiles returns the api.tls files in use, after the reloads.
func (s *Server) TLSFiles() config.TLS { return s.tlsFiles }

func (s *Server) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.currentCertificate}
	if s.cfg.TLS.ClientCAFile != "" {
		pem, pool, err := loadClientCA(s.cfg.TLS)
		if err != nil {
			return nil, err
		}
		s.clientCAPEM = pem
		s.clientCAs.Store(pool)
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		// Each handshake verifies against the pool as last loaded, so
		// that ReloadClientCA takes effect without a restart.
		base := tc.Clone()
		tc.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.ClientCAs = s.clientCAs.Load()
			return c, nil
		}
	}
	return tc, nil
}

// loadClientCA reads api.tls.client_ca_file.
func loadClientCA(c config.TLS) ([]byte, *x509.CertPool, error) {
	pem, err := os.ReadFile(c.ClientCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("API TLS: read api.tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("API TLS: api.tls.client_ca_file %s holds no PEM certificates", c.ClientCAFile)
	}
	return pem, pool, nil
}

// ReloadClientCA reads api.tls.client_ca_file again, from the path in
// next (the running one, or a new one a reload gives), and verifies
// client certificates against it from the next handshake on. It reports
// whether the CAs changed; on an error the running CAs and path stay.
// Without client certificates it does nothing: requiring them, or no
// longer, takes a restart. Called from the reload goroutine only.
func (s *Server) ReloadClientCA(next config.TLS) (changed bool, err error) {
	if s.clientCAs.Load() == nil || next.ClientCAFile == "" {
		return false, nil
	}
	pem, pool, err := loadClientCA(next)
	if err != nil {
		return false, err
	}
	s.tlsFiles.ClientCAFile = next.ClientCAFile
	if bytes.Equal(pem, s.clientCAPEM) {
		return false, nil
	}
	s.clientCAPEM = pem
	s.clientCAs.Store(pool)
	return true, nil
}

// listenUnix listens on path, replacing a stale socket left by a crash but
// never one that another process still serves.
func listenUnix(path string) (net.Listener, error) {
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("API unix socket %s: a file that is not a socket is in the way", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("API unix socket %s is served by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("API unix socket: remove stale %s: %w", path, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("API listen on unix socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("API unix socket %s: %w", path, err)
	}
	return ln, nil
}

// Addrs returns the addresses being listened on, after Listen: useful when
// the configured port was 0.
func (s *Server) Addrs() []net.Addr {
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Serve starts serving on every listener in the background. A listener that
// fails reports on Err.
func (s *Server) Serve() {
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.RequestTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelDebug),
	}
	for _, ln := range s.listeners {
		s.serveWG.Add(1)
		go func() {
			defer s.serveWG.Done()
			if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.errc <- fmt.Errorf("API server on %s: %w", ln.Addr(), err)
			}
		}()
	}
}

// Err reports a listener that stopped on its own.
func (s *Server) Err() <-chan error { return s.errc }

// Shutdown stops accepting requests and waits for those in flight until ctx
// is done, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		s.closeListeners()
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	s.serveWG.Wait()
	if s.cfg.UnixSocket != "" {
		os.Remove(s.cfg.UnixSocket)
	}
	return err
}

func (s *Server) closeListeners() {
	for _, ln := range s.listeners {
		ln.Close()
	}
}
