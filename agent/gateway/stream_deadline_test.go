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

// slowStream answers streams with one delta, then keeps the stream open,
// as a healthy upstream writing a long answer does, until the request's
// context ends; whole answers come at once.
type slowStream struct {
	*scripted
	mu      sync.Mutex
	streams int
}

func (s *slowStream) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	s.mu.Lock()
	s.streams++
	s.mu.Unlock()
	if err := send(&pb.ChatEvent{Delta: "a long answer", Model: req.GetModel()}); err != nil {
		return err
	}
	<-ctx.Done()
	return sdk.Errorf(sdk.Timeout, "stream: %v", ctx.Err())
}

type oneProvider struct{ p sdk.ProviderClient }

func (o oneProvider) WithProvider(ctx context.Context, _, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	return fn(ctx, o.p)
}

// A stream cut by gateway.request_timeout while the upstream was still
// sending is the gateway's own deadline, not an unhealthy upstream: it
// must not count against the target's circuit, or a few long answers
// would open the circuit of an upstream that serves well, and refuse
// every request to it for breaker.open_for.
func TestStreamPastRequestTimeoutDoesNotOpenCircuit(t *testing.T) {
	cfg := testCfg()
	cfg.RequestTimeout = 100 * time.Millisecond
	cfg.Breaker.ConsecutiveFailures = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	up := &slowStream{scripted: newScripted()}
	g, err := New(cfg, oneProvider{up}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{g: g}
	for i := range 3 {
		w := h.do(t, "/chat", chatBody("single", `,"stream":true`))
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"code":"timeout"`) || strings.Contains(w.Body.String(), "[DONE]") {
			t.Fatalf("stream %d: %d\n%s", i, w.Code, w.Body)
		}
	}
	w := h.do(t, "/chat", chatBody("single", ""))
	if w.Code != 200 || up.count("solo") != 1 || up.streams != 3 {
		t.Fatalf("whole request after three long streams: %d (calls %d, streams %d): %s", w.Code, up.count("solo"), up.streams, w.Body)
	}
	if len(g.OpenCircuits()) != 0 {
		t.Fatalf("open circuits %v", g.OpenCircuits())
	}
}
