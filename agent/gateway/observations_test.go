package gateway

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/sdk"
)

func openObserve(t *testing.T) *observe.Service {
	t.Helper()
	cfg := observe.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), "observations.db")
	s, err := observe.Open(cfg, observe.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// scan returns every stored observation of model.
func scan(t *testing.T, s *observe.Service, model string) []observe.Observation {
	t.Helper()
	var out []observe.Observation
	err := s.Scan(context.Background(), model, "", time.Now().Add(-time.Hour), time.Now().Add(time.Hour), func(o *observe.Observation) bool {
		c := *o
		c.Features = append([]observe.Feature(nil), o.Features...)
		out = append(out, c)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestObservationsOfRequests sends chat, stream, embeddings and failing
// requests through the gateway into a real observation service and reads
// back what was stored and what the stats say.
func TestObservationsOfRequests(t *testing.T) {
	cfg := testCfg()
	cfg.Prices = map[string]Price{"solo": {Input: 1e6, Output: 1e6}} // 1 USD per token
	h := newHarness(t, cfg)
	svc := openObserve(t)
	h.g.RecordObservations(svc)

	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if w := h.do(t, "/chat", chatBody("single", `,"stream":true`)); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if w := h.do(t, "/embeddings", `{"model":"single","input":"hi"}`); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	// Rejected before routing (a known alias, a bad parameter): recorded,
	// not an error.
	if w := h.do(t, "/chat", chatBody("single", `,"temperature":5`)); w.Code != 400 {
		t.Fatal(w.Code, w.Body)
	}
	// Every attempt fails: 503, an error.
	h.a.fail("solo", overloaded(), overloaded(), overloaded())
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 503 {
		t.Fatal(w.Code, w.Body)
	}
	// Unknown alias: nothing to file it under.
	if w := h.do(t, "/chat", chatBody("nope", "")); w.Code != 404 {
		t.Fatal(w.Code, w.Body)
	}
	// Fallback: the version is the model that answered.
	h.a.fail("m1", sdk.Errorf(sdk.Auth, "bad key"))
	if w := h.do(t, "/chat", chatBody("chain", "")); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if err := h.g.Close(); err != nil { // flushes the queue
		t.Fatal(err)
	}

	obs := scan(t, svc, "llm:single")
	if len(obs) != 5 {
		t.Fatalf("%d observations of llm:single, want 5: %+v", len(obs), obs)
	}
	num := func(o observe.Observation, name string) float64 {
		t.Helper()
		v := o.Feature(name)
		if v.Kind != observe.KindNumber {
			t.Fatalf("observation %+v: feature %s is %v, want a number", o, name, v)
		}
		return v.Num
	}
	str := func(o observe.Observation, name string) string { return o.Feature(name).Str }
	chat, stream, emb, rejected, failed := obs[0], obs[1], obs[2], obs[3], obs[4]
	for _, o := range obs {
		if o.Version != "solo" || !o.HasLatency || o.LatencyMs < 0 {
			t.Errorf("version/latency: %+v", o)
		}
	}
	if chat.Status != 200 || chat.Error || num(chat, "prompt_tokens") != 3 || num(chat, "completion_tokens") != 3 || num(chat, "cached_tokens") != 1 ||
		num(chat, "attempts") != 1 || str(chat, "provider") != "pa" || str(chat, "cache") != "bypass" || num(chat, "cost_usd") != 6 {
		t.Errorf("chat observation: %+v", chat)
	}
	if !chat.Feature("time_to_first_token_ms").IsNone() {
		t.Errorf("a non-streamed answer has no time to first token: %+v", chat)
	}
	if stream.Status != 200 || num(stream, "time_to_first_token_ms") < 0 || num(stream, "completion_tokens") != 2 {
		t.Errorf("stream observation: %+v", stream)
	}
	if emb.Status != 200 || num(emb, "prompt_tokens") != 1 || str(emb, "cache") != "bypass" {
		t.Errorf("embeddings observation: %+v", emb)
	}
	if rejected.Status != 400 || rejected.Error || num(rejected, "attempts") != 0 {
		t.Errorf("rejected request: %+v", rejected)
	}
	if failed.Status != 503 || !failed.Error || num(failed, "attempts") != 3 || str(failed, "provider") != "pa" {
		t.Errorf("failed request: %+v", failed)
	}
	if got := scan(t, svc, "llm:chain"); len(got) != 1 || got[0].Version != "m2" || got[0].Feature("provider").Str != "pb" || got[0].Feature("attempts").Num != 2 {
		t.Errorf("fallback observation: %+v", got)
	}
	if got := scan(t, svc, "llm:nope"); len(got) != 0 {
		t.Errorf("unknown alias recorded: %+v", got)
	}
	stats, ok := svc.Stats("llm:single", "solo", 5*time.Minute)
	if !ok || len(stats) != 1 || stats[0].Requests != 5 || stats[0].Errors != 1 || stats[0].LatencyCount != 5 {
		t.Fatalf("stats of llm:single: %+v %v", stats, ok)
	}
}

// blockingSink holds every write until released, so the queue fills.
type blockingSink struct {
	mu      sync.Mutex
	release chan struct{}
	got     int
}

func (b *blockingSink) Ingest(_ context.Context, obs []observe.Observation) error {
	<-b.release
	b.mu.Lock()
	b.got += len(obs)
	b.mu.Unlock()
	return nil
}

// TestObservationsDropWhenFull: a writer that falls behind costs requests
// nothing; what does not fit is dropped and counted, and what was queued
// is written at Close.
func TestObservationsDropWhenFull(t *testing.T) {
	cfg := testCfg()
	cfg.Observations.QueueSize = 2
	h := newHarness(t, cfg)
	h.g.obsFlushItems = 1 // every observation is a write of its own
	sink := &blockingSink{release: make(chan struct{})}
	h.g.RecordObservations(sink)
	// The writer takes what is queued (at most 2) and blocks writing it;
	// two more fill the queue; the rest are dropped.
	const n = 10
	for range n {
		if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 {
			t.Fatal(w.Code, w.Body)
		}
	}
	dropped := testutil.ToFloat64(h.g.m.obsDropped.WithLabelValues("queue_full"))
	if dropped < n-4 || dropped > n-1 {
		t.Fatalf("dropped %v of %d with a queue of 2", dropped, n)
	}
	close(sink.release)
	if err := h.g.Close(); err != nil {
		t.Fatal(err)
	}
	if sink.got+int(dropped) != n {
		t.Fatalf("written %d + dropped %v != %d", sink.got, dropped, n)
	}
}
