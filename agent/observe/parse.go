package observe

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// A hand-written decoder for the two request schemas, for two reasons.
// Errors: every rejection names the item and the field, including values
// that are not JSON at all but that real clients send (Python's json module
// writes NaN and Infinity bare), and numbers that overflow float64 (1e999).
// Speed: the observation path is the agent's hottest; decoding straight
// into Observation, with model and feature names interned, is several times
// faster than encoding/json into maps.

// parseLimits are the configured limits a parser checks.
type parseLimits struct {
	maxItems, maxFeatures, maxString, maxName int
	oldest, newest                            int64 // accepted timestamp range, Unix ms
	retention, skew                           time.Duration
}

func (c Config) limits(now time.Time) parseLimits {
	return parseLimits{
		maxItems: c.MaxBatchItems, maxFeatures: c.MaxFeatures,
		maxString: c.MaxStringBytes, maxName: c.MaxNameBytes,
		oldest:    now.Add(-c.Retention).UnixMilli(),
		newest:    now.Add(c.MaxFutureSkew).UnixMilli(),
		retention: c.Retention, skew: c.MaxFutureSkew,
	}
}

type parser struct {
	b     []byte
	i     int
	lim   parseLimits
	list  string // "observations" or "labels"
	index int    // current item, -1 outside items
	names map[string]string
	// featKey is the feature being parsed; the field name featField
	// stands for "features.<featKey>".
	featKey []byte
	feats   []Feature // backing array of all observations' features
	// lastNames are the feature names of the previous item, by position.
	lastNames []string
}

// featField names the current feature in errors (see parser.featKey).
const featField = "\x00features"

// fail is the error of the current item; field may be "".
func (p *parser) fail(field, format string, args ...any) *ItemError {
	if field == featField {
		field = "features." + string(p.featKey)
	}
	return &ItemError{List: p.list, Index: p.index, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) syntax(field, what string) *ItemError {
	if p.i >= len(p.b) {
		return p.fail(field, "invalid JSON: the body ends where %s was expected", what)
	}
	return p.fail(field, "invalid JSON at byte %d: found %s where %s was expected", p.i, quoteByte(p.b[p.i]), what)
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// intern returns a shared copy of b: model, version and feature names
// repeat in every item.
func (p *parser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.names) < 4096 {
		p.names[s] = s
	}
	return s
}

// rawString reads a JSON string and returns its decoded bytes (a slice of
// the body when it has no escapes).
func (p *parser) rawString(field string) ([]byte, *ItemError) {
	if p.peek() != '"' {
		return nil, p.syntax(field, "a string")
	}
	p.i++
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return nil, p.fail(field, "string is not valid UTF-8")
			}
			return s, nil
		case c == '\\':
			return p.escapedString(field, start)
		case c < 0x20:
			return nil, p.fail(field, "invalid JSON at byte %d: control character in a string", p.i)
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return nil, p.fail(field, "invalid JSON: unterminated string")
}

func (p *parser) escapedString(field string, start int) ([]byte, *ItemError) {
	out := append([]byte{}, p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(out) {
				return nil, p.fail(field, "string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, p.fail(field, "invalid JSON at byte %d: control character in a string", p.i)
		case c != '\\':
			out = append(out, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.fail(field, "invalid JSON at byte %d: bad \\u escape", p.i)
			}
			if r >= 0xD800 && r < 0xDC00 && p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
				p.i += 2
				r2, ok := p.hex4()
				if !ok {
					return nil, p.fail(field, "invalid JSON at byte %d: bad \\u escape", p.i)
				}
				if r2 >= 0xDC00 && r2 < 0xE000 {
					r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
				} else {
					out = utf8.AppendRune(out, utf8.RuneError)
					r = r2
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, p.fail(field, "invalid JSON at byte %d: bad escape \\%c", p.i-1, e)
		}
	}
	return nil, p.fail(field, "invalid JSON: unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// jsonKind is what a value turned out to be.
type jsonKind uint8

const (
	jNull jsonKind = iota
	jBool
	jNumber
	jString
	jObject
	jArray
	jNonFinite // NaN, Infinity, -Infinity: not JSON, but sent in practice
)

func kindName(k jsonKind) string {
	return [...]string{"null", "a boolean", "a number", "a string", "an object", "an array", "a non-finite number"}[k]
}

// scalar is one decoded scalar value.
type scalar struct {
	kind jsonKind
	num  float64
	str  []byte
	b    bool
	raw  []byte // the literal text, for numbers and non-finite literals
}

func (p *parser) literal(word string) bool {
	if bytes.HasPrefix(p.b[p.i:], []byte(word)) {
		p.i += len(word)
		return true
	}
	return false
}

// scalar reads a value; objects and arrays are reported by kind (and not
// consumed: the caller rejects them).
func (p *parser) scalar(field string) (scalar, *ItemError) {
	switch c := p.peek(); {
	case c == '"':
		s, err := p.rawString(field)
		return scalar{kind: jString, str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		if p.literal("-Infinity") {
			return scalar{kind: jNonFinite, raw: []byte("-Infinity")}, nil
		}
		return p.number(field)
	case c == 't' && p.literal("true"):
		return scalar{kind: jBool, b: true}, nil
	case c == 'f' && p.literal("false"):
		return scalar{kind: jBool}, nil
	case c == 'n' && p.literal("null"):
		return scalar{kind: jNull}, nil
	case c == 'N' && p.literal("NaN"):
		return scalar{kind: jNonFinite, raw: []byte("NaN")}, nil
	case c == 'I' && p.literal("Infinity"):
		return scalar{kind: jNonFinite, raw: []byte("Infinity")}, nil
	case c == '{':
		return scalar{kind: jObject}, nil
	case c == '[':
		return scalar{kind: jArray}, nil
	}
	return scalar{}, p.syntax(field, "a value")
}

func (p *parser) number(field string) (scalar, *ItemError) {
	start := p.i
	if p.peek() == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if p.peek() == '0' {
		p.i++
	} else if digits() == 0 {
		return scalar{}, p.syntax(field, "a digit")
	}
	if p.peek() == '.' {
		p.i++
		if digits() == 0 {
			return scalar{}, p.syntax(field, "a digit")
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.i++
		if c := p.peek(); c == '+' || c == '-' {
			p.i++
		}
		if digits() == 0 {
			return scalar{}, p.syntax(field, "a digit")
		}
	}
	raw := p.b[start:p.i]
	if f, ok := fastFloat(raw); ok {
		return scalar{kind: jNumber, num: f, raw: raw}, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil && !math.IsInf(f, 0) {
		return scalar{}, p.fail(field, "invalid number %s", raw)
	}
	if math.IsInf(f, 0) {
		return scalar{kind: jNonFinite, raw: raw}, nil
	}
	return scalar{kind: jNumber, num: f, raw: raw}, nil
}

// nonFiniteString reports whether s spells a non-finite number ("NaN",
// "inf", "-Infinity", "1e999"): such strings are refused as values, since
// they are almost always a float that a client serialised as text.
func nonFiniteString(s []byte) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	switch s[0] {
	case 'n', 'N', 'i', 'I', '+', '-', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return false
	}
	f, err := strconv.ParseFloat(string(s), 64)
	return (err == nil || math.IsInf(f, 0)) && (math.IsNaN(f) || math.IsInf(f, 0))
}

// SpellsNonFinite reports whether s spells a non-finite number ("NaN",
// "inf", "-Infinity", "1e999"), which observations refuse as values.
func SpellsNonFinite(s string) bool { return nonFiniteString([]byte(s)) }

func nonFiniteMsg(raw []byte) string {
	return fmt.Sprintf("must be a finite number, got %s (NaN and ±Infinity are rejected, as are numbers beyond float64's range)", raw)
}

// finite reads a number field that must be finite.
func (p *parser) finite(field string) (float64, *ItemError) {
	v, err := p.scalar(field)
	if err != nil {
		return 0, err
	}
	switch v.kind {
	case jNumber:
		return v.num, nil
	case jNonFinite:
		return 0, p.fail(field, "%s", nonFiniteMsg(v.raw))
	case jString:
		if nonFiniteString(v.str) {
			return 0, p.fail(field, "%s", nonFiniteMsg(strconv.AppendQuote(nil, string(v.str))))
		}
	}
	return 0, p.fail(field, "must be a number, got %s", kindName(v.kind))
}

// value reads a feature value, prediction or label: number or string. null
// is allowed (KindNone) when nullOK.
func (p *parser) value(field string, nullOK bool) (Value, *ItemError) {
	v, err := p.scalar(field)
	if err != nil {
		return Value{}, err
	}
	switch v.kind {
	case jNumber:
		return Num(v.num), nil
	case jString:
		if len(v.str) > p.lim.maxString {
			return Value{}, p.fail(field, "string of %d bytes is longer than observe.max_string_bytes (%d)", len(v.str), p.lim.maxString)
		}
		if nonFiniteString(v.str) {
			return Value{}, p.fail(field, "%s", nonFiniteMsg(strconv.AppendQuote(nil, string(v.str))))
		}
		if len(v.str) <= 32 { // categorical values repeat: share them
			return Str(p.intern(v.str)), nil
		}
		return Str(string(v.str)), nil
	case jNonFinite:
		return Value{}, p.fail(field, "%s", nonFiniteMsg(v.raw))
	case jNull:
		if nullOK {
			return Value{}, nil
		}
	}
	return Value{}, p.fail(field, "must be a number or a string, got %s", kindName(v.kind))
}

// name reads a model, version or feature name.
func (p *parser) name(field string, b []byte) (string, *ItemError) {
	if len(b) == 0 {
		return "", p.fail(field, "must not be empty")
	}
	if len(b) > p.lim.maxName {
		return "", p.fail(field, "name of %d bytes is longer than observe.max_name_bytes (%d)", len(b), p.lim.maxName)
	}
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return "", p.fail(field, "must not contain control characters")
		}
	}
	return p.intern(b), nil
}

// stringField reads a string field (null allowed when nullOK: returns nil).
func (p *parser) stringField(field string, nullOK bool) ([]byte, bool, *ItemError) {
	v, err := p.scalar(field)
	if err != nil {
		return nil, false, err
	}
	switch {
	case v.kind == jString:
		return v.str, true, nil
	case v.kind == jNull && nullOK:
		return nil, false, nil
	}
	return nil, false, p.fail(field, "must be a string, got %s", kindName(v.kind))
}

// object walks a JSON object, calling fn with each key (decoded) and the
// parser positioned at the value; fn must consume the value.
func (p *parser) object(field string, fn func(key []byte) *ItemError) *ItemError {
	p.ws()
	if p.peek() != '{' {
		return p.syntax(field, "'{'")
	}
	p.i++
	p.ws()
	if p.peek() == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		key, err := p.rawString(field)
		if err != nil {
			return err
		}
		p.ws()
		if p.peek() != ':' {
			return p.syntax(field, "':'")
		}
		p.i++
		p.ws()
		if err := fn(key); err != nil {
			return err
		}
		p.ws()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return nil
		default:
			return p.syntax(field, "',' or '}'")
		}
	}
}

// list parses the body: a bare array of items, {"<list>": [...]}, or
// NDJSON (one item per non-blank line). item parses one object at p.i.
func (p *parser) items(ndjson bool, item func() *ItemError) *ItemError {
	p.index = -1
	if ndjson {
		for n := 0; ; n++ {
			p.index = -1
			p.ws() // blank lines
			if p.i >= len(p.b) {
				return nil
			}
			if n >= p.lim.maxItems {
				return &ItemError{Index: -1, Msg: fmt.Sprintf("more than observe.max_batch_items (%d) items in one request; split the batch", p.lim.maxItems)}
			}
			p.index = n
			if err := item(); err != nil {
				return err
			}
			for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\r') {
				p.i++
			}
			if p.i < len(p.b) && p.b[p.i] != '\n' {
				return p.syntax("", "the end of the line (NDJSON: one JSON object per line)")
			}
		}
	}
	p.ws()
	wrapped := false
	switch p.peek() {
	case '[':
	case '{':
		wrapped = true
		p.i++
		p.ws()
		if p.peek() == '}' {
			return &ItemError{Index: -1, Field: p.list, Msg: fmt.Sprintf("is required: send {%q: [...]} or a bare JSON array", p.list)}
		}
		key, err := p.rawString("")
		if err != nil {
			return err
		}
		if string(key) != p.list {
			return &ItemError{Index: -1, Msg: fmt.Sprintf("unknown field %q: send {%q: [...]} or a bare JSON array", key, p.list)}
		}
		p.ws()
		if p.peek() != ':' {
			return p.syntax("", "':'")
		}
		p.i++
		p.ws()
		if p.peek() != '[' {
			return &ItemError{Index: -1, Field: p.list, Msg: "must be an array"}
		}
	default:
		if len(bytes.TrimSpace(p.b)) == 0 {
			return &ItemError{Index: -1, Msg: "request body is empty"}
		}
		return p.syntax("", fmt.Sprintf("a JSON array or {%q: [...]}", p.list))
	}
	p.i++ // '['
	p.ws()
	if p.peek() == ']' {
		p.i++
	} else {
		for n := 0; ; n++ {
			if n >= p.lim.maxItems {
				return &ItemError{Index: -1, Msg: fmt.Sprintf("more than observe.max_batch_items (%d) items in one request; split the batch", p.lim.maxItems)}
			}
			p.index = n
			p.ws()
			if err := item(); err != nil {
				return err
			}
			p.ws()
			c := p.peek()
			p.index = -1
			if c == ']' {
				p.i++
				break
			}
			if c != ',' {
				p.index = n
				return p.syntax("", "',' or ']' after the item")
			}
			p.i++
		}
	}
	p.ws()
	if wrapped {
		if p.peek() == ',' {
			// Name the second field when it is one.
			at := p.i
			p.i++
			p.ws()
			if key, err := p.rawString(""); err == nil {
				if string(key) == p.list {
					return &ItemError{Index: -1, Field: p.list, Msg: "appears twice"}
				}
				return &ItemError{Index: -1, Msg: fmt.Sprintf("unknown field %q: send {%q: [...]} or a bare JSON array", key, p.list)}
			}
			p.i = at
		}
		if p.peek() != '}' {
			return p.syntax("", "'}' (only one field is allowed)")
		}
		p.i++
		p.ws()
	}
	if p.i < len(p.b) {
		return p.syntax("", "the end of the body")
	}
	return nil
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// fastFloat converts the common short decimal (no exponent, at most 15
// significant digits) exactly as strconv.ParseFloat would: the mantissa
// and the power of ten are both exact in float64, so one correctly
// rounded division gives the correctly rounded result. ok is false for
// anything else, which goes to ParseFloat.
func fastFloat(raw []byte) (float64, bool) {
	neg := false
	i := 0
	if len(raw) > 0 && raw[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, frac := 0, -1
	for ; i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= '0' && c <= '9':
			mant = mant*10 + uint64(c-'0')
			if mant != 0 {
				digits++
			}
			if frac >= 0 {
				frac++
			}
		case c == '.' && frac < 0:
			frac = 0
		default:
			return 0, false
		}
	}
	if digits > 15 {
		return 0, false
	}
	f := float64(mant)
	if frac > 0 {
		if frac >= len(pow10) {
			return 0, false
		}
		f /= pow10[frac]
	}
	if neg {
		f = -f
	}
	return f, true
}
