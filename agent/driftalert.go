package agent

import (
	"github.com/vigilml/vigil/agent/alert"
	"github.com/vigilml/vigil/agent/drift"
)

// driftAlerts adapts the drift engine's latest evaluations to what the
// drift and accuracy_drop alert rules read.
type driftAlerts struct{ e *drift.Engine }

// DriftFindings returns one finding per evaluated feature. A feature whose
// detector failed is reported as insufficient_data, so that an alert it
// already raised holds instead of resolving on a plugin crash.
func (d driftAlerts) DriftFindings() []alert.DriftFinding {
	var out []alert.DriftFinding
	for _, ev := range d.e.Latest() {
		for _, f := range ev.Features {
			sev := f.Severity
			if sev == drift.SeverityError {
				sev = drift.SeverityInsufficientData
			}
			thr, crit := f.Threshold, 0.0
			if f.PValue == nil && f.WarningThreshold != nil {
				thr, crit = *f.WarningThreshold, f.Threshold
			}
			p, raw := f.PValue, (*float64)(nil)
			if f.AdjustedPValue != nil {
				p, raw = f.AdjustedPValue, f.PValue
			}
			out = append(out, alert.DriftFinding{
				Model: ev.Model, Version: ev.Version, Feature: f.Feature, Method: f.Method,
				Statistic: f.Statistic, PValue: p, RawPValue: raw, Threshold: thr, Critical: crit,
				Severity: sev, EvaluatedAt: f.EvaluatedAt, Samples: f.CurrentN,
			})
		}
	}
	return out
}

// ReferenceAccuracy is the accuracy of the labelled observations in the
// version's pinned reference window.
func (d driftAlerts) ReferenceAccuracy(model, version string) (float64, int, bool) {
	evs, _ := d.e.Model(model, version)
	if len(evs) == 0 || evs[0].ReferenceAccuracy == nil {
		return 0, 0, false
	}
	return *evs[0].ReferenceAccuracy, evs[0].ReferenceLabelled, true
}
