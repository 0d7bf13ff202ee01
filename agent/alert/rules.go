package alert

import (
	"fmt"
	"time"

	"github.com/vigilml/vigil/agent/observe"
)

// DriftFinding is one feature's latest drift verdict, as the drift engine
// (agent/drift) reports it. The engine applies the thresholds: PSI
// warning > 0.1 and critical > 0.2, a p-value test (KS, chi-square)
// drifting when p < 0.05, and so on per method; alerts take its Severity.
type DriftFinding struct {
	Model, Version, Feature, Method string
	Statistic                       float64
	// PValue is nil for methods without one. When set, Threshold is the
	// significance level the p-value is compared with; otherwise it is the
	// statistic's warning threshold.
	PValue *float64
	// RawPValue is the p-value before the multiple-testing correction,
	// when it differs from PValue: a warning is a raw p-value below the
	// threshold whose corrected one is not, and the description says so.
	RawPValue *float64
	Threshold float64
	// Critical is, for methods without a p-value, the statistic's
	// critical threshold (0 when unknown): the threshold reported with a
	// critical alert.
	Critical float64
	// Severity is ok, warning, critical or insufficient_data.
	Severity    string
	EvaluatedAt time.Time
	// Samples is how many values of the feature the current window held
	// when it was evaluated: what the finding rests on, reported as the
	// alert's samples.
	Samples int
}

// Drift severities.
const (
	DriftOK               = "ok"
	DriftWarning          = "warning"
	DriftCritical         = "critical"
	DriftInsufficientData = "insufficient_data"
)

// DriftSource is what the drift and accuracy_drop rules read. The agent
// plugs agent/drift in through an adapter; without one those rules
// evaluate nothing (and the status says so). Its methods are called from
// the evaluation loop with the manager's lock held: they must be quick
// and must not call back into the Manager.
type DriftSource interface {
	// DriftFindings returns the latest finding of every (model, version,
	// feature) the drift engine evaluates.
	DriftFindings() []DriftFinding
	// ReferenceAccuracy is the accuracy of the model version's reference
	// window, ok=false when unknown.
	ReferenceAccuracy(model, version string) (acc float64, labelled int, ok bool)
}

// StatsSource gives the per (model, version) stats over a sliding window;
// *observe.Service is one.
type StatsSource interface {
	Models(win time.Duration) []observe.ModelInfo
}

// AlertName is the alertname label of a rule's alerts.
func AlertName(rule string) string {
	switch rule {
	case RuleLatencyP95:
		return "VigilLatencyP95High"
	case RuleErrorRate:
		return "VigilErrorRateHigh"
	case RuleDrift:
		return "VigilFeatureDrift"
	case RuleAccuracyDrop:
		return "VigilAccuracyDrop"
	}
	return "Vigil_" + rule
}

// level applies a rule's thresholds with hysteresis. active says whether
// the alert is firing and crit whether it fires as critical: a firing
// alert stays at least warning until the value is at or below e.Resolve,
// and critical until it is at or below critical × (1 - hysteresis).
func level(v float64, e Effective, active, crit bool) (Severity, float64) {
	switch {
	case v > e.Critical, crit && v > e.Critical*(1-e.Hysteresis):
		return SeverityCritical, e.Critical
	case v > e.Warning, active && v > e.Resolve:
		return SeverityWarning, e.Warning
	}
	return SeverityNone, e.Warning
}

// driftLevel maps a finding's severity, keeping a firing alert at least
// warning until the statistic is clearly back: a p-value at or above
// threshold × (1 + hysteresis), or a statistic at or below threshold ×
// (1 - hysteresis).
func driftLevel(f DriftFinding, e Effective, active bool) (Severity, bool) {
	switch f.Severity {
	case DriftCritical:
		return SeverityCritical, false
	case DriftWarning:
		return SeverityWarning, false
	case DriftOK:
		if !active {
			return SeverityNone, false
		}
		if f.PValue != nil {
			if *f.PValue < f.Threshold*(1+e.Hysteresis) {
				return SeverityWarning, false
			}
		} else if f.Statistic > f.Threshold*(1-e.Hysteresis) {
			return SeverityWarning, false
		}
		return SeverityNone, false
	}
	return SeverityNone, true // insufficient_data or unknown: hold
}

// pending is one identity's condition plus its rule's `for`.
type pendingCond struct {
	Condition
	forDur time.Duration
}

func pct(v float64) string { return fmt.Sprintf("%.3g%%", v*100) }

// conditions evaluates every rule at now against the current state.
func (m *Manager) conditions(cur map[string]*tracked) map[string]pendingCond {
	out := map[string]pendingCond{}
	// Hysteresis holds only what has fired: a pending alert (or a firing
	// warning on its way to critical) must pass the threshold itself for
	// the whole of `for`.
	activeOf := func(l Labels) (firing, crit bool) {
		t := cur[l.key()]
		if t == nil || t.State != StateFiring {
			return false, false
		}
		return true, t.Severity == SeverityCritical
	}
	add := func(c Condition, e Effective) {
		out[c.Labels.key()] = pendingCond{Condition: c, forDur: e.For}
	}
	byWindow := map[time.Duration][]observe.ModelInfo{}
	models := func(win time.Duration) []observe.ModelInfo {
		if ms, ok := byWindow[win]; ok {
			return ms
		}
		ms := m.opts.Stats.Models(win)
		byWindow[win] = ms
		return ms
	}
	drift := m.driftSource()
	for _, rule := range []string{RuleLatencyP95, RuleErrorRate, RuleAccuracyDrop} {
		if rule == RuleAccuracyDrop && drift == nil {
			continue
		}
		// Each model may use its own window: evaluate per window in use.
		wins := map[time.Duration]bool{}
		for _, model := range append([]string{""}, m.modelNames...) {
			if e := m.cfg.RuleFor(rule, model); e.Enabled {
				wins[e.Window] = true
			}
		}
		for win := range wins {
			for _, mi := range models(win) {
				e := m.cfg.RuleFor(rule, mi.Model)
				if !e.Enabled || e.Window != win {
					continue
				}
				for _, v := range mi.Versions {
					st := v.Stats
					if st == nil {
						continue
					}
					labels := Labels{"rule": rule, "model": mi.Model, "version": v.Version}
					active, crit := activeOf(labels)
					c := Condition{Labels: labels}
					wname := observe.WindowName(win)
					switch rule {
					case RuleLatencyP95:
						c.Samples = st.LatencyCount
						if c.Samples == 0 || st.LatencyP95Ms == nil {
							continue // nothing observed: clear
						}
						c.Value = *st.LatencyP95Ms
						c.Level, c.Threshold = level(c.Value, e, active, crit)
						c.Summary = fmt.Sprintf("p95 latency of %s %s is %.1f ms", mi.Model, v.Version, c.Value)
						c.Description = fmt.Sprintf("p95 latency over the last %s is %.1f ms (warning > %g ms, critical > %g ms) over %d requests.", wname, c.Value, e.Warning, e.Critical, c.Samples)
					case RuleErrorRate:
						c.Samples = st.Requests
						if c.Samples == 0 || st.ErrorRate == nil {
							continue
						}
						c.Value = *st.ErrorRate
						c.Level, c.Threshold = level(c.Value, e, active, crit)
						c.Summary = fmt.Sprintf("error rate of %s %s is %s", mi.Model, v.Version, pct(c.Value))
						c.Description = fmt.Sprintf("%d of %d requests failed over the last %s (%s; warning > %s, critical > %s).", st.Errors, st.Requests, wname, pct(c.Value), pct(e.Warning), pct(e.Critical))
					case RuleAccuracyDrop:
						ref, refN, ok := drift.ReferenceAccuracy(mi.Model, v.Version)
						c.Samples = st.Labelled
						if !ok || st.Labelled == 0 || st.Accuracy == nil {
							continue
						}
						c.Value = ref - *st.Accuracy
						c.Level, c.Threshold = level(c.Value, e, active, crit)
						c.Summary = fmt.Sprintf("accuracy of %s %s dropped by %.3g points", mi.Model, v.Version, c.Value*100)
						c.Description = fmt.Sprintf("accuracy over the last %s is %s on %d labels; the reference window's is %s on %d (drop warning > %.3g points, critical > %.3g points).", wname, pct(*st.Accuracy), st.Labelled, pct(ref), refN, e.Warning*100, e.Critical*100)
						if refN < e.MinSamples {
							c.Hold = true
						}
					}
					if c.Samples < uint64(e.MinSamples) {
						c.Hold = true
					}
					add(c, e)
				}
			}
		}
	}
	if drift != nil {
		for _, f := range drift.DriftFindings() {
			e := m.cfg.RuleFor(RuleDrift, f.Model)
			if !e.Enabled {
				continue
			}
			labels := Labels{"rule": RuleDrift, "model": f.Model, "version": f.Version, "feature": f.Feature, "method": f.Method}
			active, _ := activeOf(labels)
			// The value is what the threshold is compared with: the
			// p-value for a test (drift when it is below), else the
			// statistic (drift when above).
			c := Condition{Labels: labels, Value: f.Statistic, Threshold: f.Threshold, Samples: uint64(max(f.Samples, 0))}
			if f.PValue != nil {
				c.Value = *f.PValue
			}
			c.Level, c.Hold = driftLevel(f, e, active)
			if c.Level == SeverityCritical && f.PValue == nil && f.Critical > 0 {
				c.Threshold = f.Critical
			}
			c.Summary = fmt.Sprintf("feature %s of %s %s drifted (%s)", f.Feature, f.Model, f.Version, f.Method)
			if f.PValue != nil {
				p := fmt.Sprintf("p-value %.3g", *f.PValue)
				if f.RawPValue != nil && *f.RawPValue != *f.PValue {
					p = fmt.Sprintf("p-value %.3g before the multiple-testing correction, %.3g after", *f.RawPValue, *f.PValue)
				}
				c.Description = fmt.Sprintf("%s statistic %.4g, %s (threshold %g); drift engine severity %s at %s.", f.Method, f.Statistic, p, c.Threshold, f.Severity, f.EvaluatedAt.UTC().Format(time.RFC3339))
			} else {
				c.Description = fmt.Sprintf("%s statistic %.4g (threshold %g); drift engine severity %s at %s.", f.Method, f.Statistic, c.Threshold, f.Severity, f.EvaluatedAt.UTC().Format(time.RFC3339))
			}
			add(c, e)
		}
	}
	return out
}
