package pluginhost

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBootStartsInstancesNotTheirPlugin: with plugins.start: boot, a
// provider plugin that runs as gateway.providers instances is started as
// those instances only, not as an idle process of its own beside them;
// its listing shows what its instances declared. Registering it again
// restarts the instances, still without a process of its own.
func TestBootStartsInstancesNotTheirPlugin(t *testing.T) {
	dir := install(t, "provider")
	path := filepath.Join(dir, "test-provider")
	// Trusted when the host starts, as a packaged plugin is.
	writePackageCatalog(t, dir, "test-provider", "provider", "test-provider")
	cfg := testConfig(dir)
	cfg.Start = "boot"
	h := newHost(t, cfg, "")
	// The agent's order: instances declared, then Start.
	if err := h.SetInstances([]Instance{
		{Name: "prov-a", Plugin: "test-provider", ConfigKey: "gateway.providers[0]"},
		{Name: "prov-b", Plugin: "test-provider", ConfigKey: "gateway.providers[1]"},
	}); err != nil {
		t.Fatal(err)
	}
	h.Start()

	checkOnlyInstancesRun := func(when string, a, b Status) {
		t.Helper()
		if base := h.snapshot()["test-provider"]; base.isRunning() {
			t.Errorf("%s: the plugin itself was started: %+v", when, status(t, h, "test-provider"))
		}
		pids := processesMatching(path)
		slices.Sort(pids)
		want := []int{a.PID, b.PID}
		slices.Sort(want)
		if !slices.Equal(pids, want) {
			t.Errorf("%s: processes of %s: %v; want only the instances' %v", when, path, pids, want)
		}
		base := status(t, h, "test-provider")
		if base.State != StateStopped || base.PID != 0 {
			t.Errorf("%s: the plugin itself: %+v; want stopped, no process", when, base)
		}
		if !slices.Equal(base.Capabilities, a.Capabilities) || len(a.Capabilities) == 0 {
			t.Errorf("%s: the plugin's capabilities %v; want its instances' %v", when, base.Capabilities, a.Capabilities)
		}
	}
	a := waitState(t, h, "prov-a", StateRunning)
	b := waitState(t, h, "prov-b", StateRunning)
	checkOnlyInstancesRun("at boot", a, b)

	if _, err := h.Register(context.Background(), path, ""); err != nil {
		t.Fatal(err)
	}
	oldA, oldB := a.PID, b.PID
	a = waitRestarted(t, h, "prov-a", oldA)
	b = waitRestarted(t, h, "prov-b", oldB)
	for deadline := time.Now().Add(15 * time.Second); alive(oldA) || alive(oldB); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the replaced instances' processes %d, %d did not exit", oldA, oldB)
		}
	}
	checkOnlyInstancesRun("registered again", a, b)
}

func (m *managed) isRunning() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.running
}

// TestLazyStartsInstancesWithTheAgent: with plugins.start: lazy, the
// gateway's provider instances still start with the agent (their first
// request should not pay a process start, and a configuration they
// reject should show at start), while a plugin that nothing has called,
// and the instances' own plugin, stay stopped until used.
func TestLazyStartsInstancesWithTheAgent(t *testing.T) {
	dir := install(t, "provider", "detector", "vectorstore")
	cfg := testConfig(dir)
	cfg.Start = "lazy"
	h := newHost(t, cfg, "")
	for _, k := range []string{"provider", "detector", "vectorstore"} {
		if _, err := h.Register(context.Background(), filepath.Join(dir, "test-"+k), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.SetInstances([]Instance{
		{Name: "prov-a", Plugin: "test-provider", ConfigKey: "gateway.providers[0]"},
		{Name: "det-bad", Plugin: "test-detector", ConfigKey: "gateway.providers[1]", Config: map[string]any{"greeting": 5.0}},
	}); err != nil {
		t.Fatal(err)
	}
	h.Start()
	a := waitState(t, h, "prov-a", StateRunning)
	if a.PID == 0 || !alive(a.PID) {
		t.Fatalf("prov-a: %+v; want a running process", a)
	}
	// The rejected configuration is known before any call.
	bad := waitState(t, h, "det-bad", StateFailed)
	if !strings.Contains(bad.LastError, "gateway.providers[1].greeting: must be a string") {
		t.Errorf("det-bad's error %q does not name the setting", bad.LastError)
	}
	for _, name := range []string{"test-provider", "test-detector", "test-vectorstore"} {
		if s := status(t, h, name); s.State != StateStopped || s.PID != 0 {
			t.Errorf("%s started with lazy start and no call: %+v", name, s)
		}
	}
}
