package gateway

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// thinkingFleet wraps scripted providers so that their answers reason
// first: reasoning_content "let me think", a signed thinking block and a
// redacted one; streamed, the text in two pieces, then both blocks in one
// event.
type thinkingFleet struct{ fleet }

func (f thinkingFleet) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return f.fleet.WithProvider(ctx, name, method, func(ctx context.Context, pc sdk.ProviderClient) error {
		return fn(ctx, thinking{pc.(*scripted)})
	})
}

type thinking struct{ *scripted }

var fakeBlocks = []*pb.ThinkingBlock{
	{Type: "thinking", Thinking: "let me think", Signature: "sig/1+="},
	{Type: "redacted_thinking", Data: "EmwKAhgB"},
}

func (th thinking) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	resp, err := th.scripted.Chat(ctx, req)
	if err == nil {
		resp.ReasoningContent, resp.ThinkingBlocks = "let me think", fakeBlocks
	}
	return resp, err
}

func (th thinking) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	for _, ev := range []*pb.ChatEvent{{ReasoningContent: "let me "}, {ReasoningContent: "think"}, {ThinkingBlocks: fakeBlocks}} {
		if err := send(ev); err != nil {
			return err
		}
	}
	return th.scripted.ChatStream(ctx, req, send)
}

// wantBlocksJSON are fakeBlocks as the API shows them.
var wantBlocksJSON = []any{
	map[string]any{"type": "thinking", "thinking": "let me think", "signature": "sig/1+="},
	map[string]any{"type": "redacted_thinking", "data": "EmwKAhgB"},
}

// streamedReasoning reads a chat stream's reasoning_content pieces,
// thinking_blocks (joined) and content.
func streamedReasoning(t *testing.T, body string) (reasoning string, blocks []any, content string, blockChunks int) {
	t.Helper()
	deltas, _ := streamDeltas(t, body)
	for _, d := range deltas {
		if r, ok := d["reasoning_content"].(string); ok {
			reasoning += r
		}
		if b, ok := d["thinking_blocks"].([]any); ok {
			blocks = append(blocks, b...)
			blockChunks++
		}
		if s, ok := d["content"].(string); ok {
			content += s
		}
	}
	return
}

// TestThinkingAnswer: an upstream's reasoning reaches the client as the
// message's reasoning_content and thinking_blocks (whole) or as deltas
// (streamed: the text in pieces, the blocks in one chunk), is replayed
// the same from the cache, and is absent from answers without it.
func TestThinkingAnswer(t *testing.T) {
	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	h.g.providers = thinkingFleet{fleet{"pa": h.a, "pb": h.b}}
	whole := func(w string) {
		t.Helper()
		var resp struct {
			Choices []struct {
				Message map[string]any `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(w), &resp); err != nil {
			t.Fatal(err)
		}
		m := resp.Choices[0].Message
		if m["reasoning_content"] != "let me think" || !reflect.DeepEqual(m["thinking_blocks"], wantBlocksJSON) || m["content"] != "hi from solo" {
			t.Fatalf("message: %v", m)
		}
	}
	for _, cache := range []string{"miss", "hit"} {
		w := h.doHeader(t, chatBody("single", `,"temperature":0`), nil)
		if w.Code != 200 || w.Header().Get("x-vigil-cache") != cache {
			t.Fatalf("%s: %d %v %s", cache, w.Code, w.Header(), w.Body)
		}
		whole(w.Body.String())
	}
	for _, cache := range []string{"miss", "hit"} {
		w := h.doHeader(t, chatBody("single", `,"temperature":0.5,"stream":true`), map[string]string{"x-vigil-cache": "use"})
		if w.Code != 200 || w.Header().Get("x-vigil-cache") != cache {
			t.Fatalf("streamed %s: %d %v %s", cache, w.Code, w.Header(), w.Body)
		}
		r, blocks, content, n := streamedReasoning(t, w.Body.String())
		if r != "let me think" || !reflect.DeepEqual(blocks, wantBlocksJSON) || n != 1 || content != "hi there" {
			t.Fatalf("streamed %s: reasoning %q, blocks %v in %d chunks, content %q\n%s", cache, r, blocks, n, content, w.Body)
		}
	}

	// Without reasoning from the upstream: no such fields.
	h.g.providers = fleet{"pa": h.a, "pb": h.b}
	for _, extra := range []string{"", `,"stream":true`} {
		w := h.do(t, "/chat", chatBody("single", extra))
		if strings.Contains(w.Body.String(), "reasoning_content") || strings.Contains(w.Body.String(), "thinking_blocks") {
			t.Fatalf("answer without reasoning: %s", w.Body)
		}
	}
}

// assistantTurn is a conversation whose assistant message carries fields.
func assistantTurn(fields string) string {
	return `{"model":"single","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"ok"` + fields + `},{"role":"user","content":"more"}]}`
}

// TestThinkingBlocksIn: an assistant message's thinking_blocks reach the
// provider unchanged and in order, its reasoning_content is accepted and
// not passed on, and both are in, or out of, the cache key as they
// should be.
func TestThinkingBlocksIn(t *testing.T) {
	h := newHarness(t, testCfg())
	blocks := `,"thinking_blocks":[{"type":"thinking","thinking":"","signature":"s1"},{"type":"redacted_thinking","data":"d1"},{"type":"thinking","thinking":"b","signature":"s2"}]`
	w := h.do(t, "/chat", assistantTurn(`,"reasoning_content":"why",`+blocks[1:]))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := h.a.last["solo"].GetMessages()[1]
	want := []*pb.ThinkingBlock{{Type: "thinking", Thinking: "", Signature: "s1"}, {Type: "redacted_thinking", Data: "d1"}, {Type: "thinking", Thinking: "b", Signature: "s2"}}
	if len(got.GetThinkingBlocks()) != 3 {
		t.Fatalf("blocks passed on: %v", got.GetThinkingBlocks())
	}
	for i, b := range got.GetThinkingBlocks() {
		if b.GetType() != want[i].Type || b.GetThinking() != want[i].Thinking || b.GetSignature() != want[i].Signature || b.GetData() != want[i].Data {
			t.Fatalf("block %d passed on: %v", i, b)
		}
	}
	if got.GetContent() != "ok" {
		t.Fatalf("content passed on: %q", got.GetContent())
	}
	// null is absent.
	if w := h.do(t, "/chat", assistantTurn(`,"reasoning_content":null,"thinking_blocks":null`)); w.Code != 200 || len(h.a.last["solo"].GetMessages()[1].GetThinkingBlocks()) != 0 {
		t.Fatalf("nulls: %d %s", w.Code, w.Body)
	}

	base := cacheKey("a", "", mustContract(t, assistantTurn("")))
	if k := cacheKey("a", "", mustContract(t, assistantTurn(`,"reasoning_content":"why"`))); k != base {
		t.Fatal("reasoning_content changed the cache key: it is not sent upstream")
	}
	if k := cacheKey("a", "", mustContract(t, assistantTurn(blocks))); k == base {
		t.Fatal("thinking_blocks are not in the cache key")
	}
}

func mustContract(t *testing.T, body string) *pb.ChatRequest {
	t.Helper()
	var req chatRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	c, e := req.contract()
	if e != nil {
		t.Fatal(e)
	}
	return c
}

// TestThinkingBlocksValidation: bad reasoning fields are 400s naming the
// field, before any upstream call.
func TestThinkingBlocksValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct{ body, param, says string }{
		{assistantTurn(`,"thinking_blocks":{}`), "messages[1].thinking_blocks", "must be an array"},
		{assistantTurn(`,"thinking_blocks":["x"]`), "messages[1].thinking_blocks[0]", "must be an object"},
		{assistantTurn(`,"thinking_blocks":[{"thinking":"a","signature":"s"}]`), "messages[1].thinking_blocks[0].type", "is required"},
		{assistantTurn(`,"thinking_blocks":[{"type":"reasoning","text":"a"}]`), "messages[1].thinking_blocks[0].type", `"reasoning" is not thinking or redacted_thinking`},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":"a"}]`), "messages[1].thinking_blocks[0].signature", "is required"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":"a","signature":""}]`), "messages[1].thinking_blocks[0].signature", "must not be empty"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":"a","signature":null}]`), "messages[1].thinking_blocks[0].signature", "is required"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","signature":"s"}]`), "messages[1].thinking_blocks[0].thinking", "is required"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":1,"signature":"s"}]`), "messages[1].thinking_blocks[0].thinking", "must be a string"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":"a","signature":"s","signature_delta":"x"}]`), "messages[1].thinking_blocks[0].signature_delta", "unknown field"},
		{assistantTurn(`,"thinking_blocks":[{"type":"thinking","thinking":"a","signature":"s"},{"type":"redacted_thinking"}]`), "messages[1].thinking_blocks[1].data", "is required"},
		{assistantTurn(`,"thinking_blocks":[{"type":"redacted_thinking","data":"d","signature":"s"}]`), "messages[1].thinking_blocks[0].signature", "unknown field"},
		{assistantTurn(`,"reasoning_content":["a"]`), "messages[1].reasoning_content", "a string or null"},
		{`{"model":"single","messages":[{"role":"user","content":"hi","thinking_blocks":[]}]}`, "messages[0].thinking_blocks", "only allowed in assistant messages"},
		{`{"model":"single","messages":[{"role":"user","content":"hi","reasoning_content":"x"}]}`, "messages[0].reasoning_content", "only allowed in assistant messages"},
	} {
		w := h.do(t, "/chat", tc.body)
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s: %d param %v: %s", tc.body, w.Code, e.Param, e.Message)
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("%d upstream calls for refused requests", n)
	}
}

// TestThinkingRepair: the repair request after a strict tool call with
// bad arguments sends the rejected answer's thinking blocks back with its
// assistant turn (an upstream with thinking on wants them to continue
// the tool loop), and the repaired answer keeps its own reasoning.
func TestThinkingRepair(t *testing.T) {
	h := newHarness(t, testCfg())
	h.g.providers = thinkingFleet{fleet{"pa": h.a, "pb": h.b}}
	h.a.toolCallQueue["solo"] = [][]*pb.ToolCall{{{Id: "call_w", Name: "get_weather", Arguments: `{"city":7}`}}}
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_w2", Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	w := h.do(t, "/chat", chatBody("single", weatherTools))
	if w.Code != 200 || h.a.count("solo") != 2 || !strings.Contains(w.Body.String(), `"reasoning_content":"let me think"`) {
		t.Fatalf("%d after %d calls: %s", w.Code, h.a.count("solo"), w.Body)
	}
	asst := h.a.last["solo"].GetMessages()[1]
	if asst.GetRole() != "assistant" || len(asst.GetThinkingBlocks()) != 2 || asst.GetThinkingBlocks()[0].GetSignature() != "sig/1+=" || asst.GetThinkingBlocks()[1].GetData() != "EmwKAhgB" {
		t.Fatalf("repair request's assistant turn: %v", asst)
	}
}
