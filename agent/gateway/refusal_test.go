package gateway

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// refusalFleet answers every chat with a refusal (OpenAI's
// message.refusal, content null), whole or streamed in two pieces.
type refusalFleet struct {
	sdk.ProviderClient // the rest (not called)
	calls              *int
}

func (f refusalFleet) WithProvider(ctx context.Context, _, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	*f.calls++
	return fn(ctx, refusalProvider(f))
}

type refusalProvider refusalFleet

func (refusalProvider) Chat(_ context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	return &pb.ChatResponse{Id: "x", Model: req.GetModel(), Refusal: "I can't help with that.", FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 6, TotalTokens: 9}}, nil
}

func (refusalProvider) ChatStream(_ context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	for _, ev := range []*pb.ChatEvent{{Refusal: "I can't ", Model: req.GetModel()}, {Refusal: "help with that."}, {FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 6, TotalTokens: 9}}} {
		if err := send(ev); err != nil {
			return err
		}
	}
	return nil
}

// TestRefusal: a model's refusal (OpenAI's message.refusal) reaches the
// client as OpenAI sends it, in message.refusal with content null, and in
// a stream as delta.refusal, so that the SDKs' structured-output helpers
// (chat.completions.parse, LangChain's withStructuredOutput) see a
// refusal. It is not the answer a response_format asks for: it is not
// checked against the schema (no repair, no 502), as OpenAI's strict
// structured outputs give a refusal instead of JSON. A cached refusal is
// served the same way.
func TestRefusal(t *testing.T) {
	for _, stream := range []bool{false, true} {
		name := "whole"
		if stream {
			name = "streamed"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, testCfg())
			withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
			calls := 0
			h.g.providers = refusalFleet{ProviderClient: h.a, calls: &calls}
			extra := replySchema + `,"temperature":0`
			if stream {
				extra += `,"stream":true`
			}
			for round, wantCache := range []string{"miss", "hit"} {
				w := h.doHeader(t, chatBody("single", extra), nil)
				if w.Code != 200 || w.Header().Get("x-vigil-cache") != wantCache {
					t.Fatalf("round %d: %d cache %q: %s", round, w.Code, w.Header().Get("x-vigil-cache"), w.Body)
				}
				content, refusal := "", ""
				var contentNull bool
				if stream {
					ev := readSSE(t, w.Body.String())
					if ev[len(ev)-1] != "[DONE]" {
						t.Fatalf("round %d: stream ends with %s", round, ev[len(ev)-1])
					}
					for _, e := range ev[:len(ev)-1] {
						var c struct {
							Choices []struct {
								Delta map[string]any `json:"delta"`
							} `json:"choices"`
						}
						if err := json.Unmarshal([]byte(e), &c); err != nil {
							t.Fatal(err)
						}
						if len(c.Choices) == 0 {
							continue
						}
						if s, ok := c.Choices[0].Delta["content"].(string); ok {
							content += s
						}
						if s, ok := c.Choices[0].Delta["refusal"].(string); ok {
							refusal += s
						}
					}
					contentNull = content == ""
				} else {
					var c struct {
						Choices []struct {
							Message struct {
								Content *string `json:"content"`
								Refusal *string `json:"refusal"`
							} `json:"message"`
						} `json:"choices"`
					}
					if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil {
						t.Fatal(err)
					}
					m := c.Choices[0].Message
					contentNull = m.Content == nil
					if m.Refusal != nil {
						refusal = *m.Refusal
					}
				}
				if !contentNull || content != "" || refusal != "I can't help with that." {
					t.Fatalf("round %d: content %q (null %v), refusal %q: %s", round, content, contentNull, refusal, w.Body)
				}
			}
			if calls != 1 {
				t.Fatalf("%d upstream calls, want 1 (no repair, then the cache)", calls)
			}
			for _, outcome := range []string{"invalid", "repaired"} {
				if n := testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", "response_format", outcome)); n != 0 {
					t.Fatalf("%v answers counted %s", n, outcome)
				}
			}
		})
	}
}
