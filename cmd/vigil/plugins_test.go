package main

import (
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/pluginhost"
)

func TestPluginTableOneRowPerPlugin(t *testing.T) {
	var out strings.Builder
	writePluginTable(&out, []pluginhost.Status{
		{Name: "mine", Kind: "detector", State: pluginhost.StateBackoff, LastError: "plugin rejected its configuration; plugins.config.mine.x: bad\n\tvalue\n"},
		{Name: "ok", Kind: "detector", State: pluginhost.StateRunning},
	})
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], "plugins.config.mine.x: bad value") || !strings.HasPrefix(lines[2], "ok ") {
		t.Errorf("want a header and one row per plugin, got:\n%s", out.String())
	}
}
