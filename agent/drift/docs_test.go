package drift

import (
	"reflect"
	"testing"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestDocsListEveryMetricAndKey keeps docs/metrics.md and
// docs/configuration.md complete for this package.
func TestDocsListEveryMetricAndKey(t *testing.T) {
	if n := testutil.MetricsDocumented(t, "../../docs/metrics.md", &Engine{m: newEngineMetrics()}); n != 7 {
		t.Fatalf("%d metrics described, want 7", n)
	}
	const conf = "../../docs/configuration.md"
	testutil.KeysDocumented(t, conf, "drift.", reflect.TypeFor[Config]())
	testutil.KeysDocumented(t, conf, "models.<model>.", reflect.TypeFor[ModelConfig]())
	testutil.KeysDocumented(t, conf, "models.<model>.features.<feature>.", reflect.TypeFor[FeatureConfig]())
}
