package observe

import (
	"reflect"
	"testing"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestDocsListEveryMetricAndKey keeps docs/metrics.md and
// docs/configuration.md complete for this package.
func TestDocsListEveryMetricAndKey(t *testing.T) {
	if n := testutil.MetricsDocumented(t, "../../docs/metrics.md", &Service{}); n < 10 {
		t.Fatalf("only %d metrics described", n)
	}
	testutil.KeysDocumented(t, "../../docs/configuration.md", "observe.", reflect.TypeFor[Config]())
}
