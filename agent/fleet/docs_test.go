package fleet

import (
	"testing"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestDocsListEveryMetric keeps docs/metrics.md complete for this package.
func TestDocsListEveryMetric(t *testing.T) {
	if n := testutil.MetricsDocumented(t, "../../docs/metrics.md", newMetrics(&Fleet{})); n < 10 {
		t.Errorf("only %d metrics described", n)
	}
}
