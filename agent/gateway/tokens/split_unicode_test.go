package tokens

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// unicodeAtoms are pieces of text weighted towards what the patterns'
// Unicode classes treat specially: upper, lower, title-case, modifier and
// other letters, combining marks (letters to o200k_base, punctuation to
// cl100k_base and to the prefix), numbers beyond ASCII digits, Unicode
// whitespace, symbols and emoji, contractions, and invalid UTF-8.
var unicodeAtoms = []string{
	"a", "Z", "s", "'", "'s", "'LL", "'Re", "'ve", "'d",
	"é", "É", "ß", "ẞ", "ǅ", "ǈ", "ʰ", "ˆ", "ー", "々", "中", "日本", "한", "ж", "Ж", "ش", "א", "ก", "ि",
	"\u0301", "\u0303", "\u20dd", "\u0903", "e\u0301", "E\u0301", "\u0301a",
	"1", "42", "١٢٣", "Ⅻ", "½", "²", "𝟙", "〇",
	" ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u0085", "\u2028", "\u2029", "\u3000", "\u2003", "\u200b", "\ufeff",
	".", ",", "/", "-", "—", "…", "«", "€", "©", "🎉", "👍🏽", "\u200d", "🇫🇷", "\ufe0f",
	"\xff", "\xe2\x82",
}

func randomTexts(seed uint64, atoms []string, n, maxLen int) []string {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	texts := []string{"é", "中A", "ʰA", "A\u0301", "\u0301A", "Ǆa", " \u00a0x", "\u00a0\u00a0x", "x\u2028y", "'é", "é's"}
	for i := 0; i < n; i++ {
		var b strings.Builder
		for k := 1 + r.IntN(maxLen); k > 0; k-- {
			b.WriteString(atoms[r.IntN(len(atoms))])
		}
		texts = append(texts, b.String())
	}
	return texts
}

// The Unicode splitter yields exactly the pieces of the patterns.
func TestUnicodeSplitMatchesPattern(t *testing.T) {
	texts := randomTexts(13, unicodeAtoms, 20000, 16)
	for _, enc := range Encodings {
		bp := get(enc)
		for _, text := range texts {
			var want, got []string
			if err := bp.splitRegexp(text, func(p string) { want = append(want, p) }); err != nil {
				t.Fatal(err)
			}
			split(text, bp.nextR, func(p string) { got = append(got, p) })
			if !slices.Equal(got, want) {
				t.Fatalf("%s %q:\n unicode %q\n pattern %q", enc, text, got, want)
			}
		}
	}
}

// On plain ASCII the Unicode splitter agrees with the ASCII one.
func TestUnicodeSplitMatchesASCII(t *testing.T) {
	atoms := []string{"a", "B", "'s", "'LL", "'x", "12345", " ", "  ", "\t", "\n", "\r\n", ".", "/", "//", "don't", "THE", "x "}
	for _, enc := range Encodings {
		bp := get(enc)
		for _, text := range randomTexts(5, atoms, 5000, 20) {
			if !asciiOK(text) {
				continue
			}
			var want, got []string
			split(text, bp.next, func(p string) { want = append(want, p) })
			split(text, bp.nextR, func(p string) { got = append(got, p) })
			if !slices.Equal(got, want) {
				t.Fatalf("%s %q:\n unicode %q\n ascii   %q", enc, text, got, want)
			}
		}
	}
}

// The contractions fold case as tiktoken's patterns do (Unicode simple
// case folding): long s is an s. regexp2 lower-cases instead, so this is
// not checked against it.
func TestContractionFolding(t *testing.T) {
	for _, enc := range Encodings {
		var got []string
		split("x'ſ", get(enc).nextR, func(p string) { got = append(got, p) })
		want := []string{"x", "'ſ"}
		if enc == O200kBase {
			want = []string{"x'ſ"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %q, want %q", enc, got, want)
		}
	}
}
