package gateway

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Spend priced from estimated usage is charged to budgets like any other
// and shown apart in GET /v1/llm/usage, also after the ledger is reopened.
func TestBudgetEstimatedSpend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-spend.db")
	cfg := DefaultConfig()
	cfg.Cache.Enabled = false
	cfg.Providers = []Provider{{Name: "quiet", Plugin: "openai"}, {Name: "loud", Plugin: "openai"}}
	cfg.Models = []Model{
		{Name: "quiet", Targets: []Target{{Provider: "quiet", Model: "m"}}},
		{Name: "loud", Targets: []Target{{Provider: "loud", Model: "m"}}},
	}
	cfg.Prices = map[string]Price{"m": {Input: 1000, Output: 1000}}
	cfg.Budgets = []Budget{{Name: "all", Token: "app", Window: "1d", USD: 100}}
	open := func() *Gateway {
		g, err := New(cfg, providerMap{"quiet": usageless{newScripted()}, "loud": newScripted()}, nil, prometheus.NewRegistry(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.OpenLedger(path); err != nil {
			t.Fatal(err)
		}
		g.TokenName = func(*http.Request) string { return "app" }
		return g
	}
	usage := func(g *Gateway) BudgetStatus {
		w := httptest.NewRecorder()
		g.HandleUsage(w, httptest.NewRequest("GET", "/v1/llm/usage", nil))
		var out struct{ Budgets []BudgetStatus }
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Budgets) != 1 {
			t.Fatalf("usage: %v %s", err, w.Body)
		}
		return out.Budgets[0]
	}
	g := open()
	cost := map[string]float64{}
	for _, alias := range []string{"loud", "quiet"} {
		w := httptest.NewRecorder()
		g.HandleChat(w, httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody(alias, ""))))
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", alias, w.Code, w.Body)
		}
		usd, err := strconv.ParseFloat(w.Header().Get("x-vigil-cost-usd"), 64)
		if err != nil || usd <= 0 {
			t.Fatalf("%s: cost header: %v", alias, w.Header())
		}
		cost[alias] = usd
	}
	g.ledger.sync()
	b := usage(g)
	if math.Abs(b.SpentUSD-(cost["loud"]+cost["quiet"])) > 1e-6 || math.Abs(b.EstimatedUSD-cost["quiet"]) > 1e-6 || b.EstimatedUSD <= 0 {
		t.Fatalf("spent %v estimated %v; costs %v", b.SpentUSD, b.EstimatedUSD, cost)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	g = open()
	defer g.Close()
	if b2 := usage(g); math.Abs(b2.EstimatedUSD-b.EstimatedUSD) > 1e-9 || math.Abs(b2.SpentUSD-b.SpentUSD) > 1e-9 {
		t.Fatalf("after reopening: %+v, before %+v", b2, b)
	}
}
