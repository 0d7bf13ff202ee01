package observe

import (
	"bytes"
	"math"
	"time"
)

// DefaultVersion is the version of an observation that names none.
const DefaultVersion = "unknown"

// ParseObservations decodes and validates a POST /v1/observations body:
// {"observations": [...]}, a bare JSON array, or NDJSON (one object per
// line) when ndjson is set. The first invalid item fails the whole batch
// with an *ItemError naming it and its field. now is the agent's clock,
// against which timestamps are checked and which absent timestamps get.
func ParseObservations(body []byte, ndjson bool, cfg Config, now time.Time) ([]Observation, error) {
	cfg = cfg.withDefaults()
	p := &parser{b: body, lim: cfg.limits(now), list: "observations", names: map[string]string{},
		feats: make([]Feature, 0, min(len(body)/16, 1<<16))}
	nowMs := now.UnixMilli()
	// Size the result once: every item names its model.
	out := make([]Observation, 0, min(bytes.Count(body, []byte(`"model"`)), cfg.MaxBatchItems))
	err := p.items(ndjson, func() *ItemError {
		o, err := p.observation(nowMs)
		if err != nil {
			return err
		}
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Observation fields, as bits, to find duplicates and missing ones.
const (
	fModel = 1 << iota
	fVersion
	fTimestamp
	fLatency
	fError
	fStatus
	fFeatures
	fPrediction
	fRequestID
	fLabel
)

func (p *parser) observation(nowMs int64) (Observation, *ItemError) {
	var o Observation
	var seen int
	var explicitError bool
	err := p.object("", func(key []byte) *ItemError {
		var bit int
		var field string
		switch string(key) {
		case "model":
			bit, field = fModel, "model"
		case "version":
			bit, field = fVersion, "version"
		case "timestamp":
			bit, field = fTimestamp, "timestamp"
		case "latency_ms":
			bit, field = fLatency, "latency_ms"
		case "error":
			bit, field = fError, "error"
		case "status":
			bit, field = fStatus, "status"
		case "features":
			bit, field = fFeatures, "features"
		case "prediction":
			bit, field = fPrediction, "prediction"
		case "request_id":
			bit, field = fRequestID, "request_id"
		case "label":
			bit, field = fLabel, "label"
		default:
			return p.fail(string(key), "unknown field (known: model, version, timestamp, latency_ms, error, status, features, prediction, request_id, label)")
		}
		if seen&bit != 0 {
			return p.fail(field, "appears twice")
		}
		seen |= bit
		switch bit {
		case fModel, fVersion:
			s, ok, err := p.stringField(field, bit == fVersion)
			if err != nil {
				return err
			}
			if !ok {
				return nil
			}
			name, err := p.name(field, s)
			if err != nil {
				return err
			}
			if bit == fModel {
				o.Model = name
			} else {
				o.Version = name
			}
		case fTimestamp:
			ms, err := p.timestamp(field)
			if err != nil {
				return err
			}
			o.UnixMs = ms
		case fLatency:
			v, err := p.finite(field)
			if err != nil {
				return err
			}
			if v < 0 {
				return p.fail(field, "must not be negative, got %g", v)
			}
			if v > MaxLatencyMs {
				return p.fail(field, "must be at most %g (milliseconds, about 11.6 days), got %g", float64(MaxLatencyMs), v)
			}
			o.LatencyMs, o.HasLatency = v, true
		case fError:
			v, err := p.scalar(field)
			if err != nil {
				return err
			}
			if v.kind != jBool {
				return p.fail(field, "must be true or false, got %s", kindName(v.kind))
			}
			explicitError = v.b
		case fStatus:
			v, err := p.finite(field)
			if err != nil {
				return err
			}
			if v != math.Trunc(v) || v < 100 || v > 599 {
				return p.fail(field, "must be an HTTP status code, an integer from 100 to 599, got %g", v)
			}
			o.Status = int(v)
		case fFeatures:
			return p.features(&o)
		case fPrediction, fLabel:
			v, err := p.value(field, true)
			if err != nil {
				return err
			}
			if bit == fPrediction {
				o.Prediction = v
			} else {
				o.Label = v
			}
		case fRequestID:
			s, ok, err := p.stringField(field, true)
			if err != nil || !ok {
				return err
			}
			if len(s) == 0 {
				return p.fail(field, "must not be empty (leave it out instead)")
			}
			if len(s) > p.lim.maxString {
				return p.fail(field, "string of %d bytes is longer than observe.max_string_bytes (%d)", len(s), p.lim.maxString)
			}
			o.RequestID = string(s)
		}
		return nil
	})
	if err != nil {
		return o, err
	}
	if o.Model == "" {
		return o, p.fail("model", "is required")
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if seen&fTimestamp == 0 {
		o.UnixMs = nowMs
	}
	o.Error = explicitError || o.Status >= 500
	return o, nil
}

func (p *parser) features(o *Observation) *ItemError {
	p.ws()
	if c := p.peek(); c != '{' {
		if c == 'n' && p.literal("null") {
			return nil
		}
		v, err := p.scalar("features")
		if err != nil {
			return err
		}
		return p.fail("features", "must be an object of name: number or string, got %s", kindName(v.kind))
	}
	// Every observation's features share one backing array per request.
	start := len(p.feats)
	same := true
	err := p.object("features", func(key []byte) *ItemError {
		// The field's name is built only if it is needed for an error.
		p.featKey = key
		const field = featField
		if len(p.feats)-start >= p.lim.maxFeatures {
			return p.fail("features", "more than observe.max_features (%d) features", p.lim.maxFeatures)
		}
		// Items of a batch usually list the same features in the same
		// order: the name at this position in the previous item is a
		// cheaper match than the intern map (and was validated then).
		k := len(p.feats) - start
		var name string
		if k < len(p.lastNames) && p.lastNames[k] == string(key) {
			name = p.lastNames[k]
		} else {
			same = false
			var err *ItemError
			if name, err = p.name(field, key); err != nil {
				return err
			}
			if k < len(p.lastNames) {
				p.lastNames[k] = name
			} else if k == len(p.lastNames) && k < 64 {
				p.lastNames = append(p.lastNames, name)
			}
		}
		// While the names repeat the previous item's, which were
		// checked, they cannot repeat each other.
		if !same {
			for _, f := range p.feats[start:] {
				if f.Name == name {
					return p.fail(field, "appears twice")
				}
			}
		}
		v, err := p.value(field, false)
		if err != nil {
			return err
		}
		p.feats = append(p.feats, Feature{Name: name, Value: v})
		return nil
	})
	if err != nil {
		return err
	}
	if n := len(p.feats); n > start {
		o.Features = p.feats[start:n:n]
	}
	// lastNames must hold exactly this item's (distinct) names.
	if n := len(p.feats) - start; n < len(p.lastNames) {
		p.lastNames = p.lastNames[:n]
	}
	return nil
}

// timestamp reads RFC 3339 text or Unix milliseconds and checks its range.
func (p *parser) timestamp(field string) (int64, *ItemError) {
	v, err := p.scalar(field)
	if err != nil {
		return 0, err
	}
	var ms int64
	switch v.kind {
	case jString:
		t, perr := time.Parse(time.RFC3339Nano, string(v.str))
		if perr != nil {
			return 0, p.fail(field, "must be RFC 3339 text (2026-01-02T15:04:05Z) or Unix milliseconds, got %q", v.str)
		}
		ms = t.UnixMilli()
	case jNumber:
		if v.num < -1e15 || v.num > 1e15 {
			return 0, p.fail(field, "%s is not a plausible Unix time in milliseconds", v.raw)
		}
		ms = int64(math.Round(v.num))
	case jNonFinite:
		return 0, p.fail(field, "%s", nonFiniteMsg(v.raw))
	default:
		return 0, p.fail(field, "must be RFC 3339 text or Unix milliseconds, got %s", kindName(v.kind))
	}
	if ms < p.lim.oldest {
		hint := ""
		if v.kind == jNumber && ms > 0 && ms < 1e11 {
			hint = "; it looks like Unix seconds: send milliseconds"
		}
		return 0, p.fail(field, "%s is older than observe.retention (%s)%s", time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), p.lim.retention, hint)
	}
	if ms > p.lim.newest {
		return 0, p.fail(field, "%s is more than observe.max_future_skew (%s) ahead of the agent's clock", time.UnixMilli(ms).UTC().Format(time.RFC3339Nano), p.lim.skew)
	}
	return ms, nil
}

// ParseLabels decodes a POST /v1/labels body: {"labels": [...]}, a bare
// array or NDJSON of {"request_id": "...", "label": ...}.
func ParseLabels(body []byte, ndjson bool, cfg Config) ([]Label, error) {
	cfg = cfg.withDefaults()
	p := &parser{b: body, lim: cfg.limits(time.Now()), list: "labels", names: map[string]string{}}
	var out []Label
	err := p.items(ndjson, func() *ItemError {
		var l Label
		var seen int
		err := p.object("", func(key []byte) *ItemError {
			field := string(key)
			switch field {
			case "request_id":
				if seen&fRequestID != 0 {
					return p.fail(field, "appears twice")
				}
				seen |= fRequestID
				s, _, err := p.stringField(field, false)
				if err != nil {
					return err
				}
				if len(s) == 0 || len(s) > p.lim.maxString {
					return p.fail(field, "must be 1 to %d bytes (observe.max_string_bytes), got %d", p.lim.maxString, len(s))
				}
				l.RequestID = string(s)
			case "label":
				if seen&fLabel != 0 {
					return p.fail(field, "appears twice")
				}
				seen |= fLabel
				v, err := p.value(field, false)
				if err != nil {
					return err
				}
				l.Value = v
			default:
				return p.fail(field, "unknown field (known: request_id, label)")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if l.RequestID == "" {
			return p.fail("request_id", "is required")
		}
		if l.Value.IsNone() {
			return p.fail("label", "is required")
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
