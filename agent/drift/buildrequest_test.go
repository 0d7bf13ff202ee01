package drift

import (
	"slices"
	"testing"

	"github.com/vigilml/vigil/agent/observe"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestBuildRequestCategoryText: one string makes a feature categorical,
// and its numbers become the text docs/drift.md documents (Go's shortest
// round-trip form), so 1 = "1" but 1000000 is "1e+06", not "1000000".
func TestBuildRequestCategoryText(t *testing.T) {
	p := &featurePlan{
		name: "zip",
		ref:  []observe.Value{observe.Num(1), observe.Num(0.25), observe.Num(1000000), observe.Num(1.5e-7)},
		cur:  []observe.Value{observe.Str("1"), observe.Str("1000000")},
	}
	req := buildRequest(p)
	if req.DataType != pb.DataType_CATEGORICAL {
		t.Fatalf("data type %v; want categorical", req.DataType)
	}
	if want := []string{"1", "0.25", "1e+06", "1.5e-07"}; !slices.Equal(req.ReferenceCategorical, want) {
		t.Errorf("reference categories %q; want %q", req.ReferenceCategorical, want)
	}
	if want := []string{"1", "1000000"}; !slices.Equal(req.CurrentCategorical, want) {
		t.Errorf("current categories %q; want %q", req.CurrentCategorical, want)
	}
}
