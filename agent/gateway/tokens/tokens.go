// Package tokens counts tokens offline the way OpenAI's tokenizers do, for
// the gateway's pre-flight context checks, truncation and usage estimates.
//
// Two byte-pair encodings are built in: o200k_base (gpt-4o, gpt-4.1, the o
// series, gpt-5) and cl100k_base (gpt-4, gpt-3.5-turbo, the text-embedding-3
// and ada-002 embeddings). Their rank files, as OpenAI publishes them, are
// embedded in the binary (github.com/pkoukk/tiktoken-go-loader, MIT), so
// nothing is downloaded at run time; each is parsed into memory the first
// time it is used, never at start-up (bench/README.md has the cost). Text is
// split into pieces as OpenAI's patterns split it, by hand-written
// splitters: one for lines of plain ASCII (split_ascii.go), one for other
// lines (split_unicode.go), both checked against the patterns run by a
// regular-expression engine in the tests; each piece is merged by rank as
// tiktoken does.
//
// Counts for OpenAI models are exact for plain text; the chat formula
// (CountChat) is OpenAI's own published rule and may drift for future
// models. Models of other families (Anthropic, Llama, Mistral ...) have
// tokenizers of their own: ForModel maps them to o200k_base and says the
// count is an estimate.
//
// Special tokens such as <|endoftext|> in text are counted as ordinary
// text, as the OpenAI API treats them in messages.
//
// Everything here is safe for concurrent use.
package tokens

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pkoukk/tiktoken-go-loader/assets"
)

// Encoding names a tokenizer vocabulary.
type Encoding string

// The built-in encodings.
const (
	O200kBase  Encoding = "o200k_base"
	Cl100kBase Encoding = "cl100k_base"
)

// Encodings lists the built-in encodings.
var Encodings = []Encoding{O200kBase, Cl100kBase}

// Default is the encoding used for models whose tokenizer is not built in;
// counts with it are estimates.
const Default = O200kBase

// Valid reports whether e is a built-in encoding.
func (e Encoding) Valid() bool { return e == O200kBase || e == Cl100kBase }

// Split patterns, as tiktoken's (openai_public.py) before it moved to
// possessive quantifiers; the two forms split alike. The splitters
// implement them; the tests run them with a regular-expression engine
// (dlclark/regexp2, which has the lookahead they need) as the reference.
const (
	o200kPattern = `[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?` +
		`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	cl100kPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

// bpe is one loaded encoding.
type bpe struct {
	ranks map[string]int
	// next and nextR are the splitters' steps for this encoding: for
	// plain ASCII (split_ascii.go) and for any text (split_unicode.go).
	next, nextR func(s string, i int) int
	// pattern is the split pattern the splitters implement.
	pattern string
	// vocab is ranks inverted (a token's bytes by id, "" for an id that
	// is none), built on the first Decode.
	vocabOnce sync.Once
	vocab     []string
}

// Vocabularies are parsed on first use: they cost memory and tens of
// milliseconds, and most agents never count a token.
var (
	o200kOnce, cl100kOnce     sync.Once
	o200k, cl100k             *bpe
	o200kLoaded, cl100kLoaded atomic.Bool
)

func get(e Encoding) *bpe {
	if e == Cl100kBase {
		cl100kOnce.Do(func() {
			cl100k = load("cl100k_base.tiktoken", 100256)
			cl100k.next, cl100k.nextR, cl100k.pattern = nextCl100k, nextCl100kR, cl100kPattern
			cl100kLoaded.Store(true)
		})
		return cl100k
	}
	o200kOnce.Do(func() {
		o200k = load("o200k_base.tiktoken", 199998)
		o200k.next, o200k.nextR, o200k.pattern = nextO200k, nextO200kR, o200kPattern
		o200kLoaded.Store(true)
	})
	return o200k
}

// load parses a rank file (one "base64-token rank" per line). The files
// are embedded, so a failure is a build defect: it panics.
func load(file string, size int) *bpe {
	data, err := assets.Assets.ReadFile(file)
	if err != nil {
		panic(fmt.Sprintf("tokens: embedded %s: %v", file, err))
	}
	// Decode every token into one arena first, so that the map's keys
	// are slices of a single string rather than a small allocation each.
	type entry struct{ off, n, rank int }
	entries := make([]entry, 0, size)
	arena := make([]byte, 0, len(data)*3/4)
	for line := range bytes.Lines(data) {
		line = bytes.TrimRight(line, "\n")
		if len(line) == 0 {
			continue
		}
		tok, rank, ok := bytes.Cut(line, []byte{' '})
		r, err := strconv.Atoi(string(rank))
		off := len(arena)
		var err2 error
		arena, err2 = base64.StdEncoding.AppendDecode(arena, tok)
		if !ok || err != nil || err2 != nil {
			panic(fmt.Sprintf("tokens: embedded %s: bad line %q", file, line))
		}
		entries = append(entries, entry{off, len(arena) - off, r})
	}
	all := string(arena)
	ranks := make(map[string]int, len(entries))
	for _, e := range entries {
		ranks[all[e.off:e.off+e.n]] = e.rank
	}
	return &bpe{ranks: ranks}
}

// tokenize calls yield with each token id of text.
func (b *bpe) tokenize(text string, yield func(int)) {
	piece := func(p string) {
		if r, ok := b.ranks[p]; ok {
			yield(r)
			return
		}
		b.merge(p, yield)
	}
	for text != "" {
		seg := text[:lineCut(text)]
		if asciiOK(seg) {
			split(seg, b.next, piece)
		} else {
			split(seg, b.nextR, piece)
		}
		text = text[len(seg):]
	}
}

// lineCut returns the length of text's first segment: up to a newline
// followed by a character that is neither whitespace nor '/', or all of
// it. Each such point is a piece boundary whatever comes before or after
// it (no alternative of either pattern runs from a newline into such a
// character, and the patterns look neither behind nor past it), so the
// segments split alike on their own, and a line with a non-ASCII
// character leaves the others to the fast ASCII splitter.
func lineCut(text string) int {
	for p := 1; p < len(text); p++ {
		if text[p-1] == '\n' {
			if c := text[p]; c < 0x80 && !isSpace(c) && c != '/' {
				return p
			}
		}
	}
	return len(text)
}

// Count returns the number of tokens of text in encoding e (Default when e
// is not a built-in encoding).
func Count(e Encoding, text string) int {
	if text == "" {
		return 0
	}
	n := 0
	get(e).tokenize(text, func(int) { n++ })
	return n
}

// Encode returns the token ids of text in encoding e.
func Encode(e Encoding, text string) []int {
	out := []int{}
	get(e).tokenize(text, func(id int) { out = append(out, id) })
	return out
}

// Decode returns the text of token ids in encoding e. An id that is not a
// token of the encoding (its special tokens included) is an error naming
// its position. Ids cut inside a multi-byte character leave bytes that are
// not UTF-8: each run of them becomes U+FFFD, as tiktoken's decode with
// errors="replace" does.
func Decode(e Encoding, ids []int) (string, error) {
	b := get(e)
	b.vocabOnce.Do(func() {
		n := 0
		for _, r := range b.ranks {
			n = max(n, r+1)
		}
		b.vocab = make([]string, n)
		for tok, r := range b.ranks {
			b.vocab[r] = tok
		}
	})
	var out strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(b.vocab) || b.vocab[id] == "" {
			return "", fmt.Errorf("token %d (at %d) is not in %s", id, i, e)
		}
		out.WriteString(b.vocab[id])
	}
	return strings.ToValidUTF8(out.String(), "\uFFFD"), nil
}

// ForModel returns the encoding of an upstream model name and whether it
// is the model's own tokenizer (exact) or an estimate: o200k_base for
// gpt-4o, gpt-4.1, gpt-4.5, gpt-5, o1, o3, o4 and chatgpt-4o models;
// cl100k_base for gpt-4, gpt-3.5-turbo (gpt-35-turbo on Azure),
// text-embedding-3-* and text-embedding-ada-002; Default, not exact, for
// anything else. Dated versions (gpt-4o-2024-08-06), fine-tunes
// (ft:gpt-4o-mini-2024-07-18:org::id) and a router's vendor prefix
// (openai/gpt-4o) map like their base model.
func ForModel(model string) (Encoding, bool) {
	m := strings.ToLower(strings.TrimSpace(model))
	if rest, ok := strings.CutPrefix(m, "ft:"); ok {
		m, _, _ = strings.Cut(rest, ":")
	}
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		m = m[i+1:]
	}
	for _, f := range families {
		if m == f.prefix || strings.HasPrefix(m, f.prefix+"-") {
			return f.enc, true
		}
	}
	return Default, false
}

// families maps model name prefixes (matched whole or followed by "-") to
// their encodings, as tiktoken's model table does.
var families = []struct {
	prefix string
	enc    Encoding
}{
	{"gpt-5", O200kBase}, {"gpt-4.1", O200kBase}, {"gpt-4.5", O200kBase},
	{"gpt-4o", O200kBase}, {"chatgpt-4o", O200kBase},
	{"o1", O200kBase}, {"o3", O200kBase}, {"o4", O200kBase},
	{"gpt-4", Cl100kBase}, {"gpt-3.5-turbo", Cl100kBase}, {"gpt-35-turbo", Cl100kBase},
	{"text-embedding-3", Cl100kBase}, {"text-embedding-ada-002", Cl100kBase},
}

// Message is a chat message as far as counting goes.
type Message struct {
	Role, Content, Name string
}

// OpenAI's rule for chat models (the cookbook "How to count tokens with
// tiktoken", section "Counting tokens for chat completions API calls",
// for gpt-3.5-turbo-0125, gpt-4-0613, gpt-4o and gpt-4o-mini): every
// message costs PerMessage tokens of framing (<|start|>{role}\n{content}
// <|end|>\n) plus its role, content and name; a name costs PerName more;
// the reply is primed with ReplyPriming tokens
// (<|start|>assistant<|message|>).
const (
	PerMessage   = 3
	PerName      = 1
	ReplyPriming = 3
)

// MessageTokens is one message's share of CountChat: its framing, role,
// content and name.
func MessageTokens(e Encoding, m Message) int {
	n := PerMessage + Count(e, m.Role) + Count(e, m.Content)
	if m.Name != "" {
		n += Count(e, m.Name) + PerName
	}
	return n
}

// CountChat returns the prompt tokens of a chat request's messages by
// OpenAI's rule: the sum of MessageTokens plus ReplyPriming.
func CountChat(e Encoding, msgs []Message) int {
	n := ReplyPriming
	for _, m := range msgs {
		n += MessageTokens(e, m)
	}
	return n
}

// Loaded reports whether e's vocabulary has been decoded (for tests and
// benchmarks of the lazy loading).
func Loaded(e Encoding) bool {
	if e == Cl100kBase {
		return cl100kLoaded.Load()
	}
	return o200kLoaded.Load()
}
