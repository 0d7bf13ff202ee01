package gateway

import (
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
)

// TestOpenCircuitSaysWhy: a request refused by an open circuit names the
// last failure that kept it open (a plugin that is not trusted, an
// upstream that is down), not only that failures happened.
func TestOpenCircuitSaysWhy(t *testing.T) {
	cfg := testCfg()
	cfg.Retry.MaxAttempts = 2
	h := newHarness(t, cfg)
	for i := 0; i < 4; i++ {
		h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "plugin \"pa\" is refused: not trusted"))
	}
	for i := 0; i < 2; i++ {
		h.do(t, "/chat", chatBody("single", ""))
	}
	w := h.do(t, "/chat", chatBody("single", ""))
	e := errBody(t, w)
	if w.Code != 503 || w.Header().Get("x-vigil-attempts") != "0" || !strings.Contains(e.Message, "circuit breaker for pa/solo is open") ||
		!strings.Contains(e.Message, `; the last: unavailable: plugin`) || !strings.Contains(e.Message, `plugin "pa" is refused: not trusted`) {
		t.Fatalf("open circuit: %d %q", w.Code, e.Message)
	}
}
