package gateway

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChat is the gateway's own work per request (parse, validate,
// route, encode), against an in-process provider: no HTTP listener, no
// plugin hop. bench/gateway.sh measures the whole path.
func BenchmarkChat(b *testing.B) {
	benchChat(b, func(body string) io.Reader { return strings.NewReader(body) })
}

// BenchmarkChatSplitBody is BenchmarkChat with the request body arriving
// in two reads, as it does from a real connection when a client writes
// the headers and the body separately (most do).
func BenchmarkChatSplitBody(b *testing.B) {
	benchChat(b, func(body string) io.Reader {
		return io.MultiReader(strings.NewReader(body[:10]), strings.NewReader(body[10:]))
	})
}

// benchChat answers one small deterministic chat request per iteration,
// its body read from what reader returns.
func benchChat(b *testing.B, reader func(body string) io.Reader) {
	h := &harness{a: newScripted(), b: newScripted()}
	g, err := New(testCfg(), fleet{"pa": h.a, "pb": h.b}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := chatBody("single", `,"temperature":0,"max_tokens":16`)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/chat", reader(body))
		w := httptest.NewRecorder()
		g.HandleChat(w, r)
		if w.Code != 200 {
			b.Fatal(w.Body)
		}
	}
}

// BenchmarkStream is the same for a streamed answer with usage.
func BenchmarkStream(b *testing.B) {
	h := &harness{a: newScripted(), b: newScripted()}
	g, err := New(testCfg(), fleet{"pa": h.a, "pb": h.b}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := chatBody("single", `,"stream":true,"stream_options":{"include_usage":true}`)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
		w := httptest.NewRecorder()
		g.HandleChat(w, r)
		if w.Code != 200 {
			b.Fatal(w.Body)
		}
	}
}

// BenchmarkResponses is a whole Responses API answer, with its output
// item kept for item_reference (store left out, OpenAI's default) and
// without (store: false): what keeping costs.
func BenchmarkResponses(b *testing.B) {
	for _, c := range []struct{ name, store string }{{"store", ""}, {"nostore", `,"store":false`}} {
		b.Run(c.name, func(b *testing.B) {
			h := &harness{a: newScripted(), b: newScripted()}
			g, err := New(testCfg(), fleet{"pa": h.a, "pb": h.b}, nil, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			body := `{"model":"single","input":"hello","temperature":0,"max_output_tokens":16` + c.store + `}`
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/openai/v1/responses", strings.NewReader(body))
				w := httptest.NewRecorder()
				g.HandleResponses(w, r)
				if w.Code != 200 {
					b.Fatal(w.Body)
				}
			}
		})
	}
}
