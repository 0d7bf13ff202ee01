package gateway

import "testing"

// TestPriceOfDatedSnapshot: a dated snapshot is priced as its family is
// listed; an exact entry wins; other names are not guessed at.
func TestPriceOfDatedSnapshot(t *testing.T) {
	prices := map[string]Price{"gpt-4o": {Input: 2.5}, "gpt-4o-2024-05-13": {Input: 5}, "claude-sonnet-4-5": {Input: 3}}
	for model, want := range map[string]float64{
		"gpt-4o": 2.5, "gpt-4o-2024-08-06": 2.5, "gpt-4o-2024-05-13": 5,
		"claude-sonnet-4-5-20250929": 3, "claude-sonnet-4-5": 3,
	} {
		if p, ok := priceOf(prices, model); !ok || p.Input != want {
			t.Errorf("%s: %v %v, want %v", model, p, ok, want)
		}
	}
	for _, model := range []string{"gpt-4o-mini", "gpt-4o-2024", "gpt-4o-20240806x", "claude-sonnet-4-5-latest", "x-12345678", "gpt-4o-2024-8-06"} {
		if p, ok := priceOf(prices, model); ok {
			t.Errorf("%s priced as %v", model, p)
		}
	}
}
