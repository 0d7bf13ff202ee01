package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

func toolReq(choice, fn string, parallel *bool) *pb.ChatRequest {
	req := chatReq("gpt-test")
	req.Messages[1].Content = "weather in Paris"
	req.Tools = []*pb.Tool{
		{Name: "get_weather", Description: "Weather of a city", Parameters: `{"type":"object","properties":{"query":{"type":"string"}}}`, Strict: true},
		{Name: "get_time"},
	}
	req.ToolChoice, req.ToolChoiceFunction, req.ParallelToolCalls = choice, fn, parallel
	return req
}

// TestToolsSentUpstream: tools, tool_choice and parallel_tool_calls reach
// the upstream in OpenAI's shape.
func TestToolsSentUpstream(t *testing.T) {
	p, stub := setup(t, nil)
	no := false
	for _, tc := range []struct {
		choice, fn string
		parallel   *bool
		want       any
	}{
		{"", "", nil, nil},
		{"auto", "", &no, "auto"},
		{"function", "get_time", nil, map[string]any{"type": "function", "function": map[string]any{"name": "get_time"}}},
	} {
		if _, err := p.Chat(context.Background(), toolReq(tc.choice, tc.fn, tc.parallel)); err != nil {
			t.Fatal(err)
		}
		sent := stub.LastRequest("/v1/chat/completions", "gpt-test")
		if !reflect.DeepEqual(sent["tool_choice"], tc.want) {
			t.Errorf("tool_choice %q: sent %v, want %v", tc.choice, sent["tool_choice"], tc.want)
		}
		if got, ok := sent["parallel_tool_calls"]; (tc.parallel == nil) == ok || (ok && got != false) {
			t.Errorf("parallel_tool_calls sent %v (%v)", got, ok)
		}
		tools := sent["tools"].([]any)
		first := tools[0].(map[string]any)
		fn := first["function"].(map[string]any)
		if len(tools) != 2 || first["type"] != "function" || fn["name"] != "get_weather" || fn["description"] != "Weather of a city" || fn["strict"] != true ||
			fn["parameters"].(map[string]any)["type"] != "object" {
			t.Fatalf("tools sent: %v", tools)
		}
		if second := tools[1].(map[string]any)["function"].(map[string]any); len(second) != 1 || second["name"] != "get_time" {
			t.Fatalf("a tool without description or parameters: %v", second)
		}
	}
	req := toolReq("function", "", nil)
	if _, err := p.Chat(context.Background(), req); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("forced function without a name: %v", err)
	}
	req = toolReq("", "", nil)
	req.Tools[0].Parameters = "{nope"
	if _, err := p.Chat(context.Background(), req); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("parameters that are not JSON: %v", err)
	}
}

// TestToolRoundTrip: the upstream's tool call comes back in the contract,
// and the assistant message with tool_calls (content null) and the tool
// message go upstream as OpenAI expects them.
func TestToolRoundTrip(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()
	req := toolReq("", "", nil)
	resp, err := p.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.GetToolCalls()
	if resp.GetFinishReason() != "tool_calls" || resp.GetContent() != "" || len(calls) != 1 || calls[0].GetName() != "get_weather" ||
		calls[0].GetArguments() != `{"query":"weather in Paris"}` || calls[0].GetId() == "" {
		t.Fatalf("tool call answer: %v", resp)
	}
	req.Messages = append(req.Messages,
		&pb.Message{Role: "assistant", ToolCalls: calls},
		&pb.Message{Role: "tool", ToolCallId: calls[0].GetId(), Content: "18 C, cloudy"})
	resp, err = p.Chat(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "tool get_weather returned: 18 C, cloudy" || resp.GetFinishReason() != "stop" || len(resp.GetToolCalls()) != 0 {
		t.Fatalf("answer to the tool result: %v", resp)
	}
	msgs := stub.LastRequest("/v1/chat/completions", "gpt-test")["messages"].([]any)
	asst, tool := msgs[2].(map[string]any), msgs[3].(map[string]any)
	if c, ok := asst["content"]; !ok || c != nil {
		t.Fatalf("assistant tool-call message content %v (present %v), want null", c, ok)
	}
	tc := asst["tool_calls"].([]any)[0].(map[string]any)
	if tc["id"] != calls[0].GetId() || tc["type"] != "function" || tc["function"].(map[string]any)["arguments"] != calls[0].GetArguments() {
		t.Fatalf("assistant tool_calls sent: %v", tc)
	}
	if tool["role"] != "tool" || tool["tool_call_id"] != calls[0].GetId() || tool["content"] != "18 C, cloudy" {
		t.Fatalf("tool message sent: %v", tool)
	}
	// A tool message that answers nothing is the upstream's 400, passed
	// on as invalid_request.
	req.Messages[3].ToolCallId = "call_unknown"
	if _, err := p.Chat(ctx, req); sdk.ClassOf(err) != sdk.InvalidRequest {
		t.Fatalf("orphan tool message: %v", err)
	}
	// And so is a call no tool message answers.
	req.Messages = req.Messages[:3]
	if _, err := p.Chat(ctx, req); sdk.ClassOf(err) != sdk.InvalidRequest || !strings.Contains(err.Error(), calls[0].GetId()) {
		t.Fatalf("unanswered tool call: %v", err)
	}
}

// TestToolCallStream: the upstream's streamed tool calls (id and name
// first, then argument fragments, for two parallel calls) become
// ToolCallDeltas that add up to the whole calls.
func TestToolCallStream(t *testing.T) {
	p, _ := setup(t, nil)
	var deltas []*pb.ToolCallDelta
	var finish string
	err := p.ChatStream(context.Background(), toolReq("required", "", nil), func(ev *pb.ChatEvent) error {
		if ev.GetDelta() != "" {
			t.Errorf("text in a tool-call stream: %q", ev.GetDelta())
		}
		deltas = append(deltas, ev.GetToolCalls()...)
		if ev.GetFinishReason() != "" {
			finish = ev.GetFinishReason()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	type call struct{ id, name, args string }
	var calls []call
	for _, d := range deltas {
		if d.GetId() != "" {
			if int(d.GetIndex()) != len(calls) {
				t.Fatalf("call %d opened at index %d", len(calls), d.GetIndex())
			}
			calls = append(calls, call{d.GetId(), d.GetName(), ""})
		}
		calls[d.GetIndex()].args += d.GetArguments()
	}
	if finish != "tool_calls" || len(calls) != 2 || calls[0].name != "get_weather" || calls[1].name != "get_time" || len(deltas) < 6 {
		t.Fatalf("finish %q, calls %+v from %d deltas", finish, calls, len(deltas))
	}
	for _, c := range calls {
		var args map[string]string
		if err := json.Unmarshal([]byte(c.args), &args); err != nil || args["query"] != "weather in Paris" {
			t.Fatalf("arguments of %s: %q (%v)", c.name, c.args, err)
		}
	}
}

// TestToolsWithPromptStructuredOutput: structured_output prompt still puts
// the schema into the system prompt when the request has tools, and the
// tools still go upstream.
func TestToolsWithPromptStructuredOutput(t *testing.T) {
	p, stub := setup(t, map[string]any{"structured_output": "prompt"})
	req := toolReq("none", "", nil)
	req.ResponseFormat, req.JsonSchema, req.JsonSchemaName = "json_schema", `{"type":"object"}`, "reply"
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetToolCalls()) != 0 || resp.GetContent() == "" {
		t.Fatalf("tool_choice none answered %v", resp)
	}
	sent := stub.LastRequest("/v1/chat/completions", "gpt-test")
	sys := sent["messages"].([]any)[0].(map[string]any)["content"].(string)
	if _, ok := sent["response_format"]; ok || len(sent["tools"].([]any)) != 2 || sent["tool_choice"] != "none" || !containsAll(sys, "be brief", `{"type":"object"}`) {
		t.Fatalf("sent: %v", sent)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
