package gateway

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func budgetHarness(t *testing.T, path string) *harness {
	t.Helper()
	cfg := testCfg()
	// 3 prompt tokens at 100,000 USD per million: 0.30 USD a request.
	cfg.Prices = map[string]Price{"solo": {Input: 100000}}
	cfg.Budgets = []Budget{
		{Name: "app-daily", Token: "app", Window: "1d", USD: 0.5},
		{Name: "single-hourly", Alias: "single", Window: "1h", USD: 1.0},
	}
	h := newHarness(t, cfg)
	if err := h.g.OpenLedger(path); err != nil {
		t.Fatal(err)
	}
	h.g.ledger.now = h.clk.Now
	h.g.TokenName = func(r *http.Request) string { return r.Header.Get("X-Test-Token") }
	t.Cleanup(func() { h.g.Close() })
	return h
}

func (h *harness) as(t *testing.T, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
	r.Header.Set("X-Test-Token", token)
	w := httptest.NewRecorder()
	h.g.HandleChat(w, r)
	h.g.ledger.sync()
	return w
}

func TestBudgets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-spend.db")
	h := budgetHarness(t, path)
	req := chatBody("single", "")
	for i, want := range []int{200, 200, 429} {
		if w := h.as(t, "app", req); w.Code != want {
			t.Fatalf("request %d as app: %d, want %d: %s", i, w.Code, want, w.Body)
		}
	}
	if h.a.count("solo") != 2 {
		t.Fatalf("a request over budget reached the upstream: %d calls", h.a.count("solo"))
	}
	w := h.as(t, "app", req)
	if e := errBody(t, w); w.Code != 429 || e.Code != "budget_exceeded" || e.Type != "insufficient_quota" || w.Header().Get("x-should-retry") != "false" || !strings.Contains(e.Message, `"app-daily"`) {
		t.Fatalf("over budget: %d %+v %v", w.Code, e, w.Header())
	}
	if testutil.ToFloat64(h.g.m.budgetRejections.WithLabelValues("app-daily")) != 2 {
		t.Fatal("rejections not counted")
	}
	// Another token is not held by app's budget, but by the alias's
	// (0.60 spent by app already, 1.00 an hour).
	for i, want := range []int{200, 200, 429} {
		if w := h.as(t, "ops", req); w.Code != want {
			t.Fatalf("request %d as ops: %d, want %d: %s", i, w.Code, want, w.Body)
		}
	}
	// Another alias is not held by either (app's own budget still is).
	if w := h.as(t, "ops", chatBody("chain", "")); w.Code != 200 {
		t.Fatalf("unbudgeted alias: %d", w.Code)
	}

	// Spend survives a restart.
	h.g.Close()
	h2 := budgetHarness(t, path)
	h2.clk.now = h.clk.Now()
	if w := h2.as(t, "app", req); w.Code != 429 {
		t.Fatalf("after reopening the ledger: %d", w.Code)
	}
	// The hourly alias budget frees up after an hour, app's daily one
	// after a day.
	h2.clk.Add(61 * time.Minute)
	if w := h2.as(t, "ops", req); w.Code != 200 {
		t.Fatalf("alias budget after an hour: %d", w.Code)
	}
	if w := h2.as(t, "app", req); w.Code != 429 {
		t.Fatalf("daily budget after an hour: %d", w.Code)
	}
	h2.clk.Add(24 * time.Hour)
	if w := h2.as(t, "app", req); w.Code != 200 {
		t.Fatalf("daily budget after a day: %d", w.Code)
	}

	rec := httptest.NewRecorder()
	h2.g.HandleUsage(rec, httptest.NewRequest("GET", "/v1/llm/usage", nil))
	var u struct {
		Budgets []BudgetStatus
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &u); err != nil || len(u.Budgets) != 2 {
		t.Fatalf("usage: %s", rec.Body)
	}
	if b := u.Budgets[0]; b.Name != "app-daily" || math.Abs(b.SpentUSD-0.3) > 1e-9 || math.Abs(b.RemainingUSD-0.2) > 1e-9 {
		t.Fatalf("app-daily: %+v", b)
	}
	// Amounts are rounded to a nano-dollar: no float noise in the JSON.
	if body := rec.Body.String(); strings.Contains(body, "0000000000") || strings.Contains(body, "9999999999") {
		t.Errorf("usage carries float noise: %s", body)
	}
}

func TestBudgetConfig(t *testing.T) {
	c := testCfg()
	c.Budgets = []Budget{{Name: "x", Window: "1w", USD: math.NaN()}, {Name: "x", Alias: "nope", Window: "1h", USD: 1}}
	err := c.Validate()
	for _, want := range []string{"gateway.budgets[0]: set token, alias", "gateway.budgets[0].window", "gateway.budgets[0].usd", "gateway.budgets[1].name", "gateway.budgets[1].alias"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("no %q in %v", want, err)
		}
	}
}

func TestCacheHitServedOverBudget(t *testing.T) {
	h := budgetHarness(t, filepath.Join(t.TempDir(), "llm-spend.db"))
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	det := chatBody("single", `,"temperature":0`)
	h.as(t, "app", det)
	h.g.cache.sync()
	h.as(t, "app", chatBody("single", `,"temperature":0,"seed":1`)) // 0.60 spent: over app-daily
	if w := h.as(t, "app", chatBody("single", `,"temperature":0,"seed":2`)); w.Code != 429 {
		t.Fatalf("over budget: %d", w.Code)
	}
	w := h.as(t, "app", det)
	if w.Code != 200 || w.Header().Get("x-vigil-cache") != "hit" || h.a.count("solo") != 2 {
		t.Fatalf("cached answer over budget: %d %v, calls %d", w.Code, w.Header(), h.a.count("solo"))
	}
	if testutil.ToFloat64(h.g.m.cacheRequests.WithLabelValues("single", "hit")) != 1 {
		t.Fatal("a hit counted twice")
	}
}

// TestNanoUSD: sums of costs lose their binary noise before they are shown.
func TestNanoUSD(t *testing.T) {
	sum := 0.0
	for range 7 {
		sum += 0.000005 // seven requests at 5 µUSD
	}
	b, _ := json.Marshal(nanoUSD(sum))
	if string(b) != "0.000035" {
		t.Errorf("7 x 0.000005 shown as %s (unrounded %v)", b, sum)
	}
	if v := nanoUSD(0.1 + 0.2); v != 0.3 {
		t.Errorf("0.1 + 0.2 = %v", v)
	}
}
