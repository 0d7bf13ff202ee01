package observe

import (
	"fmt"
	"strconv"
	"time"
)

// Kind says what a Value holds.
type Kind uint8

// Value kinds.
const (
	KindNone   Kind = iota // absent (JSON null or missing)
	KindNumber             // a finite float64
	KindString             // a string (categorical)
)

// Value is a feature value, a prediction or a label: a finite number or a
// string, or nothing.
type Value struct {
	Kind Kind
	Num  float64
	Str  string
}

// Num returns a number value.
func Num(f float64) Value { return Value{Kind: KindNumber, Num: f} }

// Str returns a string value.
func Str(s string) Value { return Value{Kind: KindString, Str: s} }

// IsNone reports whether v is absent.
func (v Value) IsNone() bool { return v.Kind == KindNone }

// String returns the value's canonical text: numbers in the shortest form
// that reads back exactly ("1", "0.25"), strings as they are, "" for none.
// Accuracy compares predictions and labels by this text, so 1 and "1" are
// equal.
func (v Value) String() string {
	switch v.Kind {
	case KindNumber:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case KindString:
		return v.Str
	}
	return ""
}

// Any returns v as float64, string or nil, for JSON output.
func (v Value) Any() any {
	switch v.Kind {
	case KindNumber:
		return v.Num
	case KindString:
		return v.Str
	}
	return nil
}

// Equal reports whether a prediction and a label agree (see String).
func (v Value) Equal(o Value) bool {
	if v.Kind == KindNone || o.Kind == KindNone {
		return false
	}
	if v.Kind == KindNumber && o.Kind == KindNumber {
		return v.Num == o.Num
	}
	return v.String() == o.String()
}

// Feature is one named input of an observation.
type Feature struct {
	Name  string
	Value Value
}

// Observation is one prediction as the model server reported it, after
// validation: every number is finite, every string within the limits.
type Observation struct {
	Model   string
	Version string
	// UnixMs is the observation's own timestamp in Unix milliseconds.
	UnixMs int64
	// LatencyMs is valid when HasLatency; it is finite, >= 0 and at most
	// MaxLatencyMs.
	LatencyMs  float64
	HasLatency bool
	// Error is true when the item said error: true or a status 500-599.
	Error bool
	// Status is the HTTP-like status code, 0 when none was sent.
	Status     int
	Features   []Feature
	Prediction Value
	RequestID  string
	Label      Value
}

// Time returns the observation's timestamp.
func (o *Observation) Time() time.Time { return time.UnixMilli(o.UnixMs) }

// Feature returns the value of the named feature (KindNone when absent).
func (o *Observation) Feature(name string) Value {
	for _, f := range o.Features {
		if f.Name == name {
			return f.Value
		}
	}
	return Value{}
}

// Label is ground truth for an earlier prediction, matched by request ID.
type Label struct {
	RequestID string
	Value     Value
}

// ItemError is a rejected item: the batch's name ("observations" or
// "labels"), the item's 0-based index (for NDJSON, its line among the
// non-blank lines) and the field, e.g. observations[3].features.age.
type ItemError struct {
	List  string
	Index int // -1 when the error is about the whole body
	Field string
	Msg   string
}

func (e *ItemError) Error() string {
	switch {
	case e.Index < 0 && e.Field == "":
		return e.Msg
	case e.Index < 0:
		return e.Field + ": " + e.Msg
	case e.Field == "":
		return fmt.Sprintf("%s[%d]: %s", e.List, e.Index, e.Msg)
	}
	return fmt.Sprintf("%s[%d].%s: %s", e.List, e.Index, e.Field, e.Msg)
}

// LimitError is a request refused because a capacity limit was reached
// (too many tracked models); the client may retry later or raise the limit.
type LimitError struct{ *ItemError }

func (e *LimitError) Unwrap() error { return e.ItemError }

// MaxLatencyMs is the largest latency_ms accepted (about 11.6 days). Far
// larger values are garbage, and beyond 1.26e308 the latency sketch cannot
// hold them at all: such an item would count as a request with a latency
// yet be missing from the percentiles, and the latency sum would overflow.
const MaxLatencyMs = 1e9
