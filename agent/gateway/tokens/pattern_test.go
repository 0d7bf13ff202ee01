package tokens

import (
	"sync"

	"github.com/dlclark/regexp2/v2"
)

// The reference the splitters are tested against: the encodings' patterns
// run by a backtracking regular-expression engine (regexp2 has the
// lookahead they need). The (?:) keeps regexp2 from substituting a
// registered generated engine for a pattern (v0.10.0 of
// tiktoken-go/tokenizer ships one that splits "\n \n" wrongly): the
// interpreter is the reference.
var (
	patternsOnce sync.Once
	patterns     map[string]*regexp2.Regexp
)

// splitRegexp calls yield with each piece the encoding's pattern matches.
func (b *bpe) splitRegexp(text string, yield func(string)) error {
	patternsOnce.Do(func() {
		patterns = map[string]*regexp2.Regexp{}
		for _, p := range []string{o200kPattern, cl100kPattern} {
			patterns[p] = regexp2.MustCompile("(?:"+p+")", regexp2.None)
		}
	})
	re := patterns[b.pattern]
	m, err := re.FindStringMatch(text)
	for ; m != nil && err == nil; m, err = re.FindNextMatch(m) {
		i, n := m.ByteRange()
		yield(text[i : i+n])
	}
	return err
}
