package gateway

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"time"

	"github.com/vigilml/vigil/agent/units"
)

// Config is the gateway section of the agent configuration.
type Config struct {
	// Providers are plugin instances: a provider plugin and its settings.
	Providers []Provider `yaml:"providers"`
	// Models are the aliases clients ask for, each an ordered chain of
	// targets.
	Models []Model `yaml:"models"`
	// RequestTimeout bounds one client request, every retry and fallback
	// included (and, for a stream, the whole stream).
	RequestTimeout time.Duration `yaml:"request_timeout"`
	Retry          Retry         `yaml:"retry"`
	Breaker        Breaker       `yaml:"breaker"`
	Cache          CacheConfig   `yaml:"cache"`
	// Prices override and extend the shipped price table (DefaultPrices),
	// by upstream model name.
	Prices map[string]Price `yaml:"prices"`
	// Budgets cap spend per API token and/or alias over a window.
	Budgets []Budget `yaml:"budgets"`
	// Observations record each request for monitoring (observations.go).
	Observations ObservationsConfig `yaml:"observations"`
	// MaxInFlight caps the chat and embeddings requests being served at
	// once; more are refused at once with 503 (load shedding), so that a
	// burst beyond what the host and upstreams can take costs neither
	// unbounded memory nor ever-growing latency. 0: no cap.
	MaxInFlight int `yaml:"max_in_flight"`
	// Responses are the Responses API's settings (itemstore.go).
	Responses ResponsesConfig `yaml:"responses"`
}

// Budget caps the USD spent over a sliding window by requests made with
// one API token (api.tokens[].name), for one alias, or both.
type Budget struct {
	Name   string  `yaml:"name"`
	Token  string  `yaml:"token"`
	Alias  string  `yaml:"alias"`
	Window string  `yaml:"window"` // 1h, 1d or 30d
	USD    float64 `yaml:"usd"`
}

// budgetWindows are the windows a budget may use.
var budgetWindows = map[string]time.Duration{"1h": time.Hour, "1d": 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// Cache scopes (CacheConfig.Scope).
const (
	CacheShared  = "shared"
	CacheByToken = "token"
)

// CacheConfig is the exact-match response cache.
type CacheConfig struct {
	Enabled bool `yaml:"enabled"`
	// TTL is how long an answer is served from the cache.
	TTL time.Duration `yaml:"ttl"`
	// MaxBytes caps the cache file's entries; the oldest go first.
	MaxBytes units.Bytes `yaml:"max_bytes"`
	// Scope is who shares an answer: "shared" (every token; the key is
	// the alias, messages and parameters) or "token" (only requests made
	// with the same API token).
	Scope string `yaml:"scope"`
}

// Provider is one provider plugin instance.
type Provider struct {
	// Name is how targets refer to it (openai-main, local-vllm).
	Name string `yaml:"name"`
	// Plugin is the installed provider plugin it runs (openai, hashembed).
	Plugin string `yaml:"plugin"`
	// BaseURL, APIKeyFile, Timeout, MaxConcurrency and Headers are handed
	// to the plugin when set; unset ones keep the plugin's defaults.
	BaseURL    string `yaml:"base_url"`
	APIKeyFile string `yaml:"api_key_file"`
	// APIKeyEnv names a variable of the agent's environment; the agent
	// reads it and hands the key over, since plugins do not inherit the
	// agent's environment.
	APIKeyEnv      string            `yaml:"api_key_env"`
	Timeout        time.Duration     `yaml:"timeout"`
	MaxConcurrency int               `yaml:"max_concurrency"`
	Headers        map[string]string `yaml:"headers"`
	// Options are further plugin-specific settings, passed as they are
	// (hashembed's dimensions, say).
	Options map[string]any `yaml:"options"`
}

// Model is an alias.
type Model struct {
	Name    string   `yaml:"name"`
	Targets []Target `yaml:"targets"`
	// ContextWindowFallback is the alias to use when a target says the
	// prompt is longer than its context window.
	ContextWindowFallback string `yaml:"context_window_fallback"`
	// Truncation is what happens when the prompt is too long for a
	// target's context window: error (the default; the fallback above, or
	// 400) or drop_oldest (drop the oldest messages, never system ones nor
	// the last user message).
	Truncation string `yaml:"truncation"`
}

// Target is one upstream model behind an alias.
type Target struct {
	Provider string `yaml:"provider"`
	Model    string `yaml:"model"`
	// Weight, when set on the leading targets, splits traffic among them
	// (the first tier); the others stay fallbacks in order.
	Weight int `yaml:"weight"`
	// ContextWindow in tokens (prompt and answer); 0 takes the shipped
	// DefaultContextWindows entry, if any, else nothing is checked.
	ContextWindow int `yaml:"context_window"`
	// Encoding overrides the tokenizer chosen from the model name
	// (o200k_base or cl100k_base).
	Encoding string `yaml:"encoding"`
}

// Retry is how one target is retried before the next is tried.
type Retry struct {
	// MaxAttempts per target, the first included.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseBackoff and MaxBackoff bound the exponential backoff with full
	// jitter between attempts.
	BaseBackoff time.Duration `yaml:"base_backoff"`
	MaxBackoff  time.Duration `yaml:"max_backoff"`
	// MaxRetryAfter is the longest Retry-After the gateway waits out; a
	// longer one moves on to the next target at once.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// Breaker is the circuit breaker of each target.
type Breaker struct {
	// ConsecutiveFailures in a row open the circuit.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// FailureRatio of the calls within Window opens the circuit, once at
	// least MinRequests calls were made in it.
	FailureRatio float64       `yaml:"failure_ratio"`
	MinRequests  int           `yaml:"min_requests"`
	Window       time.Duration `yaml:"window"`
	// OpenFor is how long an open circuit refuses calls before one probe
	// (half-open) may test the target again.
	OpenFor time.Duration `yaml:"open_for"`
}

// DefaultConfig returns the defaults: no providers, no models.
func DefaultConfig() Config {
	return Config{
		RequestTimeout: 60 * time.Second,
		Retry:          Retry{MaxAttempts: 3, BaseBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second, MaxRetryAfter: 10 * time.Second},
		Breaker:        Breaker{ConsecutiveFailures: 5, FailureRatio: 0.5, MinRequests: 20, Window: 30 * time.Second, OpenFor: 15 * time.Second},
		Cache:          CacheConfig{Enabled: true, TTL: time.Hour, MaxBytes: 64 << 20, Scope: CacheShared},
		Observations:   ObservationsConfig{Enabled: true, QueueSize: 4096},
		MaxInFlight:    256,
		Responses:      defaultResponsesConfig(),
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// aliasRE allows what model names usually hold (gpt-4o-mini, llama3:8b,
// org/model).
var aliasRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$`)

// Validate returns every problem, one "gateway.<key>: message" each.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gateway.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	providers := map[string]bool{}
	for i, p := range c.Providers {
		key := fmt.Sprintf("providers[%d]", i)
		switch {
		case !nameRE.MatchString(p.Name):
			bad(key+".name", "%q is not a valid name (lower-case letters, digits, '.', '_', '-')", p.Name)
		case providers[p.Name]:
			bad(key+".name", "provider %q is declared twice", p.Name)
		}
		providers[p.Name] = true
		if !nameRE.MatchString(p.Plugin) {
			bad(key+".plugin", "%q is not a plugin name; name an installed provider plugin such as openai", p.Plugin)
		}
		if p.BaseURL != "" {
			if u, err := url.Parse(p.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(key+".base_url", "%q is not an http(s) URL", p.BaseURL)
			}
		}
		if p.APIKeyFile != "" && p.APIKeyEnv != "" {
			bad(key+".api_key_env", "set api_key_file or api_key_env, not both")
		}
		if p.Timeout < 0 {
			bad(key+".timeout", "must be positive")
		}
		if p.MaxConcurrency < 0 {
			bad(key+".max_concurrency", "must be positive")
		}
		for k := range p.Options {
			switch k {
			case "base_url", "api_key", "api_key_file", "api_key_env", "timeout", "max_concurrency", "headers":
				bad(key+".options."+k, "set %s as a key of the provider itself", k)
			}
		}
	}
	aliases := map[string]bool{}
	for _, m := range c.Models {
		aliases[m.Name] = true
	}
	const maxAliasBytes = 120
	seen := map[string]bool{}
	for i, m := range c.Models {
		key := fmt.Sprintf("models[%d]", i)
		switch {
		case !aliasRE.MatchString(m.Name):
			bad(key+".name", "%q is not a valid model alias (letters, digits and _.:/@-)", m.Name)
		case len(m.Name) > maxAliasBytes:
			bad(key+".name", "alias %q is %d bytes; at most %d (its observations are recorded as model llm:<alias>, within observe's 128-byte names)", m.Name, len(m.Name), maxAliasBytes)
		case seen[m.Name]:
			bad(key+".name", "alias %q is declared twice", m.Name)
		}
		seen[m.Name] = true
		if len(m.Targets) == 0 {
			bad(key+".targets", "alias %q needs at least one target", m.Name)
		}
		weighted := true
		for j, t := range m.Targets {
			tk := fmt.Sprintf("%s.targets[%d]", key, j)
			if !providers[t.Provider] {
				bad(tk+".provider", "%q is not one of gateway.providers", t.Provider)
			}
			if t.Model == "" {
				bad(tk+".model", "the upstream model is required")
			}
			switch {
			case t.Weight < 0:
				bad(tk+".weight", "must not be negative")
			case t.Weight > 0 && !weighted:
				bad(tk+".weight", "weights split the first tier: only leading targets may have one")
			case t.Weight == 0:
				weighted = false
			}
		}
		validateTokens(key, m, bad)
		if f := m.ContextWindowFallback; f != "" {
			switch {
			case f == m.Name:
				bad(key+".context_window_fallback", "alias %q cannot fall back to itself", f)
			case !aliases[f]:
				bad(key+".context_window_fallback", "%q is not one of gateway.models", f)
			}
		}
	}
	if c.RequestTimeout <= 0 {
		bad("request_timeout", "must be positive")
	}
	r := c.Retry
	if r.MaxAttempts < 1 || r.MaxAttempts > 20 {
		bad("retry.max_attempts", "must be from 1 to 20")
	}
	if r.BaseBackoff <= 0 {
		bad("retry.base_backoff", "must be positive")
	}
	if r.MaxBackoff < r.BaseBackoff {
		bad("retry.max_backoff", "%s is shorter than gateway.retry.base_backoff %s", r.MaxBackoff, r.BaseBackoff)
	}
	if r.MaxRetryAfter < 0 {
		bad("retry.max_retry_after", "must not be negative")
	}
	b := c.Breaker
	if b.ConsecutiveFailures < 1 {
		bad("breaker.consecutive_failures", "must be at least 1")
	}
	if !(b.FailureRatio > 0 && b.FailureRatio <= 1) {
		bad("breaker.failure_ratio", "must be above 0 and at most 1")
	}
	if b.MinRequests < 1 {
		bad("breaker.min_requests", "must be at least 1")
	}
	if b.Window <= 0 {
		bad("breaker.window", "must be positive")
	}
	if b.OpenFor <= 0 {
		bad("breaker.open_for", "must be positive")
	}
	budgets := map[string]bool{}
	for i, b := range c.Budgets {
		key := fmt.Sprintf("budgets[%d]", i)
		switch {
		case !nameRE.MatchString(b.Name):
			bad(key+".name", "%q is not a valid name (lower-case letters, digits, '.', '_', '-')", b.Name)
		case budgets[b.Name]:
			bad(key+".name", "budget %q is declared twice", b.Name)
		}
		budgets[b.Name] = true
		if b.Token == "" && b.Alias == "" {
			bad(key, "set token, alias or both: what the budget applies to")
		}
		if b.Alias != "" && !aliases[b.Alias] {
			bad(key+".alias", "%q is not one of gateway.models", b.Alias)
		}
		if _, ok := budgetWindows[b.Window]; !ok {
			bad(key+".window", "%q is not 1h, 1d or 30d", b.Window)
		}
		if math.IsNaN(b.USD) || math.IsInf(b.USD, 0) || b.USD <= 0 {
			bad(key+".usd", "must be a positive amount of USD, got %v", b.USD)
		}
	}
	for model, p := range c.Prices {
		if msg := validPrice(p); msg != "" {
			bad("prices."+model, "%s", msg)
		}
	}
	if c.Cache.Enabled {
		if c.Cache.TTL <= 0 {
			bad("cache.ttl", "must be positive")
		}
		if c.Cache.MaxBytes <= 0 {
			bad("cache.max_bytes", "must be positive")
		}
	}
	if c.Cache.Scope != CacheShared && c.Cache.Scope != CacheByToken {
		bad("cache.scope", "must be %s or %s, got %q", CacheShared, CacheByToken, c.Cache.Scope)
	}
	if c.MaxInFlight < 0 {
		bad("max_in_flight", "must not be negative (0: no cap), got %d", c.MaxInFlight)
	}
	c.Responses.validate(bad)
	if c.Observations.Enabled && (c.Observations.QueueSize < 1 || c.Observations.QueueSize > 1<<20) {
		bad("observations.queue_size", "must be from 1 to 1048576, got %d", c.Observations.QueueSize)
	}
	return errors.Join(errs...)
}
