package drift

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocsListEveryMetricAndKey keeps docs/metrics.md and
// docs/configuration.md complete for this package.
func TestDocsListEveryMetricAndKey(t *testing.T) {
	metrics, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 64)
	(&Engine{m: newEngineMetrics()}).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("no name in %s", d)
		}
		n++
		if !strings.Contains(string(metrics), "`"+m[1]+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", m[1])
		}
	}
	if n != 7 {
		t.Fatalf("%d metrics described, want 7", n)
	}
	conf, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	check := func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			key := prefix + typ.Field(i).Tag.Get("yaml")
			if !strings.Contains(string(conf), "| `"+key+"` |") {
				t.Errorf("%s is not documented in docs/configuration.md", key)
			}
		}
	}
	check("drift.", reflect.TypeFor[Config]())
	check("models.<model>.", reflect.TypeFor[ModelConfig]())
	check("models.<model>.features.<feature>.", reflect.TypeFor[FeatureConfig]())
}
