package alert

import (
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"time"
)

// State is where an alert is in its life.
type State string

// Alert states. An alert that is inactive is not listed at all.
const (
	StatePending  State = "pending"
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Severity of an alert; also the `severity` label.
type Severity string

// Severities, in increasing order. SeverityNone is "condition not met".
const (
	SeverityNone     Severity = ""
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case SeverityWarning:
		return 1
	case SeverityCritical:
		return 2
	}
	return 0
}

// Labels identify an alert: rule, model, version and, for drift, feature
// and method. Severity is not part of the identity (an alert escalates and
// de-escalates in place) but is a label of what is delivered.
type Labels map[string]string

// key is the labels' canonical text, sorted by name.
func (l Labels) key() string {
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(l[k])
		b.WriteByte(0)
	}
	return b.String()
}

// fingerprint is a short stable ID of an identity.
func fingerprint(key string) string {
	h := fnv.New64a()
	h.Write([]byte(key))
	return strconv.FormatUint(h.Sum64(), 16)
}

// Condition is one evaluation's verdict for one alert identity.
type Condition struct {
	Labels Labels
	// Level is the severity whose threshold the value passes, hysteresis
	// applied by the rule (SeverityNone: clear).
	Level Severity
	// Hold is true when the value is unknown this time (too few samples,
	// or insufficient data): a firing alert stays as it is, a pending one
	// goes back to inactive (it never proved itself).
	Hold bool
	// Value and Threshold are reported with the alert: the value
	// evaluated and the threshold of Level (or of warning when clear).
	Value     float64
	Threshold float64
	// Samples is how many samples the value rests on.
	Samples     uint64
	Summary     string
	Description string
}

// Alert is one alert as GET /v1/alerts lists it.
type Alert struct {
	ID       string   `json:"id"`
	Rule     string   `json:"rule"`
	State    State    `json:"state"`
	Severity Severity `json:"severity"`
	// Labels are the identity labels plus severity, as delivered (without
	// the node's instance label).
	Labels      Labels     `json:"labels"`
	Value       float64    `json:"value"`
	Threshold   float64    `json:"threshold"`
	Samples     uint64     `json:"samples"`
	ActiveSince time.Time  `json:"active_since"`
	FiredAt     *time.Time `json:"fired_at,omitempty"`
	ResolvedAt  *time.Time `json:"resolved_at,omitempty"`
	// UpdatedAt is the last evaluation that saw this alert.
	UpdatedAt   time.Time `json:"updated_at"`
	Summary     string    `json:"summary"`
	Description string    `json:"description"`
}

// tracked is the machine's state for one identity.
type tracked struct {
	Alert
	labels Labels // identity labels, without severity
	// critSince is when the critical condition started to hold without a
	// break (zero when it does not hold): an alert fires as, or escalates
	// to, critical only once that has lasted `for`.
	critSince time.Time
	// sentAt is when the current state was last delivered to
	// Alertmanagers; dirty asks the next delivery to send it now.
	sentAt time.Time
	dirty  bool
	// prevSeverity is the severity last delivered while firing, so that a
	// change resolves the old label set in Alertmanager.
	prevSeverity Severity
}

// transition is what one step changed, for delivery and logs.
type transition struct {
	from, to         State
	sevFrom, sevTo   Severity
	fired, resolved  bool
	escalated, eased bool
}

// step advances one identity's state with one evaluation. t is nil for an
// identity that was inactive (or resolved; then the caller passes the old
// resolved alert so that a new episode starts cleanly). It returns the
// new state (nil: inactive) and what changed.
func step(t *tracked, c Condition, forDur time.Duration, now time.Time) (*tracked, transition) {
	var tr transition
	if t != nil && t.State == StateResolved {
		t = nil
	}
	if t == nil {
		if c.Level == SeverityNone || c.Hold {
			return nil, tr
		}
		t = &tracked{labels: c.Labels}
		t.ActiveSince = now
		t.State = StatePending
		t.Severity = SeverityWarning
		tr.from, tr.to = "", StatePending
	} else {
		tr.from = t.State
	}
	t.UpdatedAt = now
	t.Samples = c.Samples
	if c.Hold {
		if t.State == StatePending {
			return nil, tr
		}
		tr.to = t.State
		t.critSince = time.Time{}
		return t, tr
	}
	t.Value, t.Threshold, t.Summary, t.Description = c.Value, c.Threshold, c.Summary, c.Description
	if c.Level == SeverityNone {
		if t.State == StatePending {
			return nil, transition{from: StatePending}
		}
		t.State = StateResolved
		r := now
		t.ResolvedAt = &r
		t.dirty = true
		tr.to, tr.resolved = StateResolved, true
		return t, tr
	}
	if c.Level == SeverityCritical {
		if t.critSince.IsZero() {
			t.critSince = now
		}
	} else {
		t.critSince = time.Time{}
	}
	want := SeverityWarning
	if !t.critSince.IsZero() && now.Sub(t.critSince) >= forDur {
		want = SeverityCritical
	}
	if t.State == StatePending {
		t.Severity = want
		if now.Sub(t.ActiveSince) >= forDur {
			t.State = StateFiring
			f := now
			t.FiredAt = &f
			t.dirty = true
			tr.fired = true
		}
		tr.to = t.State
		return t, tr
	}
	// Firing: escalate once critical held `for`; ease off at once (the
	// rule's hysteresis already kept Level critical until the value fell
	// clearly below the critical threshold).
	if want != t.Severity {
		tr.sevFrom, tr.sevTo = t.Severity, want
		tr.escalated = want.rank() > t.Severity.rank()
		tr.eased = !tr.escalated
		t.Severity = want
		t.dirty = true
	}
	tr.to = t.State
	return t, tr
}
