package gateway

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigilml/vigil/agent/gateway/tokens"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

const weatherTools = `,"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather of a city","parameters":{"type": "object", "properties": {"city": {"type": "string"}}},"strict":true}},{"type":"function","function":{"name":"get_time"}}]`

// history is a conversation where the assistant called get_weather and
// the tool answered.
const history = `[{"role":"user","content":"weather in Paris?"},` +
	`{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
	`{"role":"tool","tool_call_id":"call_1","content":"18 C"}]`

func TestToolRequestValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	many := make([]string, maxTools+1)
	for i := range many {
		many[i] = fmt.Sprintf(`{"type":"function","function":{"name":"f%d"}}`, i)
	}
	msgs := func(m string) string { return `{"model":"chain","messages":` + m + `}` }
	for _, tc := range []struct {
		body, param, says string
	}{
		{chatBody("chain", `,"tools":[{"type":"retrieval","function":{"name":"x"}}]`), "tools[0].type", `"function"`},
		{chatBody("chain", `,"tools":[{"type":"function"}]`), "tools[0].function", "required"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":"get weather"}}]`), "tools[0].function.name", "a-z, A-Z, 0-9, _ and -"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":""}}]`), "tools[0].function.name", "1 to 64"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":"`+strings.Repeat("a", 65)+`"}}]`), "tools[0].function.name", "1 to 64"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":"a","parameters":"object"}}]`), "tools[0].function.parameters", "JSON object"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":"a","parameters":[1]}}]`), "tools[0].function.parameters", "JSON object"},
		{chatBody("chain", `,"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"a"}}]`), "tools[1].function.name", "not unique"},
		{chatBody("chain", `,"tools":[`+strings.Join(many, ",")+`]`), "tools", "at most 128"},
		{chatBody("chain", weatherTools+`,"tool_choice":"sometimes"`), "tool_choice", `"required"`},
		{chatBody("chain", weatherTools+`,"tool_choice":{"type":"function","function":{"name":"get_news"}}`), "tool_choice.function.name", "not one of the request's tools"},
		{chatBody("chain", weatherTools+`,"tool_choice":{"type":"function"}`), "tool_choice.function.name", "required"},
		{chatBody("chain", weatherTools+`,"tool_choice":{"type":"code","function":{"name":"get_time"}}`), "tool_choice.type", `"function"`},
		{chatBody("chain", `,"tool_choice":"auto"`), "tool_choice", "only allowed when tools are specified"},
		{chatBody("chain", `,"parallel_tool_calls":false`), "parallel_tool_calls", "only allowed when tools are specified"},
		{chatBody("chain", `,"functions":[{"name":"f"}]`), "functions", "send tools"},
		{chatBody("chain", `,"function_call":"auto"`), "function_call", "send tool_choice"},
		{msgs(`[{"role":"function","name":"f","content":"x"}]`), "messages[0].role", `role "tool"`},
		{msgs(`[{"role":"user","content":"x"},{"role":"tool","content":"x"}]`), "messages[1].tool_call_id", "required"},
		{msgs(`[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_1","content":"x"}]`), "messages[1].role", "must answer a tool call"},
		{msgs(strings.Replace(history, `"tool_call_id":"call_1"`, `"tool_call_id":"call_2"`, 1)), "messages[2].tool_call_id", `"call_2" is not the id`},
		{msgs(strings.Replace(history, `"id":"call_1",`, ``, 1)), "messages[1].tool_calls[0].id", "required"},
		{msgs(strings.Replace(history, `}}]},`, `}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},`, 1)), "messages[1].tool_calls", "these tool_call_ids have none: call_2"},
		{msgs(strings.Replace(history, `"content":"18 C"}]`, `"content":"18 C"},{"role":"tool","tool_call_id":"call_1","content":"again"}]`, 1)), "messages[3].tool_call_id", "answered already"},
		{msgs(strings.Replace(history, `,{"role":"tool","tool_call_id":"call_1","content":"18 C"}]`, `]`, 1)), "messages[1].tool_calls", "none: call_1"},
		{msgs(strings.Replace(history, `}}]},`, `}},{"id":"call_1","type":"function","function":{"name":"get_time","arguments":"{}"}}]},`, 1)), "messages[1].tool_calls", `the id "call_1" twice`},
		{msgs(strings.Replace(history, `"type":"function",`, `"type":"fn",`, 1)), "messages[1].tool_calls[0].type", `"function"`},
		{msgs(`[{"role":"user","content":"x","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}]}]`), "messages[0].tool_calls", "only allowed in assistant messages"},
		{msgs(`[{"role":"user","content":"x","tool_call_id":"c"}]`), "messages[0].tool_call_id", "only allowed in messages of role"},
		{msgs(`[{"role":"assistant","content":null,"function_call":{"name":"f","arguments":"{}"}}]`), "messages[0].function_call", "send tool_calls"},
	} {
		w := h.do(t, "/chat", tc.body)
		e := errBody(t, w)
		param := ""
		if e.Param != nil {
			param = *e.Param
		}
		if w.Code != 400 || param != tc.param || !strings.Contains(e.Message, tc.says) || e.Type != "invalid_request_error" {
			t.Errorf("%s:\n  %d param %q %q, want 400 %q saying %q", tc.body, w.Code, param, e.Message, tc.param, tc.says)
		}
	}
	if h.a.count("m1")+h.b.count("m2") != 0 {
		t.Fatal("a bad request reached an upstream")
	}
}

// TestToolRequestConversion: what a client sends reaches the provider in
// the contract's form, and a tool-call answer comes back in OpenAI's.
func TestToolRequestConversion(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_9", Name: "get_time", Arguments: `{"tz":"UTC"}`}}
	body := `{"model":"single","messages":` + history + weatherTools + `,"tool_choice":{"type":"function","function":{"name":"get_time"}},"parallel_tool_calls":false}`
	w := h.do(t, "/chat", body)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	got := h.a.last["solo"]
	want := []*pb.Tool{
		{Name: "get_weather", Description: "Weather of a city", Parameters: `{"type":"object","properties":{"city":{"type":"string"}}}`, Strict: true},
		{Name: "get_time"},
	}
	if len(got.GetTools()) != 2 || !protoEqual(got.GetTools()[0], want[0]) || !protoEqual(got.GetTools()[1], want[1]) {
		t.Fatalf("tools reached the provider as %v", got.GetTools())
	}
	if got.GetToolChoice() != "function" || got.GetToolChoiceFunction() != "get_time" || got.ParallelToolCalls == nil || *got.ParallelToolCalls {
		t.Fatalf("tool_choice %q %q, parallel %v", got.GetToolChoice(), got.GetToolChoiceFunction(), got.ParallelToolCalls)
	}
	m := got.GetMessages()
	if len(m) != 3 || m[1].GetRole() != "assistant" || m[1].GetContent() != "" || len(m[1].GetToolCalls()) != 1 ||
		!protoEqual(m[1].GetToolCalls()[0], &pb.ToolCall{Id: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}) ||
		m[2].GetRole() != "tool" || m[2].GetToolCallId() != "call_1" || m[2].GetContent() != "18 C" {
		t.Fatalf("messages reached the provider as %v", m)
	}
	var resp map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	choice := resp["choices"].([]any)[0].(map[string]any)
	msg := choice["message"].(map[string]any)
	wantCalls := []any{map[string]any{"id": "call_9", "type": "function", "function": map[string]any{"name": "get_time", "arguments": `{"tz":"UTC"}`}}}
	if c, ok := msg["content"]; !ok || c != nil || choice["finish_reason"] != "tool_calls" || !reflect.DeepEqual(msg["tool_calls"], wantCalls) {
		t.Fatalf("answer: %s", w.Body)
	}
	// An answer without tool calls has no tool_calls key and string
	// content, as before.
	w = h.do(t, "/chat", chatBody("chain", weatherTools))
	if strings.Contains(w.Body.String(), "tool_calls") || !strings.Contains(w.Body.String(), `"content":"hi from m1"`) {
		t.Fatalf("text answer: %s", w.Body)
	}
}

func protoEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// streamDeltas returns the delta objects of a stream's chunks and its
// finish reason.
func streamDeltas(t *testing.T, body string) ([]map[string]any, string) {
	t.Helper()
	var deltas []map[string]any
	finish := ""
	for _, ev := range readSSE(t, body) {
		if ev == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta        map[string]any
				FinishReason *string `json:"finish_reason"`
			}
		}
		if err := json.Unmarshal([]byte(ev), &c); err != nil {
			t.Fatalf("chunk %s: %v", ev, err)
		}
		for _, ch := range c.Choices {
			deltas = append(deltas, ch.Delta)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return deltas, finish
}

// checkToolStream checks that a stream carries the calls as OpenAI
// streams them: the role chunk with null content, then per call a chunk
// with index, id, type and name (arguments ""), then chunks with only the
// index and argument fragments, which add up to the arguments.
func checkToolStream(t *testing.T, body string, want []*pb.ToolCall) {
	t.Helper()
	deltas, finish := streamDeltas(t, body)
	if finish != "tool_calls" || len(deltas) < 2 {
		t.Fatalf("finish %q: %s", finish, body)
	}
	if c, ok := deltas[0]["content"]; deltas[0]["role"] != "assistant" || !ok || c != nil {
		t.Fatalf("first delta %v", deltas[0])
	}
	args := map[int]string{}
	opened := 0
	for _, d := range deltas[1:] {
		tcs, _ := d["tool_calls"].([]any)
		for _, x := range tcs {
			tc := x.(map[string]any)
			i := int(tc["index"].(float64))
			fn := tc["function"].(map[string]any)
			if id, ok := tc["id"]; ok {
				if i != opened || id != want[i].GetId() || tc["type"] != "function" || fn["name"] != want[i].GetName() || fn["arguments"] != "" {
					t.Fatalf("opening chunk of call %d: %v", opened, tc)
				}
				opened++
				continue
			}
			if _, ok := tc["type"]; ok || fn["name"] != nil || i >= opened {
				t.Fatalf("argument chunk with more than index and arguments, or before its call opened: %v", tc)
			}
			args[i] += fn["arguments"].(string)
		}
	}
	if opened != len(want) {
		t.Fatalf("%d calls opened, want %d: %s", opened, len(want), body)
	}
	for i, c := range want {
		if args[i] != c.GetArguments() {
			t.Fatalf("call %d arguments %q, want %q", i, args[i], c.GetArguments())
		}
	}
}

func TestToolCallStream(t *testing.T) {
	h := newHarness(t, testCfg())
	calls := []*pb.ToolCall{{Id: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`}, {Id: "call_b", Name: "get_time", Arguments: `{"tz":"Europe/Paris"}`}}
	h.a.toolCalls["m1"] = calls
	w := h.do(t, "/chat", chatBody("chain", weatherTools+`,"stream":true,"stream_options":{"include_usage":true}`))
	if w.Code != 200 || !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	checkToolStream(t, w.Body.String(), calls)
	if !strings.Contains(w.Body.String(), `"usage":{"prompt_tokens":2`) {
		t.Fatalf("no usage chunk: %s", w.Body)
	}
}

// TestToolAnswersCached: tools are part of the cache key, and a cached
// tool-call answer comes back whole and as a re-stream.
func TestToolAnswersCached(t *testing.T) {
	base := &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "hi"}}}
	variants := map[string]func(r *pb.ChatRequest){
		"tools":       func(r *pb.ChatRequest) { r.Tools = []*pb.Tool{{Name: "a"}} },
		"tool params": func(r *pb.ChatRequest) { r.Tools = []*pb.Tool{{Name: "a", Parameters: `{"type":"object"}`}} },
		"tool strict": func(r *pb.ChatRequest) { r.Tools = []*pb.Tool{{Name: "a", Strict: true}} },
		"tool desc":   func(r *pb.ChatRequest) { r.Tools = []*pb.Tool{{Name: "a", Description: "d"}} },
		"tool_choice": func(r *pb.ChatRequest) { r.Tools, r.ToolChoice = []*pb.Tool{{Name: "a"}}, "required" },
		"forced": func(r *pb.ChatRequest) {
			r.Tools, r.ToolChoice, r.ToolChoiceFunction = []*pb.Tool{{Name: "a"}}, "function", "a"
		},
		"parallel": func(r *pb.ChatRequest) { no := false; r.Tools, r.ParallelToolCalls = []*pb.Tool{{Name: "a"}}, &no },
		"assistant call": func(r *pb.ChatRequest) {
			r.Messages[0].ToolCalls = []*pb.ToolCall{{Id: "c", Name: "a", Arguments: "{}"}}
		},
		"tool_call_id": func(r *pb.ChatRequest) { r.Messages[0].ToolCallId = "c" },
	}
	keys := map[string]string{cacheKey("x", "", base): "none"}
	for name, change := range variants {
		r := &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "hi"}}}
		change(r)
		k := cacheKey("x", "", r)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same cache key", name, other)
		}
		keys[k] = name
		if cacheKey("x", "", r) != k {
			t.Errorf("%s: the key is not stable", name)
		}
	}

	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	calls := []*pb.ToolCall{{Id: "call_a", Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	h.a.toolCalls["solo"] = calls
	body := chatBody("single", weatherTools+`,"temperature":0`)
	w1 := h.doHeader(t, body, nil)
	w2 := h.doHeader(t, body, nil)
	if h.a.count("solo") != 1 || w2.Header().Get("x-vigil-cache") != "hit" || !strings.Contains(w2.Body.String(), `"tool_calls":[{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]`) ||
		!strings.Contains(w2.Body.String(), `"content":null`) || !strings.Contains(w2.Body.String(), `"finish_reason":"tool_calls"`) {
		t.Fatalf("calls %d; first %s\nsecond %v %s", h.a.count("solo"), w1.Body, w2.Header(), w2.Body)
	}
	// Without the tools, the same messages are another request.
	if w := h.doHeader(t, chatBody("single", `,"temperature":0`), nil); w.Header().Get("x-vigil-cache") != "miss" || h.a.count("solo") != 2 {
		t.Fatalf("a request without tools hit the tool answer: %v", w.Header())
	}
	// A stream of the cached request re-streams the calls.
	ws := h.doHeader(t, chatBody("single", weatherTools+`,"temperature":0,"stream":true`), nil)
	if ws.Header().Get("x-vigil-cache") != "hit" || h.a.count("solo") != 2 {
		t.Fatalf("stream: %v calls %d", ws.Header(), h.a.count("solo"))
	}
	checkToolStream(t, ws.Body.String(), calls)
	// A streamed tool-call answer is cached too, and comes back whole.
	h.b.toolCalls["big"] = calls
	streamBody := `{"model":"long","temperature":0,"stream":true,"messages":[{"role":"user","content":"s"}]` + weatherTools + `}`
	h.doHeader(t, streamBody, nil)
	w := h.doHeader(t, strings.Replace(streamBody, `"stream":true,`, "", 1), nil)
	if w.Header().Get("x-vigil-cache") != "hit" || !strings.Contains(w.Body.String(), `"id":"call_a"`) || h.b.count("big") != 1 {
		t.Fatalf("cached stream served whole: %v %s", w.Header(), w.Body)
	}
}

// TestToolCallSkipsOutputCheck: with a response_format, an answer that
// calls a tool (no content) is passed on, not failed or repaired.
func TestToolCallSkipsOutputCheck(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_a", Name: "get_time", Arguments: "{}"}}
	rf := `,"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object","required":["a"]}}}`
	w := h.do(t, "/chat", chatBody("single", weatherTools+rf))
	if w.Code != 200 || h.a.count("solo") != 1 || !strings.Contains(w.Body.String(), `"finish_reason":"tool_calls"`) {
		t.Fatalf("%d calls %d: %s", w.Code, h.a.count("solo"), w.Body)
	}
	w = h.do(t, "/chat", chatBody("single", weatherTools+rf+`,"stream":true`))
	if !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") || strings.Contains(w.Body.String(), "invalid_output") {
		t.Fatalf("stream: %s", w.Body)
	}
	for _, outcome := range []string{"valid", "invalid", "repaired"} {
		if n := testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", "response_format", outcome)); n != 0 {
			t.Errorf("%s validations = %v: a tool call is not checked", outcome, n)
		}
	}
}

// TestToolTokensCounted: tool definitions and assistant tool calls count
// in the pre-flight check (approximately) and in estimated usage.
func TestToolTokensCounted(t *testing.T) {
	tools := []*pb.Tool{{Name: "get_weather", Description: "Weather of a city", Parameters: `{"type":"object","properties":{"city":{"type":"string"}}}`}}
	n := toolsTokens(tokens.O200kBase, tools)
	want := toolsFraming + toolFraming + tokens.Count(tokens.O200kBase, "get_weather") + tokens.Count(tokens.O200kBase, "Weather of a city") +
		tokens.Count(tokens.O200kBase, tools[0].GetParameters())
	if n != want || n <= toolsFraming+toolFraming {
		t.Fatalf("toolsTokens = %d, want %d", n, want)
	}
	if toolsTokens(tokens.O200kBase, nil) != 0 {
		t.Fatal("no tools cost tokens")
	}
	call := &pb.Message{Role: "assistant", ToolCalls: []*pb.ToolCall{{Id: "call_1", Name: "get_weather", Arguments: `{"city":"Paris"}`}}}
	if got := messageTokens(tokens.O200kBase, call); got <= tokens.MessageTokens(tokens.O200kBase, tokens.Message{Role: "assistant"})+callFraming {
		t.Fatalf("an assistant tool call costs %d tokens", got)
	}
	if toolsBytes(tools) < n || messageToolBytes(call) < messageToolTokens(tokens.O200kBase, call) {
		t.Fatal("the byte bound is below the count")
	}
	// An answer's estimated completion counts its calls too.
	if got := answerText("ok", call.GetToolCalls()); got != "ok\nget_weather\n{\"city\":\"Paris\"}" || answerText("ok", nil) != "ok" {
		t.Fatalf("answerText = %q", got)
	}

	// A prompt that fits the 200-token window alone does not with a tool
	// whose definition is long.
	h := newHarness(t, contextCfg())
	prompt := `{"model":"strict","messages":` + msgJSON([2]string{"user", words(100)}) + `%s}`
	if w := h.do(t, "/chat", fmt.Sprintf(prompt, "")); w.Code != 200 {
		t.Fatalf("without tools: %d %s", w.Code, w.Body)
	}
	long := `,"tools":[{"type":"function","function":{"name":"f","description":"` + words(120) + `"}}]`
	w := h.do(t, "/chat", fmt.Sprintf(prompt, long))
	if e := errBody(t, w); w.Code != 400 || e.Code != "context_length_exceeded" || h.a.count("gpt-4o") != 1 {
		t.Fatalf("with a long tool: %d %s (calls %d)", w.Code, w.Body, h.a.count("gpt-4o"))
	}
}

// TestDropOldestKeepsToolPairs: truncation never leaves a tool message
// whose assistant tool call was dropped.
func TestDropOldestKeepsToolPairs(t *testing.T) {
	h := newHarness(t, contextCfg())
	msgs := `[{"role":"system","content":"s"},` +
		`{"role":"user","content":"` + words(40) + `"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},` +
		`{"role":"tool","tool_call_id":"c1","content":"` + words(40) + `"},` +
		`{"role":"assistant","content":"` + words(60) + `"},` +
		`{"role":"user","content":"` + words(60) + `"}]`
	w := h.do(t, "/chat", `{"model":"trim","messages":`+msgs+`}`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var roles []string
	for _, m := range h.a.last["gpt-4o-mini"].GetMessages() {
		roles = append(roles, m.GetRole())
	}
	if got := strings.Join(roles, ","); got != "system,user" {
		t.Fatalf("kept %s (dropped %s)", got, w.Header().Get("x-vigil-truncated"))
	}
}

// TestToolCallObservedAndPriced: a tool-call answer (no content), whole
// and streamed, is observed and priced like any answer, from the usage
// the upstream reported.
func TestToolCallObservedAndPriced(t *testing.T) {
	cfg := testCfg()
	cfg.Prices = map[string]Price{"solo": {Input: 1e6, Output: 1e6}} // 1 USD per token
	h := newHarness(t, cfg)
	svc := openObserve(t)
	h.g.RecordObservations(svc)
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_a", Name: "get_time", Arguments: `{"tz":"UTC"}`}}
	w := h.do(t, "/chat", chatBody("single", weatherTools))
	if w.Code != 200 || w.Header().Get("x-vigil-cost-usd") != "6.00000000" {
		t.Fatalf("%d cost %q: %s", w.Code, w.Header().Get("x-vigil-cost-usd"), w.Body)
	}
	if w := h.do(t, "/chat", chatBody("single", weatherTools+`,"stream":true`)); w.Code != 200 {
		t.Fatal(w.Code, w.Body)
	}
	if err := h.g.Close(); err != nil {
		t.Fatal(err)
	}
	obs := scan(t, svc, "llm:single")
	if len(obs) != 2 {
		t.Fatalf("%d observations: %+v", len(obs), obs)
	}
	whole, stream := obs[0], obs[1]
	if whole.Status != 200 || whole.Feature("completion_tokens").Num != 3 || whole.Feature("cost_usd").Num != 6 {
		t.Errorf("whole tool-call answer: %+v", whole)
	}
	if stream.Status != 200 || stream.Feature("completion_tokens").Num != 2 || stream.Feature("time_to_first_token_ms").IsNone() {
		t.Errorf("streamed tool-call answer: %+v", stream)
	}
	if got := testutil.ToFloat64(h.g.m.cost.WithLabelValues("single", "pa", "solo")); got != 10 {
		t.Errorf("vigil_llm_cost_usd_total = %v, want 6 + 4", got)
	}
}

// capFleet is a fleet whose plugins declare capabilities, as
// *pluginhost.Host reports them.
type capFleet struct {
	fleet
	caps map[string][]string
}

func (f capFleet) Capabilities(name string) ([]string, bool) {
	c, ok := f.caps[name]
	return c, ok
}

// TestToolsNeedTheCapability: a request with tools, or with tool calls in
// its history, skips a target whose plugin does not declare "tools" (it
// would drop them silently) and goes to the next; with no such target it
// fails naming the provider. Requests without tools are not affected, nor
// plugins whose capabilities are not known.
func TestToolsNeedTheCapability(t *testing.T) {
	h := newHarness(t, testCfg())
	f := capFleet{fleet{"pa": h.a, "pb": h.b}, map[string][]string{"pa": {"chat", "stream"}, "pb": {"chat", "stream", ToolsCapability}}}
	h.g.providers = f

	for _, stream := range []string{"", `,"stream":true`} {
		w := h.do(t, "/chat", chatBody("chain", weatherTools+stream))
		if w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" {
			t.Fatalf("tools%s on chain (pa without tools, then pb): %d %s %s", stream, w.Code, w.Header().Get("x-vigil-provider"), w.Body)
		}
		w = h.do(t, "/chat", `{"model":"chain","messages":`+history+stream+`}`)
		if w.Code != 200 || w.Header().Get("x-vigil-provider") != "pb" {
			t.Fatalf("tool history%s on chain: %d %s %s", stream, w.Code, w.Header().Get("x-vigil-provider"), w.Body)
		}
		w = h.do(t, "/chat", chatBody("single", weatherTools+stream))
		if e := errBody(t, w); w.Code != 400 || e.Code != "unsupported" || !strings.Contains(e.Message, `provider pa does not support tool calls`) {
			t.Fatalf("tools%s on single (pa only): %d %s", stream, w.Code, w.Body)
		}
	}
	if n := h.a.calls["solo"]; n != 0 {
		t.Fatalf("pa was called %d times with tools", n)
	}
	if w := h.do(t, "/chat", chatBody("single", "")); w.Code != 200 {
		t.Fatalf("no tools on single: %d %s", w.Code, w.Body)
	}
	delete(f.caps, "pa") // not started yet: not known, not refused
	if w := h.do(t, "/chat", chatBody("single", weatherTools)); w.Code != 200 {
		t.Fatalf("tools on single with pa's capabilities unknown: %d %s", w.Code, w.Body)
	}
}

// TestStrictToolArguments: calls to a strict tool are checked against its
// parameters schema; a failing call gets one repair request that answers
// every call of the turn (an error for the bad one), then the answer is
// returned or refused as invalid_output. Calls to tools that are not strict
// are passed on as they come.
func TestStrictToolArguments(t *testing.T) {
	validations := func(h *harness, outcome string) float64 {
		return testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", "tool_arguments", outcome))
	}
	good := []*pb.ToolCall{{Id: "call_w", Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	badParallel := []*pb.ToolCall{{Id: "call_w", Name: "get_weather", Arguments: `{"city":7}`}, {Id: "call_t", Name: "get_time", Arguments: `{}`}}

	t.Run("valid", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.toolCalls["solo"] = good
		w := h.do(t, "/chat", chatBody("single", weatherTools))
		if w.Code != 200 || h.a.count("solo") != 1 || validations(h, "valid") != 1 {
			t.Fatalf("%d calls %d valid %v: %s", w.Code, h.a.count("solo"), validations(h, "valid"), w.Body)
		}
	})
	t.Run("repaired", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.toolCallQueue["solo"] = [][]*pb.ToolCall{badParallel}
		h.a.toolCalls["solo"] = good
		w := h.do(t, "/chat", chatBody("single", weatherTools))
		if w.Code != 200 || h.a.count("solo") != 2 || validations(h, "repaired") != 1 || !strings.Contains(w.Body.String(), `"arguments":"{\"city\":\"Paris\"}"`) {
			t.Fatalf("%d calls %d repaired %v: %s", w.Code, h.a.count("solo"), validations(h, "repaired"), w.Body)
		}
		if w.Header().Get("x-vigil-attempts") != "2" {
			t.Errorf("attempts %q, want 2", w.Header().Get("x-vigil-attempts"))
		}
		// The repair request carries the rejected turn and answers each
		// of its calls, so that the conversation is one OpenAI accepts.
		msgs := h.a.last["solo"].GetMessages()
		if len(msgs) != 4 {
			t.Fatalf("repair request has %d messages: %v", len(msgs), msgs)
		}
		asst, errMsg, notRun := msgs[1], msgs[2], msgs[3]
		if asst.GetRole() != "assistant" || len(asst.GetToolCalls()) != 2 || asst.GetToolCalls()[0].GetArguments() != `{"city":7}` {
			t.Errorf("assistant turn %v", asst)
		}
		if errMsg.GetRole() != "tool" || errMsg.GetToolCallId() != "call_w" || !strings.Contains(errMsg.GetContent(), "Error, not run: the arguments of get_weather do not match the schema") ||
			!strings.Contains(errMsg.GetContent(), "/city") {
			t.Errorf("error for the bad call: %v", errMsg)
		}
		if notRun.GetRole() != "tool" || notRun.GetToolCallId() != "call_t" || !strings.HasPrefix(notRun.GetContent(), "Not run") {
			t.Errorf("answer for the good call: %v", notRun)
		}
		if err := checkToolMessages(msgs); err != nil {
			t.Errorf("the repair conversation breaks the tool-message rules: %v", err)
		}
	})
	t.Run("invalid twice", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_w", Name: "get_weather", Arguments: `{"city":`}}
		w := h.do(t, "/chat", chatBody("single", weatherTools))
		e := errBody(t, w)
		if w.Code != 502 || e.Code != "invalid_output" || h.a.count("solo") != 2 || validations(h, "invalid") != 1 ||
			!strings.Contains(e.Message, "the parameters schema of a strict tool") || !strings.Contains(e.Message, "tool call 0: the arguments of get_weather are not valid JSON") {
			t.Fatalf("%d calls %d invalid %v: %+v", w.Code, h.a.count("solo"), validations(h, "invalid"), e)
		}
	})
	t.Run("not strict", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_t", Name: "get_time", Arguments: `not json`}}
		w := h.do(t, "/chat", chatBody("single", weatherTools))
		if w.Code != 200 || h.a.count("solo") != 1 || validations(h, "valid")+validations(h, "invalid")+validations(h, "repaired") != 0 {
			t.Fatalf("%d calls %d: %s", w.Code, h.a.count("solo"), w.Body)
		}
	})
	t.Run("stream", func(t *testing.T) {
		h := newHarness(t, testCfg())
		h.a.toolCalls["solo"] = badParallel
		w := h.do(t, "/chat", chatBody("single", weatherTools+`,"stream":true`))
		body := w.Body.String()
		if strings.Contains(body, "[DONE]") || !strings.Contains(body, `"code":"invalid_output"`) || !strings.Contains(body, "fails the parameters schema of a strict tool") ||
			h.a.count("solo") != 1 || validations(h, "invalid") != 1 {
			t.Fatalf("calls %d: %s", h.a.count("solo"), body)
		}
		h.a.toolCalls["solo"] = good
		if w := h.do(t, "/chat", chatBody("single", weatherTools+`,"stream":true`)); !strings.HasSuffix(w.Body.String(), "data: [DONE]\n\n") || validations(h, "valid") != 1 {
			t.Fatalf("valid stream: %s", w.Body)
		}
	})
	t.Run("schema that does not compile", func(t *testing.T) {
		h := newHarness(t, testCfg())
		tools := `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"type":12}}},"strict":true}}]`
		w := h.do(t, "/chat", chatBody("single", tools))
		e := errBody(t, w)
		if w.Code != 400 || e.Param == nil || *e.Param != "tools[0].function.parameters" || h.a.count("solo") != 0 {
			t.Fatalf("%d %+v", w.Code, e)
		}
		// The same schema on a tool that is not strict is passed on.
		if w := h.do(t, "/chat", chatBody("single", strings.Replace(tools, `"strict":true`, `"strict":false`, 1))); w.Code != 200 {
			t.Fatalf("not strict: %d %s", w.Code, w.Body)
		}
	})
}

// TestSchemasCompiledOnce: a response format or strict tool schema that
// comes again is not compiled again; another one is.
func TestSchemasCompiledOnce(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_w", Name: "get_weather", Arguments: `{"city":"Paris"}`}}
	// A schema text nothing else compiled, in this run or an earlier one
	// of the same process (-count), so that the count is this test's.
	tools := strings.Replace(weatherTools, `"type": "string"`, fmt.Sprintf(`"type": "string", "description": "run %d", "minLength": 1`, time.Now().UnixNano()), 1)
	before := schemas.compiles.Load()
	for range 3 {
		if w := h.do(t, "/chat", chatBody("single", tools)); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	if n := schemas.compiles.Load() - before; n != 1 {
		t.Fatalf("the strict tool's schema was compiled %d times for 3 requests", n)
	}
	other := strings.Replace(tools, `"minLength": 1`, `"minLength": 2`, 1)
	if w := h.do(t, "/chat", chatBody("single", other)); w.Code != 200 || schemas.compiles.Load()-before != 2 {
		t.Fatalf("another schema: %d, %d compiles", w.Code, schemas.compiles.Load()-before)
	}
}

// TestSchemaCacheBounds: the cache holds at most maxCachedSchemas (one
// goes when a new one comes), and a schema text over maxCachedSchemaText
// is compiled every time rather than kept.
func TestSchemaCacheBounds(t *testing.T) {
	c := &schemaCache{m: map[[32]byte]*jsonschema.Schema{}}
	schema := func(i int) string { return fmt.Sprintf(`{"type":"object","description":"%d"}`, i) }
	for i := range maxCachedSchemas + 10 {
		if _, err := c.compile(schema(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) != maxCachedSchemas || c.compiles.Load() != maxCachedSchemas+10 {
		t.Fatalf("%d cached after %d compiles, want %d", len(c.m), c.compiles.Load(), maxCachedSchemas)
	}
	big := `{"type":"object","description":"` + strings.Repeat("x", maxCachedSchemaText) + `"}`
	before := c.compiles.Load()
	for range 2 {
		if _, err := c.compile(big); err != nil {
			t.Fatal(err)
		}
	}
	if c.compiles.Load()-before != 2 || len(c.m) != maxCachedSchemas {
		t.Fatalf("a schema over the size bound: %d compiles, %d cached", c.compiles.Load()-before, len(c.m))
	}
	// A bad schema is the client's error, and is not kept.
	if _, err := c.compile(`{"type": 12}`); err == nil {
		t.Fatal("a schema that does not compile was accepted")
	}
}

// BenchmarkSchema compares compiling a typical strict tool schema with
// taking it from the schema cache, which is what each request after the
// first pays.
func BenchmarkSchema(b *testing.B) {
	const s = `{"type":"object","properties":{"city":{"type":"string","description":"City name"},"unit":{"type":"string","enum":["c","f"]},"days":{"type":"integer","minimum":1,"maximum":14}},"required":["city","unit","days"],"additionalProperties":false}`
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := compileSchema(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := schemas.compile(s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
