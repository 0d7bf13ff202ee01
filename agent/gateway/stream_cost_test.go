package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A streamed answer that fails its response format was still answered,
// and is charged (metrics, budgets) like any other: its cost trailer is
// sent too, as the whole answer's 502 carries x-vigil-cost-usd, so that
// the client sees what the failure cost.
func TestStreamedInvalidOutputCarriesCost(t *testing.T) {
	cfg := testCfg()
	cfg.Prices = map[string]Price{"solo": {Input: 1, Output: 2}}
	h := newHarness(t, cfg)
	h.a.answers["solo"] = []string{"not json"}
	srv := httptest.NewServer(http.HandlerFunc(h.g.HandleChat))
	defer srv.Close()
	resp, err := http.Post(srv.URL, "application/json", strings.NewReader(chatBody("single", `,"stream":true,"response_format":{"type":"json_object"}`)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"code":"invalid_output"`) || strings.Contains(string(body), "[DONE]") {
		t.Fatalf("stream: %d:\n%s", resp.StatusCode, body)
	}
	// 2 prompt tokens at 1, 2 completion at 2 (per million).
	if got := resp.Trailer.Get("x-vigil-cost-usd"); got != "0.00000600" || h.a.count("solo") != 1 {
		t.Fatalf("cost trailer %q (trailers %v), calls %d", got, resp.Trailer, h.a.count("solo"))
	}
}
