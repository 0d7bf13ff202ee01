package tokens

// A hand-written splitter for text made only of printable ASCII and the
// five ASCII whitespace controls (most prompts: English, code, JSON). It
// yields exactly the pieces the encodings' patterns match, alternative by
// alternative, with the backtracking worked out for ASCII, where the
// pattern's classes reduce to a few byte tests: letters split into
// upper-case and lower-case with no overlap and there are no marks. Text
// with any other byte goes through split_unicode.go; a differential test
// checks both against the patterns run by a regular-expression engine.

// asciiOK reports whether s can take the ASCII splitter.
func asciiOK(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x7f || (c < 0x20 && !isSpace(c)) {
			return false
		}
	}
	return true
}

func isSpace(c byte) bool  { return c == ' ' || (c >= '\t' && c <= '\r') } // \t \n \v \f \r
func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool  { return c >= 'a' && c <= 'z' }
func isLetter(c byte) bool { return isUpper(c) || isLower(c) }
func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isNL(c byte) bool     { return c == '\r' || c == '\n' }

// isPrefix is [^\r\n\p{L}\p{N}].
func isPrefix(c byte) bool { return !isNL(c) && !isLetter(c) && !isDigit(c) }

// isPunct is [^\s\p{L}\p{N}].
func isPunct(c byte) bool { return !isSpace(c) && !isLetter(c) && !isDigit(c) }

func lower(c byte) byte {
	if isUpper(c) {
		return c + 'a' - 'A'
	}
	return c
}

// contraction matches (?i:'s|'t|'re|'ve|'m|'ll|'d) at i: the end, or -1.
func contraction(s string, i int) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return -1
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return -1
}

func run(s string, i int, in func(byte) bool) int {
	for i < len(s) && in(s[i]) {
		i++
	}
	return i
}

// digits is \p{N}{1,3} at i: the end, or -1.
func digits(s string, i int) int {
	j := i
	for j < len(s) && j-i < 3 && isDigit(s[j]) {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// punct is ` ?[^\s\p{L}\p{N}]+` followed by trail* at i: the end, or -1.
func punct(s string, i int, trail func(byte) bool) int {
	j := i
	if j < len(s) && s[j] == ' ' && j+1 < len(s) && isPunct(s[j+1]) {
		j++
	}
	if j >= len(s) || !isPunct(s[j]) {
		return -1
	}
	return run(s, run(s, j, isPunct), trail)
}

// spaces covers the three whitespace alternatives both patterns end with:
// \s*[\r\n]+ | \s+(?!\S) | \s+ at i: the end, or -1.
func spaces(s string, i int) int {
	j := run(s, i, isSpace)
	if j == i {
		return -1
	}
	// \s*[\r\n]+: the whitespace up to and including its last newline.
	for p := j - 1; p >= i; p-- {
		if isNL(s[p]) {
			return p + 1
		}
	}
	// \s+(?!\S): all of it at the end of the text, else all but the last
	// one, if that leaves any.
	if j == len(s) {
		return j
	}
	if j-1 > i {
		return j - 1
	}
	return j // \s+
}

// nextCl100k returns the end of the cl100k_base piece starting at i.
func nextCl100k(s string, i int) int {
	if e := contraction(s, i); e >= 0 {
		return e
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(s[i]) {
		return run(s, i, isLetter)
	}
	if isPrefix(s[i]) && i+1 < len(s) && isLetter(s[i+1]) {
		return run(s, i+1, isLetter)
	}
	if e := digits(s, i); e >= 0 {
		return e
	}
	if e := punct(s, i, isNL); e >= 0 {
		return e
	}
	if e := spaces(s, i); e >= 0 {
		return e
	}
	return i + 1 // not reached: every byte is a letter, digit, space or punctuation
}

// nextO200k returns the end of the o200k_base piece starting at i.
func nextO200k(s string, i int) int {
	// P?[A-Z]*[a-z]+C? | P?[A-Z]+[a-z]*C?: with an optional prefix, an
	// upper-case run, then a lower-case run (required by the first
	// alternative, when the upper-case run is empty, by the second).
	j := i
	if isPrefix(s[j]) && j+1 < len(s) && isLetter(s[j+1]) {
		j++
	}
	if isLetter(s[j]) {
		j = run(s, run(s, j, isUpper), isLower)
		if e := contraction(s, j); e >= 0 {
			return e
		}
		return j
	}
	if e := digits(s, i); e >= 0 {
		return e
	}
	if e := punct(s, i, func(c byte) bool { return isNL(c) || c == '/' }); e >= 0 {
		return e
	}
	if e := spaces(s, i); e >= 0 {
		return e
	}
	return i + 1
}

// split calls yield with each piece of s, as the splitter step next cuts
// them.
func split(s string, next func(string, int) int, yield func(string)) {
	for i := 0; i < len(s); {
		e := next(s, i)
		yield(s[i:e])
		i = e
	}
}
