package main

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/anthropicstub"
)

func thinkReq(effort string) *pb.ChatRequest {
	return &pb.ChatRequest{Model: "claude-test", ReasoningEffort: effort, Messages: []*pb.Message{{Role: "user", Content: "hello there"}}}
}

// TestThinkingRequest: each reasoning_effort becomes its thinking budget;
// a client's cap is kept (the budget lowered below it, refused when that
// leaves less than 1024, naming the cap's parameter); without a cap the
// default max_tokens is raised above the budget; none sends no thinking.
func TestThinkingRequest(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		effort             string
		maxTokens, maxComp *int32
		budget, sent       float64 // 0: no thinking
	}{
		{"minimal", nil, nil, 1024, 4096},
		{"low", nil, nil, 2048, 4096},
		{"medium", nil, nil, 8192, 8192 + 4096},
		{"high", nil, nil, 16384, 16384 + 4096},
		{"none", nil, nil, 0, 4096},
		{"high", nil, ptrTo[int32](20000), 16384, 20000},
		{"high", nil, ptrTo[int32](3000), 2999, 3000},
		{"medium", ptrTo[int32](1025), ptrTo[int32](1025), 1024, 1025},
		{"low", ptrTo[int32](2048), nil, 2047, 2048},
	} {
		req := thinkReq(tc.effort)
		req.MaxTokens, req.MaxCompletionTokens = tc.maxTokens, tc.maxComp
		resp, err := p.Chat(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		body := stub.LastRequest("/v1/messages", "claude-test")
		th, _ := body["thinking"].(map[string]any)
		switch {
		case tc.budget == 0 && body["thinking"] != nil:
			t.Errorf("%+v: thinking sent: %v", tc, body["thinking"])
		case tc.budget != 0 && (th["type"] != "enabled" || th["budget_tokens"] != tc.budget || len(th) != 2):
			t.Errorf("%+v: thinking sent: %v", tc, body["thinking"])
		case body["max_tokens"] != tc.sent:
			t.Errorf("%+v: max_tokens sent: %v", tc, body["max_tokens"])
		}
		// The stub thought first ("Thinking about: hello there", 4 words):
		// the content is the text alone, output_tokens (thinking included)
		// the completion tokens.
		want := int32(3) // "echo: hello there"
		if tc.budget != 0 {
			want += 4
		}
		if resp.GetContent() != "echo: hello there" || resp.GetUsage().GetCompletionTokens() != want || resp.GetUsage().GetTotalTokens() != 2+want {
			t.Errorf("%+v: answer %v", tc, resp)
		}
	}

	// Caps that leave no room for 1024 thinking tokens, and an effort the
	// plugin does not map: invalid_request naming the parameter, before
	// any upstream call.
	calls := stub.Calls("/v1/messages", "claude-test")
	for _, tc := range []struct {
		effort             string
		maxTokens, maxComp *int32
		field, says        string
	}{
		{"minimal", nil, ptrTo[int32](1024), "max_completion_tokens", "max_completion_tokens 1024 leaves no room"},
		{"high", ptrTo[int32](100), ptrTo[int32](100), "max_tokens", "max_tokens 100 leaves no room"},
		{"xhigh", nil, nil, "reasoning_effort", `"xhigh" is not none, minimal, low, medium or high`},
	} {
		req := thinkReq(tc.effort)
		req.MaxTokens, req.MaxCompletionTokens = tc.maxTokens, tc.maxComp
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field || !strings.Contains(se.Message, tc.says) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != calls {
		t.Fatalf("%d upstream calls for refused requests", n-calls)
	}
}

// TestThinkingRefusals: what Anthropic refuses with thinking is refused
// before any upstream call, naming the OpenAI parameter, whole and
// streamed; what it accepts (temperature 1, top_p 0.95, tool_choice auto
// or none, a first request with tools) passes.
func TestThinkingRefusals(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	loop := toolConversation()[:5] // a user turn, the calls, their results
	for _, tc := range []struct {
		change      func(r *pb.ChatRequest)
		field, says string
	}{
		{func(r *pb.ChatRequest) { r.Temperature = ptrTo(0.5) }, "temperature", "no temperature other than 1"},
		{func(r *pb.ChatRequest) { r.Temperature = ptrTo(0.0) }, "temperature", "no temperature other than 1"},
		{func(r *pb.ChatRequest) { r.TopP = ptrTo(0.9) }, "top_p", "from 0.95 to 1"},
		{func(r *pb.ChatRequest) { r.Tools, r.ToolChoice = weatherTools(), "required" }, "tool_choice", "forced tool"},
		{func(r *pb.ChatRequest) {
			r.Tools, r.ToolChoice, r.ToolChoiceFunction = weatherTools(), "function", "now"
		}, "tool_choice", "forced tool"},
		{func(r *pb.ChatRequest) { r.Tools, r.Messages = weatherTools(), loop }, "messages[2].thinking_blocks", "send the assistant message back with its thinking_blocks"},
		// Only the last assistant turn needs them: here the earlier one
		// carries them and the last does not.
		{func(r *pb.ChatRequest) {
			r.Tools, r.Messages = weatherTools(), signed(toolConversation(), 2)
		}, "messages[6].thinking_blocks", "messages[6] is the assistant turn with tool_calls"},
		{func(r *pb.ChatRequest) {
			r.Tools, r.Messages = weatherTools(), signed(toolConversation()[:5], 2)
			r.Messages[2].ThinkingBlocks[0].Signature = ""
		}, "messages[2].thinking_blocks[0].signature", "needs the signature"},
		{func(r *pb.ChatRequest) {
			r.Tools, r.Messages = weatherTools(), signed(toolConversation()[:5], 2)
			r.Messages[2].ThinkingBlocks[1].Data = ""
		}, "messages[2].thinking_blocks[1].data", "needs the data"},
		{func(r *pb.ChatRequest) {
			r.Tools, r.Messages = weatherTools(), signed(toolConversation()[:5], 2)
			r.Messages[2].ThinkingBlocks[1].Type = "reasoning"
		}, "messages[2].thinking_blocks[1].type", `"reasoning" is not thinking or redacted_thinking`},
	} {
		req := thinkReq("low")
		tc.change(req)
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field || !strings.Contains(se.Message, tc.says) {
			t.Errorf("%s: %v", tc.field, err)
		}
		err = p.ChatStream(ctx, req, func(*pb.ChatEvent) error { return nil })
		if !errors.As(err, &se) || se.Field != tc.field {
			t.Errorf("%s streamed: %v", tc.field, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-test"); n != 0 {
		t.Fatalf("%d upstream calls", n)
	}
	// The same tool loop without reasoning_effort goes through.
	if _, err := p.Chat(ctx, &pb.ChatRequest{Model: "claude-test", Tools: weatherTools(), Messages: loop}); err != nil {
		t.Fatal(err)
	}
	for _, change := range []func(r *pb.ChatRequest){
		func(r *pb.ChatRequest) { r.Temperature, r.TopP = ptrTo(1.0), ptrTo(0.95) },
		func(r *pb.ChatRequest) { r.Tools, r.ToolChoice = weatherTools(), "none" },
		func(r *pb.ChatRequest) { r.Tools, r.ToolChoice = weatherTools(), "auto" },
	} {
		req := thinkReq("low")
		change(req)
		if _, err := p.Chat(ctx, req); err != nil {
			t.Errorf("%v", err)
		}
	}
}

// signed gives msgs[i] the stub's signed thinking block and a redacted
// one.
func signed(msgs []*pb.Message, i int) []*pb.Message {
	msgs[i].ThinkingBlocks = []*pb.ThinkingBlock{
		{Type: "thinking", Thinking: "Thinking about: weather", Signature: anthropicstub.Signature("Thinking about: weather")},
		{Type: "redacted_thinking", Data: anthropicstub.RedactedData("weather")},
	}
	return msgs
}

// TestThinkingToolLoop: an assistant turn's thinking blocks go back first
// in that turn, in order and unchanged, so that the tool loop goes on
// with thinking, whole and streamed; the stub checks the signatures.
func TestThinkingToolLoop(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	req := &pb.ChatRequest{Model: "claude-test", ReasoningEffort: "low", Tools: weatherTools(), Messages: signed(toolConversation(), 6)}
	resp, err := p.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "tool said: Monday" || resp.GetReasoningContent() != "Thinking about: " || len(resp.GetThinkingBlocks()) != 1 {
		t.Fatalf("answer: %v", resp)
	}
	sent := stub.LastRequest("/v1/messages", "claude-test")["messages"].([]any)
	last := sent[len(sent)-2].(map[string]any)["content"].([]any)
	want := []any{
		map[string]any{"type": "thinking", "thinking": "Thinking about: weather", "signature": anthropicstub.Signature("Thinking about: weather")},
		map[string]any{"type": "redacted_thinking", "data": anthropicstub.RedactedData("weather")},
	}
	if len(last) != 3 || !reflect.DeepEqual(last[:2], want) || last[2].(map[string]any)["type"] != "tool_use" {
		t.Fatalf("the assistant turn sent: %v", last)
	}
	// An assistant message without calls keeps its thinking blocks
	// first too, and with no text sends no empty text block.
	msgs := []*pb.Message{{Role: "user", Content: "hi"}, {Role: "assistant"}, {Role: "user", Content: "again"}}
	msgs = signed(msgs, 1)
	if _, err := p.Chat(ctx, &pb.ChatRequest{Model: "claude-test", ReasoningEffort: "low", Messages: msgs}); err != nil {
		t.Fatal(err)
	}
	sent = stub.LastRequest("/v1/messages", "claude-test")["messages"].([]any)
	if got := sent[1].(map[string]any)["content"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("the assistant turn without calls: %v", got)
	}
	c, err := collect(t, p, req)
	if err != nil || c.text != "tool said: Monday" || c.reasoning != "Thinking about: " || len(c.blocks) != 1 {
		t.Fatalf("streamed: %+v %v", c, err)
	}
}

// TestThinkingAnswers: with thinking, the stub's answers start with a
// thinking block: its text is the reasoning_content and the block (text
// and signature) a thinking block, apart from the content; text and tool
// calls are kept, whole and streamed, the streamed calls numbered from 0.
func TestThinkingAnswers(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	stub.ParallelToolUse = true
	req := toolReq()
	req.ReasoningEffort = "medium"
	whole, err := p.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if th := stub.LastRequest("/v1/messages", "claude-test")["thinking"].(map[string]any); th["budget_tokens"] != 8192.0 {
		t.Fatalf("thinking sent: %v", th)
	}
	wantBlock := &pb.ThinkingBlock{Type: "thinking", Thinking: "Thinking about: weather in Paris?", Signature: anthropicstub.Signature("Thinking about: weather in Paris?")}
	if whole.GetReasoningContent() != wantBlock.Thinking || len(whole.GetThinkingBlocks()) != 1 || !blockEqual(whole.GetThinkingBlocks()[0], wantBlock) {
		t.Fatalf("whole thinking: %q %v", whole.GetReasoningContent(), whole.GetThinkingBlocks())
	}
	if whole.GetContent() != "Let me call get_weather and now." || whole.GetFinishReason() != "tool_calls" || len(whole.GetToolCalls()) != 2 ||
		!protoEqual(whole.GetToolCalls()[0], &pb.ToolCall{Id: "toolu_stub_0_0", Name: "get_weather", Arguments: `{"city":"weather in Paris?"}`}) ||
		!protoEqual(whole.GetToolCalls()[1], &pb.ToolCall{Id: "toolu_stub_0_1", Name: "now", Arguments: `{}`}) {
		t.Fatalf("whole: %v", whole)
	}
	c, err := collect(t, p, req)
	if err != nil || c.text != whole.GetContent() || c.finish != "tool_calls" || len(c.ids) != 2 {
		t.Fatalf("streamed: %+v %v", c, err)
	}
	// The reasoning in pieces, then the block whole, in one event before
	// the text.
	if c.reasoning != wantBlock.Thinking || c.reasoningEvents < 2 || len(c.blocks) != 1 || !blockEqual(c.blocks[0], wantBlock) || c.blockEvents != 1 || c.blocksAfterText {
		t.Fatalf("streamed thinking: %+v", c)
	}
	for i, tc := range whole.GetToolCalls() {
		if c.ids[int32(i)] != tc.GetId() || c.names[int32(i)] != tc.GetName() || c.args[int32(i)] != tc.GetArguments() {
			t.Errorf("streamed call %d = %s %s %s, whole %v", i, c.ids[int32(i)], c.names[int32(i)], c.args[int32(i)], tc)
		}
	}
	for _, d := range c.deltas {
		if d.GetIndex() > 1 {
			t.Errorf("tool call index %d: thinking or text blocks counted", d.GetIndex())
		}
	}
	// Text only, streamed: the thinking deltas are not content.
	c, err = collect(t, p, thinkReq("high"))
	if err != nil || c.text != "echo: hello there" || c.finish != "stop" {
		t.Fatalf("streamed text: %+v %v", c, err)
	}
}

// TestRedactedThinkingAnswers: redacted_thinking and thinking blocks
// before the answer, whole and streamed (thinking_delta, signature_delta),
// are not content but thinking blocks in order (the stream's in one
// event), the thinking text the reasoning_content, and the tool call
// after them is call 0. A thinking block that never got its signature is
// reasoning_content only (it could not be sent back).
func TestRedactedThinkingAnswers(t *testing.T) {
	p := canned(t, "application/json", `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
		"content":[
			{"type":"redacted_thinking","data":"EmwKAhgBEgy"},
			{"type":"thinking","thinking":"hmm","signature":"s"},
			{"type":"text","text":"Checking."},
			{"type":"tool_use","id":"toolu_01","name":"now","input":{}}],
		"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":70}}`)
	resp, err := p.Chat(context.Background(), toolReq())
	if err != nil || resp.GetContent() != "Checking." || len(resp.GetToolCalls()) != 1 || resp.GetUsage().GetCompletionTokens() != 70 {
		t.Fatalf("whole: %v %v", resp, err)
	}
	want := []*pb.ThinkingBlock{{Type: "redacted_thinking", Data: "EmwKAhgBEgy"}, {Type: "thinking", Thinking: "hmm", Signature: "s"}}
	if resp.GetReasoningContent() != "hmm" || len(resp.GetThinkingBlocks()) != 2 || !blockEqual(resp.GetThinkingBlocks()[0], want[0]) || !blockEqual(resp.GetThinkingBlocks()[1], want[1]) {
		t.Fatalf("whole thinking: %v", resp)
	}
	p = canned(t, "text/event-stream", sse(
		`{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":10,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"redacted_thinking","data":"EmwKAhgBEgy"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"content_block_start","index":1,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"thinking_delta","thinking":"let me see"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM"}}`,
		`{"type":"content_block_stop","index":1}`,
		`{"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":2,"delta":{"type":"text_delta","text":"Checking."}}`,
		`{"type":"content_block_stop","index":2}`,
		`{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_01","name":"now","input":{}}}`,
		`{"type":"content_block_stop","index":3}`,
		`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":70}}`,
		`{"type":"message_stop"}`,
	))
	c, err := collect(t, p, toolReq())
	if err != nil || c.text != "Checking." || c.finish != "tool_calls" || len(c.ids) != 1 || c.ids[0] != "toolu_01" || c.args[0] != "{}" {
		t.Fatalf("streamed: %+v %v", c, err)
	}
	want[1].Thinking, want[1].Signature = "let me see", "EqQBCgIYAhIM"
	if c.reasoning != "let me see" || c.blockEvents != 1 || len(c.blocks) != 2 || !blockEqual(c.blocks[0], want[0]) || !blockEqual(c.blocks[1], want[1]) || c.blocksAfterText {
		t.Fatalf("streamed thinking: %+v", c)
	}

	// Cut before its signature: the text only.
	p = canned(t, "text/event-stream", sse(
		`{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":10,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"half"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":70}}`,
		`{"type":"message_stop"}`,
	))
	c, err = collect(t, p, toolReq())
	if err != nil || c.reasoning != "half" || len(c.blocks) != 0 || c.finish != "length" {
		t.Fatalf("unsigned: %+v %v", c, err)
	}
}

func blockEqual(a, b *pb.ThinkingBlock) bool {
	return a.GetType() == b.GetType() && a.GetThinking() == b.GetThinking() && a.GetSignature() == b.GetSignature() && a.GetData() == b.GetData()
}
