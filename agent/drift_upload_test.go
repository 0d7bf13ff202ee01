package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/observe"
)

// TestUploadRefusesNonFiniteStrings: an uploaded reference sample refuses
// strings that spell a non-finite number ("NaN", "-inf", "1e999"), as
// observations do, naming the item; other strings stay categories.
func TestUploadRefusesNonFiniteStrings(t *testing.T) {
	cfg := observe.DefaultConfig()
	for _, bad := range []string{`[1,"NaN"]`, `["-inf"]`, `[2,3,"1e999"]`} {
		_, err := parseValues("features.x", json.RawMessage(bad), cfg, 100, false)
		if err == nil || !strings.Contains(err.Error(), "features.x[") || !strings.Contains(err.Error(), "must be a finite number") {
			t.Errorf("%s: %v, want an error naming features.x[i]", bad, err)
		}
	}
	vs, err := parseValues("features.x", json.RawMessage(`[1,"DE","nano","Infinite"]`), cfg, 100, false)
	if err != nil || len(vs) != 4 {
		t.Errorf("ordinary strings: %v %v", vs, err)
	}
}
