package pluginhost

// A configuration the plugin rejects is not retried as a crash: the plugin
// would reject it again after every restart. It is failed at once, and a
// reload tries again.

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/sdk"
)

// checkFailedAtOnce asserts a plugin is failed without a restart, its
// last error holding every want on one line, and that a call to it fails
// as unavailable, saying why.
func checkFailedAtOnce(t *testing.T, h *Host, name string, wants ...string) {
	t.Helper()
	s := waitState(t, h, name, StateFailed)
	t.Logf("last error: %s", s.LastError)
	for _, w := range wants {
		if !strings.Contains(s.LastError, w) {
			t.Errorf("last error %q does not say %q", s.LastError, w)
		}
	}
	if strings.Contains(s.LastError, "\n") || strings.Contains(s.LastError, "crashes within") {
		t.Errorf("last error %q: want one line, and no crash budget spent", s.LastError)
	}
	if s.Restarts != 0 {
		t.Errorf("a plugin that rejected its configuration was restarted %d times: %+v", s.Restarts, s)
	}
	if got := testutil.ToFloat64(h.m.restarts.WithLabelValues(name)); got != 0 {
		t.Errorf("vigil_plugin_restarts_total = %v", got)
	}
	err := h.WithDetector(context.Background(), name, "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		_, err := c.Describe(ctx)
		return err
	})
	if classOf(t, err) != sdk.Unavailable || !strings.Contains(err.Error(), wants[0]) {
		t.Errorf("call to a plugin that rejected its configuration: %v; want unavailable saying %q", err, wants[0])
	}
}

// TestConfigureRejectedFailsAtOnce: with a crash budget that would allow
// restarts, a rejected plugins.config section fails the plugin at once;
// a reload with a fixed section runs it.
func TestConfigureRejectedFailsAtOnce(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	cfg.CrashBudget = 100
	cfg.Config = map[string]map[string]any{"test-detector": {"greeting": 5.0}}
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	checkFailedAtOnce(t, h, "test-detector", "plugins.config.test-detector.greeting: must be a string", "reload the agent (SIGHUP)")

	fixed := cfg
	fixed.Config = map[string]map[string]any{"test-detector": {"greeting": "hi"}}
	h.Reload(fixed)
	if s := waitState(t, h, "test-detector", StateRunning); s.PID == 0 {
		t.Errorf("after a reload with a fixed configuration: %+v", s)
	}
}

// TestInstanceConfigureRejectedFailsAtOnce: the same for a provider
// instance, whose error names its gateway.providers entry; the instance
// beside it, whose settings the plugin accepts, runs.
func TestInstanceConfigureRejectedFailsAtOnce(t *testing.T) {
	dir := install(t, "detector")
	cfg := testConfig(dir)
	cfg.CrashBudget = 100
	h := newHost(t, cfg, "")
	if _, err := h.Register(context.Background(), filepath.Join(dir, "test-detector"), ""); err != nil {
		t.Fatal(err)
	}
	if err := h.SetInstances([]Instance{
		{Name: "det-ok", Plugin: "test-detector", Config: map[string]any{"greeting": "hi"}, ConfigKey: "gateway.providers[0]"},
		{Name: "det-bad", Plugin: "test-detector", Config: map[string]any{"greeting": 5.0, "colour": "blue"}, ConfigKey: "gateway.providers[1]",
			SetBy: map[string]string{"colour": "options.colour"}}, // as the gateway sets it for an options key
	}); err != nil {
		t.Fatal(err)
	}
	// The first call starts the instance (lazy start) and fails with the
	// rejection; no restart follows.
	h.WithDetector(context.Background(), "det-bad", "Describe", func(ctx context.Context, c sdk.DetectorClient) error { return nil })
	checkFailedAtOnce(t, h, "det-bad", "gateway.providers[1].greeting: must be a string", "gateway.providers[1].options.colour: unknown key", "restart the agent")
	if err := h.WithDetector(context.Background(), "det-ok", "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		_, err := c.Describe(ctx)
		return err
	}); err != nil {
		t.Errorf("det-ok: %v", err)
	}
}

// TestConfigureRejectionClasses: a Configure call that fails with class
// invalid_request or auth is a rejection (a plugin in another language may
// answer so); any other class may pass (the plugin crashed in the call, or
// an upstream it checks was down) and is retried as a crash.
func TestConfigureRejectionClasses(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reject bool
	}{
		{&sdk.Error{Class: sdk.InvalidRequest, Field: "base_url", Message: "not a URL"}, true},
		{&sdk.Error{Class: sdk.Auth, Message: "the API key was refused"}, true},
		{&sdk.Error{Class: sdk.Unavailable, Message: "connection reset"}, false},
		{&sdk.Error{Class: sdk.Timeout, Message: "deadline exceeded"}, false},
		{&sdk.Error{Class: sdk.Internal, Message: "panicked"}, false},
	} {
		got := isConfigRejection(tc.err)
		if got != tc.reject {
			t.Errorf("Configure failing with %v: a rejection = %v, want %v", tc.err, got, tc.reject)
		}
	}
}

// TestPythonConfigureRaisesClass: a Python plugin whose configure raises
// class auth (its key refused) is failed at once, as one that returns
// field errors; one that raises class unavailable is retried as a crash.
func TestPythonConfigureRaisesClass(t *testing.T) {
	h, _ := pyHost(t, "py-test", func(c *Config) {
		c.Start = "boot"
		c.CrashBudget = 100
		c.Config = map[string]map[string]any{"py-test": {"raise": "auth"}}
	})
	checkFailedAtOnce(t, h, "py-test", "configure raised class auth")

	retried := *h.cfg.Load()
	retried.Config = map[string]map[string]any{"py-test": {"raise": "unavailable"}}
	h.Reload(retried)
	for i := 0; i < 400 && status(t, h, "py-test").Restarts == 0; i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if s := status(t, h, "py-test"); s.Restarts == 0 || !strings.Contains(s.LastError, "configure raised class unavailable") {
		t.Errorf("a Configure failing with class unavailable was not retried: %+v", s)
	}
}
