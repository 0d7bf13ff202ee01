package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/anthropicstub"
)

// setupModels is setup with a stub serving models (the stub tells them
// apart by id as Anthropic does: anthropicstub.Thinking).
func setupModels(t *testing.T, extra map[string]any, models ...string) (*provider, *anthropicstub.Server) {
	t.Helper()
	stub := anthropicstub.New(models...)
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)
	cfg := map[string]any{"base_url": srv.URL, "timeout": "2s"}
	for k, v := range extra {
		cfg[k] = v
	}
	p := newProvider()
	if errs := p.Configure(cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	return p, stub
}

// TestAdaptiveModels: the table decides by model id, from its "claude-"
// on and in any case, the longest prefix winning; the option thinking
// overrides it either way.
func TestAdaptiveModels(t *testing.T) {
	for _, tc := range []struct {
		model           string
		adaptive, xhigh bool
	}{
		{"claude-opus-4-7", true, true},
		{"claude-opus-4-6", true, false},
		{"claude-opus-4-6-20260205", true, false},
		{"us.anthropic.claude-opus-4-6-v1", true, false},
		{"anthropic/Claude-Sonnet-4-6", true, false},
		{"claude-sonnet-4-6@default", true, false},
		{"claude-opus-4-8", true, true},
		{"claude-mythos-preview", true, false},
		{"claude-mythos-5", true, true},
		{"claude-fable-5-1", true, true},
		{"claude-opus-5", true, true},
		{"claude-sonnet-5-5", true, true},
		{"claude-opus-4-5-20251101", false, false},
		{"claude-sonnet-4-5", false, false},
		{"claude-haiku-4-5", false, false},
		{"claude-3-7-sonnet-latest", false, false},
		{"claude-test", false, false},
		{"opus-4-7", false, false}, // not an Anthropic id
	} {
		e, ok := lookupAdaptive(tc.model)
		if ok != tc.adaptive || e.xhigh != tc.xhigh {
			t.Errorf("%s: adaptive %v xhigh %v, want %v %v", tc.model, ok, e.xhigh, tc.adaptive, tc.xhigh)
		}
		for mode, want := range map[string]bool{thinkingAuto: tc.adaptive, thinkingAdaptive: true, thinkingBudget: false} {
			s := &state{cfg: config{thinkingMode: mode}}
			if got, _, _ := s.adaptiveFor(tc.model); got != want {
				t.Errorf("%s, thinking %s: adaptive %v", tc.model, mode, got)
			}
		}
	}
}

// TestAdaptiveRequest: on a model that takes adaptive thinking, each
// reasoning_effort becomes thinking {"type":"adaptive"} and its
// output_config.effort; without a cap max_tokens leaves room for
// thinking as the budget mode does, a client's cap goes as it is (no
// budget to fit under it); none sends neither field; xhigh only where
// the model takes it; the answer's thinking is omitted on Opus 4.7 by
// default (blocks without text, no reasoning_content) and summarized with
// thinking_display.
func TestAdaptiveRequest(t *testing.T) {
	p, stub := setupModels(t, nil, "claude-opus-4-7", "claude-sonnet-4-6")
	ctx := context.Background()
	for _, tc := range []struct {
		model, effort string
		maxTokens     *int32
		sentEffort    string // "": no thinking
		sentMax       float64
	}{
		{"claude-opus-4-7", "minimal", nil, "low", 4096},
		{"claude-opus-4-7", "low", nil, "low", 4096},
		{"claude-opus-4-7", "medium", nil, "medium", 8192 + 4096},
		{"claude-opus-4-7", "high", nil, "high", 16384 + 4096},
		{"claude-opus-4-7", "xhigh", nil, "xhigh", 32768 + 4096},
		{"claude-opus-4-7", "max", nil, "max", 32768 + 4096},
		{"claude-opus-4-7", "none", nil, "", 4096},
		{"claude-opus-4-7", "", nil, "", 4096},
		{"claude-opus-4-7", "high", ptrTo[int32](500), "high", 500},
		{"claude-sonnet-4-6", "medium", nil, "medium", 8192 + 4096},
		{"claude-sonnet-4-6", "max", ptrTo[int32](64000), "max", 64000},
	} {
		req := thinkReq(tc.effort)
		req.Model, req.MaxTokens = tc.model, tc.maxTokens
		resp, err := p.Chat(ctx, req)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		body := stub.LastRequest("/v1/messages", tc.model)
		if tc.sentEffort == "" {
			if body["thinking"] != nil || body["output_config"] != nil {
				t.Errorf("%+v: thinking %v, output_config %v sent", tc, body["thinking"], body["output_config"])
			}
		} else if !reflect.DeepEqual(body["thinking"], map[string]any{"type": "adaptive"}) || !reflect.DeepEqual(body["output_config"], map[string]any{"effort": tc.sentEffort}) {
			t.Errorf("%+v: thinking %v, output_config %v sent", tc, body["thinking"], body["output_config"])
		}
		if body["max_tokens"] != tc.sentMax {
			t.Errorf("%+v: max_tokens %v sent", tc, body["max_tokens"])
		}
		// Opus 4.7 omits the thinking text by default: the block comes
		// with its signature and no text, and there is no
		// reasoning_content; Sonnet 4.6 summarizes it.
		thought := "Thinking about: hello there"
		switch {
		case tc.sentEffort == "":
			if len(resp.GetThinkingBlocks()) != 0 || resp.GetReasoningContent() != "" {
				t.Errorf("%+v: reasoning without thinking: %v", tc, resp)
			}
		case tc.model == "claude-opus-4-7":
			want := &pb.ThinkingBlock{Type: "thinking", Signature: anthropicstub.OmittedSignature(thought)}
			if resp.GetReasoningContent() != "" || len(resp.GetThinkingBlocks()) != 1 || !blockEqual(resp.GetThinkingBlocks()[0], want) {
				t.Errorf("%+v: omitted thinking: %v", tc, resp)
			}
		default:
			if resp.GetReasoningContent() != thought || len(resp.GetThinkingBlocks()) != 1 {
				t.Errorf("%+v: summarized thinking: %v", tc, resp)
			}
		}
		if resp.GetContent() != "echo: hello there" {
			t.Errorf("%+v: answer %v", tc, resp)
		}
	}

	// Refused before any upstream call, naming the parameter: an effort
	// the plugin does not map, xhigh where the model does not take it,
	// and what thinking rules out, in the adaptive shape too.
	loop := toolConversation()[:5]
	calls := stub.Calls("/v1/messages", "claude-opus-4-7") + stub.Calls("/v1/messages", "claude-sonnet-4-6")
	for _, tc := range []struct {
		model, effort string
		change        func(r *pb.ChatRequest)
		field, says   string
	}{
		{"claude-opus-4-7", "ultra", nil, "reasoning_effort", `"ultra" is not none, minimal, low, medium, high, xhigh or max (the levels the anthropic plugin maps to adaptive thinking's output_config.effort for claude-opus-4-7)`},
		{"claude-sonnet-4-6", "xhigh", nil, "reasoning_effort", `"xhigh" is not none, minimal, low, medium, high or max`},
		{"claude-opus-4-7", "high", func(r *pb.ChatRequest) { r.Temperature = ptrTo(0.2) }, "temperature", "no temperature other than 1"},
		{"claude-opus-4-7", "high", func(r *pb.ChatRequest) { r.TopP = ptrTo(0.5) }, "top_p", "from 0.95 to 1"},
		{"claude-sonnet-4-6", "low", func(r *pb.ChatRequest) { r.Tools, r.ToolChoice = weatherTools(), "required" }, "tool_choice", "forced tool"},
		{"claude-opus-4-7", "low", func(r *pb.ChatRequest) { r.Tools, r.Messages = weatherTools(), loop }, "messages[2].thinking_blocks", "send the assistant message back with its thinking_blocks"},
	} {
		req := thinkReq(tc.effort)
		req.Model = tc.model
		if tc.change != nil {
			tc.change(req)
		}
		_, err := p.Chat(ctx, req)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field || !strings.Contains(se.Message, tc.says) {
			t.Errorf("%+v: %v", tc, err)
		}
	}
	if n := stub.Calls("/v1/messages", "claude-opus-4-7") + stub.Calls("/v1/messages", "claude-sonnet-4-6"); n != calls {
		t.Fatalf("%d upstream calls for refused requests", n-calls)
	}
}

// TestAdaptiveToolLoop: on Opus 4.7, whose thinking text is omitted by
// default, a tool loop goes on with the blocks as they came (an empty
// text and the signature that carries the thinking), whole and
// streamed: no reasoning_content pieces, the block whole in one event.
// With thinking_display summarized the text comes back, sent as
// thinking.display.
func TestAdaptiveToolLoop(t *testing.T) {
	for _, display := range []string{"", "summarized"} {
		extra := map[string]any{}
		if display != "" {
			extra["thinking_display"] = display
		}
		p, stub := setupModels(t, extra, "claude-opus-4-7")
		ctx := context.Background()
		req := toolReq()
		req.Model, req.ReasoningEffort = "claude-opus-4-7", "medium"
		first, err := p.Chat(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wantTh := map[string]any{"type": "adaptive"}
		thought := "Thinking about: weather in Paris?"
		want := &pb.ThinkingBlock{Type: "thinking", Signature: anthropicstub.OmittedSignature(thought)}
		if display != "" {
			wantTh["display"] = display
			want = &pb.ThinkingBlock{Type: "thinking", Thinking: thought, Signature: anthropicstub.Signature(thought)}
		}
		if th := stub.LastRequest("/v1/messages", "claude-opus-4-7")["thinking"]; !reflect.DeepEqual(th, wantTh) {
			t.Fatalf("display %q: thinking sent %v", display, th)
		}
		if first.GetFinishReason() != "tool_calls" || len(first.GetThinkingBlocks()) != 1 || !blockEqual(first.GetThinkingBlocks()[0], want) || first.GetReasoningContent() != want.Thinking {
			t.Fatalf("display %q: first answer %v", display, first)
		}
		c, err := collect(t, p, req)
		if err != nil || c.finish != "tool_calls" || c.blockEvents != 1 || len(c.blocks) != 1 || !blockEqual(c.blocks[0], want) || c.reasoning != want.Thinking || (display == "" && c.reasoningEvents != 0) {
			t.Fatalf("display %q: streamed first answer %+v %v", display, c, err)
		}
		// The loop goes on with the blocks as they came.
		call := first.GetToolCalls()[0]
		req.Messages = append(req.Messages,
			&pb.Message{Role: "assistant", Content: first.GetContent(), ToolCalls: first.GetToolCalls(), ThinkingBlocks: first.GetThinkingBlocks()},
			&pb.Message{Role: "tool", ToolCallId: call.GetId(), Content: "18C"})
		second, err := p.Chat(ctx, req)
		if err != nil || second.GetContent() != "tool said: 18C" || len(second.GetThinkingBlocks()) != 1 {
			t.Fatalf("display %q: second answer %v %v", display, second, err)
		}
		c, err = collect(t, p, req)
		if err != nil || c.text != "tool said: 18C" || len(c.blocks) != 1 {
			t.Fatalf("display %q: streamed second answer %+v %v", display, c, err)
		}
	}
}

// TestThinkingOption: the option thinking forces the shape whatever the
// table says, and the upstream answers what it answers: budget on Sonnet
// 4.6 (still taken), budget on Opus 4.7 (its 400, passed on as
// invalid_request), adaptive on a model the table does not know
// (claude-test here, which refuses it as Sonnet 4.5 would). Unknown
// values of thinking and thinking_display are refused naming the option.
func TestThinkingOption(t *testing.T) {
	ctx := context.Background()
	p, stub := setupModels(t, map[string]any{"thinking": "budget"}, "claude-opus-4-7", "claude-sonnet-4-6")
	req := thinkReq("medium")
	req.Model = "claude-sonnet-4-6"
	if _, err := p.Chat(ctx, req); err != nil {
		t.Fatal(err)
	}
	if body := stub.LastRequest("/v1/messages", "claude-sonnet-4-6"); !reflect.DeepEqual(body["thinking"], map[string]any{"type": "enabled", "budget_tokens": 8192.0}) || body["output_config"] != nil || body["max_tokens"] != 12288.0 {
		t.Fatalf("budget on Sonnet 4.6: %v", body)
	}
	req.Model = "claude-opus-4-7"
	if _, err := p.Chat(ctx, req); sdk.ClassOf(err) != sdk.InvalidRequest || !strings.Contains(err.Error(), `"thinking.type.enabled" is not supported for this model`) {
		t.Fatalf("budget on Opus 4.7: %v", err)
	}
	req.ReasoningEffort = "xhigh"
	if _, err := p.Chat(ctx, req); !strings.Contains(err.Error(), `"xhigh" is not none, minimal, low, medium or high (the levels the anthropic plugin maps to extended thinking budgets for claude-opus-4-7; xhigh and max need adaptive thinking`) {
		t.Fatalf("xhigh in budget mode: %v", err)
	}

	p, stub = setupModels(t, map[string]any{"thinking": "adaptive", "thinking_display": "omitted"}, "claude-test")
	req = thinkReq("xhigh")
	if _, err := p.Chat(ctx, req); sdk.ClassOf(err) != sdk.InvalidRequest || !strings.Contains(err.Error(), "adaptive thinking is not supported on this model") {
		t.Fatalf("adaptive on claude-test: %v", err)
	}
	if body := stub.LastRequest("/v1/messages", "claude-test"); !reflect.DeepEqual(body["thinking"], map[string]any{"type": "adaptive", "display": "omitted"}) || !reflect.DeepEqual(body["output_config"], map[string]any{"effort": "xhigh"}) {
		t.Fatalf("adaptive forced: %v", body)
	}

	none := func(string) (string, bool) { return "", false }
	for _, tc := range []struct {
		opts        map[string]any
		field, says string
	}{
		{map[string]any{"thinking": "sometimes"}, "thinking", `"sometimes" is not auto`},
		{map[string]any{"thinking": true}, "thinking", "must be a string"},
		{map[string]any{"thinking_display": "full"}, "thinking_display", `"full" is not summarized or omitted`},
	} {
		_, errs := parseConfig(tc.opts, none)
		if len(errs) != 1 || errs[0].Field != tc.field || !strings.Contains(errs[0].Message, tc.says) {
			t.Errorf("%v: %v", tc.opts, errs)
		}
	}
	if c, errs := parseConfig(map[string]any{"thinking": "auto", "thinking_display": "summarized"}, none); len(errs) != 0 || c.thinkingMode != "auto" || c.thinkingDisplay != "summarized" {
		t.Fatalf("valid options: %+v %v", c, errs)
	}
}
