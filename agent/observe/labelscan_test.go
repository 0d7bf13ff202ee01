package observe

import (
	"context"
	"fmt"
	"testing"
)

// TestScanLabels: matched labels of one model come back in arrival order,
// across more records than one read transaction visits, and a scan resumes
// after the cursor it returned.
func TestScanLabels(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	s := openTest(t, Config{}, c)
	for i := range 600 {
		m := []string{"fraud", "spam"}[i%2]
		o := obsAt(c, m, "v1", 1)
		o.RequestID, o.Prediction = fmt.Sprintf("r%d", i), Num(1)
		ingest(t, s, o)
	}
	// 600 label records (one per call), plus one unmatched.
	for i := range 600 {
		if _, err := s.AddLabels(ctx, []Label{{RequestID: fmt.Sprintf("r%d", i), Value: Num(float64(i % 3 / 2))}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddLabels(ctx, []Label{{RequestID: "nobody", Value: Num(1)}}); err != nil {
		t.Fatal(err)
	}
	var got []MatchedLabel
	cursor, err := s.ScanLabels(ctx, "fraud", "", nil, func(l MatchedLabel) bool { got = append(got, l); return true })
	if err != nil || len(got) != 300 {
		t.Fatalf("scan: %v, %d labels, want 300", err, len(got))
	}
	for j, l := range got {
		i := 2 * j
		if l.RequestID != fmt.Sprintf("r%d", i) || l.Model != "fraud" || l.Version != "v1" || l.Correct != (i%3 == 2) {
			t.Fatalf("label %d: %+v", j, l)
		}
	}
	o := obsAt(c, "fraud", "v1", 1)
	o.RequestID, o.Prediction = "late", Str("x")
	ingest(t, s, o)
	if _, err := s.AddLabels(ctx, []Label{{RequestID: "late", Value: Str("x")}}); err != nil {
		t.Fatal(err)
	}
	got = nil
	if _, err := s.ScanLabels(ctx, "fraud", "v1", cursor, func(l MatchedLabel) bool { got = append(got, l); return true }); err != nil || len(got) != 1 || got[0].RequestID != "late" || !got[0].Correct {
		t.Fatalf("resumed scan: %v %+v", err, got)
	}
}
