package pluginhost

import (
	"context"
	vtest "github.com/vigilml/vigil/internal/testutil"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilml/vigil/sdk"
)

// TestCallTimeoutEndsHandlerCtx: when plugins.call_timeout passes, the
// call fails as a timeout and the plugin's handler sees its ctx end (a
// real plugin process, through go-plugin): a handler that honours ctx
// stops rather than running on in the plugin.
func TestCallTimeoutEndsHandlerCtx(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.CallTimeout = 300 * time.Millisecond
	var logs vtest.SyncBuffer
	h, err := New(cfg, Options{CatalogPath: filepath.Join(t.TempDir(), "plugins.db"), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	_, err = detect(h, &sdk.DetectRequest{Method: "mean", Params: map[string]any{"wait_ctx": true}})
	if classOf(t, err) != sdk.Timeout {
		t.Errorf("call past the deadline: %v", err)
	}
	// Polled, not timed: the line comes through the plugin's stderr. The
	// plugin sees its deadline pass or the host cancel the call, whichever
	// reaches it first.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "handler ctx ended: context deadline exceeded") && !strings.Contains(logs.String(), "handler ctx ended: context canceled") {
		if time.Now().After(deadline) {
			t.Fatalf("the plugin's handler did not see its ctx end; log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
