package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The ASCII splitter yields exactly the pieces of the patterns, on random
// text weighted towards what the patterns treat specially: case changes,
// apostrophes and contractions, digit runs, runs of mixed whitespace and
// newlines, punctuation with spaces, newlines and slashes.
func TestASCIISplitMatchesPattern(t *testing.T) {
	atoms := []string{"a", "b", "s", "t", "l", "d", "e", "r", "v", "m", "A", "S", "L", "E", "Z",
		"'", "'s", "'LL", "'Re", "'ve", "'d", "'M", "'x",
		"0", "12", "3456", " ", "  ", "\t", "\n", "\r\n", "\r", "\v", "\f", " \n ", "\n\n",
		".", ",", "/", "//", "-", "_", "(", ")", "{", "}", "\"", "#", "!", "?", "~", "`", "@",
		"the", "The", "THE", "don't", "I'M", "http://x.y/z"}
	r := rand.New(rand.NewPCG(7, 11))
	texts := []string{"", " ", "\n", "a", "'", "'s", "  x", " \n", "\n ", "x\n \n_", "A'LL", "ab'", "1'2"}
	for i := 0; i < 5000; i++ {
		var b strings.Builder
		for n := 1 + r.IntN(24); n > 0; n-- {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		texts = append(texts, b.String())
	}
	for _, enc := range Encodings {
		bp := get(enc)
		for _, text := range texts {
			if !asciiOK(text) {
				t.Fatalf("%q is not accepted as ASCII", text)
			}
			var want, got []string
			if err := bp.splitRegexp(text, func(p string) { want = append(want, p) }); err != nil {
				t.Fatal(err)
			}
			split(text, bp.next, func(p string) { got = append(got, p) })
			if !slices.Equal(got, want) {
				t.Fatalf("%s %q:\n ascii   %q\n pattern %q", enc, text, got, want)
			}
		}
	}
}

func TestASCIIOK(t *testing.T) {
	for s, want := range map[string]bool{"plain text\n\t\r\v\f~": true, "é": false, "\x00": false, "\x1c": false, "\x7f": false, "": true} {
		if asciiOK(s) != want {
			t.Errorf("asciiOK(%q) = %v", s, !want)
		}
	}
}

// Cutting text into lines and splitting each with the ASCII splitter or
// the pattern gives the pieces of the pattern over the whole text.
func TestLineCutsMatchPattern(t *testing.T) {
	atoms := []string{"a", "Ab", "'s", " ", "\n", "\n\n", " \n", "\r\n", "\t", "/", "\n/", "1234", ".", "é", "日本", "🎉", "\u00a0", "\u0085", "\u2028", " x", "\nx", "\n ", "Ünï", "e\u0301"}
	r := rand.New(rand.NewPCG(3, 5))
	for _, enc := range Encodings {
		bp := get(enc)
		for i := 0; i < 5000; i++ {
			var b strings.Builder
			for n := 1 + r.IntN(30); n > 0; n-- {
				b.WriteString(atoms[r.IntN(len(atoms))])
			}
			text := b.String()
			var want []string
			_ = bp.splitRegexp(text, func(p string) { want = append(want, p) })
			var wantIDs, got []int
			for _, p := range want {
				if id, ok := bp.ranks[p]; ok {
					wantIDs = append(wantIDs, id)
				} else {
					bp.merge(p, func(id int) { wantIDs = append(wantIDs, id) })
				}
			}
			bp.tokenize(text, func(id int) { got = append(got, id) })
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("%s %q: cut %v, whole %v (pieces %q)", enc, text, got, wantIDs, want)
			}
		}
	}
}
