package pluginhost

// The provider plugins Vigil ships, built from plugins/providers and run
// through the SDK's conformance kit against the upstream stubs, as a third
// party's plugin would be.

import (
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigilml/vigil/sdk"
	"github.com/vigilml/vigil/sdk/conformance"
	"github.com/vigilml/vigil/test/anthropicstub"
)

func buildShipped(t *testing.T, name string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	if b, err := exec.Command("go", "build", "-o", out, "../../plugins/providers/"+name).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, b)
	}
	return out
}

func TestShippedProvidersConform(t *testing.T) {
	t.Run("openai", func(t *testing.T) {
		_, base := startStub(t)
		conformance.RunWith(t, buildShipped(t, "openai"), conformance.Options{Kind: sdk.KindProvider, Config: map[string]any{"base_url": base}})
	})
	t.Run("anthropic", func(t *testing.T) {
		srv := httptest.NewServer(anthropicstub.New("claude-test"))
		t.Cleanup(srv.Close)
		conformance.RunWith(t, buildShipped(t, "anthropic"), conformance.Options{Kind: sdk.KindProvider, Config: map[string]any{"base_url": srv.URL}})
	})
	t.Run("hashembed", func(t *testing.T) {
		conformance.RunWith(t, buildShipped(t, "hashembed"), conformance.Options{Kind: sdk.KindProvider})
	})
}
