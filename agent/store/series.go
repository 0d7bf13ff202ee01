package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Label is one name/value pair of a series.
type Label struct {
	Name  string
	Value string
}

// Labels of a series, sorted by Name, names unique. Append sorts a copy when
// the caller's slice is unsorted.
type Labels []Label

// Get returns the value of the label called name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// String prints {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", l.Name, l.Value)
	}
	b.WriteByte('}')
	return b.String()
}

// Limits on series identity, so one bad client cannot bloat the index.
const (
	maxNameLen   = 256
	maxLabels    = 64
	maxLabelLen  = 1024
	maxSeriesKey = 8 << 10
)

// seriesKey returns the canonical index key of a series (length-prefixed
// name, then length-prefixed label names and values in name order) and the
// sorted labels. It validates what it encodes.
func seriesKey(buf []byte, name string, ls Labels) ([]byte, Labels, *SampleError) {
	if name == "" {
		return nil, nil, &SampleError{Field: "name", Reason: "empty"}
	}
	if len(name) > maxNameLen || !utf8.ValidString(name) {
		return nil, nil, &SampleError{Field: "name", Reason: "longer than 256 bytes or not UTF-8"}
	}
	if len(ls) > maxLabels {
		return nil, nil, &SampleError{Field: "labels", Reason: fmt.Sprintf("%d labels, at most %d allowed", len(ls), maxLabels)}
	}
	if !slices.IsSortedFunc(ls, cmpLabel) {
		ls = slices.Clone(ls)
		slices.SortFunc(ls, cmpLabel)
	}
	buf = binary.AppendUvarint(buf[:0], uint64(len(name)))
	buf = append(buf, name...)
	for i, l := range ls {
		if l.Name == "" {
			return nil, nil, &SampleError{Field: "labels", Reason: "empty label name"}
		}
		if i > 0 && ls[i-1].Name == l.Name {
			return nil, nil, &SampleError{Field: "labels", Reason: fmt.Sprintf("duplicate label %q", l.Name)}
		}
		if len(l.Name) > maxLabelLen || len(l.Value) > maxLabelLen || !utf8.ValidString(l.Name) || !utf8.ValidString(l.Value) {
			return nil, nil, &SampleError{Field: "labels", Reason: fmt.Sprintf("label %.40q longer than 1024 bytes or not UTF-8", l.Name)}
		}
		buf = binary.AppendUvarint(buf, uint64(len(l.Name)))
		buf = append(buf, l.Name...)
		buf = binary.AppendUvarint(buf, uint64(len(l.Value)))
		buf = append(buf, l.Value...)
	}
	if len(buf) > maxSeriesKey {
		return nil, nil, &SampleError{Field: "labels", Reason: "series identity longer than 8KiB"}
	}
	return buf, ls, nil
}

func cmpLabel(a, b Label) int { return strings.Compare(a.Name, b.Name) }

var errBadSeriesKey = errors.New("malformed series key")

// parseSeriesKey is the inverse of seriesKey.
func parseSeriesKey(k []byte) (string, Labels, error) {
	readStr := func() (string, bool) {
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) < n {
			return "", false
		}
		s := string(k[w : w+int(n)])
		k = k[w+int(n):]
		return s, true
	}
	name, ok := readStr()
	if !ok {
		return "", nil, errBadSeriesKey
	}
	var ls Labels
	for len(k) > 0 {
		n, ok1 := readStr()
		v, ok2 := readStr()
		if !ok1 || !ok2 {
			return "", nil, errBadSeriesKey
		}
		ls = append(ls, Label{n, v})
	}
	return name, ls, nil
}

// MatchType is the comparison a Matcher makes.
type MatchType int

// Matcher types, as in PromQL label matchers.
const (
	MatchEqual     MatchType = iota // label = value
	MatchNotEqual                   // label != value
	MatchRegexp                     // label =~ regexp (anchored)
	MatchNotRegexp                  // label !~ regexp (anchored)
)

// Matcher selects series by one label. A missing label has the value "",
// so {gpu!="0"} also selects series without a gpu label, as in PromQL.
type Matcher struct {
	Type  MatchType
	Name  string
	Value string
}

// compiledMatcher holds the compiled regexp of a regexp matcher.
type compiledMatcher struct {
	Matcher
	re *regexp.Regexp
}

func compileMatchers(ms []Matcher) ([]compiledMatcher, error) {
	out := make([]compiledMatcher, 0, len(ms))
	for i, m := range ms {
		cm := compiledMatcher{Matcher: m}
		if m.Name == "" {
			return nil, fmt.Errorf("%w: matcher %d: empty label name", ErrBadQuery, i)
		}
		switch m.Type {
		case MatchEqual, MatchNotEqual:
		case MatchRegexp, MatchNotRegexp:
			re, err := regexp.Compile("^(?:" + m.Value + ")$")
			if err != nil {
				return nil, fmt.Errorf("%w: matcher %d (%s): %v", ErrBadQuery, i, m.Name, err)
			}
			cm.re = re
		default:
			return nil, fmt.Errorf("%w: matcher %d: unknown type %d", ErrBadQuery, i, m.Type)
		}
		out = append(out, cm)
	}
	return out, nil
}

func (m compiledMatcher) matches(ls Labels) bool {
	v := ls.Get(m.Name)
	switch m.Type {
	case MatchEqual:
		return v == m.Value
	case MatchNotEqual:
		return v != m.Value
	case MatchRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

// ParseMatcher parses `name=value`, `name!=value`, `name=~re` or
// `name!~re`, the form used by the HTTP API's match[] parameter.
func ParseMatcher(s string) (Matcher, error) {
	i := strings.IndexAny(s, "=!")
	if i <= 0 {
		return Matcher{}, fmt.Errorf("%w: matcher %q: want name=value, name!=value, name=~re or name!~re", ErrBadQuery, s)
	}
	name, rest := s[:i], s[i:]
	switch {
	case strings.HasPrefix(rest, "=~"), strings.HasPrefix(rest, "!~"):
		// Checked here as well as in Query, so that the error names the
		// matcher as written rather than its position.
		if _, err := regexp.Compile("^(?:" + rest[2:] + ")$"); err != nil {
			return Matcher{}, fmt.Errorf("%w: matcher %q: %v", ErrBadQuery, s, err)
		}
		if rest[0] == '=' {
			return Matcher{MatchRegexp, name, rest[2:]}, nil
		}
		return Matcher{MatchNotRegexp, name, rest[2:]}, nil
	case strings.HasPrefix(rest, "!="):
		return Matcher{MatchNotEqual, name, rest[2:]}, nil
	case strings.HasPrefix(rest, "="):
		return Matcher{MatchEqual, name, rest[1:]}, nil
	}
	return Matcher{}, fmt.Errorf("%w: matcher %q: want name=value, name!=value, name=~re or name!~re", ErrBadQuery, s)
}
