package config

import (
	"regexp"
	"strconv"
	"strings"
)

// tabHint follows a syntax error caused by a tab in the indentation, the
// usual cause of yaml.v3's least helpful messages.
const tabHint = " (YAML does not allow tabs for indentation: indent with spaces)"

var yamlLinePrefix = regexp.MustCompile(`^line (\d+): `)

// yamlSyntaxError turns a yaml.v3 syntax error in file (whose contents are
// body) into an Error naming the line, once, as file:LINE.
//
// yaml.v3 puts "line N: " in front of most messages, but leaves it out when
// the problem is on line 1 and for an unknown anchor, and for a tab that
// breaks the indentation it names the line of the enclosing block, not the
// tab's. Those lines are found in body instead.
func yamlSyntaxError(file string, body []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLinePrefix.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	lines := strings.Split(string(body), "\n")
	tab := false
	switch {
	case strings.Contains(msg, "tab character"):
		// "found a tab character that violates indentation" and "...where
		// an indentation space is expected": the tab is at or after line.
		if n := firstTabIndented(lines, max(line, 1)); n > 0 {
			line, tab = n, true
		}
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		line = aliasLine(lines, name)
	case line == 0:
		// Both of the parser's marks were on the first line.
		line = 1
	}
	if strings.Contains(msg, "cannot start any token") && tabIndented(lines, line) {
		tab = true
	}
	if tab {
		msg += tabHint
	}
	return &Error{File: file, Line: line, Msg: "invalid YAML: " + msg}
}

// tabIndented says whether the indentation of the 1-based line holds a tab.
func tabIndented(lines []string, line int) bool {
	if line < 1 || line > len(lines) {
		return false
	}
	l := lines[line-1]
	indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
	return strings.Contains(indent, "\t")
}

// firstTabIndented returns the first line from the 1-based from on whose
// indentation holds a tab, or 0.
func firstTabIndented(lines []string, from int) int {
	for n := from; n <= len(lines); n++ {
		if tabIndented(lines, n) {
			return n
		}
	}
	return 0
}

// aliasLine returns the first line that uses the alias *name, or 0.
func aliasLine(lines []string, name string) int {
	ref := "*" + name
	for i, l := range lines {
		for rest := l; ; {
			j := strings.Index(rest, ref)
			if j < 0 {
				break
			}
			rest = rest[j+len(ref):]
			if rest == "" || strings.ContainsRune(" \t,]}#\r", rune(rest[0])) {
				return i + 1
			}
		}
	}
	return 0
}
