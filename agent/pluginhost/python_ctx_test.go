package pluginhost

// A Python method that takes a ctx parameter sees the agent's deadline and
// learns when the agent gives up on the call (vigil_plugin.Call), and the
// example provider uses it to bound its upstream calls.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

func TestPythonCallContext(t *testing.T) {
	// A call timeout longer than the test's polling: a wait that the
	// cancellation did not cut short would outlast the polling.
	h, _ := pyHost(t, "py-test", func(c *Config) { c.CallTimeout = time.Minute })
	call := func(ctx context.Context, do string, seconds float64) (stat float64, details map[string]any, err error) {
		req := &sdk.DetectRequest{Method: "echo", Feature: "f", ReferenceNumeric: []float64{1}, CurrentNumeric: []float64{1},
			Params: map[string]any{"do": do, "seconds": seconds}}
		err = h.WithDetector(ctx, "py-test", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
			resp, err := c.Detect(ctx, req)
			if err == nil {
				stat, details = resp.GetStatistic(), resp.GetDetails().AsMap()
			}
			return err
		})
		return stat, details, err
	}

	// The deadline: the host's call timeout, or the caller's when sooner.
	left, details, err := call(context.Background(), "deadline", 0)
	if err != nil || left <= 50 || left > 60 {
		t.Fatalf("time left under the 60 s call timeout: %v, %v", left, err)
	}
	if got, _ := details["timeout_60"].(float64); got <= 50 || got > 60 {
		t.Errorf("ctx.timeout(60) = %v with %v s left", got, left)
	}
	if details["cancelled"] != false {
		t.Errorf("a live call says cancelled: %v", details)
	}
	short, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	left, _, err = call(short, "deadline", 0)
	cancel()
	if err != nil || left <= 0 || left > 3 {
		t.Errorf("time left under a 3 s caller deadline: %v, %v", left, err)
	}

	// Giving up: the caller cancels a call that would wait 30 s; the
	// plugin's ctx.wait returns early and the plugin counts it.
	until := func(do string, want float64) {
		t.Helper()
		var n float64
		var err error
		for range 200 {
			if n, _, err = call(context.Background(), do, 0); err != nil || n == want {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil || n != want {
			t.Fatalf("%s: %v, %v; want %v", do, n, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := call(ctx, "wait", 30)
		done <- err
	}()
	until("waiting", 1) // the call is in the plugin
	cancel()
	if err := <-done; err == nil {
		t.Error("a cancelled call succeeded")
	}
	until("waits_cut", 1) // its wait ended early, well before 30 s
	until("waiting", 0)

	// A wait that is not cut short counts nothing.
	if _, _, err := call(context.Background(), "wait", 0.05); err != nil {
		t.Fatal(err)
	}
	if cut, _, err := call(context.Background(), "waits_cut", 0); err != nil || cut != 1 {
		t.Errorf("waits_cut after an uncut wait: %v, %v", cut, err)
	}
}

// TestPythonProviderDeadlineBoundsUpstream: the example provider bounds its
// upstream call by the agent's deadline (ctx.timeout), not only by its
// configured timeout, so a call the agent gave up on frees its thread and
// upstream connection.
func TestPythonProviderDeadlineBoundsUpstream(t *testing.T) {
	stub := openaistub.New("gpt-test", "text-embedding-test")
	var chats, abandoned atomic.Int32 // chats the upstream got; requests whose client hung up
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/chat/completions" {
			chats.Add(1)
		}
		stub.ServeHTTP(w, r)
		if r.Context().Err() != nil {
			abandoned.Add(1)
		}
	}))
	t.Cleanup(srv.Close)
	h, _ := pyHost(t, "py-openai", func(c *Config) {
		c.CallTimeout = time.Minute
		c.Config = map[string]map[string]any{"py-openai": {"base_url": srv.URL + "/v1", "timeout": "1m"}}
	})
	// Start the plugin first, so that the chat below reaches the upstream
	// well within its deadline on a busy machine.
	err := h.WithProvider(context.Background(), "py-openai", "test", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Models(ctx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	stub.Fail("gpt-test", openaistub.Fault{Delay: 40 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err = h.WithProvider(ctx, "py-openai", "test", func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Chat(ctx, &pb.ChatRequest{Model: "gpt-test", Messages: []*pb.Message{{Role: "user", Content: "hello"}}})
		return err
	})
	if err == nil {
		t.Fatal("a chat held 40 s by the upstream succeeded within a 3 s deadline")
	}
	if chats.Load() != 1 {
		t.Fatalf("the upstream got %d chats before the deadline, want 1 (the call ended with %v)", chats.Load(), err)
	}
	// The plugin's upstream read ends at the deadline (about 3 s); with
	// only the configured 1m timeout it would hold on for the stub's 40 s.
	for i := 0; i < 200 && abandoned.Load() == 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if abandoned.Load() != 1 {
		t.Fatalf("the plugin kept its upstream request open after the agent's deadline (the call ended with %v)", err)
	}
}
