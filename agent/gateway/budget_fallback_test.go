package gateway

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/vigilml/vigil/sdk"
)

// A budget on an alias holds the requests made for it, whoever answers
// them: an answer from its context_window_fallback is charged to it (the
// budget is checked against the requested alias, before routing), not to
// the fallback alias's budgets, whose check such requests never pass.
func TestBudgetChargesTheRequestedAlias(t *testing.T) {
	cfg := testCfg()
	// 3 prompt tokens at 100,000 USD per million: 0.30 USD an answer of
	// the fallback's model.
	cfg.Prices = map[string]Price{"big": {Input: 100000}}
	cfg.Budgets = []Budget{
		{Name: "chain-hourly", Alias: "chain", Window: "1h", USD: 0.5},
		{Name: "long-hourly", Alias: "long", Window: "1h", USD: 0.5},
	}
	h := newHarness(t, cfg)
	if err := h.g.OpenLedger(filepath.Join(t.TempDir(), "llm-spend.db")); err != nil {
		t.Fatal(err)
	}
	h.g.ledger.now = h.clk.Now
	h.g.TokenName = func(*http.Request) string { return "" }
	t.Cleanup(func() { h.g.Close() })
	tooLong := func() error { return sdk.Errorf(sdk.ContextLengthExceeded, "too long for m1") }
	for i, want := range []int{200, 200, 429} {
		h.a.fail("m1", tooLong())
		w := h.as(t, "", chatBody("chain", ""))
		if w.Code != want {
			t.Fatalf("request %d for chain: %d, want %d: %s", i, w.Code, want, w.Body)
		}
		if want == 200 && w.Header().Get("x-vigil-model") != "big" {
			t.Fatalf("request %d answered by %s, want the fallback", i, w.Header().Get("x-vigil-model"))
		}
	}
	if h.b.count("big") != 2 {
		t.Fatalf("fallback calls %d, want 2", h.b.count("big"))
	}
	if spent := h.g.ledger.spent("chain-hourly", budgetWindows["1h"]); spent < 0.59 || spent > 0.61 {
		t.Fatalf("chain-hourly spent %v, want 0.60", spent)
	}
	if spent := h.g.ledger.spent("long-hourly", budgetWindows["1h"]); spent != 0 {
		t.Fatalf("long-hourly spent %v by requests for chain", spent)
	}
	// The fallback alias asked for itself is held by its own budget.
	if w := h.as(t, "", chatBody("long", "")); w.Code != 200 {
		t.Fatalf("long: %d: %s", w.Code, w.Body)
	}
}
