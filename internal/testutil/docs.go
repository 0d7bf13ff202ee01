package testutil

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricsDocumented fails t for every metric c describes that the
// markdown file at path (docs/metrics.md) does not name in backquotes, and
// returns how many metrics c described.
func MetricsDocumented(t testing.TB, path string, c prometheus.Collector) int {
	t.Helper()
	doc := readDoc(t, path)
	ch := make(chan *prometheus.Desc, 256)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	n := 0
	for d := range ch {
		n++
		m := descName.FindStringSubmatch(d.String())
		if m == nil {
			t.Errorf("cannot read the name of %s", d)
			continue
		}
		if !strings.Contains(doc, "`"+m[1]+"`") {
			t.Errorf("%s is not documented in %s", m[1], path)
		}
	}
	return n
}

// KeysDocumented fails t for every yaml field of the struct typ that has
// no row "| `<prefix><key>` |" in the markdown file at path
// (docs/configuration.md), except the keys listed in skip (sections
// documented key by key).
func KeysDocumented(t testing.TB, path, prefix string, typ reflect.Type, skip ...string) {
	t.Helper()
	doc := readDoc(t, path)
	for i := range typ.NumField() {
		key := strings.Split(typ.Field(i).Tag.Get("yaml"), ",")[0]
		if key == "" || key == "-" {
			continue
		}
		full := prefix + key
		if slices.Contains(skip, full) {
			continue
		}
		if !strings.Contains(doc, "| `"+full+"` |") {
			t.Errorf("%s is not documented in %s", full, path)
		}
	}
}

func readDoc(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
