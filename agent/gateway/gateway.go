// Package gateway is Vigil's LLM gateway: OpenAI-compatible endpoints
// (chat completions, streamed or not, embeddings, the model list) in
// front of provider plugins.
//
// A client names an alias; the alias is an ordered chain of targets
// (provider instance + upstream model). Each call is retried by the error
// class the provider plugin reports: rate_limited waits out Retry-After,
// overloaded, timeout, unavailable and internal back off exponentially
// with full jitter, all within the request's deadline; invalid_request is
// returned at once; auth, quota_exhausted, not_found and unsupported move
// on to the next target; context_length_exceeded switches to the alias's
// context_window_fallback. Every target has a circuit breaker, so during
// an outage requests fail fast (or go straight to the next target) rather
// than paying every retry.
//
// A stream is retried and falls back only until its first byte has been
// sent to the client; after that an upstream failure ends the stream with
// an error event, never a silent truncation.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/sdk"
)

// Providers calls provider plugins by instance name; *pluginhost.Host is
// one.
type Providers interface {
	WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error
}

// CapabilityReporter is what Providers may also offer: the capabilities a
// provider instance's plugin declared when it last started (known is false
// before it ever started). *pluginhost.Host is one.
type CapabilityReporter interface {
	Capabilities(name string) (caps []string, known bool)
}

// Gateway routes requests to provider plugins.
type Gateway struct {
	cfg       Config
	providers Providers
	logger    *slog.Logger
	m         *metrics
	aliases   map[string]*alias
	names     []string // aliases in configuration order
	instances []pluginhost.Instance
	created   int64
	// sleep waits d or until ctx ends; tests may replace it.
	sleep  func(ctx context.Context, d time.Duration) error
	rand   func(n int64) int64
	cache  *Cache // nil: no cache
	prices map[string]Price
	ledger *ledger   // nil: no budgets
	obs    *obsQueue // nil: requests are not recorded as observations
	// items are Responses answers' output items kept for item_reference
	// (nil: gateway.responses.item_store is off).
	items *itemStore
	// obsFlushItems caps one observation write (tests lower it).
	obsFlushItems int
	// inFlight counts the chat and embeddings requests being served
	// (gateway.max_in_flight).
	inFlight atomic.Int64
	// slots bounds each provider entry's calls in flight to its
	// max_concurrency (providers without one are left to the plugin).
	slots map[string]providerSlots
	// TokenName names the API token a request was made with (for
	// budgets); the agent sets it to api.TokenName.
	TokenName func(*http.Request) string
	// OwnUsageOnly says whether a GET /v1/llm/usage caller may see only
	// the budgets of its own token (an llm-scope token); nil: all.
	OwnUsageOnly func(*http.Request) bool
}

// OpenLedger opens the budgets' spend ledger at path, when budgets are
// configured. Close closes it.
func (g *Gateway) OpenLedger(path string) error {
	if len(g.cfg.Budgets) == 0 {
		return nil
	}
	kv, err := store.OpenKV(path, g.logger)
	if err != nil {
		return fmt.Errorf("gateway.budgets: %w", err)
	}
	l, err := openLedger(kv, g.cfg.Budgets, g.logger)
	if err != nil {
		kv.Close()
		return fmt.Errorf("gateway.budgets: read %s: %w", path, err)
	}
	g.ledger = l
	return nil
}

// OpenCache opens the response cache's file at path (when
// gateway.cache.enabled). Close closes it.
func (g *Gateway) OpenCache(path string) error {
	if !g.cfg.Cache.Enabled {
		return nil
	}
	kv, err := store.OpenKV(path, g.logger)
	if err != nil {
		return fmt.Errorf("gateway.cache: %w", err)
	}
	c, err := openCache(kv, g.cfg.Cache, g.m, g.logger)
	if err != nil {
		kv.Close()
		return fmt.Errorf("gateway.cache: read %s: %w", path, err)
	}
	g.cache = c
	return nil
}

// Close finishes pending cache and ledger writes and closes their files.
func (g *Gateway) Close() error {
	var errs []error
	if g.obs != nil {
		g.obs.close()
	}
	if g.cache != nil {
		errs = append(errs, g.cache.Close())
	}
	if g.ledger != nil {
		errs = append(errs, g.ledger.close())
	}
	return errors.Join(errs...)
}

type alias struct {
	name     string
	targets  []*target
	tier     int // the leading targets that share traffic by weight
	weights  int
	fallback string
	// truncation is the model's truncation ("" is error).
	truncation string
	// duration is the alias's request-duration child per endpoint,
	// resolved once (metrics.go's labels are looked up per request
	// otherwise).
	duration map[string]prometheus.Observer
}

type target struct {
	provider, model string
	weight          int
	br              *breaker
	tok             tokenInfo
	// The metric children a request for this alias and target always
	// touches, resolved once.
	circuit            prometheus.Gauge
	attemptsOK         prometheus.Counter
	requestsOK         prometheus.Counter
	prompt, completion prometheus.Counter
}

func (t *target) String() string { return t.provider + "/" + t.model }

// New builds the gateway. lookupEnv reads the agent's environment for
// providers' api_key_env.
func New(cfg Config, providers Providers, logger *slog.Logger, reg prometheus.Registerer, lookupEnv func(string) (string, bool)) (*Gateway, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	g := &Gateway{
		cfg: cfg, providers: providers, logger: logger,
		aliases: map[string]*alias{}, created: time.Now().Unix(),
		sleep: sleepCtx, rand: rand.Int64N, prices: prices(cfg.Prices), obsFlushItems: obsFlushItems,
	}
	g.m = newMetrics(reg, func() float64 { return float64(g.inFlight.Load()) })
	g.items = newItemStore(cfg.Responses.ItemStore, newItemMetrics(reg), nil)
	for i, p := range cfg.Providers {
		conf := map[string]any{}
		for k, v := range p.Options {
			conf[k] = v
		}
		if p.BaseURL != "" {
			conf["base_url"] = p.BaseURL
		}
		if p.APIKeyFile != "" {
			conf["api_key_file"] = p.APIKeyFile
		}
		if p.APIKeyEnv != "" {
			v, ok := lookupEnv(p.APIKeyEnv)
			if v = strings.TrimSpace(v); !ok || v == "" {
				return nil, fmt.Errorf("gateway.providers[%d].api_key_env: environment variable %s is not set or empty", i, p.APIKeyEnv)
			}
			conf["api_key"] = v
		}
		if p.Timeout > 0 {
			conf["timeout"] = p.Timeout.String()
		}
		if p.MaxConcurrency > 0 {
			conf["max_concurrency"] = float64(p.MaxConcurrency)
			if g.slots == nil {
				g.slots = map[string]providerSlots{}
			}
			g.slots[p.Name] = providerSlots{c: make(chan struct{}, p.MaxConcurrency), key: fmt.Sprintf("gateway.providers[%d].max_concurrency", i)}
		}
		if len(p.Headers) > 0 {
			h := map[string]any{}
			for k, v := range p.Headers {
				h[k] = v
			}
			conf["headers"] = h
		}
		var setBy map[string]string
		if p.APIKeyEnv != "" {
			setBy = map[string]string{"api_key": "api_key_env"}
		}
		// An options key reaches the plugin as it is; a rejection of it
		// names it where the operator wrote it, under options.
		for k := range p.Options {
			if setBy == nil {
				setBy = map[string]string{}
			}
			setBy[k] = "options." + k
		}
		g.instances = append(g.instances, pluginhost.Instance{
			Name: p.Name, Plugin: p.Plugin, Config: conf,
			ConfigKey: fmt.Sprintf("gateway.providers[%d]", i), SetBy: setBy,
			// The request deadline bounds calls; a stream may last that long.
			CallTimeout: cfg.RequestTimeout,
		})
	}
	// One breaker per upstream (provider instance + model), shared by every
	// alias that names it: an outage is the upstream's, whoever asks.
	breakers := map[[2]string]*breaker{}
	for _, m := range cfg.Models {
		a := &alias{name: m.Name, fallback: m.ContextWindowFallback, truncation: m.Truncation, duration: map[string]prometheus.Observer{}}
		for _, ep := range []string{"chat", "chat_stream", "embeddings", "responses", "responses_stream"} {
			a.duration[ep] = g.m.duration.WithLabelValues(m.Name, ep)
		}
		for _, t := range m.Targets {
			key := [2]string{t.Provider, t.Model}
			br, ok := breakers[key]
			if !ok {
				br = newBreaker(cfg.Breaker, time.Now)
				breakers[key] = br
			}
			tg := &target{provider: t.Provider, model: t.Model, weight: t.Weight, br: br, tok: newTokenInfo(t),
				circuit:    g.m.circuit.WithLabelValues(t.Provider, t.Model),
				attemptsOK: g.m.attempts.WithLabelValues(m.Name, t.Provider, t.Model, "ok"),
				requestsOK: g.m.requests.WithLabelValues(m.Name, t.Provider, t.Model, "200"),
				prompt:     g.m.tokens.WithLabelValues(m.Name, t.Provider, t.Model, "prompt", sourceReported),
				completion: g.m.tokens.WithLabelValues(m.Name, t.Provider, t.Model, "completion", sourceReported),
			}
			a.targets = append(a.targets, tg)
			if t.Weight > 0 && a.tier == len(a.targets)-1 {
				a.tier++
				a.weights += t.Weight
			}
			tg.circuit.Set(0)
		}
		g.aliases[m.Name] = a
		g.names = append(g.names, m.Name)
	}
	if reg != nil {
		reg.MustRegister(freshCircuits{g.m.circuit, g})
	}
	for _, w := range unpricedBudgets(cfg, g.prices) {
		logger.Warn(w)
	}
	return g, nil
}

// admit counts a chat or embeddings request in, or refuses it with 503
// when gateway.max_in_flight are being served already; done counts it
// out (call it only when admit said yes).
func (g *Gateway) admit(w http.ResponseWriter) bool {
	n := g.inFlight.Add(1)
	if max := g.cfg.MaxInFlight; max > 0 && n > int64(max) {
		g.inFlight.Add(-1)
		g.m.shed.Inc()
		writeError(w, &Error{Status: http.StatusServiceUnavailable, Type: "server_error", Code: "gateway_overloaded", retryAfter: time.Second,
			Message: fmt.Sprintf("the gateway is serving its limit of %d requests at once (gateway.max_in_flight); retry shortly", max)})
		return false
	}
	return true
}

func (g *Gateway) done() { g.inFlight.Add(-1) }

// Instances are the provider plugin instances the gateway needs; the
// agent hands them to the plugin host.
func (g *Gateway) Instances() []pluginhost.Instance { return g.instances }

// Aliases returns the configured aliases in order.
func (g *Gateway) Aliases() []string { return append([]string(nil), g.names...) }

// order is the sequence in which a request tries the alias's targets: a
// weighted pick among the first tier, the rest of that tier, then the
// others in configuration order.
func (g *Gateway) order(a *alias) []*target {
	if a.tier < 2 {
		return a.targets
	}
	out := make([]*target, 0, len(a.targets))
	pick := g.rand(int64(a.weights))
	first := 0
	for i, t := range a.targets[:a.tier] {
		if pick < int64(t.weight) {
			first = i
			break
		}
		pick -= int64(t.weight)
	}
	out = append(out, a.targets[first])
	for i, t := range a.targets {
		if i != first {
			out = append(out, t)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unhealthy reports whether an error class says the upstream itself is
// failing; only those count against its circuit breaker.
func unhealthy(c sdk.Class) bool {
	switch c {
	case sdk.RateLimited, sdk.Overloaded, sdk.Timeout, sdk.Unavailable, sdk.Internal:
		return true
	}
	return false
}

// outcome is what the routing loop ends with.
type outcome struct {
	alias    string // the alias that answered (the fallback, when used)
	target   *target
	attempts int
	err      error
	// exhausted is true when every target failed or was skipped.
	exhausted bool
	// ex is the request's exchange (observations.go); nil when none.
	ex *exchange
	// transient is true when some target failed for a reason that may
	// pass (an unhealthy class, an open circuit): a retry by the client
	// may then succeed.
	transient bool
	// openSkips counts the targets skipped because their circuit was
	// open; reopens is the soonest any of them lets a probe through.
	openSkips int
	reopens   time.Duration
	// closedIn, when every target of the alias failed or was skipped, is
	// how long until the first of their circuits lets a call through, if
	// all are open now; 0 otherwise.
	closedIn time.Duration
}

// classed is err's message led by its class, once.
func classed(class sdk.Class, err error) string {
	msg := err.Error()
	if !strings.HasPrefix(msg, string(class)) {
		msg = string(class) + ": " + msg
	}
	return msg
}

// providerSlots are a provider entry's max_concurrency slots; key names
// the setting in errors.
type providerSlots struct {
	c   chan struct{}
	key string
}

// acquire takes one of the provider's slots, waiting until ctx ends;
// release gives it back. A provider without slots (no max_concurrency
// set, so the plugin's own default bounds its calls) never waits.
func (s providerSlots) acquire(ctx context.Context, provider string) (release func(), err error) {
	if s.c == nil {
		return func() {}, nil
	}
	// A free slot is taken even when ctx has just ended (a select with
	// both ready would pick either).
	select {
	case s.c <- struct{}{}:
		return func() { <-s.c }, nil
	default:
	}
	select {
	case s.c <- struct{}{}:
		return func() { <-s.c }, nil
	case <-ctx.Done():
		return nil, &sdk.Error{Class: sdk.Timeout, Message: fmt.Sprintf(
			"provider %s: all %d slots (%s) stayed busy with its other calls until the request ended; no upstream call made (%v)", provider, cap(s.c), s.key, ctx.Err())}
	}
}

// errCircuitOpen is the error recorded for a target skipped because its
// circuit is open.
func errCircuitOpen(t *target) error {
	msg := fmt.Sprintf("circuit breaker for %s is open after repeated failures", t)
	if last := t.br.lastError(); last != "" {
		msg += "; the last: " + last
	}
	// RetryAfter tells a client (the OpenAI SDKs honour Retry-After)
	// when the circuit will let a probe through, instead of retrying into
	// it at once.
	return &sdk.Error{Class: sdk.Unavailable, Message: msg, RetryAfter: t.br.reopensIn()}
}

// attemptFunc makes one call to a target. started is true when bytes of
// the answer already reached the client, so nothing may be retried.
// attempt counts the calls of this request so far, this one included.
type attemptFunc func(ctx context.Context, t *target, attempt int) (started bool, err error)

// route runs call against the alias's targets with retries, fallback and
// circuit breaking, within ctx (which carries the request deadline); reqID
// is the request's id for the log lines. fit,
// when given, is checked before each target is called (context.go).
func (g *Gateway) route(ctx context.Context, reqID string, a *alias, call attemptFunc, fit ...fitFunc) outcome {
	out := outcome{alias: a.name, ex: exchangeOf(ctx)}
	usedFallback := false
	r := g.cfg.Retry
chain:
	for {
		for _, t := range g.order(a) {
			out.target = t
			if len(fit) > 0 {
				if err := fit[0](a, t); err != nil {
					// Too long for this target: known without calling it.
					out.err = err
					if fb := g.contextFallback(reqID, a, t, &usedFallback); fb != nil {
						a, out.alias = fb, fb.name
						continue chain
					}
					return out
				}
			}
			for try := 0; try < r.MaxAttempts; try++ {
				if !t.br.allow() {
					out.err, out.transient = errCircuitOpen(t), true
					if in := t.br.reopensIn(); out.openSkips == 0 || in < out.reopens {
						out.reopens = in
					}
					out.openSkips++
					g.m.attempts.WithLabelValues(a.name, t.provider, t.model, "circuit_open").Inc()
					break
				}
				t.circuit.Set(float64(t.br.current()))
				release, err := g.slots[t.provider].acquire(ctx, t.provider)
				if err != nil {
					// Every slot stayed busy with this provider's other
					// calls until the request ended: congestion here,
					// not an upstream failure, so the circuit is left
					// alone and no upstream was called.
					t.br.forgo()
					t.circuit.Set(float64(t.br.current()))
					g.m.attempts.WithLabelValues(a.name, t.provider, t.model, "slots_busy").Inc()
					out.err, out.exhausted = err, true
					return out
				}
				out.attempts++
				started, err := call(ctx, t, out.attempts)
				release()
				if errors.Is(err, sdk.ErrNotServing) {
					// The plugin host refused the call without making it
					// (plugin refused, failed or untrusted): retries cannot
					// help and the upstream is not to blame, so the circuit
					// is left alone (it would stay open for breaker.open_for
					// after the operator fixed the plugin). Next target.
					t.br.forgo()
					class := sdk.ClassOf(err)
					out.err, out.transient = err, true
					g.m.attempts.WithLabelValues(a.name, t.provider, t.model, string(class)).Inc()
					g.logger.Debug("upstream plugin not serving", "request_id", reqID, "alias", a.name, "target", t.String(), "attempt", out.attempts, "err", err)
					break
				}
				class := sdk.ClassOf(err)
				if err != nil && ctx.Err() != nil {
					class = sdk.Timeout
					if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
						// The client went away: the upstream is not to
						// blame, nor shown healthy unless it had begun to
						// answer (a half-open probe abandoned on a hung
						// upstream must not close the circuit).
						if started {
							t.br.record(false)
						} else {
							t.br.forgo()
						}
						out.err = err
						return out
					}
					err = &sdk.Error{Class: sdk.Timeout, Message: fmt.Sprintf("gateway.request_timeout %s passed: %v", g.cfg.RequestTimeout, err)}
					if started {
						// A stream cut by the gateway's own deadline while
						// the upstream was still sending: the upstream
						// answered, so it counts as a success, not as a
						// failure that long answers would pile up.
						t.br.record(false)
						t.circuit.Set(float64(t.br.current()))
						g.m.attempts.WithLabelValues(a.name, t.provider, t.model, string(class)).Inc()
						out.err = err
						return out
					}
				}
				t.br.record(unhealthy(class))
				if unhealthy(class) {
					out.transient = true
					t.br.failedWith(classed(class, err))
				}
				t.circuit.Set(float64(t.br.current()))
				if err == nil {
					t.attemptsOK.Inc()
				} else {
					g.m.attempts.WithLabelValues(a.name, t.provider, t.model, string(class)).Inc()
				}
				out.err = err
				if err == nil || started {
					return out
				}
				g.logger.Debug("upstream attempt failed", "request_id", reqID, "alias", a.name, "target", t.String(), "attempt", out.attempts, "class", class, "err", err)
				switch class {
				case sdk.InvalidRequest:
					return out
				case sdk.ContextLengthExceeded:
					fb := g.contextFallback(reqID, a, t, &usedFallback)
					if fb == nil {
						return out
					}
					a, out.alias = fb, fb.name
					continue chain
				case sdk.RateLimited, sdk.Overloaded, sdk.Timeout, sdk.Unavailable, sdk.Internal:
					if ctx.Err() != nil {
						out.exhausted = true
						return out
					}
					if try+1 >= r.MaxAttempts {
						continue
					}
					if t.br.current() == open {
						// This failure opened the circuit (or a half-open
						// probe failed): the retry would be refused, so
						// waiting first only delays the next target.
						try = r.MaxAttempts
						continue
					}
					wait, ok := g.backoff(ctx, err, try)
					if !ok {
						try = r.MaxAttempts // next target
						continue
					}
					if g.sleep(ctx, wait) != nil {
						out.exhausted = true
						return out
					}
				default: // auth, quota_exhausted, not_found, unsupported
					try = r.MaxAttempts
				}
			}
		}
		out.exhausted = true
		out.closedIn = closedIn(a.targets)
		return out
	}
}

// closedIn is how long until the first of targets lets a call through
// again when every one's circuit is open now, else 0. A request whose own
// failures opened the last circuits has its client told to come back then,
// as the requests refused by the open circuits after it are.
func closedIn(targets []*target) time.Duration {
	var soonest time.Duration
	for i, t := range targets {
		in := t.br.reopensIn()
		if in <= 0 {
			return 0
		}
		if i == 0 || in < soonest {
			soonest = in
		}
	}
	return soonest
}

// backoff is the wait before retry number try+1 of the same target, and
// whether to wait at all: a Retry-After longer than max_retry_after, or a
// wait past the deadline, moves on to the next target instead.
func (g *Gateway) backoff(ctx context.Context, err error, try int) (time.Duration, bool) {
	r := g.cfg.Retry
	var wait time.Duration
	var se *sdk.Error
	if errors.As(err, &se) && se.RetryAfter > 0 {
		if se.RetryAfter > r.MaxRetryAfter {
			return 0, false
		}
		wait = se.RetryAfter
	} else {
		ceiling := r.BaseBackoff << min(try, 30)
		if ceiling > r.MaxBackoff || ceiling <= 0 {
			ceiling = r.MaxBackoff
		}
		wait = time.Duration(g.rand(int64(ceiling) + 1)) // full jitter
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
		return 0, false
	}
	return wait, true
}

// OpenCircuits lists the targets whose circuit breaker is open now.
func (g *Gateway) OpenCircuits() []string {
	var out []string
	seen := map[*breaker]bool{}
	for _, n := range g.names {
		for _, t := range g.aliases[n].targets {
			if !seen[t.br] && t.br.current() == open {
				out = append(out, t.String())
			}
			seen[t.br] = true
		}
	}
	return out
}
