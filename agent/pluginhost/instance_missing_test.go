package pluginhost

import (
	"strings"
	"testing"
)

// TestInstanceOfMissingPluginNamesDirs: an instance of a plugin that is in
// no plugin directory is refused with the directories searched (the reason
// only said "see `vigil plugins list`", which is where it is shown).
func TestInstanceOfMissingPluginNamesDirs(t *testing.T) {
	dir := t.TempDir()
	h := newHost(t, testConfig(dir), "")
	if err := h.SetInstances([]Instance{{Name: "emb", Plugin: "hashembed"}}); err != nil {
		t.Fatal(err)
	}
	for _, s := range h.List() {
		if s.Name != "emb" {
			continue
		}
		if s.State != StateRefused || !strings.Contains(s.LastError, dir) || !strings.Contains(s.LastError, `"hashembed"`) {
			t.Errorf("instance of a missing plugin: state %s, last error %q; want refused naming the plugin and %s", s.State, s.LastError, dir)
		}
		return
	}
	t.Fatal("the instance is not listed")
}
