package gateway

import (
	"fmt"
	"math"
	"strconv"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Price is a model's list price in USD per million tokens.
type Price struct {
	Input float64 `yaml:"input"`
	// CachedInput is the price of prompt tokens served from the upstream's
	// prompt cache; 0 means the same as Input.
	CachedInput float64 `yaml:"cached_input"`
	Output      float64 `yaml:"output"`
}

// PricesAsOf dates the shipped price table. Prices change: override or
// extend them with gateway.prices.
const PricesAsOf = "2026-03"

// DefaultPrices are list prices of a few common upstream models (USD per
// million tokens), keyed by the model name a target names. Anthropic's
// cache writes are billed here as ordinary input (they cost 1.25x).
var DefaultPrices = map[string]Price{
	"gpt-4o":                    {Input: 2.50, CachedInput: 1.25, Output: 10.00},
	"gpt-4o-mini":               {Input: 0.15, CachedInput: 0.075, Output: 0.60},
	"gpt-4.1":                   {Input: 2.00, CachedInput: 0.50, Output: 8.00},
	"gpt-4.1-mini":              {Input: 0.40, CachedInput: 0.10, Output: 1.60},
	"gpt-4.1-nano":              {Input: 0.10, CachedInput: 0.025, Output: 0.40},
	"text-embedding-3-small":    {Input: 0.02},
	"text-embedding-3-large":    {Input: 0.13},
	"gpt-5":                     {Input: 1.25, CachedInput: 0.125, Output: 10.00},
	"gpt-5-mini":                {Input: 0.25, CachedInput: 0.025, Output: 2.00},
	"gpt-5-nano":                {Input: 0.05, CachedInput: 0.005, Output: 0.40},
	"claude-3-5-haiku-20241022": {Input: 0.80, CachedInput: 0.08, Output: 4.00},
	"claude-sonnet-4-20250514":  {Input: 3.00, CachedInput: 0.30, Output: 15.00},
	"claude-opus-4-20250514":    {Input: 15.00, CachedInput: 1.50, Output: 75.00},
	"claude-opus-4-1":           {Input: 15.00, CachedInput: 1.50, Output: 75.00},
	// Claude Sonnet 4.5 costs more (6 and 22.50) for prompts over 200K
	// tokens; this table has one tier.
	"claude-sonnet-4-5": {Input: 3.00, CachedInput: 0.30, Output: 15.00},
	"claude-haiku-4-5":  {Input: 1.00, CachedInput: 0.10, Output: 5.00},
	"claude-opus-4-5":   {Input: 5.00, CachedInput: 0.50, Output: 25.00},
	"claude-sonnet-4-6": {Input: 3.00, CachedInput: 0.30, Output: 15.00},
	"claude-opus-4-6":   {Input: 5.00, CachedInput: 0.50, Output: 25.00},
}

// priceOf finds model's price: by its name, else by its name without a
// trailing release date (gpt-4o-2024-08-06 → gpt-4o,
// claude-sonnet-4-5-20250929 → claude-sonnet-4-5), so that a dated
// snapshot is priced as its family is listed.
func priceOf(prices map[string]Price, model string) (Price, bool) {
	if p, ok := prices[model]; ok {
		return p, true
	}
	if base, ok := withoutDate(model); ok {
		p, ok := prices[base]
		return p, ok
	}
	return Price{}, false
}

// withoutDate strips a trailing -YYYY-MM-DD or -YYYYMMDD.
func withoutDate(model string) (string, bool) {
	digits := func(s string) bool {
		for _, c := range s {
			if c < '0' || c > '9' {
				return false
			}
		}
		return s != ""
	}
	if n := len(model); n > 11 && model[n-11] == '-' && model[n-6] == '-' && model[n-3] == '-' &&
		digits(model[n-10:n-6]+model[n-5:n-3]+model[n-2:]) {
		return model[:n-11], true
	}
	if n := len(model); n > 9 && model[n-9] == '-' && digits(model[n-8:]) && model[n-8:n-6] == "20" {
		return model[:n-9], true
	}
	return "", false
}

// validPrice reports a problem with p, or "".
func validPrice(p Price) string {
	for _, v := range []float64{p.Input, p.CachedInput, p.Output} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e6 {
			return fmt.Sprintf("prices must be finite, from 0 to 1000000 USD per million tokens, got %v", v)
		}
	}
	return ""
}

// prices merges the shipped table with the configured one.
func prices(cfg map[string]Price) map[string]Price {
	out := make(map[string]Price, len(DefaultPrices)+len(cfg))
	for k, v := range DefaultPrices {
		out[k] = v
	}
	for k, v := range cfg {
		out[k] = v
	}
	return out
}

// cost is the USD cost of usage at p. ok is false without usage.
func cost(p Price, u *pb.Usage) (usd float64, ok bool) {
	if u == nil {
		return 0, false
	}
	cached := float64(min(max(u.GetCachedPromptTokens(), 0), max(u.GetPromptTokens(), 0)))
	fresh := float64(max(u.GetPromptTokens(), 0)) - cached
	cachedPrice := p.CachedInput
	if cachedPrice == 0 {
		cachedPrice = p.Input
	}
	usd = (fresh*p.Input + cached*cachedPrice + float64(max(u.GetCompletionTokens(), 0))*p.Output) / 1e6
	return usd, true
}

// costFor prices usage of a target's model; ok is false when the model has
// no price or there is no usage.
func (g *Gateway) costFor(o outcome, u *pb.Usage) (float64, bool) {
	if o.target == nil {
		return 0, false
	}
	p, ok := priceOf(g.prices, o.target.model)
	if !ok {
		return 0, false
	}
	usd, ok := cost(p, u)
	if ok {
		g.m.cost.WithLabelValues(o.alias, o.target.provider, o.target.model).Add(usd)
	}
	return usd, ok
}

func formatUSD(v float64) string { return strconv.FormatFloat(v, 'f', 8, 64) }
