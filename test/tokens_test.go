package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/vigilml/vigil/agent/gateway/tokens"
)

// jsTiktoken returns a directory holding js-tiktoken as pinned in
// test/tokens/node/package-lock.json, installed with npm ci into the
// user's cache directory on first use (the registry is needed then only).
func jsTiktoken(t *testing.T) string {
	t.Helper()
	return npmPackage(t, "tokens/node", "js-tiktoken", "encode.mjs", "the tokenizer reference test")
}

// tokenCorpus is text of many kinds: prose, code, several scripts, emoji
// (with joiners and modifiers), whitespace runs, long numbers, strings that
// look like special tokens, and seeded random mixes of all of them.
func tokenCorpus(t *testing.T) []string {
	corpus := []string{
		"",
		"Hello, world!",
		"The quick brown fox jumps over the lazy dog.",
		"I'LL DO IT. You'll see; they've said we'd've known. DON'T shout. It's O'Neil's.",
		"func main() {\n\tfmt.Println(\"hi\")\n\treturn\n}\n",
		"def f(x):\n    return {'a': [1, 2, 3], \"b\": None}  # comment\n",
		"SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days';",
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"temperature":0}`,
		"https://example.com/path/to/file.tar.gz?query=1&x=%20y#frag",
		"日本語のテキストと中文文本，还有한국어 문장.",
		"Съешь же ещё этих мягких французских булок, да выпей чаю.",
		"مرحبا بالعالم — नमस्ते दुनिया — שלום עולם",
		"🎉🎉🎉 👩\u200d👩\u200d👧\u200d👦 👍🏽 🏳\ufe0f\u200d🌈 ❤\ufe0f\u200d🔥 🇫🇷🇯🇵",
		"e\u0301 n\u0303 a\u0308\u0301 ℌ𝔢𝔩𝔩𝔬 ﬁ ẞ ǅ",
		"          leading spaces and trailing   ",
		"tabs\t\t\tand\r\nCRLF\r\n\r\n\n\nnewlines\n",
		strings.Repeat(" ", 300) + "x",
		strings.Repeat("\n", 50),
		strings.Repeat("ab", 400),
		"12345678901234567890123456789012345678901234567890 3.14159265358979 1e-12 0x1F2E3D",
		"<|endoftext|> <|endofprompt|> <|fim_prefix|><|fim_middle|><|fim_suffix|> <|im_start|>user",
		"Pneumonoultramicroscopicsilicovolcanoconiosis supercalifragilisticexpialidocious",
		"don't 's 're 've 'm 'll 'd 'S 'T 'RE",
		"a/b/c//d\\e\\f ../.. ~/.config $HOME ${VAR} @user #tag",
		"——…“quotes” ‘single’ «guillemets» • · ° ± × ÷",
		// Where o200k_base's letter classes overlap (modifier and other
		// letters, marks) and Unicode whitespace and numbers.
		"中A ʰA Ǆa ǅx ǈǈ A\u0301b \u0301A ー々X ि'S é'LL",
		"a\u00a0\u00a0b c\u2028d\u2029 e\u0085f \u3000g \u2003 h \u00a0\n i",
		"١٢٣٤٥ Ⅻ ½ ² 𝟙𝟚𝟛𝟜 〇〇 ४२",
		strings.Repeat("word ", 2000),
	}
	if b, err := os.ReadFile("../agent/gateway/openai.go"); err == nil {
		corpus = append(corpus, string(b)) // a real source file
	} else {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("../docs/gateway.md"); err == nil {
		corpus = append(corpus, string(b)) // real prose with markdown
	} else {
		t.Fatal(err)
	}
	pieces := []string{"a", "Z", "é", " ", "  ", "\n", "\r\n", "\t", "7", "42", "1234567", ".", ",", "'s", "'LL", "<|", "|>",
		"日", "本", "한", "ж", "ش", "🎉", "\u200d", "🏽", "\u0301", "{", "}", "\"", "_", "-", "the", "The", " the", "ing", "https://"}
	r := rand.New(rand.NewPCG(9, 9))
	for i := 0; i < 400; i++ {
		var b strings.Builder
		for n := r.IntN(60) + 1; n > 0; n-- {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		corpus = append(corpus, b.String())
	}
	// Long pieces (one run of letters or digits-free symbols) take the
	// heap merge.
	letters := "abcdefghijklmnopqrstuvwxyzéàü"
	for i := 0; i < 20; i++ {
		var b strings.Builder
		for n := 64 + r.IntN(600); n > 0; n-- {
			b.WriteByte(letters[r.IntN(26)])
		}
		if i%2 == 1 {
			b.WriteString(strings.Repeat("é", 40) + strings.Repeat("#$%&", 30))
		}
		corpus = append(corpus, b.String())
	}
	return corpus
}

// TestTokenizerMatchesJSTiktoken encodes the corpus with Vigil's tokenizer
// and with js-tiktoken (an independent implementation carrying OpenAI's
// published ranks) in both encodings: the token ids must be identical.
func TestTokenizerMatchesJSTiktoken(t *testing.T) {
	dir := jsTiktoken(t)
	corpus := tokenCorpus(t)
	type tc struct {
		Encoding string `json:"encoding"`
		Text     string `json:"text"`
	}
	var cases []tc
	for _, enc := range tokens.Encodings {
		for _, text := range corpus {
			cases = append(cases, tc{string(enc), text})
		}
	}
	in, _ := json.Marshal(map[string]any{"cases": cases})
	cmd := exec.Command("node", "encode.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("js-tiktoken: %v\n%s", err, stderr.String())
	}
	var ref struct{ IDs [][]int }
	if err := json.Unmarshal(out, &ref); err != nil || len(ref.IDs) != len(cases) {
		t.Fatalf("js-tiktoken answered %d results for %d cases: %v", len(ref.IDs), len(cases), err)
	}
	total, bad := 0, 0
	for i, c := range cases {
		got := tokens.Encode(tokens.Encoding(c.Encoding), c.Text)
		if len(got) == 0 {
			got = []int{}
		}
		total += len(ref.IDs[i])
		if !slices.Equal(got, ref.IDs[i]) {
			bad++
			if bad <= 5 {
				t.Errorf("%s %q:\n vigil      %v\n js-tiktoken %v", c.Encoding, trimmed(c.Text), got, ref.IDs[i])
			}
			continue
		}
		if n := tokens.Count(tokens.Encoding(c.Encoding), c.Text); n != len(got) {
			t.Errorf("%s %q: Count %d, Encode %d tokens", c.Encoding, trimmed(c.Text), n, len(got))
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d texts differ from js-tiktoken", bad, len(cases))
	}
	t.Logf("%d texts, %d tokens: identical to js-tiktoken in o200k_base and cl100k_base", len(cases), total)
}

func trimmed(s string) string {
	if len(s) > 80 {
		return fmt.Sprintf("%s… (%d bytes)", s[:80], len(s))
	}
	return s
}
