package alert

import (
	"reflect"
	"testing"

	"github.com/vigilml/vigil/internal/testutil"
)

// TestDocsListEveryMetricAndKey keeps docs/metrics.md and
// docs/configuration.md complete for this package.
func TestDocsListEveryMetricAndKey(t *testing.T) {
	m, err := New(Config{}, Options{Stats: &fakeStats{}})
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.MetricsDocumented(t, "../../docs/metrics.md", m); n != 4 {
		t.Errorf("%d metrics described, want 4", n)
	}
	const conf = "../../docs/configuration.md"
	// alerts.rules and alerts.delivery are documented key by key.
	testutil.KeysDocumented(t, conf, "alerts.", reflect.TypeFor[Config](), "alerts.rules", "alerts.delivery")
	testutil.KeysDocumented(t, conf, "alerts.rules.<rule>.", reflect.TypeFor[RuleConfig]())
	testutil.KeysDocumented(t, conf, "alerts.alertmanagers[].", reflect.TypeFor[Receiver]())
	testutil.KeysDocumented(t, conf, "alerts.delivery.", reflect.TypeFor[Delivery]())
}
