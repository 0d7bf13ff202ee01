package gateway

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
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
	last               **pb.ChatRequest // when set, the last request
	content            string           // text given before the refusal
}

func (f refusalFleet) WithProvider(ctx context.Context, _, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	*f.calls++
	return fn(ctx, refusalProvider(f))
}

type refusalProvider refusalFleet

func (p refusalProvider) Chat(_ context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if p.last != nil {
		*p.last = req
	}
	return &pb.ChatResponse{Id: "x", Model: req.GetModel(), Content: p.content, Refusal: "I can't help with that.", FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 6, TotalTokens: 9}}, nil
}

func (p refusalProvider) ChatStream(_ context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if p.last != nil {
		*p.last = req
	}
	evs := []*pb.ChatEvent{{Refusal: "I can't ", Model: req.GetModel()}, {Refusal: "help with that."}, {FinishReason: "stop", Usage: &pb.Usage{PromptTokens: 3, CompletionTokens: 6, TotalTokens: 9}}}
	if p.content != "" {
		evs = append([]*pb.ChatEvent{{Delta: p.content}}, evs...)
	}
	for _, ev := range evs {
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
					deltas, _ := streamDeltas(t, w.Body.String())
					for _, d := range deltas {
						if s, ok := d["content"].(string); ok {
							content += s
						}
						if s, ok := d["refusal"].(string); ok {
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

// TestResponsesRefusal: on the Responses API a refusal is the message's
// refusal content part ({"type": "refusal", "refusal": ...}), not its
// output_text, and a stream carries it as OpenAI's does: a refusal
// content_part.added, response.refusal.delta pieces, response.refusal.done,
// content_part.done, output_item.done. So the SDKs' responses.parse gives
// output_parsed null and the refusal, and output_text (which the SDKs
// compute from output_text parts) is empty. It is not checked against
// text.format, it is cached and served the same way from the cache, and a
// stored refusal continues the conversation as the assistant's turn.
func TestResponsesRefusal(t *testing.T) {
	const refusal = "I can't help with that."
	const format = `"text":{"format":{"type":"json_schema","name":"r","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}}}`
	for _, stream := range []bool{false, true} {
		name := "whole"
		if stream {
			name = "streamed"
		}
		t.Run(name, func(t *testing.T) {
			h := storeHarness(t)
			withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
			calls := 0
			var last *pb.ChatRequest
			h.g.providers = refusalFleet{ProviderClient: h.a, calls: &calls, last: &last}
			body := `{"model":"single","input":"help me","temperature":0,` + format
			if stream {
				body += `,"stream":true`
			}
			body += "}"
			var firstID string
			for round, wantCache := range []string{"miss", "hit"} {
				w := h.responsesAs(t, "app-a", body)
				if w.Code != 200 || w.Header().Get("x-vigil-cache") != wantCache {
					t.Fatalf("round %d: %d cache %q: %s", round, w.Code, w.Header().Get("x-vigil-cache"), w.Body)
				}
				var r map[string]any
				if stream {
					evs := readEvents(t, w.Body.String())
					want := "response.created response.in_progress response.output_item.added response.content_part.added response.refusal.delta response.refusal.delta response.refusal.done response.content_part.done response.output_item.done response.completed"
					if round == 1 {
						// From the cache: the refusal in one piece.
						want = strings.Replace(want, "response.refusal.delta response.refusal.delta", "response.refusal.delta", 1)
					}
					if got := eventNames(evs); got != want {
						t.Fatalf("round %d: events:\n%s\nwant\n%s", round, got, want)
					}
					itemID := evs[2].data["item"].(map[string]any)["id"]
					pieces := ""
					for _, e := range evs[3 : len(evs)-2] {
						if e.data["item_id"] != itemID || e.data["output_index"] != 0.0 || e.data["content_index"] != 0.0 {
							t.Fatalf("round %d: %s: item %v output %v content %v, want %v 0 0", round, e.name, e.data["item_id"], e.data["output_index"], e.data["content_index"], itemID)
						}
						switch e.name {
						case "response.content_part.added":
							if !reflect.DeepEqual(e.data["part"], map[string]any{"type": "refusal", "refusal": ""}) {
								t.Fatalf("round %d: content_part.added part %v", round, e.data["part"])
							}
						case "response.refusal.delta":
							pieces += e.data["delta"].(string)
						case "response.refusal.done":
							if e.data["refusal"] != refusal {
								t.Fatalf("round %d: refusal.done %v", round, e.data)
							}
						case "response.content_part.done":
							if !reflect.DeepEqual(e.data["part"], map[string]any{"type": "refusal", "refusal": refusal}) {
								t.Fatalf("round %d: content_part.done part %v", round, e.data["part"])
							}
						}
					}
					if pieces != refusal {
						t.Fatalf("round %d: refusal deltas make %q", round, pieces)
					}
					done := evs[len(evs)-2].data["item"].(map[string]any)
					if done["id"] != itemID || done["status"] != "completed" {
						t.Fatalf("round %d: output_item.done %v", round, done)
					}
					r = evs[len(evs)-1].data["response"].(map[string]any)
				} else {
					r = responseObject(t, w)
				}
				out := r["output"].([]any)
				if r["status"] != "completed" || len(out) != 1 {
					t.Fatalf("round %d: status %v, output %v", round, r["status"], out)
				}
				msg := out[0].(map[string]any)
				if want := []any{map[string]any{"type": "refusal", "refusal": refusal}}; msg["type"] != "message" || !reflect.DeepEqual(msg["content"], want) {
					t.Fatalf("round %d: message %v, want content %v", round, msg, want)
				}
				if round == 0 {
					firstID = r["id"].(string)
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
			// The next turn: the refusal is the assistant's turn.
			h.responsesAs(t, "app-a", `{"model":"single","previous_response_id":"`+firstID+`","input":"why?"}`)
			if got, want := chatMsgs(last), "user:help me\nassistant:"+refusal+"\nuser:why?\n"; got != want {
				t.Fatalf("the next turn reached the upstream as\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestResponsesRefusalAfterText: an upstream that gives text and then a
// refusal gets a message with both parts, output_text first, each
// streamed as its own content part (content_index 0, then 1).
func TestResponsesRefusalAfterText(t *testing.T) {
	want := []any{
		map[string]any{"type": "output_text", "text": "Well. ", "annotations": []any{}, "logprobs": []any{}},
		map[string]any{"type": "refusal", "refusal": "I can't help with that."},
	}
	for _, stream := range []bool{false, true} {
		h := newHarness(t, testCfg())
		calls := 0
		h.g.providers = refusalFleet{ProviderClient: h.a, calls: &calls, content: "Well. "}
		var r map[string]any
		if stream {
			w := h.responses(t, `{"model":"single","input":"help me","stream":true}`)
			evs := readEvents(t, w.Body.String())
			names := "response.created response.in_progress response.output_item.added " +
				"response.content_part.added response.output_text.delta response.output_text.done response.content_part.done " +
				"response.content_part.added response.refusal.delta response.refusal.delta response.refusal.done response.content_part.done " +
				"response.output_item.done response.completed"
			if got := eventNames(evs); got != names {
				t.Fatalf("events:\n%s\nwant\n%s", got, names)
			}
			for i, e := range evs[3 : len(evs)-2] {
				idx := 0.0 // the text's four events, then the refusal's
				if i >= 4 {
					idx = 1
				}
				if e.data["content_index"] != idx {
					t.Fatalf("%s: content_index %v, want %v", e.name, e.data["content_index"], idx)
				}
			}
			r = evs[len(evs)-1].data["response"].(map[string]any)
		} else {
			r = responseObject(t, h.responses(t, `{"model":"single","input":"help me"}`))
		}
		if got := r["output"].([]any)[0].(map[string]any)["content"]; !reflect.DeepEqual(got, want) {
			t.Fatalf("stream=%v: content %v, want %v", stream, got, want)
		}
	}
}
