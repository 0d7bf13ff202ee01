package fleet

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestDocsListEveryMetric keeps docs/metrics.md complete for this package.
func TestDocsListEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	ch := make(chan *prometheus.Desc, 100)
	newMetrics(&Fleet{}).Describe(ch)
	close(ch)
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	n := 0
	for d := range ch {
		m := name.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read the name of %s", d)
		}
		n++
		if !strings.Contains(doc, "`"+m[1]+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", m[1])
		}
	}
	if n < 10 {
		t.Errorf("only %d metrics described", n)
	}
}
