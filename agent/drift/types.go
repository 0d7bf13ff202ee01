package drift

import (
	"context"
	"time"

	"github.com/vigilml/vigil/agent/observe"
	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Severities of a feature, and verdicts of a model version.
const (
	SeverityOK               = "ok"
	SeverityWarning          = "warning"
	SeverityCritical         = "critical"
	SeverityInsufficientData = "insufficient_data"
	// VerdictNoReference: no reference window is pinned yet (an automatic
	// one is still being collected, or auto_reference is off).
	VerdictNoReference = "no_reference"
	// SeverityError: the detector failed; FeatureResult.Error says why.
	SeverityError = "error"
)

// FeatureResult is the drift of one feature of one model version.
type FeatureResult struct {
	Feature string `json:"feature"`
	// Detector is the plugin that ran; Method the method it was asked.
	Detector string `json:"detector"`
	Method   string `json:"method"`
	// Categorical: the feature was compared as categories.
	Categorical bool    `json:"categorical"`
	Statistic   float64 `json:"statistic"`
	// PValue is nil for methods without one (psi, wasserstein,
	// jensenshannon); AdjustedPValue is the p-value after the model's
	// multiple-testing correction.
	PValue         *float64 `json:"p_value"`
	AdjustedPValue *float64 `json:"adjusted_p_value"`
	// Threshold: the p-value level (p-value methods) or the critical
	// statistic; WarningThreshold the warning statistic (statistic
	// methods only).
	Threshold        float64  `json:"threshold"`
	WarningThreshold *float64 `json:"warning_threshold,omitempty"`
	// Severity: ok, warning, critical, insufficient_data (a window has
	// fewer than min_samples values; no detector ran) or error.
	Severity    string    `json:"severity"`
	ReferenceN  int       `json:"reference_n"`
	CurrentN    int       `json:"current_n"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Error says why the detector gave no answer (missing or crashed
	// plugin, rejected input); empty otherwise.
	Error string `json:"error,omitempty"`
	// Warning says why an answer may mislead: a feature of numbers
	// compared as categories because some values were strings.
	Warning string `json:"warning,omitempty"`
}

// Evaluation is one drift evaluation of one model version.
type Evaluation struct {
	Model       string    `json:"model"`
	Version     string    `json:"version"`
	EvaluatedAt time.Time `json:"evaluated_at"`
	// Verdict is the worst feature severity: critical, warning or ok;
	// insufficient_data when no feature could be evaluated; no_reference
	// when nothing is pinned. Features whose detector failed do not count
	// towards it (their error is in the feature and the drift subsystem
	// reports degraded).
	Verdict    string          `json:"verdict"`
	Correction string          `json:"correction"`
	Features   []FeatureResult `json:"features"`
	// ReferenceAccuracy is the accuracy of the reference window's labelled
	// observations (prediction equal to the label, as observe compares
	// them): labels sent inline, an uploaded sample's label list, and
	// labels attached later by POST /v1/labels, joined by request ID; nil
	// while none is labelled. ReferenceLabelled counts them.
	ReferenceAccuracy *float64 `json:"reference_accuracy"`
	ReferenceLabelled int      `json:"reference_labelled"`
	// Reference describes the pinned reference (nil when none).
	Reference *ReferenceInfo `json:"reference,omitempty"`
	// DurationSeconds is how long the evaluation took, detector calls
	// included.
	DurationSeconds float64 `json:"duration_seconds"`
}

// ReferenceInfo describes a pinned reference window.
type ReferenceInfo struct {
	Model   string `json:"model"`
	Version string `json:"version"`
	// Source: auto (first observations of the version), range (stored
	// observations in [from, to)), or upload (a posted sample).
	Source       string     `json:"source"`
	From         *time.Time `json:"from,omitempty"`
	To           *time.Time `json:"to,omitempty"`
	PinnedAt     time.Time  `json:"pinned_at"`
	Observations int        `json:"observations"`
	// Features: values per feature in the reference.
	Features          map[string]int `json:"features"`
	Labelled          int            `json:"labelled"`
	Correct           int            `json:"correct"`
	ReferenceAccuracy *float64       `json:"reference_accuracy"`
}

// Source is where the engine reads stored observations: observe.Service.
type Source interface {
	Scan(ctx context.Context, model, version string, from, to time.Time, fn func(*observe.Observation) bool) error
	Models(win time.Duration) []observe.ModelInfo
}

// Detectors runs one detector call in the named plugin, and asks a plugin
// which methods it offers and the data types each takes.
type Detectors interface {
	Detect(ctx context.Context, plugin string, req *sdk.DetectRequest) (*pb.DetectResponse, error)
	Describe(ctx context.Context, plugin string) (*pb.DescribeResponse, error)
}

// HostDetectors calls detectors through the agent's plugin host, within
// its call deadline and supervision.
func HostDetectors(h *pluginhost.Host) Detectors { return hostDetectors{h} }

type hostDetectors struct{ h *pluginhost.Host }

func (d hostDetectors) Detect(ctx context.Context, plugin string, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	var resp *pb.DetectResponse
	err := d.h.WithDetector(ctx, plugin, "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		resp, err = c.Detect(ctx, req)
		return err
	})
	return resp, err
}

func (d hostDetectors) Describe(ctx context.Context, plugin string) (*pb.DescribeResponse, error) {
	var resp *pb.DescribeResponse
	err := d.h.WithDetector(ctx, plugin, "Describe", func(ctx context.Context, c sdk.DetectorClient) error {
		var err error
		resp, err = c.Describe(ctx)
		return err
	})
	return resp, err
}
