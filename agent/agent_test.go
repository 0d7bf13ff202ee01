package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/config"
)

func newTestAgent(t *testing.T) (*Agent, *config.Loaded, *slog.LevelVar) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	cfg, err := config.Load(config.Options{Dev: true, Env: func(string) (string, bool) { return "", false }, Override: func(c *config.Config) {
		c.DataDir = dir
		c.API.Addr = "127.0.0.1:0"
	}})
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	a, err := New(cfg, Options{Dev: true, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.shutdown() })
	return a, cfg, level
}

func TestHealthFailsWhenDataDirIsGone(t *testing.T) {
	a, _, _ := newTestAgent(t)
	ts := httptest.NewServer(a.API())
	defer ts.Close()

	resp, err := http.Get(ts.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("health = %d before breaking anything", resp.StatusCode)
	}

	if err := os.RemoveAll(a.dir.Path); err != nil {
		t.Fatal(err)
	}
	resp, err = http.Get(ts.URL + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || body.Status != "failing" || !strings.Contains(body.Checks["data_dir"], "not writable") {
		t.Errorf("health = %d %+v, want 503 naming data_dir", resp.StatusCode, body)
	}
}

func TestReloadAppliesOnlyReloadableKeys(t *testing.T) {
	a, cfg, level := newTestAgent(t)
	next := *cfg.Config
	next.LogLevel = "debug"
	next.API.Addr = "127.0.0.1:9"
	next.NodeName = "renamed"
	a.Reload(&config.Loaded{Config: &next})

	if level.Level() != slog.LevelDebug {
		t.Errorf("log level = %v, want debug", level.Level())
	}
	st := a.Status()
	if st.NodeName != cfg.NodeName {
		t.Errorf("node name changed to %q on reload; it needs a restart", st.NodeName)
	}
	if len(st.API.Addresses) != 1 || strings.HasSuffix(st.API.Addresses[0], ":9") {
		t.Errorf("API addresses = %v; the listener must not move on reload", st.API.Addresses)
	}
}

func TestSubsystemsSortedAndChecksRun(t *testing.T) {
	a, _, _ := newTestAgent(t)
	a.setStatus("zeta", func() SubsystemStatus {
		return SubsystemStatus{Name: "zeta", State: StateUnavailable, Reason: "no driver"}
	})
	a.addCheck("zeta", func(context.Context) error { return os.ErrDeadlineExceeded })
	subs := a.Subsystems()
	if !sort.SliceIsSorted(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name }) {
		t.Errorf("subsystems not sorted: %+v", subs)
	}
	last := subs[len(subs)-1]
	// "alerts" sorts first now; what matters is order and the new entry.
	if subs[0].Name != "alerts" || last.Name != "zeta" || last.State != StateUnavailable || last.Reason != "no driver" {
		t.Errorf("subsystems = %+v", subs)
	}
	if failing := a.Health(context.Background()); failing["zeta"] == "" || len(failing) != 1 {
		t.Errorf("failing = %v", failing)
	}
}
