package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const rsTools = `"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}]`

// reasoningHarness is a harness whose upstream reasons (thinkingFleet)
// and calls weather, with the item store on per token.
func reasoningHarness(t *testing.T) *harness {
	h := storeHarness(t)
	h.g.providers = thinkingFleet{fleet{"pa": h.a, "pb": h.b}}
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}
	return h
}

// unpackJSON decodes an encrypted_content as the API shows it.
func unpackJSON(t *testing.T, s string) map[string]any {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("encrypted_content %q: %v", s, err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("encrypted_content %s: %v", raw, err)
	}
	return m
}

// wantReasoningItem checks a reasoning item: its id, its summary (the
// reasoning text), and encrypted_content (present only when asked).
func wantReasoningItem(t *testing.T, it map[string]any, encrypted bool) {
	t.Helper()
	if it["type"] != "reasoning" || !strings.HasPrefix(it["id"].(string), "rs_") ||
		!reflect.DeepEqual(it["summary"], []any{map[string]any{"type": "summary_text", "text": "let me think"}}) {
		t.Fatalf("reasoning item %v", it)
	}
	ec, ok := it["encrypted_content"].(string)
	if ok != encrypted {
		t.Fatalf("encrypted_content %v (asked: %v)", it["encrypted_content"], encrypted)
	}
	if encrypted {
		if got := unpackJSON(t, ec); !reflect.DeepEqual(got, map[string]any{"vigil_thinking": 1.0, "blocks": wantBlocksJSON}) {
			t.Fatalf("encrypted_content packs %v", got)
		}
	}
}

// TestResponsesReasoningAnswer: an upstream's reasoning is the answer's
// first output item, whole, streamed (OpenAI's reasoning events before
// the call's) and re-streamed from the cache; encrypted_content only with
// include; answers without reasoning have no reasoning item.
func TestResponsesReasoningAnswer(t *testing.T) {
	h := reasoningHarness(t)
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	for _, include := range []bool{false, true} {
		body := `{"model":"single","input":"weather in Oslo?","reasoning":{"effort":"low"},` + rsTools
		if include {
			body += `,"include":["reasoning.encrypted_content"],"store":false`
		}
		r := responseObject(t, h.responses(t, body+`}`))
		out := r["output"].([]any)
		if len(out) != 2 || out[1].(map[string]any)["type"] != "function_call" {
			t.Fatalf("output %v", out)
		}
		wantReasoningItem(t, out[0].(map[string]any), include)
	}

	const want = "response.created response.in_progress response.output_item.added response.reasoning_summary_part.added " +
		"response.reasoning_summary_text.delta response.reasoning_summary_text.delta response.reasoning_summary_text.done " +
		"response.reasoning_summary_part.done response.output_item.done response.output_item.added " +
		"response.function_call_arguments.delta response.function_call_arguments.delta response.function_call_arguments.done " +
		"response.output_item.done response.completed"
	const wantCached = "response.created response.in_progress response.output_item.added response.reasoning_summary_part.added " +
		"response.reasoning_summary_text.delta response.reasoning_summary_text.done " +
		"response.reasoning_summary_part.done response.output_item.done response.output_item.added " +
		"response.function_call_arguments.delta response.function_call_arguments.done " +
		"response.output_item.done response.completed"
	for _, cache := range []string{"miss", "hit"} {
		w := h.responses(t, `{"model":"single","input":"weather in Oslo?","stream":true,"temperature":0,"include":["reasoning.encrypted_content"],`+rsTools+`}`)
		if w.Header().Get("x-vigil-cache") != cache {
			t.Fatalf("cache %s: %v", cache, w.Header())
		}
		evs := readEvents(t, w.Body.String())
		names := eventNames(evs)
		if (cache == "miss" && names != want) || (cache == "hit" && names != wantCached) {
			t.Fatalf("%s: events\n%s", cache, names)
		}
		added := evs[2].data
		if added["output_index"] != 0.0 || added["item"].(map[string]any)["type"] != "reasoning" || len(added["item"].(map[string]any)["summary"].([]any)) != 0 {
			t.Fatalf("reasoning item added: %v", added)
		}
		part := evs[3].data
		if part["summary_index"] != 0.0 || !reflect.DeepEqual(part["part"], map[string]any{"type": "summary_text", "text": ""}) || part["item_id"] != added["item"].(map[string]any)["id"] {
			t.Fatalf("summary part added: %v", part)
		}
		var text string
		for _, e := range evs {
			if e.name == "response.reasoning_summary_text.delta" {
				text += e.data["delta"].(string)
			}
			if e.name == "response.reasoning_summary_text.done" && e.data["text"] != "let me think" {
				t.Fatalf("summary text done: %v", e.data)
			}
		}
		if text != "let me think" {
			t.Fatalf("summary deltas join to %q", text)
		}
		done := evs[len(evs)-7].data
		if cache == "hit" {
			done = evs[len(evs)-6].data
		}
		wantReasoningItem(t, done["item"].(map[string]any), true)
		final := evs[len(evs)-1].data["response"].(map[string]any)["output"].([]any)
		if len(final) != 2 || final[1].(map[string]any)["type"] != "function_call" {
			t.Fatalf("final output %v", final)
		}
		wantReasoningItem(t, final[0].(map[string]any), true)
	}

	// Without reasoning upstream: no reasoning item, whole or streamed.
	h.g.providers = fleet{"pa": h.a, "pb": h.b}
	for _, extra := range []string{``, `,"stream":true`} {
		w := h.responses(t, `{"model":"single","input":"x","include":["reasoning.encrypted_content"]`+extra+`}`)
		if strings.Contains(w.Body.String(), `"reasoning"`) && !strings.Contains(w.Body.String(), `"reasoning":{`) || strings.Contains(w.Body.String(), "rs_") {
			t.Fatalf("answer without reasoning: %s", w.Body)
		}
	}
}

// assistantBlocks checks that the assistant turn of the last upstream
// request (messages[1]) has the fake blocks, unchanged and first.
func assistantBlocks(t *testing.T, h *harness) {
	t.Helper()
	msgs := h.a.last["solo"].GetMessages()
	asst := msgs[1]
	got := asst.GetThinkingBlocks()
	if asst.GetRole() != "assistant" || len(asst.GetToolCalls()) != 1 || len(got) != 2 {
		t.Fatalf("assistant turn upstream: %v", asst)
	}
	for i, b := range got {
		w := fakeBlocks[i]
		if b.GetType() != w.GetType() || b.GetThinking() != w.GetThinking() || b.GetSignature() != w.GetSignature() || b.GetData() != w.GetData() {
			t.Fatalf("block %d upstream: %v", i, b)
		}
	}
	if len(msgs) != 3 || msgs[2].GetRole() != "tool" {
		t.Fatalf("conversation upstream: %s", chatMsgs(h.a.last["solo"]))
	}
}

// TestResponsesReasoningToolLoop: the second step of a tool loop carries
// the first answer's thinking blocks first in its assistant turn, however
// the reasoning item comes back: by value with encrypted_content (store
// false, include), by id without it, as an item_reference, or through
// previous_response_id (whole and streamed), and a turn continued by
// previous_response_id from a request that sent its reasoning by value.
func TestResponsesReasoningToolLoop(t *testing.T) {
	h := reasoningHarness(t)
	firstResp := func(extra string) map[string]any {
		t.Helper()
		return responseObject(t, h.responsesAs(t, "app", `{"model":"single","input":"weather in Oslo?","reasoning":{"effort":"low"},`+rsTools+extra+`}`))
	}
	first := func(extra string) []any {
		t.Helper()
		return firstResp(extra)["output"].([]any)
	}
	step2 := func(name, items string, extra string) map[string]any {
		t.Helper()
		h.a.toolCalls["solo"] = nil
		defer func() {
			h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}
		}()
		w := h.responsesAs(t, "app", `{"model":"single","reasoning":{"effort":"low"},`+rsTools+`,"input":[{"role":"user","content":"weather in Oslo?"},`+items+`,{"type":"function_call_output","call_id":"call_1","output":"18 C"}]`+extra+`}`)
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", name, w.Code, w.Body)
		}
		assistantBlocks(t, h)
		return responseObject(t, w)
	}
	asJSON := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}

	// store false: the items back by value, as the answer gave them.
	out := first(`,"store":false,"include":["reasoning.encrypted_content"]`)
	step2("by value", asJSON(out[0])+","+asJSON(out[1]), `,"store":false`)

	// store on: the item back without encrypted_content (by its id).
	out = first(``)
	rs := out[0].(map[string]any)
	if _, ok := rs["encrypted_content"]; ok {
		t.Fatalf("encrypted_content not asked for: %v", rs)
	}
	step2("by id", asJSON(rs)+","+asJSON(out[1]), ``)
	// As an item_reference, with the call by reference too (the AI SDK's
	// default model sends reasoning that way).
	r2 := step2("by reference", itemRef(rs["id"].(string))+","+itemRef(out[1].(map[string]any)["id"].(string)), ``)

	// The turn just answered was kept with its reasoning resolved: a
	// follow-up by previous_response_id still has the blocks.
	h.a.answers["solo"] = []string{"Anything else?"}
	responseObject(t, h.responsesAs(t, "app", `{"model":"single","reasoning":{"effort":"low"},"previous_response_id":"`+r2["id"].(string)+`","input":"thanks"}`))
	if msgs := h.a.last["solo"].GetMessages(); len(msgs) < 2 || len(msgs[1].GetThinkingBlocks()) != 2 {
		t.Fatalf("follow-up upstream: %v", msgs)
	}

	// previous_response_id: only the output of the call, whole and
	// streamed.
	for _, stream := range []string{``, `,"stream":true`} {
		id := firstResp(``)["id"].(string)
		h.a.toolCalls["solo"] = nil
		w := h.responsesAs(t, "app", `{"model":"single","reasoning":{"effort":"low"},`+rsTools+`,"previous_response_id":"`+id+`","input":[{"type":"function_call_output","call_id":"call_1","output":"18 C"}]`+stream+`}`)
		h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}
		if w.Code != 200 {
			t.Fatalf("previous_response_id%s: %d %s", stream, w.Code, w.Body)
		}
		assistantBlocks(t, h)
	}

	// Two reasoning items before one call (interleaved) join in order;
	// one before a user message goes nowhere.
	ec := packThinking(fakeBlocks[:1])
	ec2 := packThinking(fakeBlocks[1:])
	step2("two items", `{"type":"reasoning","summary":[],"encrypted_content":"`+ec+`"},{"type":"reasoning","summary":[],"encrypted_content":"`+ec2+`"},`+asJSON(out[1]), `,"store":false`)
	w := h.responsesAs(t, "app", `{"model":"single","store":false,"input":[{"type":"reasoning","summary":[],"encrypted_content":"`+ec+`"},{"role":"user","content":"hi"}]}`)
	if w.Code != 200 || len(h.a.last["solo"].GetMessages()[0].GetThinkingBlocks()) != 0 {
		t.Fatalf("reasoning before a user message: %d %s", w.Code, w.Body)
	}
}

// TestResponsesReasoningRefusals: reasoning input items that cannot be
// read are 400s naming the field, before any upstream call.
func TestResponsesReasoningRefusals(t *testing.T) {
	h := reasoningHarness(t)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	item := func(fields string) string {
		return `{"model":"single","store":false,"input":[{"role":"user","content":"hi"},{"type":"reasoning"` + fields + `},{"type":"function_call","call_id":"c1","name":"weather","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}]}`
	}
	for _, tc := range []struct{ body, param, says string }{
		{item(`,"summary":[],"encrypted_content":"%%%"`), "input[1].encrypted_content", "not base64"},
		{item(`,"summary":[],"encrypted_content":"gAAAAABo"`), "input[1].encrypted_content", "OpenAI's own reasoning items cannot be read here"},
		{item(`,"summary":[],"encrypted_content":"` + b64(`{"vigil_thinking":2,"blocks":[]}`) + `"`), "input[1].encrypted_content", "version"},
		{item(`,"summary":[],"encrypted_content":"` + b64(`{"vigil_thinking":1}`) + `"`), "input[1].encrypted_content", "no blocks"},
		{item(`,"summary":[],"encrypted_content":"` + b64(`{"vigil_thinking":1,"blocks":[],"x":1}`) + `"`), "input[1].encrypted_content", "not its JSON object"},
		{item(`,"summary":[],"encrypted_content":"` + b64(`{"vigil_thinking":1,"blocks":[{"type":"thinking","thinking":"a"}]}`) + `"`), "input[1].encrypted_content", "blocks[0].signature is required"},
		{item(`,"summary":[],"encrypted_content":"` + b64(`{"vigil_thinking":1,"blocks":[{"type":"thinking","thinking":"a","signature":"s","extra":1}]}`) + `"`), "input[1].encrypted_content", "blocks[0].extra: unknown field"},
		{item(`,"summary":[],"encrypted_content":7`), "input[1].encrypted_content", "must be a string"},
		{item(`,"summary":{}`), "input[1].summary", "array of summary_text parts"},
		{item(`,"summary":[{"type":"output_text","text":"a"}]`), "input[1].summary[0]", "summary_text"},
		{item(`,"content":[{"type":"reasoning_text"}]`), "input[1].content[0]", "reasoning_text"},
		{item(`,"summary":[],"signature":"x"`), "input[1].signature", "not supported in a reasoning item"},
		{item(`,"id":7,"summary":[]`), "input[1].id", "must be a string"},
		// Not kept: store false, or an unknown id.
		{item(`,"id":"rs_unknown","summary":[]`), "input[1].encrypted_content", `include: ["reasoning.encrypted_content"]`},
		{item(`,"summary":[]`), "input[1].encrypted_content", "no id either"},
	} {
		w := h.responsesAs(t, "app", tc.body)
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != tc.param || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s: %d param %v: %s", tc.body, w.Code, e.Param, e.Message)
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("%d upstream calls for refused requests", n)
	}

	// Another token's reasoning item is not found either.
	out := responseObject(t, h.responsesAs(t, "app", `{"model":"single","input":"weather?",`+rsTools+`}`))["output"].([]any)
	id := out[0].(map[string]any)["id"].(string)
	w := h.responsesAs(t, "other", item(`,"id":"`+id+`","summary":[]`))
	if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "input[1].encrypted_content" {
		t.Fatalf("another token's item: %d %s", w.Code, w.Body)
	}
}

// TestResponsesThinkingRefusalNamed: the anthropic plugin's refusal of a
// tool loop continued with reasoning_effort and no thinking blocks is
// renamed for the Responses API: it names the function_call item (or
// previous_response_id) and says how to send the reasoning item back.
func TestResponsesThinkingRefusalNamed(t *testing.T) {
	h := storeHarness(t)
	h.g.providers = refusingFleet{fleet{"pa": h.a, "pb": h.b}}
	w := h.responsesAs(t, "app", `{"model":"single","reasoning":{"effort":"low"},"store":false,"input":[{"role":"user","content":"hi"},{"type":"function_call","call_id":"c1","name":"weather","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],`+rsTools+`}`)
	e := errBody(t, w)
	if w.Code != 400 || e.Param == nil || *e.Param != "input[1]" || !strings.Contains(e.Message, `include: ["reasoning.encrypted_content"]`) ||
		!strings.Contains(e.Message, "without reasoning.effort") || strings.Contains(e.Message, "messages[") {
		t.Fatalf("%d param %v: %s", w.Code, e.Param, e.Message)
	}
	// With the blocks, the same loop passes.
	ec := packThinking(fakeBlocks)
	w = h.responsesAs(t, "app", `{"model":"single","reasoning":{"effort":"low"},"store":false,"input":[{"role":"user","content":"hi"},{"type":"reasoning","summary":[],"encrypted_content":"`+ec+`"},{"type":"function_call","call_id":"c1","name":"weather","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],`+rsTools+`}`)
	if w.Code != 200 {
		t.Fatalf("with the reasoning item: %d %s", w.Code, w.Body)
	}
}

// refusingFleet refuses, as the anthropic plugin does, a request with a
// reasoning effort whose last assistant turn has tool calls and no
// thinking blocks.
type refusingFleet struct{ fleet }

func (f refusingFleet) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return f.fleet.WithProvider(ctx, name, method, func(ctx context.Context, pc sdk.ProviderClient) error {
		return fn(ctx, refusing{pc.(*scripted)})
	})
}

type refusing struct{ *scripted }

func (r refusing) check(req *pb.ChatRequest) error {
	msgs := req.GetMessages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].GetRole() == "assistant" {
			if req.GetReasoningEffort() != "" && len(msgs[i].GetToolCalls()) > 0 && len(msgs[i].GetThinkingBlocks()) == 0 {
				return sdk.FieldErrorf(fmt.Sprintf("messages[%d].thinking_blocks", i), "messages[%d] is the assistant turn with tool_calls that this request continues: send it back with its thinking_blocks", i)
			}
			break
		}
	}
	return nil
}

func (r refusing) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if err := r.check(req); err != nil {
		return nil, err
	}
	return r.scripted.Chat(ctx, req)
}

// TestResponsesReasoningTextOnly: an upstream that gives reasoning text
// and no blocks (DeepSeek, vLLM through the openai plugin) gets a
// reasoning item with its summary; its encrypted_content, when asked for,
// packs no blocks, and the item goes back (by value or by reference)
// adding nothing to the turn.
func TestResponsesReasoningTextOnly(t *testing.T) {
	h := storeHarness(t)
	h.g.providers = textReasoningFleet{fleet{"pa": h.a, "pb": h.b}}
	r := responseObject(t, h.responsesAs(t, "app", `{"model":"single","input":"hi","include":["reasoning.encrypted_content"]}`))
	rs := r["output"].([]any)[0].(map[string]any)
	if !reflect.DeepEqual(rs["summary"], []any{map[string]any{"type": "summary_text", "text": "hmm"}}) ||
		!reflect.DeepEqual(unpackJSON(t, rs["encrypted_content"].(string)), map[string]any{"vigil_thinking": 1.0, "blocks": []any{}}) {
		t.Fatalf("reasoning item %v", rs)
	}
	msg := r["output"].([]any)[1].(map[string]any)
	b, _ := json.Marshal(rs)
	for _, it := range []string{string(b), itemRef(rs["id"].(string))} {
		w := h.responsesAs(t, "app", `{"model":"single","input":[{"role":"user","content":"hi"},`+it+`,`+itemRef(msg["id"].(string))+`,{"role":"user","content":"more"}]}`)
		if w.Code != 200 || len(h.a.last["solo"].GetMessages()[1].GetThinkingBlocks()) != 0 || h.a.last["solo"].GetMessages()[1].GetRole() != "assistant" {
			t.Fatalf("%s back: %d %s", it, w.Code, w.Body)
		}
	}
}

type textReasoningFleet struct{ fleet }

func (f textReasoningFleet) WithProvider(ctx context.Context, name, method string, fn func(context.Context, sdk.ProviderClient) error) error {
	return f.fleet.WithProvider(ctx, name, method, func(ctx context.Context, pc sdk.ProviderClient) error {
		return fn(ctx, textReasoning{pc.(*scripted)})
	})
}

type textReasoning struct{ *scripted }

func (th textReasoning) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	resp, err := th.scripted.Chat(ctx, req)
	if err == nil {
		resp.ReasoningContent = "hmm"
	}
	return resp, err
}

// TestPackThinking: encrypted_content round-trips every block shape, an
// empty thinking text included.
func TestPackThinking(t *testing.T) {
	in := []*pb.ThinkingBlock{{Type: "thinking", Thinking: "", Signature: "s1"}, {Type: "redacted_thinking", Data: "d"}, {Type: "thinking", Thinking: "b", Signature: "s2"}}
	out, e := unpackThinking("f", packThinking(in))
	if e != nil || len(out) != 3 {
		t.Fatalf("%v %v", out, e)
	}
	for i := range in {
		if out[i].GetType() != in[i].GetType() || out[i].GetThinking() != in[i].GetThinking() || out[i].GetSignature() != in[i].GetSignature() || out[i].GetData() != in[i].GetData() {
			t.Fatalf("block %d: %v", i, out[i])
		}
	}
}

// TestResponsesReasoningInterleaved: reasoning that a stream sends after
// a tool call (interleaved thinking) opens a second reasoning item there,
// each with its own text and blocks; a stream that fails while reasoning
// ends with response.failed holding the reasoning so far.
func TestResponsesReasoningInterleaved(t *testing.T) {
	h := storeHarness(t)
	b1 := &pb.ThinkingBlock{Type: "thinking", Thinking: "a", Signature: "s1"}
	b2 := &pb.ThinkingBlock{Type: "thinking", Thinking: "b", Signature: "s2"}
	h.g.providers = eventsFleet{ProviderClient: h.a, events: []*pb.ChatEvent{
		{ReasoningContent: "a"}, {ThinkingBlocks: []*pb.ThinkingBlock{b1}},
		{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "c1", Name: "weather"}}}, {ToolCalls: []*pb.ToolCallDelta{{Index: 0, Arguments: "{}"}}},
		{ReasoningContent: "b"}, {ThinkingBlocks: []*pb.ThinkingBlock{b2}},
		{Delta: "done"}, {FinishReason: "stop"},
	}}
	r := streamed(t, h.responsesAs(t, "app", `{"model":"single","stream":true,"input":"x","include":["reasoning.encrypted_content"],`+rsTools+`}`))
	out := r["output"].([]any)
	var types []string
	for _, it := range out {
		types = append(types, it.(map[string]any)["type"].(string))
	}
	if strings.Join(types, " ") != "reasoning function_call reasoning message" {
		t.Fatalf("output %v", out)
	}
	for i, want := range map[int]*pb.ThinkingBlock{0: b1, 2: b2} {
		it := out[i].(map[string]any)
		blocks, e := unpackThinking("x", it["encrypted_content"].(string))
		if e != nil || len(blocks) != 1 || blocks[0].GetSignature() != want.GetSignature() || it["summary"].([]any)[0].(map[string]any)["text"] != want.GetThinking() {
			t.Fatalf("reasoning item %d: %v (%v)", i, it, e)
		}
	}

	// Cut while reasoning: an error event, then response.failed with the
	// reasoning item so far.
	h.g.providers = eventsFleet{ProviderClient: h.a, events: []*pb.ChatEvent{{ReasoningContent: "half a thou"}}, err: sdk.Errorf(sdk.Unavailable, "cut")}
	evs := readEvents(t, h.responsesAs(t, "app", `{"model":"single","stream":true,"input":"x"}`).Body.String())
	last := evs[len(evs)-1]
	if last.name != "response.failed" || evs[len(evs)-2].name != "error" {
		t.Fatalf("events %s", eventNames(evs))
	}
	failed := last.data["response"].(map[string]any)["output"].([]any)
	if len(failed) != 1 || !reflect.DeepEqual(failed[0].(map[string]any)["summary"], []any{map[string]any{"type": "summary_text", "text": "half a thou"}}) {
		t.Fatalf("failed output %v", failed)
	}
}

// eventsFleet streams events, then fails with err (nil: ends).
type eventsFleet struct {
	sdk.ProviderClient // the rest (not called)
	events             []*pb.ChatEvent
	err                error
}

func (f eventsFleet) WithProvider(ctx context.Context, _, _ string, fn func(context.Context, sdk.ProviderClient) error) error {
	return fn(ctx, eventsProvider{f})
}

type eventsProvider struct{ eventsFleet }

func (p eventsProvider) ChatStream(_ context.Context, _ *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	for _, ev := range p.events {
		if err := send(ev); err != nil {
			return err
		}
	}
	return p.err
}
