package agent

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/vigilml/vigil/agent/config"
)

// TestReloadCannotOpenARemoteAPI checks that a SIGHUP cannot remove every
// token while the running API listens beyond loopback: api.addr changes
// only on restart, so applying the new (empty) token list would leave the
// network-facing API without authentication.
func TestReloadCannotOpenARemoteAPI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	noEnv := func(string) (string, bool) { return "", false }
	cfg, err := config.Load(config.Options{Dev: true, Env: noEnv, Override: func(c *config.Config) {
		c.DataDir = dir
		c.API.Addr = "0.0.0.0:0"
		c.API.Tokens = []config.Token{{Name: "ops", Scope: config.ScopeWrite, Secret: "0123456789abcdef-ops"}}
		c.Gossip.Enabled = false
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

	// The operator moves the API to loopback and drops the tokens, and
	// reloads instead of restarting. The log level changes in the same
	// reload, to show that nothing of it is applied.
	next := *cfg.Config
	next.API.Addr = "127.0.0.1:0"
	next.API.Tokens = nil
	next.LogLevel = "debug"
	a.Reload(&config.Loaded{Config: &next})

	if !a.API().AuthEnabled() {
		t.Fatal("after the reload the API on 0.0.0.0 needs no token")
	}
	if level.Level() == slog.LevelDebug {
		t.Error("a refused reload still changed the log level")
	}

	// On loopback the same reload is fine.
	cfg2 := *cfg.Config
	cfg2.API.Addr = "127.0.0.1:0"
	if err := config.CheckReload(&cfg2, &next); err != nil {
		t.Errorf("loopback: %v", err)
	}
	cfg2.API.Addr = "0.0.0.0:0"
	cfg2.API.InsecureAllowRemote = true
	if err := config.CheckReload(&cfg2, &next); err != nil {
		t.Errorf("insecure_allow_remote: %v", err)
	}
}
