package observe

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
	(&Service{}).Describe(ch)
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
	if n < 10 {
		t.Fatalf("only %d metrics described", n)
	}
	conf, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		key := "observe." + typ.Field(i).Tag.Get("yaml")
		if !strings.Contains(string(conf), "| `"+key+"` |") {
			t.Errorf("%s is not documented in docs/configuration.md", key)
		}
	}
}
