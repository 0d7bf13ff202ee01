package gateway

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestResponsesLogprobs: include "message.output_text.logprobs" with
// top_logprobs asks the upstream for logprobs (what the Vercel AI SDK
// sends for providerOptions.openai.logprobs), and they come back in the
// output_text part, whole and streamed (per delta, and all of them in
// output_text.done, the part and the item); top_logprobs alone asks for
// them too; "reasoning.encrypted_content" asks for nothing of these
// (it fills reasoning items, which this upstream gives none of).
func TestResponsesLogprobs(t *testing.T) {
	h := newHarness(t, testCfg())
	h.g.providers = logprobFleet{fleet: fleet{"pa": h.a, "pb": h.b}}
	pieces := []string{"the ", "sky ", "is ", "blue"}

	h.a.answers["solo"] = []string{"the sky is blue"}
	r := responseObject(t, h.responses(t, `{"model":"single","input":"x","include":["message.output_text.logprobs"],"top_logprobs":2}`))
	if req := h.a.last["solo"]; !req.GetLogprobs() || req.GetTopLogprobs() != 2 {
		t.Fatalf("upstream request: %v", req)
	}
	part := r["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)
	if want := wantLogprobs(pieces, 2, 0); !reflect.DeepEqual(part["logprobs"], want) {
		t.Fatalf("logprobs %v\nwant %v", part["logprobs"], want)
	}
	if r["top_logprobs"] != float64(2) {
		t.Fatalf("top_logprobs echo: %v", r["top_logprobs"])
	}

	h.a.answers["solo"] = []string{"the sky is blue"}
	r = responseObject(t, h.responses(t, `{"model":"single","input":"x","top_logprobs":1}`))
	part = r["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)
	if want := wantLogprobs(pieces, 1, 0); !h.a.last["solo"].GetLogprobs() || !reflect.DeepEqual(part["logprobs"], want) {
		t.Fatalf("top_logprobs alone: %v", part["logprobs"])
	}

	// Not asked for (reasoning.encrypted_content, top_logprobs 0): none
	// asked upstream, an empty list in the answer.
	h.a.answers["solo"] = []string{"the sky is blue"}
	r = responseObject(t, h.responses(t, `{"model":"single","input":"x","include":["reasoning.encrypted_content"],"top_logprobs":0,"store":false}`))
	part = r["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)
	if h.a.last["solo"].GetLogprobs() || !reflect.DeepEqual(part["logprobs"], []any{}) || len(r["output"].([]any)) != 1 {
		t.Fatalf("without logprobs: %v %v", h.a.last["solo"], r["output"])
	}

	// Streamed: each text delta carries its token's logprobs; the done
	// events and the final item all of them.
	h.a.answers["solo"] = []string{"one two three"}
	w := h.responses(t, `{"model":"single","input":"x","stream":true,"include":["message.output_text.logprobs"],"top_logprobs":1}`)
	var deltas []string
	var perDelta []any
	var done, partDone, item, final any
	for _, ev := range readEvents(t, w.Body.String()) {
		switch ev.name {
		case "response.output_text.delta":
			deltas = append(deltas, ev.data["delta"].(string))
			lps := ev.data["logprobs"].([]any)
			if len(lps) != 1 {
				t.Fatalf("delta %q with %d logprobs", ev.data["delta"], len(lps))
			}
			perDelta = append(perDelta, lps[0])
		case "response.output_text.done":
			done = ev.data["logprobs"]
		case "response.content_part.done":
			partDone = ev.data["part"].(map[string]any)["logprobs"]
		case "response.output_item.done":
			item = ev.data["item"].(map[string]any)["content"].([]any)[0].(map[string]any)["logprobs"]
		case "response.completed":
			final = ev.data["response"].(map[string]any)["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["logprobs"]
		}
	}
	want := wantLogprobs(deltas, 1, 0)
	if len(deltas) < 2 || !reflect.DeepEqual(perDelta, want) {
		b, _ := json.Marshal(perDelta)
		t.Fatalf("per-delta logprobs %s for %q", b, deltas)
	}
	for name, got := range map[string]any{"output_text.done": done, "content_part.done": partDone, "output_item.done": item, "completed": final} {
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s logprobs %v\nwant %v", name, got, want)
		}
	}
}

// TestResponsesReasoningSummary: reasoning.summary (what the Vercel AI SDK
// sends with every reasoning effort) is taken and echoed; no reasoning
// item comes back, since the upstream's chat answer has no reasoning. An item_reference to
// the answer's message resolves; one to an unknown id is refused with
// what to send instead.
func TestResponsesReasoningSummary(t *testing.T) {
	h := newHarness(t, testCfg())
	r := responseObject(t, h.responses(t, `{"model":"single","input":"x","reasoning":{"effort":"low","summary":"detailed"}}`))
	if got := r["reasoning"]; !reflect.DeepEqual(got, map[string]any{"effort": "low", "summary": "detailed"}) || h.a.last["solo"].GetReasoningEffort() != "low" {
		t.Fatalf("reasoning echo %v, upstream %v", got, h.a.last["solo"])
	}
	out := r["output"].([]any)
	if len(out) != 1 || out[0].(map[string]any)["type"] != "message" {
		t.Fatalf("output %v", out)
	}
	id := out[0].(map[string]any)["id"].(string)
	responseObject(t, h.responses(t, `{"model":"single","input":[{"role":"user","content":"a"},{"type":"item_reference","id":"`+id+`"},{"role":"user","content":"b"}]}`))
	if m := h.a.last["solo"].GetMessages(); len(m) != 3 || m[1].GetRole() != "assistant" || m[1].GetContent() != "hi from solo" {
		t.Fatalf("item_reference resolved to %v", m)
	}
	w := h.responses(t, `{"model":"single","input":[{"role":"user","content":"a"},{"type":"item_reference","id":"msg_1"},{"role":"user","content":"b"}]}`)
	if e := errBody(t, w); w.Code != 404 || e.Param == nil || *e.Param != "input[1].id" || !strings.Contains(e.Message, "store: false") {
		t.Fatalf("item_reference: %d %s", w.Code, w.Body)
	}
}
