package drift

import (
	"strings"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

func pv(p float64) *float64 { return &p }

func pResp(method string, p float64) *pb.DetectResponse {
	return &pb.DetectResponse{Method: method, Statistic: 0.1, PValue: pv(p), Threshold: 0.05, Direction: pb.Direction_P_VALUE_BELOW, Drifted: p < 0.05}
}

func sResp(method string, stat, thr float64) *pb.DetectResponse {
	return &pb.DetectResponse{Method: method, Statistic: stat, Threshold: thr, Direction: pb.Direction_STATISTIC_ABOVE, Drifted: stat > thr}
}

// TestClassify checks severities, the correction and the verdict: with
// Bonferroni over 4 p-value features, p = 0.001 rejects (adjusted 0.004),
// p = 0.02 is only a warning (adjusted 0.08), p = 0.5 is ok; PSI 0.25 is
// critical, 0.15 a warning (default warning level 0.1), 0.05 ok.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corr    Correction
		resps   []*pb.DetectResponse
		errs    []string
		want    []string
		adj     []float64 // -1: none
		verdict string
	}{
		{
			name:    "bonferroni",
			corr:    Bonferroni,
			resps:   []*pb.DetectResponse{pResp("ks", 0.001), pResp("ks", 0.02), pResp("ks", 0.5), pResp("chisquare", 0.9)},
			want:    []string{"critical", "warning", "ok", "ok"},
			adj:     []float64{0.004, 0.08, 1, 1},
			verdict: "critical",
		},
		{
			name:    "benjamini-hochberg",
			corr:    BenjaminiHochberg,
			resps:   []*pb.DetectResponse{pResp("ks", 0.001), pResp("ks", 0.02), pResp("ks", 0.5), pResp("chisquare", 0.9)},
			want:    []string{"critical", "critical", "ok", "ok"}, // adjusted 0.004, 0.04, 0.6667, 0.9
			adj:     []float64{0.004, 0.04, 0.5 * 4 / 3, 0.9},
			verdict: "critical",
		},
		{
			name:    "statistics",
			corr:    Bonferroni,
			resps:   []*pb.DetectResponse{sResp("psi", 0.25, 0.2), sResp("psi", 0.15, 0.2), sResp("psi", 0.05, 0.2), sResp("jensenshannon", 0.06, 0.1)},
			want:    []string{"critical", "warning", "ok", "warning"},
			adj:     []float64{-1, -1, -1, -1},
			verdict: "critical",
		},
		{
			name:    "errors and missing data do not make a verdict",
			corr:    Bonferroni,
			resps:   []*pb.DetectResponse{nil, nil, sResp("psi", 0.12, 0.2)},
			errs:    []string{"unavailable: plugin gone", "", ""},
			want:    []string{"error", "insufficient_data", "warning"},
			adj:     []float64{-1, -1, -1},
			verdict: "warning",
		},
		{
			name:    "nothing evaluated",
			corr:    Bonferroni,
			resps:   []*pb.DetectResponse{nil},
			want:    []string{"insufficient_data"},
			adj:     []float64{-1},
			verdict: "insufficient_data",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := &Evaluation{Features: make([]FeatureResult, len(tc.resps))}
			plans := make([]featurePlan, len(tc.resps))
			for i := range ev.Features {
				if tc.resps[i] == nil {
					ev.Features[i].Severity = SeverityInsufficientData
				}
				if i < len(tc.errs) && tc.errs[i] != "" {
					ev.Features[i].Error = tc.errs[i]
				}
			}
			classify(ev, plans, tc.resps, tc.corr)
			for i, f := range ev.Features {
				if f.Severity != tc.want[i] {
					t.Errorf("feature %d: severity %s, want %s", i, f.Severity, tc.want[i])
				}
				switch {
				case tc.adj[i] < 0 && f.AdjustedPValue != nil:
					t.Errorf("feature %d: adjusted p %v, want none", i, *f.AdjustedPValue)
				case tc.adj[i] >= 0 && (f.AdjustedPValue == nil || abs(*f.AdjustedPValue-tc.adj[i]) > 1e-12):
					t.Errorf("feature %d: adjusted p %v, want %v", i, f.AdjustedPValue, tc.adj[i])
				}
			}
			if ev.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s", ev.Verdict, tc.verdict)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestClassifyWarningOverride(t *testing.T) {
	w := 0.2
	ev := &Evaluation{Features: make([]FeatureResult, 1)}
	classify(ev, []featurePlan{{conf: FeatureConfig{Warning: &w}}}, []*pb.DetectResponse{sResp("wasserstein", 0.15, 0.3)}, Bonferroni)
	if ev.Features[0].Severity != SeverityOK || *ev.Features[0].WarningThreshold != 0.2 {
		t.Fatalf("configured warning 0.2, statistic 0.15: %+v", ev.Features[0])
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := DefaultConfig()
	bad.Interval = 10
	bad.Correction = "holm"
	bad.CurrentWindow = -1
	bad.CurrentWindowTime = 5
	err := bad.Validate()
	for _, want := range []string{"drift.interval:", "drift.correction:", "drift.current_window:", "drift.current_window_time:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want an error naming %s, got %v", want, err)
		}
	}
	neg, big := -1.0, 2.0
	m := Models{
		"fraud": {Correction: "fdr", Features: map[string]FeatureConfig{
			"amount":  {Detector: "psi", Threshold: &big, Params: map[string]any{"bins": 20}},
			"age":     {Detector: "ks", Threshold: &big},
			"country": {Method: "tvd"},
			"score":   {Detector: "wasserstein", Params: map[string]any{"normalize": false}},
			"x":       {Detector: "psi", Warning: &neg},
		}},
		"spam": {Correction: "nope"},
	}
	err = m.Validate()
	for _, want := range []string{
		"models.fraud.features.age.threshold: is a p-value level",
		"models.fraud.features.country.method: needs a detector",
		"models.fraud.features.score.threshold: is required",
		"models.fraud.features.x.warning: must be a positive number",
		"models.spam.correction: unknown correction",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q, got %v", want, err)
		}
	}
	if err != nil && strings.Contains(err.Error(), "features.amount") {
		t.Errorf("psi threshold 2 is valid: %v", err)
	}
}
