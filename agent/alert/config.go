package alert

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigilml/vigil/agent/observe"
)

// Rule names, as they appear in config keys, in the `rule` label and as
// the Alertmanager alertname (prefixed "Vigil", see AlertName).
const (
	RuleLatencyP95   = "latency_p95"
	RuleErrorRate    = "error_rate"
	RuleDrift        = "drift"
	RuleAccuracyDrop = "accuracy_drop"
)

// RuleNames lists every rule in evaluation order.
var RuleNames = []string{RuleLatencyP95, RuleErrorRate, RuleDrift, RuleAccuracyDrop}

// Config is the `alerts:` section of the agent configuration. A zero
// field takes its default, so a partial section is valid.
type Config struct {
	// Enabled turns alert evaluation on. Default true.
	Enabled *bool `yaml:"enabled"`
	// Interval is how often every rule is evaluated. Default 15s.
	Interval time.Duration `yaml:"interval"`
	// ResolvedRetention is how long a resolved alert stays listed by
	// GET /v1/alerts (and is re-sent to Alertmanager as resolved). Default
	// 15m.
	ResolvedRetention time.Duration `yaml:"resolved_retention"`
	// ResendInterval is how often a firing alert is sent again to every
	// Alertmanager (which forgets an alert once its endsAt passes).
	// Default 1m.
	ResendInterval time.Duration `yaml:"resend_interval"`
	// GeneratorURL, when set, is sent as every alert's generatorURL
	// (e.g. a dashboard link).
	GeneratorURL string `yaml:"generator_url"`
	// Rules are the defaults of every rule for every model.
	Rules Rules `yaml:"rules"`
	// Models override Rules per model name; a key left out keeps the
	// value of Rules.
	Models map[string]Rules `yaml:"models"`
	// Alertmanagers receive alerts by Alertmanager's v2 API.
	Alertmanagers []Receiver `yaml:"alertmanagers"`
	// Webhooks receive alert state changes as plain JSON.
	Webhooks []Receiver `yaml:"webhooks"`
	// Delivery tunes retries and queues for every receiver.
	Delivery Delivery `yaml:"delivery"`
}

// Rules holds one RuleConfig per rule.
type Rules struct {
	LatencyP95   RuleConfig `yaml:"latency_p95"`
	ErrorRate    RuleConfig `yaml:"error_rate"`
	Drift        RuleConfig `yaml:"drift"`
	AccuracyDrop RuleConfig `yaml:"accuracy_drop"`
}

// get returns the named rule's config.
func (r *Rules) get(name string) *RuleConfig {
	switch name {
	case RuleLatencyP95:
		return &r.LatencyP95
	case RuleErrorRate:
		return &r.ErrorRate
	case RuleDrift:
		return &r.Drift
	case RuleAccuracyDrop:
		return &r.AccuracyDrop
	}
	return nil
}

// RuleConfig is one rule's settings. Every field is optional: nil takes
// the global rule's value, then the built-in default.
type RuleConfig struct {
	// Enabled: false turns the rule off (for one model, or for all).
	Enabled *bool `yaml:"enabled" json:"enabled"`
	// Warning and Critical are the thresholds the value must exceed, in
	// the rule's unit: milliseconds for latency_p95, a ratio (0.001 =
	// 0.1 %) for error_rate and accuracy_drop. Not settable for drift.
	Warning  *float64 `yaml:"warning" json:"warning"`
	Critical *float64 `yaml:"critical" json:"critical"`
	// For is how long the condition must hold before the alert fires.
	For *time.Duration `yaml:"for" json:"for"`
	// MinSamples is the least number of samples in the window for the
	// condition to count: requests with a latency (latency_p95), requests
	// (error_rate), labelled predictions (accuracy_drop). Not for drift.
	MinSamples *int `yaml:"min_samples" json:"min_samples"`
	// Window is the sliding window evaluated: 1m, 5m or 1h. Not for drift.
	Window *time.Duration `yaml:"window" json:"window"`
	// Hysteresis: an active alert resolves only when the value is below
	// warning × (1 - hysteresis), and de-escalates from critical only
	// below critical × (1 - hysteresis). 0 to 0.9.
	Hysteresis *float64 `yaml:"hysteresis" json:"hysteresis"`
	// Resolve, when set, replaces warning × (1 - hysteresis) as the value
	// below which an active alert resolves. Must not exceed warning.
	Resolve *float64 `yaml:"resolve" json:"resolve"`
}

// Receiver is one Alertmanager or webhook.
type Receiver struct {
	// Name identifies the receiver in metrics, logs and the status.
	// Default: the URL's scheme, host and path.
	Name string `yaml:"name"`
	// URL: for an Alertmanager its base URL (http://host:9093; the agent
	// posts to <url>/api/v2/alerts); for a webhook the URL posted to.
	URL string `yaml:"url"`
	// Headers are extra HTTP headers. Not for secrets: Authorization is
	// refused here, use bearer_token_file or bearer_token_env.
	Headers map[string]string `yaml:"headers"`
	// BearerTokenFile holds a token sent as "Authorization: Bearer ...";
	// read for every request, so a rotated token applies at once.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// BearerTokenEnv names an environment variable of the agent holding
	// the token; read at start.
	BearerTokenEnv string `yaml:"bearer_token_env"`
	// Timeout bounds one request. Default: delivery.timeout.
	Timeout time.Duration `yaml:"timeout"`
}

// Delivery tunes retries and queues.
type Delivery struct {
	// Timeout bounds one HTTP request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// MaxAttempts is how many times one notification is tried, the first
	// included, before it is counted as failed. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// MinBackoff and MaxBackoff bound the exponential backoff with full
	// jitter between attempts. Defaults 500ms and 30s.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// QueueSize bounds the notifications waiting per receiver; when full,
	// the oldest waiting one is dropped (counted). Default 100.
	QueueSize int `yaml:"queue_size"`
}

func ptr[T any](v T) *T { return &v }

// Built-in rule defaults: the playbook's thresholds.
func defaultRules() Rules {
	return Rules{
		LatencyP95: RuleConfig{Enabled: ptr(true), Warning: ptr(100.0), Critical: ptr(200.0),
			For: ptr(time.Minute), MinSamples: ptr(100), Window: ptr(5 * time.Minute), Hysteresis: ptr(0.1)},
		ErrorRate: RuleConfig{Enabled: ptr(true), Warning: ptr(0.001), Critical: ptr(0.01),
			For: ptr(time.Minute), MinSamples: ptr(100), Window: ptr(5 * time.Minute), Hysteresis: ptr(0.1)},
		Drift: RuleConfig{Enabled: ptr(true), For: ptr(time.Duration(0)), Hysteresis: ptr(0.1)},
		AccuracyDrop: RuleConfig{Enabled: ptr(true), Warning: ptr(0.02), Critical: ptr(0.05),
			For: ptr(5 * time.Minute), MinSamples: ptr(100), Window: ptr(time.Hour), Hysteresis: ptr(0.1)},
	}
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:           ptr(true),
		Interval:          15 * time.Second,
		ResolvedRetention: 15 * time.Minute,
		ResendInterval:    time.Minute,
		Rules:             defaultRules(),
		Delivery: Delivery{
			Timeout:     10 * time.Second,
			MaxAttempts: 5,
			MinBackoff:  500 * time.Millisecond,
			MaxBackoff:  30 * time.Second,
			QueueSize:   100,
		},
	}
}

// IsEnabled reports whether alert evaluation is on.
func (c Config) IsEnabled() bool { return c.Enabled == nil || *c.Enabled }

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Interval == 0 {
		c.Interval = d.Interval
	}
	if c.ResolvedRetention == 0 {
		c.ResolvedRetention = d.ResolvedRetention
	}
	if c.ResendInterval == 0 {
		c.ResendInterval = d.ResendInterval
	}
	if c.Delivery.Timeout == 0 {
		c.Delivery.Timeout = d.Delivery.Timeout
	}
	if c.Delivery.MaxAttempts == 0 {
		c.Delivery.MaxAttempts = d.Delivery.MaxAttempts
	}
	if c.Delivery.MinBackoff == 0 {
		c.Delivery.MinBackoff = d.Delivery.MinBackoff
	}
	if c.Delivery.MaxBackoff == 0 {
		c.Delivery.MaxBackoff = d.Delivery.MaxBackoff
	}
	if c.Delivery.QueueSize == 0 {
		c.Delivery.QueueSize = d.Delivery.QueueSize
	}
	return c
}

// Effective is one rule's resolved settings for one model.
type Effective struct {
	Rule       string        `json:"rule"`
	Enabled    bool          `json:"enabled"`
	Warning    float64       `json:"warning"`
	Critical   float64       `json:"critical"`
	For        time.Duration `json:"for"`
	MinSamples int           `json:"min_samples"`
	Window     time.Duration `json:"window"`
	Hysteresis float64       `json:"hysteresis"`
	// Resolve is the value below which an active alert resolves.
	Resolve float64 `json:"resolve"`
}

// merge fills nil fields of dst from src.
func merge(dst *RuleConfig, src RuleConfig) {
	if dst.Enabled == nil {
		dst.Enabled = src.Enabled
	}
	if dst.Warning == nil {
		dst.Warning = src.Warning
	}
	if dst.Critical == nil {
		dst.Critical = src.Critical
	}
	if dst.For == nil {
		dst.For = src.For
	}
	if dst.MinSamples == nil {
		dst.MinSamples = src.MinSamples
	}
	if dst.Window == nil {
		dst.Window = src.Window
	}
	if dst.Hysteresis == nil {
		dst.Hysteresis = src.Hysteresis
	}
	if dst.Resolve == nil {
		dst.Resolve = src.Resolve
	}
}

// RuleFor returns rule's settings for model: the model's override, then
// the global rule, then the built-in default, key by key.
func (c Config) RuleFor(rule, model string) Effective {
	var rc RuleConfig
	if m, ok := c.Models[model]; ok {
		rc = *m.get(rule)
	}
	merge(&rc, *c.Rules.get(rule))
	def := defaultRules()
	merge(&rc, *def.get(rule))
	e := Effective{Rule: rule, Enabled: *rc.Enabled, For: *rc.For, Hysteresis: *rc.Hysteresis}
	if rc.Warning != nil {
		e.Warning = *rc.Warning
	}
	if rc.Critical != nil {
		e.Critical = *rc.Critical
	}
	if rc.MinSamples != nil {
		e.MinSamples = *rc.MinSamples
	}
	if rc.Window != nil {
		e.Window = *rc.Window
	}
	e.Resolve = e.Warning * (1 - e.Hysteresis)
	if rc.Resolve != nil {
		e.Resolve = *rc.Resolve
	}
	return e
}

var headerName = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)

// Validate names every invalid key as alerts.<key>.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("alerts.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.Interval != 0 && (c.Interval < 100*time.Millisecond || c.Interval > 10*time.Minute) {
		bad("interval", "must be between 100ms and 10m, got %s", c.Interval)
	}
	if c.ResolvedRetention < 0 || c.ResolvedRetention > 7*24*time.Hour {
		bad("resolved_retention", "must be between 0 and 168h, got %s", c.ResolvedRetention)
	}
	if c.ResendInterval != 0 && (c.ResendInterval < 100*time.Millisecond || c.ResendInterval > time.Hour) {
		bad("resend_interval", "must be between 100ms and 1h, got %s", c.ResendInterval)
	}
	if c.GeneratorURL != "" {
		if u, err := url.Parse(c.GeneratorURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("generator_url", "%q is not an http(s) URL", c.GeneratorURL)
		}
	}
	// Each level checked on its own, then every model's effective values
	// (where warning and critical may come from different levels).
	for _, name := range RuleNames {
		validateRule(bad, "rules."+name, name, *c.Rules.get(name))
	}
	models := make([]string, 0, len(c.Models))
	for m := range c.Models {
		models = append(models, m)
	}
	slices.Sort(models)
	for _, m := range models {
		if strings.TrimSpace(m) == "" {
			bad("models", "a model name must not be empty")
			continue
		}
		r := c.Models[m]
		for _, name := range RuleNames {
			validateRule(bad, "models."+m+"."+name, name, *r.get(name))
		}
	}
	for _, m := range append([]string{""}, models...) {
		for _, name := range []string{RuleLatencyP95, RuleErrorRate, RuleAccuracyDrop} {
			key := "rules." + name
			if m != "" {
				// A model that sets none of these for the rule inherits
				// the global values, whose error is reported once, above.
				r := c.Models[m]
				if rc := r.get(name); rc.Warning == nil && rc.Critical == nil && rc.Resolve == nil && rc.Hysteresis == nil {
					continue
				}
				key = "models." + m + "." + name
			}
			e := c.RuleFor(name, m)
			if e.Critical < e.Warning {
				bad(key+".critical", "%g is below warning %g; critical must be at least warning", e.Critical, e.Warning)
			}
			if e.Resolve > e.Warning {
				bad(key+".resolve", "%g is above warning %g; an alert must resolve below the value that raises it", e.Resolve, e.Warning)
			}
		}
	}
	names := map[string]string{}
	for _, group := range []struct {
		kind string
		list []Receiver
	}{{"alertmanagers", c.Alertmanagers}, {"webhooks", c.Webhooks}} {
		kind := group.kind
		for i, r := range group.list {
			key := fmt.Sprintf("%s[%d]", kind, i)
			u, err := url.Parse(r.URL)
			switch {
			case r.URL == "":
				bad(key+".url", "is required")
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				bad(key+".url", "%q is not an http(s) URL", redactURL(r.URL))
			case u.User != nil:
				bad(key+".url", "must not hold credentials; use bearer_token_file or bearer_token_env")
			}
			name := r.displayName()
			if prev, dup := names[name]; dup {
				bad(key+".name", "%q is also the name of alerts.%s; give each receiver its own name", name, prev)
			}
			names[name] = key
			if r.BearerTokenFile != "" && r.BearerTokenEnv != "" {
				bad(key+".bearer_token_env", "set bearer_token_file or bearer_token_env, not both")
			}
			if r.Timeout < 0 || r.Timeout > 5*time.Minute {
				bad(key+".timeout", "must be between 0 and 5m, got %s", r.Timeout)
			}
			for h := range r.Headers {
				switch {
				case !headerName.MatchString(h):
					bad(key+".headers."+h, "is not a valid HTTP header name")
				case strings.EqualFold(h, "Authorization"):
					bad(key+".headers."+h, "secrets do not belong in headers; use bearer_token_file or bearer_token_env")
				case strings.EqualFold(h, "Content-Type") || strings.EqualFold(h, "Content-Length") || strings.EqualFold(h, "Host"):
					bad(key+".headers."+h, "is set by the agent")
				}
			}
		}
	}
	d := c.Delivery
	if d.Timeout < 0 || d.Timeout > 5*time.Minute {
		bad("delivery.timeout", "must be between 0 and 5m, got %s", d.Timeout)
	}
	if d.MaxAttempts < 0 || d.MaxAttempts > 100 {
		bad("delivery.max_attempts", "must be between 1 and 100, got %d", d.MaxAttempts)
	}
	if d.MinBackoff < 0 {
		bad("delivery.min_backoff", "must not be negative, got %s", d.MinBackoff)
	}
	if d.MaxBackoff < 0 || (d.MaxBackoff != 0 && d.MaxBackoff < d.MinBackoff) {
		bad("delivery.max_backoff", "must be at least min_backoff (%s), got %s", d.MinBackoff, d.MaxBackoff)
	}
	if d.QueueSize < 0 || d.QueueSize > 100_000 {
		bad("delivery.queue_size", "must be between 1 and 100000, got %d", d.QueueSize)
	}
	return errors.Join(errs...)
}

func validateRule(bad func(key, format string, args ...any), key, name string, r RuleConfig) {
	if name == RuleDrift {
		// The drift engine owns thresholds, windows and sample sizes.
		for _, f := range []struct {
			k   string
			set bool
		}{{"warning", r.Warning != nil}, {"critical", r.Critical != nil}, {"min_samples", r.MinSamples != nil}, {"window", r.Window != nil}, {"resolve", r.Resolve != nil}} {
			if f.set {
				bad(key+"."+f.k, "does not apply to drift: the drift engine sets thresholds, windows and sample sizes per feature (drift section of docs/configuration.md)")
			}
		}
	}
	for _, f := range []struct {
		k string
		v *float64
	}{{"warning", r.Warning}, {"critical", r.Critical}, {"resolve", r.Resolve}} {
		if f.v != nil && !(*f.v >= 0) {
			bad(key+"."+f.k, "must be a number >= 0, got %g", *f.v)
		}
	}
	if name == RuleErrorRate || name == RuleAccuracyDrop {
		for _, f := range []struct {
			k string
			v *float64
		}{{"warning", r.Warning}, {"critical", r.Critical}} {
			if f.v != nil && *f.v > 1 {
				bad(key+"."+f.k, "is a ratio between 0 and 1 (0.01 = 1%%), got %g", *f.v)
			}
		}
	}
	if r.For != nil && (*r.For < 0 || *r.For > 24*time.Hour) {
		bad(key+".for", "must be between 0 and 24h, got %s", *r.For)
	}
	if r.MinSamples != nil && (*r.MinSamples < 1 || *r.MinSamples > 100_000_000) {
		bad(key+".min_samples", "must be between 1 and 100000000, got %d", *r.MinSamples)
	}
	if r.Window != nil {
		if _, err := observe.ParseWindow(observe.WindowName(*r.Window)); err != nil {
			bad(key+".window", "%s is not one of 1m, 5m, 1h (the windows agent/observe keeps)", *r.Window)
		}
	}
	if r.Hysteresis != nil && (!(*r.Hysteresis >= 0) || *r.Hysteresis > 0.9) {
		bad(key+".hysteresis", "must be between 0 and 0.9, got %g", *r.Hysteresis)
	}
}

// displayName is the receiver's name, or its URL's scheme and host (a
// webhook URL's path and query often hold a secret).
func (r Receiver) displayName() string {
	if r.Name != "" {
		return r.Name
	}
	return redactURL(r.URL)
}

// redactURL keeps only the scheme and host: credentials, path and query
// may hold secrets (Slack-style webhook URLs carry a token in the path).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// header returns r's headers as an http.Header.
func (r Receiver) header() http.Header {
	h := http.Header{}
	for k, v := range r.Headers {
		h.Set(k, v)
	}
	return h
}
