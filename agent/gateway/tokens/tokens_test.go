package tokens

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Token ids OpenAI publishes in its cookbook "How to count tokens with
// tiktoken" (sections 3 and 5), computed there with the Python tiktoken.
func TestPublishedEncodings(t *testing.T) {
	cases := []struct {
		enc  Encoding
		text string
		ids  []int
	}{
		{O200kBase, "tiktoken is great!", []int{83, 8251, 2488, 382, 2212, 0}},
		{Cl100kBase, "antidisestablishmentarianism", []int{519, 85342, 34500, 479, 8997, 2191}},
		{O200kBase, "antidisestablishmentarianism", []int{493, 129901, 376, 160388, 21203, 2367}},
		{Cl100kBase, "2 + 2 = 4", []int{17, 489, 220, 17, 284, 220, 19}},
		{O200kBase, "2 + 2 = 4", []int{17, 659, 220, 17, 314, 220, 19}},
		{Cl100kBase, "お誕生日おめでとう", []int{33334, 45918, 243, 21990, 9080, 33334, 62004, 16556, 78699}},
		{O200kBase, "お誕生日おめでとう", []int{8930, 9697, 243, 128225, 8930, 17693, 4344, 48669}},
	}
	for _, c := range cases {
		if got := Encode(c.enc, c.text); !slices.Equal(got, c.ids) {
			t.Errorf("%s %q = %v, want %v", c.enc, c.text, got, c.ids)
		}
		if got := Count(c.enc, c.text); got != len(c.ids) {
			t.Errorf("Count(%s, %q) = %d, want %d", c.enc, c.text, got, len(c.ids))
		}
	}
}

// The cookbook's chat example, whose prompt tokens the OpenAI API itself
// reported: 129 for gpt-3.5-turbo and gpt-4 (cl100k_base), 124 for gpt-4o
// and gpt-4o-mini (o200k_base).
func TestCookbookChatCount(t *testing.T) {
	msgs := []Message{
		{Role: "system", Content: "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
		{Role: "system", Name: "example_user", Content: "New synergies will help drive top-line growth."},
		{Role: "system", Name: "example_assistant", Content: "Things working well together will increase revenue."},
		{Role: "system", Name: "example_user", Content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
		{Role: "system", Name: "example_assistant", Content: "Let's talk later when we're less busy about how to do better."},
		{Role: "user", Content: "This late pivot means we don't have time to boil the ocean for the client deliverable."},
	}
	for model, want := range map[string]int{"gpt-3.5-turbo": 129, "gpt-4": 129, "gpt-4-0613": 129, "gpt-4o": 124, "gpt-4o-mini": 124} {
		enc, exact := ForModel(model)
		if !exact {
			t.Fatalf("ForModel(%s) is not exact", model)
		}
		if got := CountChat(enc, msgs); got != want {
			t.Errorf("%s (%s): %d prompt tokens, the OpenAI API counted %d", model, enc, got, want)
		}
	}
	sum := ReplyPriming
	for _, m := range msgs {
		sum += MessageTokens(O200kBase, m)
	}
	if sum != 124 {
		t.Errorf("MessageTokens sum to %d, want 124", sum)
	}
}

func TestForModel(t *testing.T) {
	cases := []struct {
		model string
		enc   Encoding
		exact bool
	}{
		{"gpt-4o", O200kBase, true},
		{"gpt-4o-mini", O200kBase, true},
		{"gpt-4o-2024-08-06", O200kBase, true},
		{"chatgpt-4o-latest", O200kBase, true},
		{"gpt-4.1", O200kBase, true},
		{"gpt-4.1-nano-2025-04-14", O200kBase, true},
		{"gpt-4.5-preview", O200kBase, true},
		{"o1", O200kBase, true},
		{"o1-mini", O200kBase, true},
		{"o3-mini", O200kBase, true},
		{"o4-mini", O200kBase, true},
		{"gpt-5", O200kBase, true},
		{"gpt-5-nano", O200kBase, true},
		{"GPT-4o", O200kBase, true},
		{"openai/gpt-4o", O200kBase, true},
		{"ft:gpt-4o-mini-2024-07-18:acme::abc123", O200kBase, true},
		{"ft:gpt-3.5-turbo-0125:acme::x", Cl100kBase, true},
		{"gpt-4", Cl100kBase, true},
		{"gpt-4-0613", Cl100kBase, true},
		{"gpt-4-turbo", Cl100kBase, true},
		{"gpt-4-32k", Cl100kBase, true},
		{"gpt-3.5-turbo", Cl100kBase, true},
		{"gpt-35-turbo-16k", Cl100kBase, true},
		{"text-embedding-3-small", Cl100kBase, true},
		{"text-embedding-3-large", Cl100kBase, true},
		{"text-embedding-ada-002", Cl100kBase, true},
		{"claude-sonnet-4-20250514", Default, false},
		{"llama-3.1-8b", Default, false},
		{"o1x", Default, false},
		{"gpt-4oops", Default, false},
		{"", Default, false},
	}
	for _, c := range cases {
		enc, exact := ForModel(c.model)
		if enc != c.enc || exact != c.exact {
			t.Errorf("ForModel(%q) = %s, %v; want %s, %v", c.model, enc, exact, c.enc, c.exact)
		}
	}
}

func TestCountChatFormula(t *testing.T) {
	for _, enc := range Encodings {
		if got := CountChat(enc, nil); got != ReplyPriming {
			t.Errorf("%s: no messages = %d, want %d", enc, got, ReplyPriming)
		}
		m := Message{Role: "user", Content: "hello there"}
		want := ReplyPriming + PerMessage + Count(enc, "user") + Count(enc, "hello there")
		if got := CountChat(enc, []Message{m}); got != want {
			t.Errorf("%s: one message = %d, want %d", enc, got, want)
		}
		m.Name = "bob"
		if got := CountChat(enc, []Message{m}); got != want+PerName+Count(enc, "bob") {
			t.Errorf("%s: a name costs %d, want %d", enc, got-want, PerName+Count(enc, "bob"))
		}
	}
}

// Special tokens in text are ordinary text, not the special token id.
func TestSpecialTokensAsText(t *testing.T) {
	for enc, special := range map[Encoding]int{O200kBase: 199999, Cl100kBase: 100257} {
		ids := Encode(enc, "<|endoftext|>")
		if len(ids) < 2 || slices.Contains(ids, special) {
			t.Errorf("%s: <|endoftext|> encoded as %v; want text tokens, not the special id %d", enc, ids, special)
		}
	}
}

func TestConcurrentCount(t *testing.T) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. 12345 日本語 ", 50)
	want := map[Encoding]int{O200kBase: Count(O200kBase, text), Cl100kBase: Count(Cl100kBase, text)}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(enc Encoding) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if got := Count(enc, text); got != want[enc] {
					errs <- fmt.Sprintf("%s: %d, want %d", enc, got, want[enc])
					return
				}
			}
		}(Encodings[i%2])
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestLazyLoad runs in a fresh process: no vocabulary is decoded until a
// count needs it, and only that encoding's.
func TestLazyLoad(t *testing.T) {
	if os.Getenv("VIGIL_TOKENS_LAZY_CHILD") == "1" {
		if Loaded(O200kBase) || Loaded(Cl100kBase) {
			fmt.Println("loaded before first use")
			os.Exit(1)
		}
		ForModel("gpt-4o")
		if Loaded(O200kBase) {
			fmt.Println("ForModel loaded a vocabulary")
			os.Exit(1)
		}
		Count(O200kBase, "hello")
		if !Loaded(O200kBase) || Loaded(Cl100kBase) {
			fmt.Println("after counting o200k_base: o200k", Loaded(O200kBase), "cl100k", Loaded(Cl100kBase))
			os.Exit(1)
		}
		fmt.Println("lazy ok")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLazyLoad$")
	cmd.Env = append(os.Environ(), "VIGIL_TOKENS_LAZY_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lazy ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// The heap merge (long pieces) and the scan (short ones) agree on every
// piece, so the switch between them never changes a count.
func TestMergeHeapMatchesScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "e", "t", "h", "in", "g", " ", "é", "日", "1", "#", "\n"}
	for _, enc := range Encodings {
		b := get(enc)
		for i := 0; i < 300; i++ {
			var sb strings.Builder
			for n := 1 + r.IntN(200); n > 0; n-- {
				sb.WriteString(alphabet[r.IntN(len(alphabet))])
			}
			piece := sb.String()
			var scan, heap []int
			b.mergeScan(piece, func(id int) { scan = append(scan, id) })
			b.mergeHeap(piece, func(id int) { heap = append(heap, id) })
			if !slices.Equal(scan, heap) {
				t.Fatalf("%s %q: scan %v, heap %v", enc, piece, scan, heap)
			}
		}
	}
}

// TestDecode: ids decode back to the text they encode in both encodings
// (multi-byte characters included); an id outside the vocabulary (a
// special token) is an error naming its position, and ids cut inside a
// character leave U+FFFD, as tiktoken's decode with errors="replace".
func TestDecode(t *testing.T) {
	text := "Vigil watches GPUs — naïve Σ ⁿ 東京\n\tdone."
	for _, e := range Encodings {
		ids := Encode(e, text)
		got, err := Decode(e, ids)
		if err != nil || got != text {
			t.Errorf("%s: %q %v", e, got, err)
		}
	}
	if _, err := Decode(Cl100kBase, []int{9906, 100257}); err == nil || !strings.Contains(err.Error(), "token 100257 (at 1) is not in cl100k_base") {
		t.Errorf("special token: %v", err)
	}
	if _, err := Decode(Cl100kBase, []int{-1}); err == nil {
		t.Error("negative id decoded")
	}
	ids := Encode(Cl100kBase, "東")
	if len(ids) < 2 {
		t.Fatalf("東 is %d token(s) in cl100k_base; the test needs a character split over tokens", len(ids))
	}
	if got, err := Decode(Cl100kBase, ids[:1]); err != nil || got != "\uFFFD" {
		t.Errorf("half a character: %q %v", got, err)
	}
}
