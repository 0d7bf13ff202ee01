package tokens

import (
	"unicode"
	"unicode/utf8"
)

// The splitter for lines that are not plain ASCII: the same alternatives as
// split_ascii.go, rune by rune, with the patterns' Unicode classes. Where
// the ASCII splitter could rely on upper- and lower-case letters being
// disjoint, o200k_base's two letter classes overlap here (modifier and
// other letters and combining marks are in both, and marks are also
// "punctuation" to the optional prefix), so its letter alternatives are
// matched by trying the choices in the order a backtracking engine tries
// them. A differential test checks this against the patterns run by a
// regular-expression engine, and the reference test against js-tiktoken.
//
// The classes are Go's Unicode tables: \p{L} is unicode.IsLetter, \p{N}
// unicode.IsNumber, \s unicode.IsSpace (Unicode's White_Space, as in
// tiktoken's Rust patterns). The contractions are matched with Unicode
// simple case folding, as tiktoken does: "'ſ" (long s) is a contraction.

func isLetterR(r rune) bool { return unicode.IsLetter(r) }
func isNumberR(r rune) bool { return unicode.IsNumber(r) }
func isSpaceR(r rune) bool  { return unicode.IsSpace(r) }
func isNLR(r rune) bool     { return r == '\r' || r == '\n' }

// isPrefixR is [^\r\n\p{L}\p{N}].
func isPrefixR(r rune) bool { return !isNLR(r) && !isLetterR(r) && !isNumberR(r) }

// isPunctR is [^\s\p{L}\p{N}].
func isPunctR(r rune) bool { return !isSpaceR(r) && !isLetterR(r) && !isNumberR(r) }

// isUpperR is o200k_base's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}].
func isUpperR(r rune) bool {
	if r < utf8.RuneSelf {
		return isUpper(byte(r))
	}
	return unicode.In(r, unicode.Lu, unicode.Lt, unicode.Lm, unicode.Lo, unicode.M)
}

// isLowerR is o200k_base's [\p{Ll}\p{Lm}\p{Lo}\p{M}].
func isLowerR(r rune) bool {
	if r < utf8.RuneSelf {
		return isLower(byte(r))
	}
	return unicode.In(r, unicode.Ll, unicode.Lm, unicode.Lo, unicode.M)
}

// at returns the rune at i and the index after it; (RuneError, i+1) for a
// byte that is not UTF-8, which every class above treats as punctuation.
func at(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), i + 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return r, i + n
}

// runR returns the end of the run of runes in class from i.
func runR(s string, i int, in func(rune) bool) int {
	for i < len(s) {
		r, j := at(s, i)
		if !in(r) {
			break
		}
		i = j
	}
	return i
}

// foldIs reports whether r is c (a lower-case ASCII letter) under simple
// case folding.
func foldIs(r rune, c byte) bool {
	return r == rune(c) || r == rune(c-'a'+'A') || (c == 's' && r == 'ſ')
}

// contractionR matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: the end, or -1.
func contractionR(s string, i int) int {
	if i >= len(s) || s[i] != '\'' {
		return -1
	}
	i++
	if i >= len(s) {
		return -1
	}
	r, j := at(s, i)
	switch {
	case foldIs(r, 's'), foldIs(r, 't'), foldIs(r, 'm'), foldIs(r, 'd'):
		return j
	case foldIs(r, 'r'), foldIs(r, 'v'):
		if j < len(s) {
			if r2, k := at(s, j); foldIs(r2, 'e') {
				return k
			}
		}
	case foldIs(r, 'l'):
		if j < len(s) {
			if r2, k := at(s, j); foldIs(r2, 'l') {
				return k
			}
		}
	}
	return -1
}

// digitsR is \p{N}{1,3} at i: the end, or -1.
func digitsR(s string, i int) int {
	j := i
	for n := 0; n < 3 && j < len(s); n++ {
		r, k := at(s, j)
		if !isNumberR(r) {
			break
		}
		j = k
	}
	if j == i {
		return -1
	}
	return j
}

// punctR is ` ?[^\s\p{L}\p{N}]+` followed by trail* at i: the end, or -1.
func punctR(s string, i int, trail func(rune) bool) int {
	j := i
	if s[j] == ' ' && j+1 < len(s) {
		if r, _ := at(s, j+1); isPunctR(r) {
			j++
		}
	}
	if r, _ := at(s, j); !isPunctR(r) {
		return -1
	}
	return runR(s, runR(s, j, isPunctR), trail)
}

// spacesR covers \s*[\r\n]+ | \s+(?!\S) | \s+ at i: the end, or -1.
func spacesR(s string, i int) int {
	j := runR(s, i, isSpaceR)
	if j == i {
		return -1
	}
	// \s*[\r\n]+: the whitespace up to and including its last newline
	// (newlines are single bytes).
	for p := j - 1; p >= i; p-- {
		if isNLR(rune(s[p])) {
			return p + 1
		}
	}
	// \s+(?!\S): all of it at the end of the text, else all but its last
	// rune, if that leaves any.
	if j == len(s) {
		return j
	}
	_, n := utf8.DecodeLastRuneInString(s[i:j])
	if j-n > i {
		return j - n
	}
	return j // \s+
}

// nextCl100kR returns the end of the cl100k_base piece starting at i.
func nextCl100kR(s string, i int) int {
	if e := contractionR(s, i); e >= 0 {
		return e
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	r, j := at(s, i)
	if isLetterR(r) {
		return runR(s, j, isLetterR)
	}
	if isPrefixR(r) && j < len(s) {
		if r2, k := at(s, j); isLetterR(r2) {
			return runR(s, k, isLetterR)
		}
	}
	if e := digitsR(s, i); e >= 0 {
		return e
	}
	if e := punctR(s, i, isNLR); e >= 0 {
		return e
	}
	if e := spacesR(s, i); e >= 0 {
		return e
	}
	return j // not reached: every rune is a letter, number, space or punctuation
}

// o200kWord matches o200k_base's two letter alternatives at i,
//
//	P?U*L+C? | P?U+L*C?
//
// (P the prefix class, U and L the upper- and lower-case classes, C a
// contraction), trying the choices in a backtracking engine's order: the
// prefix taken before not, U* longest first. It returns the end, or -1.
func o200kWord(s string, i int) int {
	r, afterPrefix := at(s, i)
	starts := [2]int{afterPrefix, i}
	if !isPrefixR(r) {
		starts[0] = -1
	}
	// P?U*L+C?: after the prefix (or not), back off the longest U run
	// until a rune of L follows it, then take all of L that follows.
	for _, start := range starts {
		if start < 0 || start >= len(s) {
			continue
		}
		e := runR(s, start, isUpperR)
		for k := e; ; {
			if k < len(s) {
				if r, j := at(s, k); isLowerR(r) {
					end := runR(s, j, isLowerR)
					if c := contractionR(s, end); c >= 0 {
						return c
					}
					return end
				}
			}
			if k == start {
				break
			}
			_, n := utf8.DecodeLastRuneInString(s[start:k])
			k -= n
		}
	}
	// P?U+L*C?: reached only when no rune of L follows any U run, so L*
	// takes nothing.
	for _, start := range starts {
		if start < 0 || start >= len(s) {
			continue
		}
		if e := runR(s, start, isUpperR); e > start {
			end := runR(s, e, isLowerR)
			if c := contractionR(s, end); c >= 0 {
				return c
			}
			return end
		}
	}
	return -1
}

// nextO200kR returns the end of the o200k_base piece starting at i.
func nextO200kR(s string, i int) int {
	if e := o200kWord(s, i); e >= 0 {
		return e
	}
	if e := digitsR(s, i); e >= 0 {
		return e
	}
	if e := punctR(s, i, func(r rune) bool { return isNLR(r) || r == '/' }); e >= 0 {
		return e
	}
	if e := spacesR(s, i); e >= 0 {
		return e
	}
	_, j := at(s, i)
	return j
}
