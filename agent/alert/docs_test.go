package alert

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
	m, err := New(Config{}, Options{Stats: &fakeStats{}})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *prometheus.Desc, 16)
	m.Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([^"]+)"`)
	n := 0
	for d := range ch {
		n++
		if mm := name.FindStringSubmatch(d.String()); mm == nil || !strings.Contains(string(metrics), "`"+mm[1]+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", d)
		}
	}
	if n != 3 {
		t.Errorf("%d metrics described, want 3", n)
	}
	conf, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	fields := func(prefix string, typ reflect.Type) {
		for i := range typ.NumField() {
			keys = append(keys, prefix+typ.Field(i).Tag.Get("yaml"))
		}
	}
	fields("alerts.", reflect.TypeFor[Config]())
	fields("alerts.rules.<rule>.", reflect.TypeFor[RuleConfig]())
	fields("alerts.alertmanagers[].", reflect.TypeFor[Receiver]())
	fields("alerts.delivery.", reflect.TypeFor[Delivery]())
	for _, key := range keys {
		if key == "alerts.rules" || key == "alerts.delivery" {
			continue // documented key by key
		}
		if !strings.Contains(string(conf), "| `"+key+"` |") {
			t.Errorf("%s is not documented in docs/configuration.md", key)
		}
	}
}
