package gateway

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFormatUSD: ordinary amounts keep their fixed decimals; a non-zero
// amount too small for them gets three significant digits instead of
// reading as zero.
func TestFormatUSD(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		dec  int
		want string
	}{
		{0, 2, "0.00"},
		{0, 4, "0.0000"},
		{10, 2, "10.00"},
		{1, 4, "1.0000"},
		{0.5, 2, "0.50"},
		{0.01, 2, "0.01"},
		{0.001, 2, "0.00100"},
		{0.0001, 4, "0.0001"},
		{0.00000135, 4, "0.00000135"},
		{0.0000132, 4, "0.0000132"},
		{-0.00005, 4, "-0.0000500"},
	} {
		if got := FormatUSD(tc.v, tc.dec); got != tc.want {
			t.Errorf("FormatUSD(%v, %d) = %q, want %q", tc.v, tc.dec, got, tc.want)
		}
	}
}

// TestBudgetMessageSmallAmounts: a budget below a cent, spent by cheap
// calls, is refused with a message that shows both amounts, not "USD
// 0.00 ... USD 0.0000".
func TestBudgetMessageSmallAmounts(t *testing.T) {
	cfg := testCfg()
	// 3 prompt tokens at 1 USD per million: 0.000003 USD a request.
	cfg.Prices = map[string]Price{"solo": {Input: 1}}
	cfg.Budgets = []Budget{{Name: "tiny", Alias: "single", Window: "1h", USD: 0.000002}}
	h := newHarness(t, cfg)
	if err := h.g.OpenLedger(filepath.Join(t.TempDir(), "llm-spend.db")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.g.Close() })
	if w := h.as(t, "app", chatBody("single", "")); w.Code != 200 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	w := h.as(t, "app", chatBody("single", ""))
	e := errBody(t, w)
	if w.Code != 429 || !strings.Contains(e.Message, "(USD 0.00000200 per 1h)") || !strings.Contains(e.Message, "USD 0.00000300 in the last 1h") {
		t.Fatalf("%d %q", w.Code, e.Message)
	}
}

// TestUnpricedBudgets: a budget whose aliases have no priced upstream
// model is named (it would never be charged); one with a priced target,
// directly or through its context-window fallback, is not.
func TestUnpricedBudgets(t *testing.T) {
	cfg := testCfg()
	cfg.Budgets = []Budget{
		{Name: "on-single", Alias: "single", Window: "1h", USD: 1},
		{Name: "on-chain", Alias: "chain", Window: "1h", USD: 1},
		{Name: "on-token", Token: "app", Window: "1d", USD: 1},
	}
	got := unpricedBudgets(cfg, prices(nil))
	if len(got) != 3 || !strings.Contains(got[0], `budget "on-single" will never be charged`) || !strings.Contains(got[2], "(chain, single, long, split)") {
		t.Fatalf("nothing priced: %q", got)
	}
	// "big" is the target of chain's fallback alias, long.
	got = unpricedBudgets(cfg, prices(map[string]Price{"big": {Input: 1}}))
	if len(got) != 1 || !strings.Contains(got[0], `"on-single"`) {
		t.Fatalf("big priced: %q", got)
	}
	if got = unpricedBudgets(cfg, prices(map[string]Price{"solo": {Input: 1}, "big": {Input: 1}})); len(got) != 0 {
		t.Fatalf("every budget priced: %q", got)
	}
}
