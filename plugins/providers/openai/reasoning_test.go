package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestReasoningContent: the reasoning text OpenAI-compatible servers put
// beside the content (DeepSeek's and vLLM's reasoning_content, newer
// vLLM's reasoning) becomes the contract's reasoning_content, whole and
// streamed piece by piece; a non-string reasoning is ignored, not an
// error. An assistant message's thinking blocks are never sent upstream,
// and no reasoning_content either (DeepSeek refuses it in input).
func TestReasoningContent(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	field := "reasoning_content"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		b, _ := json.Marshal(body)
		mu.Lock()
		bodies = append(bodies, string(b))
		f := field
		mu.Unlock()
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"` + f + `":""},"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":null,"` + f + `":"Let me "},"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":null,"` + f + `":"think."},"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{"content":"hi","` + f + `":null},"finish_reason":null}]}`,
				`{"id":"x","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`,
				`[DONE]`,
			} {
				_, _ = w.Write([]byte("data: " + c + "\n\n"))
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","` + f + `":"Let me think."},"finish_reason":"stop"}]}`))
	}))
	t.Cleanup(srv.Close)
	p := newProvider()
	if errs := p.Configure(map[string]any{"base_url": srv.URL + "/v1"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	req := chatReq("m")
	req.Messages = append(req.Messages,
		&pb.Message{Role: "assistant", Content: "earlier", ThinkingBlocks: []*pb.ThinkingBlock{{Type: "thinking", Thinking: "secret", Signature: "sig"}, {Type: "redacted_thinking", Data: "data"}}},
		&pb.Message{Role: "user", Content: "and now?"})
	for _, f := range []string{"reasoning_content", "reasoning"} {
		mu.Lock()
		field = f
		mu.Unlock()
		resp, err := p.Chat(context.Background(), req)
		if err != nil || resp.GetContent() != "hi" || resp.GetReasoningContent() != "Let me think." {
			t.Fatalf("%s whole: %v %v", f, resp, err)
		}
		var reasoning, content []string
		err = p.ChatStream(context.Background(), req, func(ev *pb.ChatEvent) error {
			if ev.GetReasoningContent() != "" {
				reasoning = append(reasoning, ev.GetReasoningContent())
			}
			if ev.GetDelta() != "" {
				content = append(content, ev.GetDelta())
			}
			return nil
		})
		if err != nil || strings.Join(reasoning, "|") != "Let me |think." || strings.Join(content, "") != "hi" {
			t.Fatalf("%s streamed: reasoning %q content %q %v", f, reasoning, content, err)
		}
	}
	mu.Lock()
	field = "reasoning"
	mu.Unlock()
	// A reasoning that is not a string (some other server's object) is
	// not taken for text.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"x","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning":{"effort":"low"}},"finish_reason":"stop"}]}`))
	})
	if resp, err := p.Chat(context.Background(), req); err != nil || resp.GetContent() != "hi" || resp.GetReasoningContent() != "" {
		t.Fatalf("object reasoning: %v %v", resp, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 4 {
		t.Fatalf("%d requests", len(bodies))
	}
	for _, b := range bodies {
		if strings.Contains(b, "thinking") || strings.Contains(b, "secret") || strings.Contains(b, "reasoning") || !strings.Contains(b, `"content":"earlier"`) {
			t.Fatalf("sent upstream: %s", b)
		}
	}
}
