package gateway

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func withCache(t *testing.T, h *harness, path string) {
	t.Helper()
	if err := h.g.OpenCache(path); err != nil {
		t.Fatal(err)
	}
	h.g.cache.now = h.clk.Now
	t.Cleanup(func() { h.g.Close() })
}

func (h *harness) doHeader(t *testing.T, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.g.HandleChat(w, r)
	h.g.cache.sync()
	return w
}

func TestCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-cache.db")
	h := newHarness(t, testCfg())
	withCache(t, h, path)
	det := chatBody("single", `,"temperature":0`)

	w1 := h.doHeader(t, det, nil)
	w2 := h.doHeader(t, det, nil)
	if h.a.count("solo") != 1 || w1.Header().Get("x-vigil-cache") != "miss" || w2.Header().Get("x-vigil-cache") != "hit" || w2.Header().Get("x-vigil-attempts") != "0" {
		t.Fatalf("deterministic request twice: calls %d, headers %v / %v", h.a.count("solo"), w1.Header(), w2.Header())
	}
	if !strings.Contains(w2.Body.String(), `"content":"hi from solo"`) || !strings.Contains(w2.Body.String(), `"total_tokens":6`) {
		t.Fatalf("cached answer: %s", w2.Body)
	}
	// The upstream's system_fingerprint comes with the answer, and with
	// the cached answer, which that configuration produced.
	for _, w := range []*httptest.ResponseRecorder{w1, w2} {
		if !strings.Contains(w.Body.String(), `"system_fingerprint":"fp_scripted"`) {
			t.Errorf("system_fingerprint not carried (cache %s): %s", w.Header().Get("x-vigil-cache"), w.Body)
		}
	}
	if testutil.ToFloat64(h.g.m.cacheRequests.WithLabelValues("single", "hit")) != 1 || testutil.ToFloat64(h.g.m.cacheRequests.WithLabelValues("single", "miss")) != 1 {
		t.Fatal("hit and miss not counted")
	}

	// Not deterministic: bypassed unless asked for.
	h.doHeader(t, chatBody("single", ""), nil)
	if w := h.doHeader(t, chatBody("single", ""), nil); h.a.count("solo") != 3 || w.Header().Get("x-vigil-cache") != "bypass" {
		t.Fatalf("non-deterministic request cached: calls %d", h.a.count("solo"))
	}
	use := map[string]string{"x-vigil-cache": "use"}
	h.doHeader(t, chatBody("single", `,"temperature":1`), use)
	if w := h.doHeader(t, chatBody("single", `,"temperature":1`), use); h.a.count("solo") != 4 || w.Header().Get("x-vigil-cache") != "hit" {
		t.Fatalf("x-vigil-cache: use: calls %d", h.a.count("solo"))
	}
	if w := h.doHeader(t, det, map[string]string{"x-vigil-cache": "bypass"}); h.a.count("solo") != 5 || w.Header().Get("x-vigil-cache") != "bypass" {
		t.Fatalf("x-vigil-cache: bypass: calls %d", h.a.count("solo"))
	}
	// Any parameter that shapes the answer is part of the key.
	h.doHeader(t, chatBody("single", `,"temperature":0,"max_tokens":7`), nil)
	if h.a.count("solo") != 6 {
		t.Fatalf("max_tokens not in the key: calls %d", h.a.count("solo"))
	}

	// A stream is served from the cache, re-streamed.
	w := h.doHeader(t, chatBody("single", `,"temperature":0,"stream":true,"stream_options":{"include_usage":true}`), nil)
	ev := readSSE(t, w.Body.String())
	if h.a.count("solo") != 6 || w.Header().Get("x-vigil-cache") != "hit" || ev[len(ev)-1] != "[DONE]" || !strings.Contains(w.Body.String(), `"content":"hi from solo"`) || !strings.Contains(ev[len(ev)-2], `"usage":{"prompt_tokens":3`) {
		t.Fatalf("stream from cache: calls %d: %q", h.a.count("solo"), ev)
	}
	for _, e := range ev[:len(ev)-1] {
		if !strings.Contains(e, `"system_fingerprint":"fp_scripted"`) {
			t.Errorf("a chunk re-streamed from the cache lacks the system_fingerprint: %s", e)
		}
	}

	// Durable: a new gateway on the same file serves it.
	h.g.Close()
	h2 := newHarness(t, testCfg())
	withCache(t, h2, path)
	if w := h2.doHeader(t, det, nil); w.Header().Get("x-vigil-cache") != "hit" || h2.a.count("solo") != 0 {
		t.Fatalf("after reopening: %v, calls %d", w.Header(), h2.a.count("solo"))
	}
	// Expired entries are misses.
	h2.clk.Add(2 * time.Hour)
	if w := h2.doHeader(t, det, nil); w.Header().Get("x-vigil-cache") != "miss" || h2.a.count("solo") != 1 {
		t.Fatalf("after the TTL: %v, calls %d", w.Header(), h2.a.count("solo"))
	}
}

func TestCacheByteCap(t *testing.T) {
	cfg := testCfg()
	cfg.Cache.MaxBytes = 600 // about two answers
	h := newHarness(t, cfg)
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	for i := 0; i < 4; i++ {
		h.doHeader(t, chatBody("single", `,"temperature":0,"seed":`+string(rune('0'+i))), nil)
	}
	if h.g.cache.total > 600 || testutil.ToFloat64(h.g.m.cacheEvictions) < 2 {
		t.Fatalf("cap not held: %d bytes, %v evictions", h.g.cache.total, testutil.ToFloat64(h.g.m.cacheEvictions))
	}
	// The newest is still there, the oldest is gone.
	calls := h.a.count("solo")
	h.doHeader(t, chatBody("single", `,"temperature":0,"seed":3`), nil)
	h.doHeader(t, chatBody("single", `,"temperature":0,"seed":0`), nil)
	if h.a.count("solo") != calls+1 {
		t.Fatalf("eviction order: %d calls after %d", h.a.count("solo"), calls)
	}
}

// With cache.scope: token, an answer is served only to requests made with
// the token that filled it: another token's identical request is a miss
// (and tells it nothing of what others asked). Shared, the default, serves
// it to every token.
func TestCacheScopeToken(t *testing.T) {
	for _, tc := range []struct {
		scope      string
		otherCalls int // upstream calls after the other token's request
		otherCache string
	}{
		{CacheShared, 1, "hit"},
		{CacheByToken, 2, "miss"},
	} {
		cfg := testCfg()
		cfg.Cache.Scope = tc.scope
		h := newHarness(t, cfg)
		withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
		h.g.TokenName = func(r *http.Request) string { return r.Header.Get("X-Test-Token") }
		det := chatBody("single", `,"temperature":0`)
		as := func(token string) *httptest.ResponseRecorder {
			return h.doHeader(t, det, map[string]string{"X-Test-Token": token})
		}
		if w := as("app-a"); w.Header().Get("x-vigil-cache") != "miss" {
			t.Fatalf("%s: first request: %v", tc.scope, w.Header())
		}
		if w := as("app-a"); w.Header().Get("x-vigil-cache") != "hit" || h.a.count("solo") != 1 {
			t.Fatalf("%s: same token again: %v, calls %d", tc.scope, w.Header(), h.a.count("solo"))
		}
		if w := as("app-b"); w.Header().Get("x-vigil-cache") != tc.otherCache || h.a.count("solo") != tc.otherCalls {
			t.Errorf("%s: another token: cache %s, calls %d; want %s, %d", tc.scope, w.Header().Get("x-vigil-cache"), h.a.count("solo"), tc.otherCache, tc.otherCalls)
		}
	}
	cfg := testCfg()
	cfg.Cache.Scope = "tenant"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `cache.scope: must be shared or token, got "tenant"`) {
		t.Errorf("bad scope: %v", err)
	}
}
