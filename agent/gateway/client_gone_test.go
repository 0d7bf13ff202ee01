package gateway

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// hangs fails its first calls, then, for the next, ends the client's
// request (as a client that gives up on a hung upstream does) and waits
// for the call to be cancelled.
type hangs struct {
	*scripted
	fails  int
	cancel context.CancelFunc
}

func (h *hangs) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if err := h.next(req.GetModel()); err != nil {
		return nil, err
	}
	if h.count(req.GetModel()) <= h.fails {
		return nil, sdk.Errorf(sdk.Unavailable, "down")
	}
	h.cancel()
	<-ctx.Done()
	return nil, sdk.Errorf(sdk.Unavailable, "call cancelled: %v", ctx.Err())
}

// A client that goes away before any answer came tells nothing about the
// upstream: the call counts neither way. Counted as a success, a
// half-open probe whose client gave up on a hung upstream closed the
// circuit, and sent every request back to it.
func TestClientGoneIsNoVerdict(t *testing.T) {
	cfg := testCfg()
	cfg.Retry.MaxAttempts = 2
	cfg.Breaker.ConsecutiveFailures = 2
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	up := &hangs{scripted: newScripted(), fails: 2}
	g, err := New(cfg, oneProvider{up}, nil, prometheus.NewRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := &clock{now: g.aliases["single"].targets[0].br.now()}
	br := g.aliases["single"].targets[0].br
	br.now = now.Now
	h := &harness{g: g}
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 503 || br.current() != open {
		t.Fatalf("two failures: %d, circuit %v: %s", w.Code, br.current(), w.Body)
	}
	now.Add(cfg.Breaker.OpenFor)
	ctx, cancel := context.WithCancel(context.Background())
	up.cancel = cancel
	r := httptest.NewRequest("POST", "/chat", strings.NewReader(chatBody("single", ""))).WithContext(ctx)
	r.Header.Set("Content-Type", "application/json")
	g.HandleChat(httptest.NewRecorder(), r)
	if up.count("solo") != 3 {
		t.Fatalf("calls %d, want the probe as the third", up.count("solo"))
	}
	// No verdict: still half-open, and the next call is the probe.
	if br.current() != halfOpen || !br.allow() {
		t.Fatalf("after the abandoned probe: circuit %v", br.current())
	}
}
