package gateway

import (
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
)

func notServing(name string) error {
	return sdk.NotServing(sdk.Errorf(sdk.Unavailable, "plugin %q is refused: binary changed since it was registered", name))
}

// TestNotServingSkipped: a target whose plugin the plugin host refuses to
// call (refused, failed, untrusted) is tried once, without a backoff
// sleep, the request goes straight to the next target, and its circuit
// breaker does not count it, so once the operator fixes the plugin the
// next request reaches it instead of an open circuit.
func TestNotServingSkipped(t *testing.T) {
	h := newHarness(t, testCfg()) // breaker.consecutive_failures 4
	for i := range 6 {
		h.a.fail("m1", notServing("pa"))
		w := h.do(t, "/chat", chatBody("chain", ""))
		if w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" {
			t.Fatalf("request %d: %d from %q: %s", i, w.Code, w.Header().Get("x-vigil-provider"), w.Body)
		}
		if got := w.Header().Get("x-vigil-attempts"); got != "2" {
			t.Fatalf("request %d: x-vigil-attempts %s, want 2 (one call each)", i, got)
		}
	}
	if h.a.count("m1") != 6 || h.b.count("m2") != 6 {
		t.Fatalf("upstream calls m1 %d m2 %d, want 6 6", h.a.count("m1"), h.b.count("m2"))
	}
	if len(h.sleeps) != 0 {
		t.Fatalf("backoff sleeps before skipping a plugin that is not serving: %v", h.sleeps)
	}
	if open := h.g.OpenCircuits(); len(open) != 0 {
		t.Fatalf("circuits opened by a plugin that is not serving: %v", open)
	}
	// Fixed: the next request is answered by the first target.
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 200 || w.Header().Get("x-vigil-provider") != "pa" {
		t.Fatalf("after the fix: %d from %q", w.Code, w.Header().Get("x-vigil-provider"))
	}
}

// TestNotServingLastTarget: with no target left, the answer is the
// documented 503 unavailable, naming the plugin host's reason.
func TestNotServingLastTarget(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("solo", notServing("pa"))
	w := h.do(t, "/chat", chatBody("single", ""))
	e := errBody(t, w)
	if w.Code != 503 || e.Code != "unavailable" || !strings.Contains(e.Message, "is refused: binary changed") {
		t.Fatalf("%d %s %q", w.Code, e.Code, e.Message)
	}
	if h.a.count("solo") != 1 || len(h.sleeps) != 0 || w.Header().Get("x-vigil-attempts") != "1" {
		t.Fatalf("calls %d sleeps %v attempts %s, want 1, none, 1", h.a.count("solo"), h.sleeps, w.Header().Get("x-vigil-attempts"))
	}
	// Half-open: a probe admitted but never made is given back.
	br := newBreaker(testCfg().Breaker, h.clk.Now)
	br.state = open
	h.clk.Add(testCfg().Breaker.OpenFor)
	if !br.allow() {
		t.Fatal("no probe after open_for")
	}
	br.forgo()
	if !br.allow() {
		t.Fatal("a forgone probe blocks the next one")
	}
}
