package gateway

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// slotted is a provider plugin as the shipped ones are: one slot per
// max_concurrency, a call waiting for a slot until its context ends and
// then failing with class timeout. Its streams send one delta and hold on
// until hold is closed and the request's deadline has passed.
type slotted struct {
	*scripted
	slots chan struct{}
	hold  chan struct{}
	mu    sync.Mutex
	live  int // streams under way
}

func (s *slotted) acquire(ctx context.Context) error {
	select {
	case s.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return sdk.Errorf(sdk.Timeout, "all %d upstream slots (max_concurrency) stayed busy until the deadline", cap(s.slots))
	}
}

func (s *slotted) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-s.slots }()
	return s.scripted.Chat(ctx, req)
}

func (s *slotted) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if err := s.acquire(ctx); err != nil {
		return err
	}
	defer func() { <-s.slots }()
	s.mu.Lock()
	s.live++
	s.mu.Unlock()
	if err := send(&pb.ChatEvent{Delta: "a long answer", Model: req.GetModel()}); err != nil {
		return err
	}
	// Held until the test lets go and the gateway's own deadline has cut
	// the stream, as a long answer is (so it counts as no failure).
	<-s.hold
	<-ctx.Done()
	return sdk.Errorf(sdk.Timeout, "stream: %v", ctx.Err())
}

// A request that finds every max_concurrency slot of its provider busy
// until its deadline was never sent upstream: it fails as a timeout
// saying so, and does not count against the target's circuit, which would
// otherwise open on local congestion and refuse a healthy upstream.
func TestBusySlotsDoNotOpenCircuit(t *testing.T) {
	cfg := testCfg()
	cfg.Providers[0].MaxConcurrency = 1
	cfg.RequestTimeout = 300 * time.Millisecond
	cfg.Breaker.ConsecutiveFailures = 1
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	up := &slotted{scripted: newScripted(), slots: make(chan struct{}, 1), hold: make(chan struct{})}
	g, err := New(cfg, oneProvider{up}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{g: g}
	// A long stream takes pa's only slot and keeps it.
	streamDone := make(chan struct{})
	go func() {
		defer close(streamDone)
		h.do(t, "/chat", chatBody("single", `,"stream":true`))
	}()
	for i := 0; ; i++ {
		up.mu.Lock()
		live := up.live
		up.mu.Unlock()
		if live == 1 {
			break
		}
		if i == 1000 {
			t.Fatal("the stream did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	w := h.do(t, "/chat", chatBody("single", ""))
	close(up.hold)
	<-streamDone
	if w.Code != 504 || w.Header().Get("x-vigil-attempts") != "0" || !strings.Contains(w.Body.String(), `alias \"single\": no upstream called: provider pa: all 1 slots (gateway.providers[0].max_concurrency) stayed busy`) {
		t.Errorf("request behind a busy slot: %d, attempts %q: %s", w.Code, w.Header().Get("x-vigil-attempts"), w.Body)
	}
	if up.count("solo") != 0 {
		t.Errorf("the plugin got %d chats; the gateway should have kept the request", up.count("solo"))
	}
	if open := g.OpenCircuits(); len(open) != 0 {
		t.Errorf("circuits opened by local congestion: %v", open)
	}
	// The slot is free again: the next request is served.
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 {
		t.Errorf("after the stream ended: %d %s", w.Code, w.Body)
	}
}
