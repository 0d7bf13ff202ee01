package telemetry

import (
	"os"
	"strings"
	"testing"
)

// TestDocsListEveryMetric keeps docs/metrics.md complete: every family this
// package can emit must be documented there.
func TestDocsListEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, d := range allDefs {
		if !strings.Contains(doc, "`"+d.name+"`") {
			t.Errorf("%s is not documented in docs/metrics.md", d.name)
		}
	}
}
