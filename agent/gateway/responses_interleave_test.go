package gateway

import (
	"encoding/json"
	"strconv"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestResponsesStreamInterleavedCalls: an upstream that streams parallel
// tool calls interleaved (every call's id and name first, then their
// argument fragments in turns, or the whole calls in one chunk) must not
// have a call closed before its arguments are in. Each function_call's
// function_call_arguments.done and output_item.done carry its whole
// arguments (the Vercel AI SDK and the OpenAI SDKs take the call from
// output_item.done), and no argument delta comes after its item is done.
func TestResponsesStreamInterleavedCalls(t *testing.T) {
	const tools = `"tools":[{"type":"function","name":"a","parameters":{"type":"object"},"strict":false},{"type":"function","name":"b","parameters":{"type":"object"},"strict":false}]`
	for _, c := range []struct {
		name   string
		events []*pb.ChatEvent
	}{
		{"headers first, then fragments in turns", []*pb.ChatEvent{
			{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "call_a", Name: "a"}}},
			{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Id: "call_b", Name: "b"}}},
			{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Arguments: `{"q":`}}},
			{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Arguments: `{"r":`}}},
			{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Arguments: `1}`}}},
			{ToolCalls: []*pb.ToolCallDelta{{Index: 1, Arguments: `2}`}}},
			{FinishReason: "tool_calls"},
		}},
		{"both calls in one event", []*pb.ChatEvent{
			{ToolCalls: []*pb.ToolCallDelta{{Index: 0, Id: "call_a", Name: "a", Arguments: `{"q":1}`}, {Index: 1, Id: "call_b", Name: "b", Arguments: `{"r":2}`}}},
			{FinishReason: "tool_calls"},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := storeHarness(t)
			h.g.providers = eventsFleet{ProviderClient: h.a, events: c.events}
			w := h.responsesAs(t, "app", `{"model":"single","stream":true,"input":"x",`+tools+`}`)
			evs := readEvents(t, w.Body.String())
			want := map[float64]string{0: `{"q":1}`, 1: `{"r":2}`}
			done := map[float64]bool{}
			for _, e := range evs {
				idx, _ := e.data["output_index"].(float64)
				switch e.name {
				case "response.function_call_arguments.delta":
					if done[idx] {
						t.Fatalf("an argument delta for output %v after its item was done: %s", idx, eventNames(evs))
					}
				case "response.function_call_arguments.done":
					if e.data["arguments"] != want[idx] {
						t.Fatalf("function_call_arguments.done of output %v: %v, want %s", idx, e.data["arguments"], want[idx])
					}
				case "response.output_item.done":
					done[idx] = true
					if got := e.data["item"].(map[string]any)["arguments"]; got != want[idx] {
						t.Fatalf("output_item.done of output %v: arguments %v, want %s", idx, got, want[idx])
					}
				}
			}
			if len(done) != 2 {
				t.Fatalf("items done: %v: %s", done, eventNames(evs))
			}
			out := streamed(t, w)["output"].([]any)
			if len(out) != 2 || out[0].(map[string]any)["arguments"] != want[0] || out[1].(map[string]any)["arguments"] != want[1] ||
				out[0].(map[string]any)["call_id"] != "call_a" || out[1].(map[string]any)["call_id"] != "call_b" {
				t.Fatalf("output %v", out)
			}
		})
	}
}

// TestResponsesMaxToolCalls: max_tool_calls caps OpenAI's built-in tool
// calls (web search, file search, ...), which the gateway does not serve,
// so it is accepted with no effect, as OpenAI takes it with function tools
// only (the Vercel AI SDK sends it for providerOptions.openai.maxToolCalls),
// and echoed in the Response; a value that is not a non-negative integer
// is a 400 naming it.
func TestResponsesMaxToolCalls(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, stream := range []bool{false, true} {
		body := `{"model":"single","input":"x","max_tool_calls":3,"stream":` + strconv.FormatBool(stream) + `}`
		w := h.responses(t, body)
		if w.Code != 200 {
			t.Fatalf("stream %v: %d %s", stream, w.Code, w.Body)
		}
		var r map[string]any
		if stream {
			r = streamed(t, w)
		} else if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r["max_tool_calls"] != float64(3) {
			t.Fatalf("stream %v: max_tool_calls echoed as %v", stream, r["max_tool_calls"])
		}
	}
	var r map[string]any
	w := h.responses(t, `{"model":"single","input":"x"}`)
	if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if v, ok := r["max_tool_calls"]; !ok || v != nil {
		t.Fatalf("max_tool_calls without one: %v %v", v, ok)
	}
	for _, bad := range []string{`-1`, `1.5`, `"3"`, `true`} {
		w := h.responses(t, `{"model":"single","input":"x","max_tool_calls":`+bad+`}`)
		if e := errBody(t, w); w.Code != 400 || e.Param == nil || *e.Param != "max_tool_calls" {
			t.Fatalf("max_tool_calls %s: %d %+v", bad, w.Code, e)
		}
	}
}
