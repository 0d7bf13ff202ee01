package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// A failure that opens the target's circuit moves on at once: waiting out
// a backoff or the upstream's Retry-After first would only delay the
// fallback (or the single target's 503), since the circuit then refuses
// the retry anyway.
func TestNoWaitOnceTheCircuitOpens(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  func() error
	}{
		{"backoff", func() error { return sdk.Errorf(sdk.Unavailable, "down") }},
		{"retry-after", func() error {
			return &sdk.Error{Class: sdk.Overloaded, Message: "busy", RetryAfter: 2 * time.Second}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testCfg()
			cfg.Breaker.ConsecutiveFailures = 2
			h := newHarness(t, cfg)
			h.a.fail("m1", tc.err(), tc.err())
			w := h.do(t, "/chat", chatBody("chain", ""))
			if w.Code != 200 || h.a.count("m1") != 2 || h.b.count("m2") != 1 {
				t.Fatalf("status %d, calls m1 %d m2 %d: %s", w.Code, h.a.count("m1"), h.b.count("m2"), w.Body)
			}
			// One wait, between the two calls to m1; none after the second
			// failure opened m1's circuit.
			if len(h.sleeps) != 1 {
				t.Fatalf("waits %v, want one (before the second call to m1)", h.sleeps)
			}
		})
	}
}

// A half-open probe that fails opens the circuit again; the request does
// not wait before finding that out, and its error names the upstream's
// failure rather than the circuit.
func TestFailedProbeDoesNotWait(t *testing.T) {
	h := twoStrikes(t, 0)
	h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"), sdk.Errorf(sdk.Unavailable, "down"))
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 503 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	h.clk.Add(h.g.cfg.Breaker.OpenFor)
	h.sleeps = nil
	h.a.fail("solo", &sdk.Error{Class: sdk.Overloaded, Message: "still busy", RetryAfter: 3 * time.Second})
	w := h.do(t, "/chat", chatBody("single", ""))
	if w.Code != 503 || h.a.count("solo") != 3 || len(h.sleeps) != 0 {
		t.Fatalf("status %d, calls %d, waits %v: %s", w.Code, h.a.count("solo"), h.sleeps, w.Body)
	}
	if e := errBody(t, w); !strings.Contains(e.Message, "still busy") || w.Header().Get("x-vigil-attempts") != "1" {
		t.Fatalf("error %+v, attempts %s", e, w.Header().Get("x-vigil-attempts"))
	}
}

// A request refused by an open circuit says when to come back: the rest
// of open_for, as Retry-After, so that a client's retry reaches the probe
// rather than the same refusal. So does the request whose own failures
// opened the circuit.
func TestOpenCircuitRetryAfter(t *testing.T) {
	h := twoStrikes(t, 15*time.Second)
	h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"), sdk.Errorf(sdk.Unavailable, "down"))
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 503 || w.Header().Get("Retry-After") != "15" {
		t.Fatalf("the failures that opened the circuit: status %d, Retry-After %q, want 503 and 15: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	h.clk.Add(5 * time.Second)
	w := h.do(t, "/chat", chatBody("single", ""))
	if w.Code != 503 || w.Header().Get("x-vigil-attempts") != "0" || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("open circuit: status %d, attempts %s, Retry-After %q: %s", w.Code, w.Header().Get("x-vigil-attempts"), w.Header().Get("Retry-After"), w.Body)
	}
	if h.a.count("solo") != 2 {
		t.Fatalf("calls %d", h.a.count("solo"))
	}
}

// vigil_llm_circuit_state reads what the breaker says at scrape time, as
// /v1/status does: once open_for has passed, an open circuit is half-open
// (the next call probes) even if no request came by to notice.
func TestCircuitGaugeAtScrape(t *testing.T) {
	h := twoStrikes(t, 0)
	h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"), sdk.Errorf(sdk.Unavailable, "down"))
	h.do(t, "/chat", chatBody("single", ""))
	scrape := func() float64 {
		t.Helper()
		mfs, err := h.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "vigil_llm_circuit_state" {
				continue
			}
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["provider"] == "pa" && labels["model"] == "solo" {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no vigil_llm_circuit_state for pa/solo")
		return 0
	}
	if v := scrape(); v != float64(open) || len(h.g.OpenCircuits()) != 1 {
		t.Fatalf("after the failures: gauge %v, open circuits %v", v, h.g.OpenCircuits())
	}
	h.clk.Add(h.g.cfg.Breaker.OpenFor)
	if v := scrape(); v != float64(halfOpen) || len(h.g.OpenCircuits()) != 0 {
		t.Fatalf("after open_for: gauge %v, open circuits %v", v, h.g.OpenCircuits())
	}
	if h.a.count("solo") != 2 {
		t.Fatalf("calls %d", h.a.count("solo"))
	}
}

// When every target's circuit is open, no upstream is called: the answer
// says so, and its Retry-After is when the first circuit lets a probe
// through, not the last one skipped.
func TestAllCircuitsOpenRetryAfterSoonest(t *testing.T) {
	h := twoStrikes(t, 15*time.Second)
	down := sdk.Errorf(sdk.Unavailable, "down")
	h.a.fail("m1", down, down) // pa/m1 opens now; pb/m2 answers
	if w := h.do(t, "/chat", chatBody("chain", "")); w.Code != 200 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	h.clk.Add(5 * time.Second)
	h.b.fail("m2", down, down) // pb/m2 opens 5 s later
	if w := h.do(t, "/chat", chatBody("chain", "")); w.Code != 503 || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("second request, which opened the last circuit: %d, Retry-After %q (want 10: pa/m1 reopens first) %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	calls := h.a.count("m1") + h.b.count("m2")
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 503 || w.Header().Get("x-vigil-attempts") != "0" || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("every circuit open: status %d, attempts %s, Retry-After %q (pa/m1 reopens in 10 s, pb/m2 in 15 s): %s",
			w.Code, w.Header().Get("x-vigil-attempts"), w.Header().Get("Retry-After"), w.Body)
	}
	if !strings.Contains(w.Body.String(), "no upstream called: the circuit breaker of every target is open (the first lets a call through in 10s)") {
		t.Errorf("message: %s", w.Body)
	}
	if n := h.a.count("m1") + h.b.count("m2"); n != calls {
		t.Errorf("%d upstream calls with every circuit open", n-calls)
	}
}

// twoStrikes is a harness whose targets get two attempts and whose
// circuits open after two failures in a row, for openFor (the default
// when 0).
func twoStrikes(t *testing.T, openFor time.Duration) *harness {
	t.Helper()
	cfg := testCfg()
	cfg.Retry.MaxAttempts = 2
	cfg.Breaker.ConsecutiveFailures = 2
	if openFor > 0 {
		cfg.Breaker.OpenFor = openFor
	}
	return newHarness(t, cfg)
}

// A request that opened one circuit while another target of the alias
// stays closed gets no Retry-After from the circuits: the closed target
// may answer the client's next try at once.
func TestClosedTargetNoCircuitRetryAfter(t *testing.T) {
	cfg := testCfg()
	cfg.Retry.MaxAttempts = 2
	cfg.Breaker.ConsecutiveFailures = 3
	h := newHarness(t, cfg)
	down := sdk.Errorf(sdk.Unavailable, "down")
	h.a.fail("m1", down, down, down) // two failures now, the third opens pa/m1
	h.b.fail("m2", down)             // fails, then answers: its count starts again
	if w := h.do(t, "/chat", chatBody("chain", "")); w.Code != 200 {
		t.Fatalf("first request: %d %s", w.Code, w.Body)
	}
	h.b.fail("m2", down, down) // two failures: closed still
	w := h.do(t, "/chat", chatBody("chain", ""))
	if w.Code != 503 || w.Header().Get("Retry-After") != "" {
		t.Fatalf("pa/m1 open, pb/m2 closed: status %d, Retry-After %q, want 503 without: %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if got := h.g.OpenCircuits(); len(got) != 1 {
		t.Fatalf("open circuits %v, want pa/m1 only", got)
	}
}
