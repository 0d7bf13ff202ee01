package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestStreamDoneAtEOF: a server whose body ends right after
// "data: [DONE]" (no blank line closing the event) sent a whole answer;
// one that ends before [DONE] is still a truncated stream.
func TestStreamDoneAtEOF(t *testing.T) {
	for _, tc := range []struct {
		tail  string
		class sdk.Class // "" for success
	}{
		{"data: [DONE]\n", ""},
		{"data: [DONE]", ""},
		{"data: [DONE]\r\n", ""},
		{"", sdk.Unavailable},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			chunk := func(delta, finish string) {
				fin := "null"
				if finish != "" {
					fin = `"` + finish + `"`
				}
				fmt.Fprintf(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q},\"finish_reason\":%s}]}\n\n", delta, fin)
			}
			chunk("hel", "")
			chunk("lo", "stop")
			fmt.Fprint(w, "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2,\"total_tokens\":4}}\n\n")
			fmt.Fprint(w, tc.tail)
		}))
		p := newProvider()
		if errs := p.Configure(map[string]any{"base_url": srv.URL + "/v1", "api_key": "k", "timeout": "2s"}); len(errs) > 0 {
			t.Fatal(errs)
		}
		var text strings.Builder
		var last *pb.ChatEvent
		err := p.ChatStream(context.Background(), chatReq("m"), func(ev *pb.ChatEvent) error {
			text.WriteString(ev.GetDelta())
			last = ev
			return nil
		})
		srv.Close()
		if tc.class == "" {
			if err != nil || text.String() != "hello" || last.GetFinishReason() != "stop" || last.GetUsage().GetTotalTokens() != 4 {
				t.Errorf("tail %q: %v, %q, last %v", tc.tail, err, text.String(), last)
			}
		} else if sdk.ClassOf(err) != tc.class {
			t.Errorf("tail %q: %v, want class %s", tc.tail, err, tc.class)
		}
	}
}
