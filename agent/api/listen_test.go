package api

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/config"
)

// TestCleartextTokensWarned checks that tokens served without TLS on an
// address other hosts can reach are warned about at start, and that a
// loopback listener or one with no tokens is not.
func TestCleartextTokensWarned(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		tokens bool
		warn   bool
	}{
		{"0.0.0.0:0", true, true},
		{"127.0.0.1:0", true, false},
		{"0.0.0.0:0", false, false}, // insecure_allow_remote: warned about elsewhere
	} {
		cfg := config.Default().API
		cfg.Addr = tc.addr
		if tc.tokens {
			cfg.Tokens = []config.Token{{Name: "ops", Scope: config.ScopeWrite, Secret: writeSecret}}
		}
		var logs bytes.Buffer
		s := New(cfg, slog.New(slog.NewTextHandler(&logs, nil)), nil)
		if err := s.Listen(); err != nil {
			t.Fatal(err)
		}
		s.closeListeners()
		got := strings.Contains(logs.String(), "clear text")
		if got != tc.warn {
			t.Errorf("%s tokens=%v: warned %v, want %v; logs:\n%s", tc.addr, tc.tokens, got, tc.warn, logs.String())
		}
	}
}
