package tokens

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
)

// chatOf builds a conversation of about n o200k_base tokens from the
// gateway's documentation (prose, YAML, tables): a system prompt, then
// user and assistant turns of about 250 tokens each.
func chatOf(b *testing.B, n int) []Message {
	doc, err := os.ReadFile("../../../docs/gateway.md")
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(string(doc), 1+n/4000)
	msgs := []Message{{Role: "system", Content: "You are a careful assistant for an inference fleet's operators."}}
	roles := []string{"user", "assistant"}
	for pos := 0; CountChat(O200kBase, msgs) < n; {
		end := min(pos+1000, len(text)) // ~250 tokens
		for end < len(text) && text[end] != ' ' {
			end++
		}
		msgs = append(msgs, Message{Role: roles[len(msgs)%2], Content: text[pos:end]})
		pos = end
	}
	return msgs
}

// BenchmarkCountChat counts a whole chat request, as the pre-flight check
// and a usage estimate do.
func BenchmarkCountChat(b *testing.B) {
	for _, size := range []int{1000, 8000} {
		msgs := chatOf(b, size)
		bytes := 0
		for _, m := range msgs {
			bytes += len(m.Content)
		}
		for _, enc := range Encodings {
			b.Run(fmt.Sprintf("%s/%dk", enc, size/1000), func(b *testing.B) {
				n := CountChat(enc, msgs)
				b.SetBytes(int64(bytes))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					CountChat(enc, msgs)
				}
				b.ReportMetric(float64(n), "tokens")
			})
		}
	}
}

// BenchmarkLoad parses an embedded vocabulary, as the first count in an
// encoding does once per process; retained-MiB is the heap it keeps.
func BenchmarkLoad(b *testing.B) {
	for _, c := range []struct {
		enc  Encoding
		file string
		size int
	}{
		{O200kBase, "o200k_base.tiktoken", 199998},
		{Cl100kBase, "cl100k_base.tiktoken", 100256},
	} {
		b.Run(string(c.enc), func(b *testing.B) {
			var keep *bpe
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				keep = load(c.file, c.size)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "retained-MiB")
			runtime.KeepAlive(keep)
		})
	}
}

// nonASCII is multilingual text (about 1,000 o200k_base tokens): lines
// that the ASCII splitter does not take.
var nonASCII = strings.Repeat("日本語のテキストと中文文本，还有한국어 문장. "+
	"Съешь же ещё этих мягких французских булок, да выпей чаю. "+
	"مرحبا بالعالم — नमस्ते दुनिया — שלום עולם. Ünïcödé café naïve. "+
	"🎉 👍🏽 «quotes» — ½ ² Ⅻ\n", 12)

// BenchmarkSplitNonASCII splits (and counts) non-ASCII text with the
// hand-written Unicode splitter and, for comparison, with the patterns run
// by the regular-expression engine the splitter replaced.
func BenchmarkSplitNonASCII(b *testing.B) {
	for _, enc := range Encodings {
		bp := get(enc)
		n := Count(enc, nonASCII)
		count := func(p string) {
			if _, ok := bp.ranks[p]; !ok {
				bp.merge(p, func(int) {})
			}
		}
		b.Run(string(enc)+"/splitter", func(b *testing.B) {
			b.SetBytes(int64(len(nonASCII)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				split(nonASCII, bp.nextR, count)
			}
			b.ReportMetric(float64(n), "tokens")
		})
		b.Run(string(enc)+"/pattern", func(b *testing.B) {
			b.SetBytes(int64(len(nonASCII)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = bp.splitRegexp(nonASCII, count)
			}
			b.ReportMetric(float64(n), "tokens")
		})
	}
}
