package gateway

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigilml/vigil/agent/store"
)

// spendBucket is the KV bucket of the spend ledger: key "budget/unixhour",
// value the USD spent in that hour (float64 bits, big-endian).
const spendBucket = "spend"

// maxWindow is the longest budget window; older spend is forgotten.
const maxWindow = 30 * 24 * time.Hour

// ledger keeps what each budget has spent, per hour, in memory and in its
// own bbolt file (written behind by one goroutine, like the cache).
// Windows slide by the hour.
type ledger struct {
	kv     *store.KV
	logger *slog.Logger
	now    func() time.Time

	mu    sync.Mutex
	hours map[string]map[int64]float64 // budget -> unix hour -> USD

	wmu       sync.RWMutex
	closed    bool
	writes    chan spendWrite
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

type spendWrite struct {
	key     string
	usd     float64
	barrier chan struct{}
}

func openLedger(kv *store.KV, budgets []Budget, logger *slog.Logger) (*ledger, error) {
	l := &ledger{kv: kv, logger: logger, now: time.Now, hours: map[string]map[int64]float64{},
		writes: make(chan spendWrite, 1024), done: make(chan struct{})}
	known := map[string]bool{}
	for _, b := range budgets {
		known[b.Name] = true
		l.hours[b.Name] = map[int64]float64{}
		known[b.Name+estimatedSuffix] = true // usage_estimate.go
		l.hours[b.Name+estimatedSuffix] = map[int64]float64{}
	}
	oldest := l.now().Add(-maxWindow).Unix() / 3600
	err := kv.ForEach(spendBucket, func(k, v []byte) error {
		name, hour, ok := strings.Cut(string(k), "/")
		h, err := strconv.ParseInt(hour, 10, 64)
		if !ok || err != nil || len(v) != 8 || !known[name] || h < oldest {
			return nil // a budget no longer configured, or spend past every window
		}
		l.hours[name][h] = math.Float64frombits(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	go l.writer()
	return l, nil
}

func (l *ledger) writer() {
	defer close(l.done)
	for w := range l.writes {
		if w.barrier != nil {
			close(w.barrier)
			continue
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], math.Float64bits(w.usd))
		if err := l.kv.Put(context.Background(), spendBucket, []byte(w.key), v[:]); err != nil {
			l.logger.Warn("LLM spend ledger write failed", "err", err)
		}
	}
}

// sync waits until every write queued so far is committed.
func (l *ledger) sync() {
	b := make(chan struct{})
	l.wmu.RLock()
	if l.closed {
		l.wmu.RUnlock()
		return
	}
	l.writes <- spendWrite{barrier: b}
	l.wmu.RUnlock()
	<-b
}

func (l *ledger) close() error {
	l.closeOnce.Do(func() {
		l.wmu.Lock()
		l.closed = true
		close(l.writes)
		l.wmu.Unlock()
		<-l.done
		l.closeErr = l.kv.Close()
	})
	return l.closeErr
}

// spent sums a budget's spend within window of now.
func (l *ledger) spent(name string, window time.Duration) float64 {
	from := l.now().Add(-window).Unix()/3600 + 1
	l.mu.Lock()
	defer l.mu.Unlock()
	total := 0.0
	for h, usd := range l.hours[name] {
		if h >= from {
			total += usd
		}
	}
	return total
}

// charge adds usd to a budget's current hour. The write is queued; when
// the queue is full it blocks rather than forget money spent.
func (l *ledger) charge(name string, usd float64) {
	now := l.now()
	h := now.Unix() / 3600
	oldest := now.Add(-maxWindow).Unix() / 3600
	l.mu.Lock()
	m := l.hours[name]
	if m == nil {
		l.mu.Unlock()
		return
	}
	m[h] += usd
	total := m[h]
	for old := range m {
		if old < oldest {
			delete(m, old)
		}
	}
	l.mu.Unlock()
	l.wmu.RLock()
	defer l.wmu.RUnlock()
	if !l.closed {
		l.writes <- spendWrite{key: name + "/" + strconv.FormatInt(h, 10), usd: total}
	}
}

// tokenKey carries the API token's name in a request's context.
type tokenKey struct{}

// budgetAliasKey carries the alias a request asked for, whose budgets it
// was checked against; set by overBudget.
type budgetAliasKey struct{}

// budgetAlias is the alias whose budgets a request's spend is charged to:
// the one it asked for and was checked against, even when its
// context_window_fallback answered (answering is the alias of the answer,
// used when the request was never checked).
func budgetAlias(ctx context.Context, answering string) string {
	if a, ok := ctx.Value(budgetAliasKey{}).(string); ok {
		return a
	}
	return answering
}

// matching returns the budgets that apply to a request with this token on
// this alias.
func (g *Gateway) matching(token, alias string) []Budget {
	var out []Budget
	for _, b := range g.cfg.Budgets {
		if (b.Token == "" || b.Token == token) && (b.Alias == "" || b.Alias == alias) {
			out = append(out, b)
		}
	}
	return out
}

// overBudget returns the error for the first applicable budget that is
// spent, or nil. The returned context carries alias, so that the
// request's spend is charged to the budgets it was checked against.
func (g *Gateway) overBudget(ctx context.Context, alias string) (context.Context, *Error) {
	ctx = context.WithValue(ctx, budgetAliasKey{}, alias)
	if g.ledger == nil {
		return ctx, nil
	}
	token, _ := ctx.Value(tokenKey{}).(string)
	for _, b := range g.matching(token, alias) {
		spent := g.ledger.spent(b.Name, budgetWindows[b.Window])
		if spent >= b.USD {
			g.m.budgetRejections.WithLabelValues(b.Name).Inc()
			e := &Error{Status: http.StatusTooManyRequests, Type: "insufficient_quota", Code: "budget_exceeded",
				Message: fmt.Sprintf("budget %q (USD %s per %s) is spent: USD %s in the last %s; it frees up as that spend ages out of the window", b.Name, FormatUSD(b.USD, 2), b.Window, FormatUSD(spent, 4), b.Window),
				noRetry: true}
			return ctx, e
		}
	}
	return ctx, nil
}

// charge books usd against every budget that applies.
func (g *Gateway) charge(ctx context.Context, alias string, usd float64) {
	if g.ledger == nil || usd <= 0 {
		return
	}
	token, _ := ctx.Value(tokenKey{}).(string)
	for _, b := range g.matching(token, alias) {
		g.ledger.charge(b.Name, usd)
	}
}

// unpricedBudgets names the budgets that can never be charged: no target
// of the aliases they apply to (and of those aliases' context-window
// fallbacks) has a price, so every answer costs nothing to them. Prices
// match the configured upstream model name, or that name without a
// trailing date (priceOf), so a newer name missing from the table
// ("gpt-4.2") would leave a budget silently open.
func unpricedBudgets(cfg Config, prices map[string]Price) []string {
	models := make(map[string]Model, len(cfg.Models))
	for _, m := range cfg.Models {
		models[m.Name] = m
	}
	priced := func(alias string) bool {
		for _, name := range []string{alias, models[alias].ContextWindowFallback} {
			for _, t := range models[name].Targets {
				if _, ok := priceOf(prices, t.Model); ok {
					return true
				}
			}
		}
		return false
	}
	var out []string
	for _, b := range cfg.Budgets {
		aliases := []string{b.Alias}
		if b.Alias == "" {
			aliases = aliases[:0]
			for _, m := range cfg.Models {
				aliases = append(aliases, m.Name)
			}
		}
		if !slices.ContainsFunc(aliases, priced) {
			out = append(out, fmt.Sprintf("gateway.budgets: budget %q will never be charged: no upstream model of the aliases it applies to (%s) has a price in the shipped table or gateway.prices, and answers without a price cost nothing", b.Name, strings.Join(aliases, ", ")))
		}
	}
	return out
}

// FormatUSD writes an amount with decimals places, or with three
// significant digits when that would show a non-zero amount as zero: a
// budget of USD 0.001, or the spend of a few calls to a cheap model
// (about USD 0.000001 each), must not read 0.00.
func FormatUSD(v float64, decimals int) string {
	if a := math.Abs(v); a != 0 && a < math.Pow10(-decimals) {
		decimals = 2 - int(math.Floor(math.Log10(a)))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// BudgetStatus is one budget in GET /v1/llm/usage.
type BudgetStatus struct {
	Name         string  `json:"name"`
	Token        string  `json:"token,omitempty"`
	Alias        string  `json:"alias,omitempty"`
	Window       string  `json:"window"`
	LimitUSD     float64 `json:"limit_usd"`
	SpentUSD     float64 `json:"spent_usd"`
	RemainingUSD float64 `json:"remaining_usd"`
	// EstimatedUSD is the part of SpentUSD priced from token counts the
	// gateway estimated because the upstream reported no usage.
	EstimatedUSD float64 `json:"estimated_usd"`
}

// HandleUsage serves GET /v1/llm/usage: every budget's spend in its
// window; to a caller for whom OwnUsageOnly is true (an llm-scope token),
// only the budgets that name its token.
func (g *Gateway) HandleUsage(w http.ResponseWriter, r *http.Request) {
	out := []BudgetStatus{}
	own := g.OwnUsageOnly != nil && g.OwnUsageOnly(r)
	for _, b := range g.cfg.Budgets {
		if own && (g.TokenName == nil || b.Token == "" || b.Token != g.TokenName(r)) {
			continue
		}
		s := BudgetStatus{Name: b.Name, Token: b.Token, Alias: b.Alias, Window: b.Window, LimitUSD: b.USD}
		if g.ledger != nil {
			s.SpentUSD = g.ledger.spent(b.Name, budgetWindows[b.Window])
			s.EstimatedUSD = g.ledger.spent(b.Name+estimatedSuffix, budgetWindows[b.Window])
		}
		s.RemainingUSD = math.Max(0, b.USD-s.SpentUSD)
		// Sums of float64 costs carry binary noise (0.000035000000000000004):
		// a nano-dollar is finer than any price.
		s.SpentUSD, s.EstimatedUSD, s.RemainingUSD = nanoUSD(s.SpentUSD), nanoUSD(s.EstimatedUSD), nanoUSD(s.RemainingUSD)
		out = append(out, s)
	}
	writeJSON(w, http.StatusOK, map[string]any{"budgets": out, "prices_as_of": PricesAsOf})
}

// nanoUSD rounds v to a billionth of a dollar.
func nanoUSD(v float64) float64 { return math.Round(v*1e9) / 1e9 }
