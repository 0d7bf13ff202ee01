package gateway

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// responses posts body to POST /openai/v1/responses.
func (h *harness) responses(t *testing.T, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/openai/v1/responses", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.g.HandleResponses(w, r)
	if h.g.cache != nil {
		h.g.cache.sync()
	}
	return w
}

// responseObject decodes a whole answer.
func responseObject(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	return m
}

// TestResponsesTranslation checks the chat request that Responses
// requests become, as the provider receives it.
func TestResponsesTranslation(t *testing.T) {
	h := newHarness(t, testCfg())
	sent := func(body string) *pb.ChatRequest {
		t.Helper()
		responseObject(t, h.responses(t, body))
		return h.a.last["solo"]
	}

	// A string input with instructions: system first, then the user.
	req := sent(`{"model":"single","input":"hello","instructions":"be brief","max_output_tokens":50,"temperature":0.5,"top_p":0.9,"reasoning":{"effort":"low"},"user":"u1","store":true,"metadata":{"k":"v"}}`)
	msgs := req.GetMessages()
	if len(msgs) != 2 || msgs[0].GetRole() != "system" || msgs[0].GetContent() != "be brief" || msgs[1].GetRole() != "user" || msgs[1].GetContent() != "hello" {
		t.Fatalf("messages: %v", msgs)
	}
	if req.GetMaxCompletionTokens() != 50 || req.GetMaxTokens() != 50 || req.GetTemperature() != 0.5 || req.GetTopP() != 0.9 || req.GetReasoningEffort() != "low" || req.GetUser() != "u1" {
		t.Fatalf("parameters: %v", req)
	}
	// store and metadata belong to the Response, which Vigil does not
	// keep: not forwarded (OpenAI would keep a chat completion instead).
	if req.GetOpenaiParams() != "" {
		t.Fatalf("store/metadata forwarded: %s", req.GetOpenaiParams())
	}

	// Items: developer and system become system; parts become content
	// parts; an image keeps its detail.
	req = sent(`{"model":"single","input":[
		{"role":"developer","content":"rules"},
		{"type":"message","role":"user","content":[{"type":"input_text","text":"what is "},{"type":"input_text","text":"this?"},{"type":"input_image","image_url":"https://example.com/a.png","detail":"low"}]}
	]}`)
	msgs = req.GetMessages()
	if len(msgs) != 2 || msgs[0].GetRole() != "system" || msgs[1].GetContent() != "what is this?" || len(msgs[1].GetParts()) != 3 {
		t.Fatalf("messages: %v", msgs)
	}
	if p := msgs[1].GetParts()[2]; p.GetType() != "image_url" || p.GetImageUrl() != "https://example.com/a.png" || p.GetImageDetail() != "low" {
		t.Fatalf("image part: %v", p)
	}

	// Flat function tools; strict defaults to true, with the schema
	// normalized for strict mode (order kept); strict false is kept as is.
	req = sent(`{"model":"single","input":"weather?","tools":[
		{"type":"function","name":"get_weather","description":"The weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city"]}},
		{"type":"function","name":"get_time","parameters":{"type":"object","properties":{"tz":{"type":"string"}}},"strict":false}
	],"tool_choice":{"type":"function","name":"get_time"},"parallel_tool_calls":false}`)
	tools := req.GetTools()
	if len(tools) != 2 || tools[0].GetName() != "get_weather" || tools[0].GetDescription() != "The weather" || !tools[0].GetStrict() || tools[1].GetStrict() {
		t.Fatalf("tools: %v", tools)
	}
	if want := `{"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string"}},"required":["city","unit"],"additionalProperties":false}`; tools[0].GetParameters() != want {
		t.Fatalf("strict schema: %s", tools[0].GetParameters())
	}
	if tools[1].GetParameters() != `{"type":"object","properties":{"tz":{"type":"string"}}}` {
		t.Fatalf("non-strict schema changed: %s", tools[1].GetParameters())
	}
	if req.GetToolChoice() != "function" || req.GetToolChoiceFunction() != "get_time" || req.GetParallelToolCalls() {
		t.Fatalf("tool_choice %q %q, parallel %v", req.GetToolChoice(), req.GetToolChoiceFunction(), req.GetParallelToolCalls())
	}

	// A second turn as the SDK sends it: the first answer's output items
	// pushed back as they came, then the function's output.
	req = sent(`{"model":"single","input":[
		{"role":"user","content":"weather in Paris"},
		{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Let me look.","annotations":[],"logprobs":[]}]},
		{"id":"fc_1","type":"function_call","status":"completed","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
		{"type":"function_call_output","call_id":"call_1","output":"18 C"}
	],"tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}]}`)
	msgs = req.GetMessages()
	if len(msgs) != 3 || msgs[1].GetRole() != "assistant" || msgs[1].GetContent() != "Let me look." || len(msgs[1].GetToolCalls()) != 1 || msgs[2].GetRole() != "tool" || msgs[2].GetToolCallId() != "call_1" || msgs[2].GetContent() != "18 C" {
		t.Fatalf("second turn: %v", msgs)
	}
	if c := msgs[1].GetToolCalls()[0]; c.GetId() != "call_1" || c.GetName() != "get_weather" || c.GetArguments() != `{"city":"Paris"}` {
		t.Fatalf("call: %v", c)
	}

	// text.format json_schema becomes the response format; verbosity,
	// safety_identifier and prompt_cache_key pass through as on chat.
	req = sent(`{"model":"single","input":"x","text":{"format":{"type":"json_schema","name":"reply","schema":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false},"strict":true},"verbosity":"low"},"safety_identifier":"s1","prompt_cache_key":"k1"}`)
	if req.GetResponseFormat() != "json_schema" || req.GetJsonSchemaName() != "reply" || !req.GetJsonSchemaStrict() || !strings.Contains(req.GetJsonSchema(), `"required":["a"]`) {
		t.Fatalf("response format: %v", req)
	}
	if req.GetOpenaiParams() != `{"prompt_cache_key":"k1","safety_identifier":"s1","verbosity":"low"}` {
		t.Fatalf("pass-through: %s", req.GetOpenaiParams())
	}
	// So do OpenAI's prompt caching settings.
	req = sent(`{"model":"single","input":"x","prompt_cache_retention":"24h","prompt_cache_options":{"ttl":"30m"}}`)
	if req.GetOpenaiParams() != `{"prompt_cache_options":{"ttl":"30m"},"prompt_cache_retention":"24h"}` {
		t.Fatalf("prompt caching pass-through: %s", req.GetOpenaiParams())
	}
}

// TestResponsesAnswer checks the Response object and the headers.
func TestResponsesAnswer(t *testing.T) {
	h := newHarness(t, testCfg())
	w := h.responses(t, `{"model":"single","input":"hello","instructions":"be brief","temperature":0.2,"max_output_tokens":64,"metadata":{"app":"x"},"store":true,"text":{"format":{"type":"text"}}}`)
	r := responseObject(t, w)
	if w.Header().Get("x-vigil-provider") != "pa" || w.Header().Get("x-vigil-attempts") != "1" || w.Header().Get("x-vigil-cache") != "bypass" {
		t.Fatalf("headers: %v", w.Header())
	}
	if id, _ := r["id"].(string); !strings.HasPrefix(id, "resp_") || r["object"] != "response" || r["status"] != "completed" || r["model"] != "solo" || r["store"] != true || r["error"] != nil || r["incomplete_details"] != nil {
		t.Fatalf("response: %s", w.Body)
	}
	if r["instructions"] != "be brief" || r["temperature"] != 0.2 || r["max_output_tokens"] != 64.0 || r["parallel_tool_calls"] != true || r["tool_choice"] != "auto" || r["truncation"] != "disabled" {
		t.Fatalf("echoes: %s", w.Body)
	}
	if md, _ := r["metadata"].(map[string]any); md["app"] != "x" {
		t.Fatalf("metadata: %v", r["metadata"])
	}
	out, _ := r["output"].([]any)
	if len(out) != 1 {
		t.Fatalf("output: %v", r["output"])
	}
	msg := out[0].(map[string]any)
	content := msg["content"].([]any)[0].(map[string]any)
	if id, _ := msg["id"].(string); !strings.HasPrefix(id, "msg_") || msg["type"] != "message" || msg["role"] != "assistant" || msg["status"] != "completed" ||
		content["type"] != "output_text" || content["text"] != "hi from solo" || !reflect.DeepEqual(content["annotations"], []any{}) {
		t.Fatalf("message item: %v", msg)
	}
	want := map[string]any{"input_tokens": 3.0, "input_tokens_details": map[string]any{"cached_tokens": 1.0}, "output_tokens": 3.0, "output_tokens_details": map[string]any{"reasoning_tokens": 0.0}, "total_tokens": 6.0}
	if !reflect.DeepEqual(r["usage"], want) {
		t.Fatalf("usage: %v", r["usage"])
	}
	if testutil.ToFloat64(h.g.m.requests.WithLabelValues("single", "pa", "solo", "200")) != 1 {
		t.Fatal("request not counted")
	}

	// A tool call answer: function_call items with the upstream's call id.
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_9", Name: "f", Arguments: `{"x":1}`}}
	r = responseObject(t, h.responses(t, `{"model":"single","input":"go","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"x":{"type":"integer"}}}}]}`))
	out = r["output"].([]any)
	fc := out[0].(map[string]any)
	if len(out) != 1 || fc["type"] != "function_call" || fc["call_id"] != "call_9" || fc["name"] != "f" || fc["arguments"] != `{"x":1}` || fc["status"] != "completed" || !strings.HasPrefix(fc["id"].(string), "fc_") {
		t.Fatalf("function call output: %v", r["output"])
	}
	tools := r["tools"].([]any)
	if tl := tools[0].(map[string]any); tl["name"] != "f" || tl["strict"] != true || tl["type"] != "function" {
		t.Fatalf("tools echo: %v", tools)
	}
	delete(h.a.toolCalls, "solo")

	// An answer cut by the output cap is incomplete.
	rec := httptest.NewRecorder()
	(&responsesAPI{req: &responsesRequest{}, fields: &fieldMap{}}).whole(rec, answer{model: "m", content: "cut", finish: "length"})
	r = responseObject(t, rec)
	if r["status"] != "incomplete" || !reflect.DeepEqual(r["incomplete_details"], map[string]any{"reason": "max_output_tokens"}) || r["output"].([]any)[0].(map[string]any)["status"] != "incomplete" {
		t.Fatalf("incomplete answer: %s", rec.Body)
	}
}

// TestResponsesRefusals checks the 400s: each names the Responses field.
func TestResponsesRefusals(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, c := range []struct {
		body, param string
	}{
		{`{"model":"single","input":"x","previous_response_id":7}`, "previous_response_id"},
		{`{"model":"single","input":"x","previous_response_id":""}`, "previous_response_id"},
		{`{"model":"single","input":"x","previous_response_id":"resp_1","conversation":"conv_1"}`, "conversation"},
		{`{"model":"single","input":"x","conversation":"conv_1"}`, "conversation"},
		{`{"model":"single","input":"x","background":true}`, "background"},
		{`{"model":"single","input":"x","include":["file_search_call.results"]}`, "include[0]"},
		{`{"model":"single","input":"x","include":["message.output_text.logprobs",7]}`, "include[1]"},
		{`{"model":"single","input":"x","include":"message.output_text.logprobs"}`, "include"},
		{`{"model":"single","input":"x","top_logprobs":21}`, "top_logprobs"},
		{`{"model":"single","input":"x","top_logprobs":1.5}`, "top_logprobs"},
		{`{"model":"single","input":"x","prompt":{"id":"pmpt_1"}}`, "prompt"},
		{`{"model":"single","input":"x","truncation":"auto"}`, "truncation"},
		{`{"model":"single","input":"x","reasoning":{"effort":"low","summary":"brief"}}`, "reasoning.summary"},
		{`{"model":"single","input":"x","reasoning":{"effort":"low","context":"x"}}`, "reasoning.context"},
		{`{"model":"single","input":"x","frobnicate":1}`, "frobnicate"},
		{`{"model":"single","input":"x","stream_options":{"include_obfuscation":false}}`, "stream_options"},
		{`{"model":"single","input":"x","tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"model":"single","input":"x","tools":[{"type":"file_search","vector_store_ids":["vs"]}]}`, "tools[0].type"},
		{`{"model":"single","input":"x","tools":[{"type":"function","name":"bad name"}]}`, "tools[0].name"},
		{`{"model":"single","input":"x","tools":[{"type":"function","name":"f","parameters":[1]}]}`, "tools[0].parameters"},
		{`{"model":"single","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"function","name":"g"}}`, "tool_choice.name"},
		{`{"model":"single","input":"x","tools":[{"type":"function","name":"f"}],"tool_choice":{"type":"file_search"}}`, "tool_choice.type"},
		{`{"model":"single","input":"x","text":{"format":{"type":"json_schema","name":"r","schema":{"type":"nope"}}}}`, "text.format.schema"},
		{`{"model":"single","input":"x","text":{"format":{"type":"json_schema","schema":{}}}}`, "text.format.name"},
		{`{"model":"single","input":"x","temperature":3}`, "temperature"},
		{`{"model":"single","input":"x","max_output_tokens":0}`, "max_output_tokens"},
		{`{"model":"single","input":"x","metadata":{"k":1}}`, "metadata"},
		{`{"model":"single","input":[]}`, "input"},
		{`{"model":"single","input":[{"type":"reasoning","summary":[]}]}`, "input[0].encrypted_content"},
		{`{"model":"single","input":[{"type":"item_reference","id":"msg_1","status":"completed"}]}`, "input[0].status"},
		{`{"model":"single","input":[{"type":"item_reference"}]}`, "input[0].id"},
		{`{"model":"single","input":[{"role":"tool","content":"x"}]}`, "input[0].role"},
		{`{"model":"single","input":[{"role":"user","content":[{"type":"input_file","file_id":"file_1"}]}]}`, "input[0].content[0].file_id"},
		{`{"model":"single","input":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "input[0].content[0].type"},
		{`{"model":"single","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}`, "input[0].content[0].file_id"},
		{`{"model":"single","input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x/y.png"}]}]}`, "input[0].content[0].image_url"},
		{`{"model":"single","input":[{"role":"assistant","content":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "input[0].content[0].type"},
		{`{"model":"single","input":[{"role":"user","content":"x","extra":1}]}`, "input[0].extra"},
		{`{"model":"single","input":[{"role":"user","content":"x"},{"type":"function_call_output","call_id":"call_1","output":"r"}]}`, "input[1].call_id"},
		{`{"model":"single","input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},{"role":"user","content":"y"}]}`, "input[1]"},
		{`{"model":"single","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":[{"type":"input_image","image_url":"https://x/y.png"}]}]}`, "input[1].output[0]"},
	} {
		w := h.responses(t, c.body)
		if w.Code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400: %s", c.body, w.Code, w.Body)
			continue
		}
		e := errBody(t, w)
		if e.Param == nil || *e.Param != c.param || e.Type != "invalid_request_error" {
			t.Errorf("%s: param %v, want %s: %s", c.body, e.Param, c.param, w.Body)
		}
		// The chat path's own names never leak.
		for _, chatName := range []string{"messages[", ".function.", "response_format", "max_completion_tokens"} {
			if strings.Contains(e.Message, chatName) {
				t.Errorf("%s: message names %s: %s", c.body, chatName, e.Message)
			}
		}
	}
	if n := h.a.count("solo"); n != 0 {
		t.Fatalf("refused requests reached the upstream %d times", n)
	}
	// An unknown model is a 404, as on chat.
	if w := h.responses(t, `{"model":"nope","input":"x"}`); w.Code != http.StatusNotFound || errBody(t, w).Code != "model_not_found" {
		t.Fatalf("unknown model: %d %s", w.Code, w.Body)
	}
	// store, background false, truncation disabled and include [] are
	// accepted (what OpenAI's defaults are).
	if w := h.responses(t, `{"model":"single","input":"x","store":false,"background":false,"truncation":"disabled","include":[],"parallel_tool_calls":true,"tool_choice":"auto"}`); w.Code != http.StatusOK {
		t.Fatalf("defaults refused: %s", w.Body)
	}
}

// TestResponsesUpstreamErrorNamesField: an upstream's invalid_request
// naming a chat field is reported with the Responses field.
func TestResponsesUpstreamErrorNamesField(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.fail("solo", &sdk.Error{Class: sdk.InvalidRequest, Field: "messages[2].tool_call_id", Message: "messages[2].tool_call_id: unknown"})
	w := h.responses(t, `{"model":"single","input":[{"role":"user","content":"x"},{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c","output":"r"}]}`)
	e := errBody(t, w)
	if w.Code != http.StatusBadRequest || e.Param == nil || *e.Param != "input[2].call_id" || !strings.Contains(e.Message, "input[2].call_id: unknown") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// Exhausted targets: the chat path's statuses and codes.
	h.a.fail("solo", sdk.Errorf(sdk.Unavailable, "down"), sdk.Errorf(sdk.Unavailable, "down"), sdk.Errorf(sdk.Unavailable, "down"))
	if w := h.responses(t, `{"model":"single","input":"x"}`); w.Code != http.StatusServiceUnavailable || errBody(t, w).Code != "unavailable" || w.Header().Get("x-vigil-attempts") != "3" {
		t.Fatalf("exhausted: %d %s %v", w.Code, w.Body, w.Header())
	}
}

type responseEvent struct {
	name string
	data map[string]any
}

// readEvents parses a Responses stream: event lines and data lines.
func readEvents(t *testing.T, body string) []responseEvent {
	t.Helper()
	var out []responseEvent
	var name string
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var m map[string]any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
			if m["type"] != name {
				t.Fatalf("event %q carries type %v", name, m["type"])
			}
			out = append(out, responseEvent{name, m})
			name = ""
		case line == "":
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	for i, e := range out {
		if e.data["sequence_number"] != float64(i) {
			t.Fatalf("event %d (%s) has sequence_number %v", i, e.name, e.data["sequence_number"])
		}
	}
	return out
}

func eventNames(evs []responseEvent) string {
	names := make([]string, len(evs))
	for i, e := range evs {
		names[i] = e.name
	}
	return strings.Join(names, " ")
}

// TestResponsesStream checks the event sequence of a streamed answer:
// text, function calls, a mid-stream failure, and a cached answer
// re-streamed.
func TestResponsesStream(t *testing.T) {
	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	body := `{"model":"single","input":"hello","stream":true,"temperature":0}`
	w := h.responses(t, body)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/event-stream" || strings.Contains(w.Body.String(), "[DONE]") {
		t.Fatalf("stream: %d %v %s", w.Code, w.Header(), w.Body)
	}
	evs := readEvents(t, w.Body.String())
	want := "response.created response.in_progress response.output_item.added response.content_part.added response.output_text.delta response.output_text.delta response.output_text.done response.content_part.done response.output_item.done response.completed"
	if got := eventNames(evs); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	if evs[0].data["response"].(map[string]any)["status"] != "in_progress" || evs[4].data["delta"] != "hi t" || evs[5].data["delta"] != "here" || evs[6].data["text"] != "hi there" {
		t.Fatalf("events: %s", w.Body)
	}
	itemID := evs[2].data["item"].(map[string]any)["id"]
	for _, e := range evs[3:8] {
		if e.data["item_id"] != itemID || e.data["output_index"] != 0.0 {
			t.Fatalf("%s: item %v index %v, want %v 0", e.name, e.data["item_id"], e.data["output_index"], itemID)
		}
	}
	final := evs[9].data["response"].(map[string]any)
	if final["status"] != "completed" || final["id"] != evs[0].data["response"].(map[string]any)["id"] || final["usage"].(map[string]any)["total_tokens"] != 4.0 {
		t.Fatalf("final response: %v", final)
	}
	if text := final["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"]; text != "hi there" {
		t.Fatalf("final text %v", text)
	}
	if testutil.ToFloat64(h.g.m.requests.WithLabelValues("single", "pa", "solo", "200")) != 1 {
		t.Fatal("stream not counted")
	}

	// The same request again: from the cache, the same sequence.
	w = h.responses(t, body)
	if w.Header().Get("x-vigil-cache") != "hit" || h.a.count("solo") != 1 {
		t.Fatalf("cache: %v, calls %d", w.Header(), h.a.count("solo"))
	}
	if got := eventNames(readEvents(t, w.Body.String())); got != strings.Replace(want, "response.output_text.delta response.output_text.delta", "response.output_text.delta", 1) {
		t.Fatalf("cached events: %s", got)
	}

	// Function calls: each its own item, arguments in fragments.
	h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_a", Name: "f", Arguments: `{"q":"one"}`}, {Id: "call_b", Name: "g", Arguments: `{"q":"two"}`}}
	w = h.responses(t, `{"model":"single","input":"go","stream":true,"tools":[{"type":"function","name":"f","strict":false},{"type":"function","name":"g","strict":false}]}`)
	evs = readEvents(t, w.Body.String())
	want = "response.created response.in_progress " +
		"response.output_item.added response.function_call_arguments.delta response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done " +
		"response.output_item.added response.function_call_arguments.delta response.function_call_arguments.delta response.function_call_arguments.done response.output_item.done response.completed"
	if got := eventNames(evs); got != want {
		t.Fatalf("events:\n%s\nwant\n%s", got, want)
	}
	if it := evs[2].data["item"].(map[string]any); it["call_id"] != "call_a" || it["name"] != "f" || it["arguments"] != "" || it["status"] != "in_progress" {
		t.Fatalf("added: %v", it)
	}
	if evs[5].data["arguments"] != `{"q":"one"}` || evs[10].data["arguments"] != `{"q":"two"}` || evs[7].data["output_index"] != 1.0 {
		t.Fatalf("arguments: %s", w.Body)
	}
	out := evs[12].data["response"].(map[string]any)["output"].([]any)
	if len(out) != 2 || out[1].(map[string]any)["call_id"] != "call_b" || out[1].(map[string]any)["arguments"] != `{"q":"two"}` {
		t.Fatalf("final output: %v", out)
	}
	delete(h.a.toolCalls, "solo")

	// Mid-stream failure: an error event (with the nested error object the
	// SDKs raise) and response.failed; no response.completed.
	h.a.midStream["solo"] = true
	w = h.responses(t, `{"model":"single","input":"hello","stream":true}`)
	evs = readEvents(t, w.Body.String())
	names := eventNames(evs)
	if !strings.HasSuffix(names, "response.output_text.delta error response.failed") || strings.Contains(names, "response.completed") {
		t.Fatalf("mid-stream failure events: %s", names)
	}
	errEv := evs[len(evs)-2].data
	if errEv["code"] != "unavailable" || !strings.Contains(errEv["message"].(string), "failed mid-stream") || errEv["error"].(map[string]any)["code"] != "unavailable" {
		t.Fatalf("error event: %v", errEv)
	}
	failed := evs[len(evs)-1].data["response"].(map[string]any)
	if failed["status"] != "failed" || failed["error"].(map[string]any)["code"] != "unavailable" {
		t.Fatalf("response.failed: %v", failed)
	}
	if testutil.ToFloat64(h.g.m.requests.WithLabelValues("single", "pa", "solo", "stream_error")) != 1 {
		t.Fatal("stream error not counted")
	}
}

// TestResponsesStrictToolChecked: a strict tool's call whose arguments do
// not match its schema is repaired once, as on chat.
func TestResponsesStrictToolChecked(t *testing.T) {
	h := newHarness(t, testCfg())
	h.a.toolCallQueue["solo"] = [][]*pb.ToolCall{{{Id: "call_1", Name: "f", Arguments: `{"city":1}`}}, {{Id: "call_2", Name: "f", Arguments: `{"city":"Oslo"}`}}}
	r := responseObject(t, h.responses(t, `{"model":"single","input":"go","tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}`))
	if fc := r["output"].([]any)[0].(map[string]any); fc["call_id"] != "call_2" || h.a.count("solo") != 2 {
		t.Fatalf("repair: calls %d, output %v", h.a.count("solo"), r["output"])
	}
	if testutil.ToFloat64(h.g.m.validations.WithLabelValues("single", checkToolArguments, "repaired")) != 1 {
		t.Fatal("repair not counted")
	}
}

func TestStrictSchema(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"object","properties":{"x":{"type":"number"}}}},"required":["b"]}`,
			`{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"object","properties":{"x":{"type":"number"}},"required":["x"],"additionalProperties":false}},"required":["b","a"],"additionalProperties":false}`},
		// An explicit additionalProperties is the client's.
		{`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":true}`,
			`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":true,"required":["a"]}`},
		// Arrays of objects and $defs.
		{`{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"v":{"type":"integer"}}}}},"$defs":{"d":{"type":"object"}}}`,
			`{"type":"object","properties":{"l":{"type":"array","items":{"type":"object","properties":{"v":{"type":"integer"}},"required":["v"],"additionalProperties":false}}},"$defs":{"d":{"type":"object","additionalProperties":false}},"required":["l"],"additionalProperties":false}`},
		// Properties before the type.
		{`{"properties":{"a":{"type":"string"}},"type":"object"}`,
			`{"properties":{"a":{"type":"string"}},"type":"object","required":["a"],"additionalProperties":false}`},
		{`[1]`, `[1]`},
	} {
		if got := string(strictSchema(json.RawMessage(c.in))); got != c.want {
			t.Errorf("strictSchema(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestResponseByID(t *testing.T) {
	h := newHarness(t, testCfg())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openai/v1/responses/{id...}", h.g.HandleResponseByID)
	mux.HandleFunc("DELETE /openai/v1/responses/{id...}", h.g.HandleResponseByID)
	mux.HandleFunc("POST /openai/v1/responses/{id...}", h.g.HandleResponseByID)
	for _, c := range []struct{ method, path, says string }{
		{"GET", "/openai/v1/responses/resp_1", `no response "resp_1"`},
		{"DELETE", "/openai/v1/responses/resp_1", `no response "resp_1"`},
		{"GET", "/openai/v1/responses/resp_1/input_items", `no response "resp_1"`},
		{"POST", "/openai/v1/responses/resp_1/cancel", `no response "resp_1"`},
		{"POST", "/openai/v1/responses/input_tokens", "POST /openai/v1/responses/input_tokens is not served by the gateway"},
		{"DELETE", "/openai/v1/responses/resp_1/input_items", "DELETE /openai/v1/responses/resp_1/input_items is not served by the gateway"},
		// A trailing slash names no response: 404 saying so, not a
		// lookup of the response "".
		{"GET", "/openai/v1/responses/", "GET /openai/v1/responses/ names no response"},
		{"DELETE", "/openai/v1/responses/", "DELETE /openai/v1/responses/ names no response"},
		{"POST", "/openai/v1/responses/", "POST /openai/v1/responses/ is not served by the gateway"},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		e := errBody(t, w)
		if w.Code != http.StatusNotFound || e.Code != "not_found" || e.Type != "invalid_request_error" || !strings.Contains(e.Message, c.says) {
			t.Errorf("%s %s: %d %s, want 404 not_found saying %s", c.method, c.path, w.Code, w.Body, c.says)
		}
		if strings.Contains(c.says, "no response") && !strings.Contains(e.Message, "does not store responses") {
			t.Errorf("%s %s: %s", c.method, c.path, e.Message)
		}
	}
}
