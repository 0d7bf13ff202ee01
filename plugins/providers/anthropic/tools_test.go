package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const weatherSchema = `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`

func weatherTools() []*pb.Tool {
	return []*pb.Tool{
		{Name: "get_weather", Description: "Current weather in a city", Parameters: weatherSchema},
		{Name: "now"}, // no parameters
	}
}

func ptrTo[T any](v T) *T { return &v }

// asJSON is v marshalled and read back, for comparing with a literal.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func literal(t *testing.T, s string) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		t.Fatalf("bad literal %s: %v", s, err)
	}
	return out
}

// toolConversation is a whole tool round: two parallel calls (arguments
// with spaces, to be compacted), both results, then the user goes on.
func toolConversation() []*pb.Message {
	return []*pb.Message{
		{Role: "system", Content: "be brief"},
		{Role: "user", Content: "weather in Paris and Rome?"},
		{Role: "assistant", Content: "Checking.", ToolCalls: []*pb.ToolCall{
			{Id: "call_1", Name: "get_weather", Arguments: `{ "city" : "Paris" }`},
			{Id: "call_2", Name: "get_weather", Arguments: `{"city":"Rome"}`},
		}},
		{Role: "tool", ToolCallId: "call_1", Content: "18C"},
		{Role: "tool", ToolCallId: "call_2", Content: "21C"},
		{Role: "user", Content: "and tomorrow?"},
		{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "call_3", Name: "now", Arguments: ""}}},
		{Role: "tool", ToolCallId: "call_3", Content: "Monday"},
	}
}

func TestToolRequestTranslation(t *testing.T) {
	p, stub := setup(t, nil)
	req := &pb.ChatRequest{Model: "claude-test", Messages: toolConversation(), Tools: weatherTools(), ToolChoice: "auto", ParallelToolCalls: ptrTo(false)}
	body, err := p.state().messagesBody(req, false)
	if err != nil {
		t.Fatal(err)
	}
	want := literal(t, `{
		"model": "claude-test", "max_tokens": 4096, "system": "be brief",
		"messages": [
			{"role": "user", "content": "weather in Paris and Rome?"},
			{"role": "assistant", "content": [
				{"type": "text", "text": "Checking."},
				{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
				{"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}}]},
			{"role": "user", "content": [
				{"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
				{"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
				{"type": "text", "text": "and tomorrow?"}]},
			{"role": "assistant", "content": [{"type": "tool_use", "id": "call_3", "name": "now", "input": {}}]},
			{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_3", "content": "Monday"}]}
		],
		"tools": [
			{"name": "get_weather", "description": "Current weather in a city", "input_schema": `+weatherSchema+`},
			{"name": "now", "input_schema": {"type": "object", "properties": {}}}
		],
		"tool_choice": {"type": "auto", "disable_parallel_tool_use": true}
	}`)
	if got := asJSON(t, body); !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("request body:\n%s", g)
	}
	// The stub refuses what the real API refuses: it takes this one.
	resp, err := p.Chat(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "tool said: Monday" || resp.GetFinishReason() != "stop" || len(resp.GetToolCalls()) != 0 {
		t.Fatalf("answer to the results: %v", resp)
	}
	// The results followed by the user's text, answered in one turn.
	req.Messages = toolConversation()[:6]
	if resp, err = p.Chat(context.Background(), req); err != nil || resp.GetContent() != "tool said: 18C; 21C (and you said: and tomorrow?)" {
		t.Fatalf("answer to the results: %v %v", resp, err)
	}
	if n := len(stub.LastRequest("/v1/messages", "claude-test")["messages"].([]any)); n != 3 {
		t.Fatalf("%d turns sent, want 3", n)
	}
	// Call ids from other upstreams are made acceptable to Anthropic, the
	// same way in the call and in its result; blank text before the
	// calls is left out (Anthropic refuses blank text blocks).
	req.Messages = []*pb.Message{{Role: "user", Content: "time?"},
		{Role: "assistant", Content: "\n\n", ToolCalls: []*pb.ToolCall{{Id: "functions.now:0", Name: "now", Arguments: "{}"}, {Id: "functions.now:1", Name: "now", Arguments: "{}"}}},
		{Role: "tool", ToolCallId: "functions.now:1", Content: "Tuesday"}, {Role: "tool", ToolCallId: "functions.now:0", Content: "Monday"}}
	if resp, err = p.Chat(context.Background(), req); err != nil || resp.GetContent() != "tool said: Tuesday; Monday" {
		t.Fatalf("foreign call ids: %v %v", resp, err)
	}
	sent := stub.LastRequest("/v1/messages", "claude-test")["messages"].([]any)
	uses, results := sent[1].(map[string]any)["content"].([]any), sent[2].(map[string]any)["content"].([]any)
	id0, id1 := uses[0].(map[string]any)["id"].(string), uses[1].(map[string]any)["id"].(string)
	if len(uses) != 2 || !strings.HasPrefix(id0, "functions_now_0_") || id0 == id1 || results[1].(map[string]any)["tool_use_id"] != id0 || results[0].(map[string]any)["tool_use_id"] != id1 {
		t.Fatalf("foreign call ids sent as %v / %v", uses, results)
	}
	// Plain text turns are still sent as string content, merged.
	body, err = p.state().messagesBody(&pb.ChatRequest{Model: "m", Messages: []*pb.Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}}, false)
	if err != nil || !reflect.DeepEqual(asJSON(t, body["messages"]), literal(t, `[{"role":"user","content":"a\n\nb"}]`)) || body["tools"] != nil || body["tool_choice"] != nil {
		t.Fatalf("plain request: %v %v", body, err)
	}
}

func TestToolChoice(t *testing.T) {
	p, stub := setup(t, nil)
	for _, tc := range []struct {
		choice, function string
		parallel         *bool
		want             string // the tool_choice sent; "" for none
	}{
		{"", "", nil, ``},
		{"", "", ptrTo(true), ``},
		{"", "", ptrTo(false), `{"type":"auto","disable_parallel_tool_use":true}`},
		{"auto", "", nil, `{"type":"auto"}`},
		{"required", "", nil, `{"type":"any"}`},
		{"required", "", ptrTo(false), `{"type":"any","disable_parallel_tool_use":true}`},
		{"function", "now", nil, `{"type":"tool","name":"now"}`},
		{"function", "now", ptrTo(false), `{"type":"tool","name":"now","disable_parallel_tool_use":true}`},
		{"none", "", nil, `{"type":"none"}`},
		{"none", "", ptrTo(false), `{"type":"none"}`},
	} {
		req := &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{{Role: "user", Content: "hi"}}, Tools: weatherTools(),
			ToolChoice: tc.choice, ToolChoiceFunction: tc.function, ParallelToolCalls: tc.parallel}
		if _, err := p.Chat(context.Background(), req); err != nil {
			t.Errorf("%+v: %v", tc, err)
			continue
		}
		got, sent := stub.LastRequest("/v1/messages", "claude-test")["tool_choice"]
		switch {
		case tc.want == "" && sent:
			t.Errorf("%+v: tool_choice %v sent, want none", tc, got)
		case tc.want != "" && !reflect.DeepEqual(got, literal(t, tc.want)):
			t.Errorf("%+v: tool_choice %v, want %s", tc, got, tc.want)
		}
	}
	// Without tools, auto and none say nothing, parallel_tool_calls too.
	for _, choice := range []string{"", "auto", "none"} {
		body, err := p.state().messagesBody(&pb.ChatRequest{Model: "m", Messages: []*pb.Message{{Role: "user", Content: "hi"}}, ToolChoice: choice, ParallelToolCalls: ptrTo(false)}, false)
		if err != nil || body["tool_choice"] != nil || body["tools"] != nil {
			t.Errorf("tool_choice %q without tools: %v %v", choice, body, err)
		}
	}
}

func TestToolRequestErrors(t *testing.T) {
	user := &pb.Message{Role: "user", Content: "hi"}
	call := func(id, name, args string) *pb.Message {
		return &pb.Message{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: id, Name: name, Arguments: args}}}
	}
	result := func(id string) *pb.Message { return &pb.Message{Role: "tool", ToolCallId: id, Content: "ok"} }
	for _, tc := range []struct {
		name     string
		req      *pb.ChatRequest
		field    string
		contains string
	}{
		{"parameters an array", &pb.ChatRequest{Tools: []*pb.Tool{{Name: "f", Parameters: `[1]`}}}, "tools[0].parameters", `tool "f" must be a JSON object`},
		{"parameters not JSON", &pb.ChatRequest{Tools: []*pb.Tool{{Name: "ok"}, {Name: "g", Parameters: `{`}}}, "tools[1].parameters", `tool "g" are not valid JSON`},
		{"parameters of type string", &pb.ChatRequest{Tools: []*pb.Tool{{Name: "f", Parameters: `{"type":"string"}`}}}, "tools[0].parameters", "of type object"},
		{"tool without a name", &pb.ChatRequest{Tools: []*pb.Tool{{Description: "x"}}}, "tools[0].name", "needs a name"},
		{"tool twice", &pb.ChatRequest{Tools: []*pb.Tool{{Name: "f"}, {Name: "f"}}}, "tools[1].name", `"f" is defined twice`},
		{"forced tool unknown", &pb.ChatRequest{Tools: weatherTools(), ToolChoice: "function", ToolChoiceFunction: "nope"}, "tool_choice_function", `"nope"`},
		{"required without tools", &pb.ChatRequest{ToolChoice: "required"}, "tool_choice", "needs tools"},
		{"unknown tool_choice", &pb.ChatRequest{Tools: weatherTools(), ToolChoice: "sometimes"}, "tool_choice", `"sometimes"`},
		{"arguments an array", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `[1,2]`), result("c1")}},
			"messages[1].tool_calls[0].arguments", `call of "now" in message 1 are JSON but not an object`},
		{"arguments not JSON", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{"a":`), result("c1")}},
			"messages[1].tool_calls[0].arguments", "in message 1 are not valid JSON"},
		{"call without id", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("", "now", `{}`)}}, "messages[1].tool_calls[0]", "an id and a name"},
		{"tool message without id", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`), result("")}}, "messages[2].tool_call_id", "needs the tool_call_id"},
		{"result for another call", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`), result("c2")}}, "messages[2].tool_call_id", `"c2" does not answer`},
		{"result twice", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`), result("c1"), result("c1")}}, "messages[3].tool_call_id", `"c1" does not answer`},
		{"result after a user message", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`), result("c1"), user, result("c1")}}, "messages[4].tool_call_id", `"c1" does not answer`},
		{"result without a call", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, result("c1")}}, "messages[1].tool_call_id", `"c1" does not answer`},
		{"call left unanswered", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`), user}}, "messages[1].tool_calls", `"c1" has no tool message`},
		{"last call unanswered", &pb.ChatRequest{Tools: weatherTools(), Messages: []*pb.Message{user, call("c1", "now", `{}`)}}, "messages[1].tool_calls", `"c1" has no tool message`},
		{"tool calls without tools", &pb.ChatRequest{Messages: []*pb.Message{user, call("c1", "now", `{}`), result("c1")}}, "tools", "only with the tools defined"},
		{"unknown role", &pb.ChatRequest{Messages: []*pb.Message{{Role: "function", Content: "x"}}}, "messages[0].role", "not system, user, assistant or tool"},
	} {
		tc.req.Model = "claude-test"
		if tc.req.Messages == nil {
			tc.req.Messages = []*pb.Message{user}
		}
		_, err := newProvider().state().messagesBody(tc.req, false)
		var se *sdk.Error
		if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != tc.field || !strings.Contains(se.Message, tc.contains) {
			t.Errorf("%s: got %v, want invalid_request (%s) containing %q", tc.name, err, tc.field, tc.contains)
		}
	}
}

// canned is an upstream that answers every Messages call with body.
func canned(t *testing.T, contentType, body string) *provider {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	p := newProvider()
	if errs := p.Configure(map[string]any{"base_url": srv.URL, "timeout": "2s"}); len(errs) > 0 {
		t.Fatal(errs)
	}
	return p
}

func toolReq() *pb.ChatRequest {
	return &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{{Role: "user", Content: "weather in Paris?"}}, Tools: weatherTools()}
}

func TestToolResponseTranslation(t *testing.T) {
	// Text around the calls is concatenated; a thinking block is not
	// content; input comes out as compact JSON, none as {}.
	p := canned(t, "application/json", `{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
		"content":[
			{"type":"thinking","thinking":"hmm","signature":"s"},
			{"type":"text","text":"Let me check. "},
			{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{ "city" : "Paris", "units": ["c", 1] }},
			{"type":"text","text":"And the time."},
			{"type":"tool_use","id":"toolu_02","name":"now","input":{}}],
		"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":20}}`)
	resp, err := p.Chat(context.Background(), toolReq())
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.ToolCall{{Id: "toolu_01", Name: "get_weather", Arguments: `{"city":"Paris","units":["c",1]}`}, {Id: "toolu_02", Name: "now", Arguments: `{}`}}
	if resp.GetContent() != "Let me check. And the time." || resp.GetFinishReason() != "tool_calls" || len(resp.GetToolCalls()) != 2 ||
		!protoEqual(resp.GetToolCalls()[0], want[0]) || !protoEqual(resp.GetToolCalls()[1], want[1]) {
		t.Fatalf("response: %v", resp)
	}
}

func protoEqual(a, b *pb.ToolCall) bool {
	return a.GetId() == b.GetId() && a.GetName() == b.GetName() && a.GetArguments() == b.GetArguments()
}

// sse is a Messages event stream of the given data lines.
func sse(events ...string) string {
	var b strings.Builder
	for _, e := range events {
		var head struct {
			Type string `json:"type"`
		}
		_ = json.Unmarshal([]byte(e), &head)
		b.WriteString("event: " + head.Type + "\ndata: " + e + "\n\n")
	}
	return b.String()
}

// collected is what a stream said, call by call.
type collected struct {
	text   string
	finish string
	ids    map[int32]string
	names  map[int32]string
	args   map[int32]string
	deltas []*pb.ToolCallDelta
	// The reasoning: its pieces joined and how many events, the thinking
	// blocks and in how many events, and whether any came after text or
	// a tool call.
	reasoning                    string
	reasoningEvents, blockEvents int
	blocks                       []*pb.ThinkingBlock
	blocksAfterText              bool
}

func collect(t *testing.T, p *provider, req *pb.ChatRequest) (collected, error) {
	t.Helper()
	c := collected{ids: map[int32]string{}, names: map[int32]string{}, args: map[int32]string{}}
	err := p.ChatStream(context.Background(), req, func(ev *pb.ChatEvent) error {
		c.text += ev.GetDelta()
		if r := ev.GetReasoningContent(); r != "" {
			c.reasoning += r
			c.reasoningEvents++
		}
		if len(ev.GetThinkingBlocks()) > 0 {
			c.blocks = append(c.blocks, ev.GetThinkingBlocks()...)
			c.blockEvents++
			c.blocksAfterText = c.blocksAfterText || c.text != "" || len(c.deltas) > 0
		}
		if ev.GetFinishReason() != "" {
			c.finish = ev.GetFinishReason()
		}
		for _, d := range ev.GetToolCalls() {
			c.deltas = append(c.deltas, d)
			if d.GetId() != "" {
				c.ids[d.GetIndex()], c.names[d.GetIndex()] = d.GetId(), d.GetName()
			}
			c.args[d.GetIndex()] += d.GetArguments()
		}
		return nil
	})
	return c, err
}

func TestToolStreamTranslation(t *testing.T) {
	// A text block (Anthropic index 0), a call whose arguments come in
	// fragments after an empty one (index 1), a call without any delta
	// (index 2) and one with only an empty delta (index 3): the calls are
	// numbered 0, 1, 2 and the argument-less ones say {}.
	p := canned(t, "text/event-stream", sse(
		`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"ping"}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me check."}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": \"Pa"}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"ris\"}"}}`,
		`{"type":"content_block_stop","index":1}`,
		`{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_02","name":"now","input":{}}}`,
		`{"type":"content_block_stop","index":2}`,
		`{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_03","name":"now","input":{}}}`,
		`{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":""}}`,
		`{"type":"content_block_stop","index":3}`,
		`{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":30}}`,
		`{"type":"message_stop"}`,
	))
	c, err := collect(t, p, toolReq())
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.ToolCallDelta{
		{Index: 0, Id: "toolu_01", Name: "get_weather"},
		{Index: 0, Arguments: `{"city": "Pa`},
		{Index: 0, Arguments: `ris"}`},
		{Index: 1, Id: "toolu_02", Name: "now"},
		{Index: 1, Arguments: `{}`},
		{Index: 2, Id: "toolu_03", Name: "now"},
		{Index: 2, Arguments: `{}`},
	}
	if len(c.deltas) != len(want) {
		t.Fatalf("tool call deltas: %v", c.deltas)
	}
	for i, d := range c.deltas {
		w := want[i]
		if d.GetIndex() != w.GetIndex() || d.GetId() != w.GetId() || d.GetName() != w.GetName() || d.GetArguments() != w.GetArguments() {
			t.Errorf("delta %d = %v, want %v", i, d, w)
		}
	}
	if c.text != "Let me check." || c.finish != "tool_calls" {
		t.Fatalf("text %q, finish %q", c.text, c.finish)
	}

	// A block that is not a tool_use (a server tool's) is not passed on,
	// nor its input_json_delta; a text block after it is.
	p = canned(t, "text/event-stream", sse(
		`{"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"query\":\"x\"}"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"found"}}`,
		`{"type":"content_block_stop","index":1}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`,
		`{"type":"message_stop"}`,
	))
	if c, err := collect(t, p, toolReq()); err != nil || len(c.deltas) != 0 || c.text != "found" || c.finish != "stop" {
		t.Fatalf("server tool block: %+v %v", c, err)
	}
}

// TestToolsAgainstStub runs tool calls through the stub, whole and
// streamed, and checks both agree.
func TestToolsAgainstStub(t *testing.T) {
	p, stub := setup(t, nil)
	ctx := context.Background()

	// auto: a short text, then one call of the first tool.
	resp, err := p.Chat(ctx, toolReq())
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetContent() != "Let me call get_weather." || resp.GetFinishReason() != "tool_calls" || len(resp.GetToolCalls()) != 1 ||
		!protoEqual(resp.GetToolCalls()[0], &pb.ToolCall{Id: "toolu_stub_0_0", Name: "get_weather", Arguments: `{"city":"weather in Paris?"}`}) {
		t.Fatalf("auto: %v", resp)
	}
	// A forced tool without parameters: no text, arguments {}.
	req := toolReq()
	req.ToolChoice, req.ToolChoiceFunction = "function", "now"
	if resp, err = p.Chat(ctx, req); err != nil || resp.GetContent() != "" || len(resp.GetToolCalls()) != 1 ||
		!protoEqual(resp.GetToolCalls()[0], &pb.ToolCall{Id: "toolu_stub_0_0", Name: "now", Arguments: `{}`}) {
		t.Fatalf("forced: %v %v", resp, err)
	}
	c, err := collect(t, p, req)
	if err != nil || c.text != "" || c.finish != "tool_calls" || len(c.ids) != 1 || c.names[0] != "now" || c.args[0] != "{}" {
		t.Fatalf("forced, streamed: %+v %v", c, err)
	}
	// none: the model answers in text.
	req.ToolChoice = "none"
	if resp, err = p.Chat(ctx, req); err != nil || resp.GetContent() != "echo: weather in Paris?" || resp.GetFinishReason() != "stop" || len(resp.GetToolCalls()) != 0 {
		t.Fatalf("none: %v %v", resp, err)
	}

	// Parallel calls, whole and streamed, then the same with parallel
	// use disabled.
	stub.ParallelToolUse = true
	req = toolReq()
	whole, err := p.Chat(ctx, req)
	if err != nil || len(whole.GetToolCalls()) != 2 {
		t.Fatalf("parallel: %v %v", whole, err)
	}
	c, err = collect(t, p, req)
	if err != nil || c.text != whole.GetContent() || c.finish != "tool_calls" || len(c.ids) != 2 {
		t.Fatalf("parallel, streamed: %+v %v", c, err)
	}
	for i, tc := range whole.GetToolCalls() {
		if c.ids[int32(i)] != tc.GetId() || c.names[int32(i)] != tc.GetName() || c.args[int32(i)] != tc.GetArguments() {
			t.Errorf("streamed call %d = %s %s %s, whole %v", i, c.ids[int32(i)], c.names[int32(i)], c.args[int32(i)], tc)
		}
	}
	if len(c.deltas) < 5 { // two starts, fragments of the arguments, {} for now
		t.Errorf("arguments not streamed in fragments: %v", c.deltas)
	}
	req.ParallelToolCalls = ptrTo(false)
	if resp, err = p.Chat(ctx, req); err != nil || len(resp.GetToolCalls()) != 1 {
		t.Fatalf("parallel disabled: %v %v", resp, err)
	}

	// The round completes: the calls and their results go back.
	msgs := append(req.GetMessages(), &pb.Message{Role: "assistant", Content: whole.GetContent(), ToolCalls: whole.GetToolCalls()})
	for i, tc := range whole.GetToolCalls() {
		msgs = append(msgs, &pb.Message{Role: "tool", ToolCallId: tc.GetId(), Content: []string{"18C", "Monday"}[i]})
	}
	req = &pb.ChatRequest{Model: "claude-test", Messages: msgs, Tools: weatherTools()}
	c, err = collect(t, p, req)
	if err != nil || c.text != "tool said: 18C; Monday" || c.finish != "stop" || len(c.deltas) != 0 {
		t.Fatalf("after the results: %+v %v", c, err)
	}
}
