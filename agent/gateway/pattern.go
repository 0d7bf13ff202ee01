package gateway

import (
	"regexp"
	"sync/atomic"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// patternMatchTimeout bounds one match of a pattern that only the
// backtracking engine reads. A schema's patterns are the client's and the
// strings they are matched against the upstream's, so a pattern that
// backtracks without end must not hold a request (or a core).
const patternMatchTimeout = 100 * time.Millisecond

// compilePattern is the schemas' regular-expression engine. JSON Schema
// says pattern and patternProperties are ECMA-262 regular expressions, and
// the schemas clients generate use what Go's RE2 syntax does not have:
// zod's z.iso.duration() and z.emoji() have lookaheads, z.emoji()
// \p{Extended_Pictographic} and \u20E3, and users write lookaheads in
// their own .regex(). RE2 reads most patterns, in linear time, so it is
// tried first; a pattern it refuses is compiled by regexp2 in ECMAScript
// mode (with Unicode classes and \u{...}, as JavaScript's u flag), which
// backtracks and so has a timeout per match. A pattern neither reads
// (such as "(ab") is the client's error, as before.
func compilePattern(s string) (jsonschema.Regexp, error) {
	re, err := regexp.Compile(s)
	if err == nil {
		return re, nil
	}
	re2, err2 := regexp2.Compile(s, regexp2.ECMAScript|regexp2.Unicode)
	if err2 != nil {
		return nil, err
	}
	re2.MatchTimeout = patternMatchTimeout
	return &ecmaPattern{re: re2}, nil
}

// maxSlowMatches is how many matches of one pattern may run into
// patternMatchTimeout before the pattern is no longer matched at all
// (every string passes). Compiled schemas are cached and shared, so this
// bounds what a pattern that backtracks without end can cost the agent
// over its life to about a third of a second, whatever the number of
// strings an answer holds or of requests that send the pattern: without
// it, an answer of 10,000 strings could hold a core for 1,000 s.
const maxSlowMatches = 3

// ecmaPattern is a regexp2 pattern as the schema validator uses it.
type ecmaPattern struct {
	re   *regexp2.Regexp
	slow atomic.Int32 // matches that ran into patternMatchTimeout
}

// MatchString reports whether s contains a match. A match that runs past
// patternMatchTimeout counts as one: the gateway cannot tell, and an
// answer is not refused for the pattern's cost (the upstream was given
// the schema and holds the answer to it, or not, itself). After
// maxSlowMatches such matches the pattern passes every string unmatched.
func (p *ecmaPattern) MatchString(s string) bool {
	if p.slow.Load() >= maxSlowMatches {
		return true
	}
	ok, err := p.re.MatchString(s)
	if err != nil {
		p.slow.Add(1)
		return true
	}
	return ok
}

func (p *ecmaPattern) String() string { return p.re.String() }
