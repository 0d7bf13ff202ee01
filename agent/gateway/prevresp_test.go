package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestResponsesPreviousChain: three turns chained by previous_response_id,
// whole and streamed. Each turn reaches the upstream as the whole
// conversation (the chain's input and output items, oldest first, then
// this request's input), with only this request's instructions, and the
// answer echoes previous_response_id.
func TestResponsesPreviousChain(t *testing.T) {
	h := storeHarness(t)
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			ask := func(body string) map[string]any {
				t.Helper()
				if stream {
					body = strings.Replace(body, `{`, `{"stream":true,`, 1)
					return streamed(t, h.responsesAs(t, "app-a", body))
				}
				return responseObject(t, h.responsesAs(t, "app-a", body))
			}
			h.a.answers["solo"] = []string{"Hello, Ann.", "Oslo is cold.", "You are Ann, asking about Oslo."}
			r1 := ask(`{"model":"single","instructions":"Be terse.","input":"I am Ann"}`)
			if r1["previous_response_id"] != nil {
				t.Fatalf("turn 1 echoes previous_response_id %v", r1["previous_response_id"])
			}
			r2 := ask(`{"model":"single","instructions":"Be kind.","previous_response_id":"` + r1["id"].(string) + `","input":[{"role":"user","content":[{"type":"input_text","text":"Tell me about Oslo"}]}]}`)
			if got, want := chatMsgs(h.a.last["solo"]), "system:Be kind.\nuser:I am Ann\nassistant:Hello, Ann.\nuser:Tell me about Oslo\n"; got != want {
				t.Fatalf("turn 2 reached the upstream as\n%s\nwant\n%s", got, want)
			}
			if r2["previous_response_id"] != r1["id"] || r2["instructions"] != "Be kind." {
				t.Fatalf("turn 2 echoes previous_response_id %v, instructions %v", r2["previous_response_id"], r2["instructions"])
			}
			r3 := ask(`{"model":"single","previous_response_id":"` + r2["id"].(string) + `","input":"Who am I?"}`)
			if got, want := chatMsgs(h.a.last["solo"]), "user:I am Ann\nassistant:Hello, Ann.\nuser:Tell me about Oslo\nassistant:Oslo is cold.\nuser:Who am I?\n"; got != want {
				t.Fatalf("turn 3 reached the upstream as\n%s\nwant\n%s", got, want)
			}
			if r3["previous_response_id"] != r2["id"] || r3["instructions"] != nil {
				t.Fatalf("turn 3 echoes previous_response_id %v, instructions %v", r3["previous_response_id"], r3["instructions"])
			}
			// A branch: turn 2 continued differently also works (the
			// chain is walked, not overwritten).
			h.a.answers["solo"] = []string{"Bergen is wet."}
			ask(`{"model":"single","previous_response_id":"` + r1["id"].(string) + `","input":"And Bergen?"}`)
			if got, want := chatMsgs(h.a.last["solo"]), "user:I am Ann\nassistant:Hello, Ann.\nuser:And Bergen?\n"; got != want {
				t.Fatalf("the branch reached the upstream as\n%s\nwant\n%s", got, want)
			}
		})
	}
	if hits := testutil.ToFloat64(h.g.items.m.prevHit); hits != 6 || testutil.ToFloat64(h.g.items.m.prevMiss) != 0 {
		t.Fatalf("previous response lookups: %v hits, %v misses", hits, testutil.ToFloat64(h.g.items.m.prevMiss))
	}
}

// TestResponsesPreviousToolLoop: OpenAI's documented tool loop. The
// answer calls a function; the next request sends only the
// function_call_output with previous_response_id; the call comes from
// the kept turn. An item_reference in a chained turn is kept resolved.
func TestResponsesPreviousToolLoop(t *testing.T) {
	h := storeHarness(t)
	const tools = `"tools":[{"type":"function","name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}]`
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			ask := func(body string) map[string]any {
				t.Helper()
				if stream {
					body = strings.Replace(body, `{`, `{"stream":true,`, 1)
					return streamed(t, h.responses(t, body))
				}
				return responseObject(t, h.responses(t, body))
			}
			h.a.answers["solo"] = []string{"Hi."}
			r0 := ask(`{"model":"single","input":"hello"}`)
			h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}
			// The earlier answer also by reference: kept resolved.
			r1 := ask(`{"model":"single","input":[` + itemRef(outputIDs(t, r0)[0]) + `,{"role":"user","content":"Weather in Oslo?"}],` + tools + `}`)
			delete(h.a.toolCalls, "solo")
			if out := r1["output"].([]any); out[len(out)-1].(map[string]any)["type"] != "function_call" {
				t.Fatalf("turn 1 output %v", out)
			}
			h.a.answers["solo"] = []string{"Sunny, 18 C."}
			r2 := ask(`{"model":"single","previous_response_id":"` + r1["id"].(string) + `","input":[{"type":"function_call_output","call_id":"call_1","output":"18 C"}],` + tools + `}`)
			if got, want := chatMsgs(h.a.last["solo"]), "assistant:Hi.\nuser:Weather in Oslo?\nassistant: call(call_1 weather {\"city\":\"Oslo\"})\ntool:18 C for call_1\n"; got != want {
				t.Fatalf("the output reached the upstream as\n%s\nwant\n%s", got, want)
			}
			if r2["output"].([]any)[0].(map[string]any)["content"].([]any)[0].(map[string]any)["text"] != "Sunny, 18 C." {
				t.Fatalf("turn 2: %v", r2["output"])
			}
			// A follow-up with no output for the call is refused, naming
			// the call that came from the chain.
			h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_2", Name: "weather", Arguments: `{"city":"Rome"}`}}
			r3 := ask(`{"model":"single","previous_response_id":"` + r2["id"].(string) + `","input":"And Rome?",` + tools + `}`)
			delete(h.a.toolCalls, "solo")
			w := h.responses(t, `{"model":"single","previous_response_id":"`+r3["id"].(string)+`","input":"never mind"}`)
			if e := errBody(t, w); w.Code != http.StatusBadRequest || *e.Param != "previous_response_id" || !strings.Contains(e.Message, `call_id "call_2"`) {
				t.Fatalf("unanswered call: %d %s", w.Code, w.Body)
			}
		})
	}
}

// TestResponsesPreviousNotFound: an unknown id, another token's, one
// given with store false, an expired one and one whose chain lost a link
// all get the same answer (404 previous_response_not_found, param
// previous_response_id), and none reaches the upstream.
func TestResponsesPreviousNotFound(t *testing.T) {
	h := storeHarness(t)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	h.g.items.now = clk.now
	first := responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"one"}`))["id"].(string)
	second := responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"two","previous_response_id":"`+first+`"}`))["id"].(string)
	unstored := responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"x","store":false}`))
	if unstored["store"] != false {
		t.Fatalf("store false echo %v", unstored["store"])
	}
	calls := h.a.count("solo")
	follow := func(token, id string) (int, Error) {
		t.Helper()
		w := h.responsesAs(t, token, `{"model":"single","input":"next","previous_response_id":"`+id+`"}`)
		e := errBody(t, w)
		e.Message = strings.ReplaceAll(e.Message, id, "ID")
		return w.Code, e
	}
	code, unknown := follow("app-a", "resp_0123")
	if code != http.StatusNotFound || unknown.Type != "invalid_request_error" || unknown.Code != "previous_response_not_found" || *unknown.Param != "previous_response_id" ||
		!strings.Contains(unknown.Message, `Previous response with id "ID" not found`) || !strings.Contains(unknown.Message, "in memory") ||
		!strings.Contains(unknown.Message, "send the whole conversation in input") {
		t.Fatalf("unknown: %d %+v", code, unknown)
	}
	same := func(what string, code int, e Error) {
		t.Helper()
		if code != http.StatusNotFound || e.Message != unknown.Message || *e.Param != *unknown.Param || e.Code != unknown.Code {
			t.Fatalf("%s: %d %+v, want the unknown id's answer %+v", what, code, e, unknown)
		}
	}
	for _, c := range []struct{ what, token, id string }{
		{"another token's", "app-b", second}, {"no token's", "", second},
		{"store false", "app-a", unstored["id"].(string)},
		// An output item's id is no response id.
		{"an item id", "app-a", outputIDs(t, unstored)[0]},
	} {
		code, e := follow(c.token, c.id)
		same(c.what, code, e)
	}
	// An item_reference cannot name a response either.
	w := h.responsesAs(t, "app-a", `{"model":"single","input":[`+itemRef(first)+`]}`)
	if e := errBody(t, w); w.Code != http.StatusNotFound || e.Code != "item_not_found" {
		t.Fatalf("a response id as item_reference: %d %s", w.Code, w.Body)
	}

	// A link of the chain evicted: the chain is gone.
	h.g.items.mu.Lock()
	h.g.items.remove(h.g.items.byKey[itemKey{"app-a", first}])
	h.g.items.mu.Unlock()
	code, e := follow("app-a", second)
	same("a broken chain", code, e)

	// Expired.
	third := responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"three"}`))["id"].(string)
	clk.t = clk.t.Add(2 * time.Hour)
	code, e = follow("app-a", third)
	same("expired", code, e)
	if h.a.count("solo") != calls+1 {
		t.Fatal("a refused previous_response_id reached the upstream")
	}
	if testutil.ToFloat64(h.g.items.m.prevMiss) != 7 || testutil.ToFloat64(h.g.items.m.prevHit) != 1 {
		t.Fatalf("lookups: %v hits, %v misses", testutil.ToFloat64(h.g.items.m.prevHit), testutil.ToFloat64(h.g.items.m.prevMiss))
	}

	// The store off: the same code, saying so.
	cfg := testCfg()
	cfg.Responses.ItemStore.MaxItems = 0
	off := newHarness(t, cfg)
	w = off.responses(t, `{"model":"single","input":"x","previous_response_id":"resp_1"}`)
	if e := errBody(t, w); w.Code != http.StatusNotFound || e.Code != "previous_response_not_found" || !strings.Contains(e.Message, "max_items is 0") {
		t.Fatalf("store off: %d %s", w.Code, w.Body)
	}
}

// TestResponsesPreviousCacheKey: the response cache is keyed by the
// conversation the chain resolves to, not by the id: the same
// conversation through two chains hits; different chains do not collide.
func TestResponsesPreviousCacheKey(t *testing.T) {
	h := storeHarness(t)
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	h.a.answers["solo"] = []string{"A.", "B."}
	// a2 is a1's answer again, from the cache: another response id for
	// the same items.
	a1 := responseObject(t, h.responses(t, `{"model":"single","input":"q","temperature":0}`))["id"].(string)
	a2 := responseObject(t, h.responses(t, `{"model":"single","input":"q","temperature":0}`))["id"].(string)
	b := responseObject(t, h.responses(t, `{"model":"single","input":"other","temperature":0}`))["id"].(string)
	if a1 == a2 {
		t.Fatal("the cached answer repeats the response id")
	}
	calls := h.a.count("solo")
	next := func(prev string) string {
		w := h.responses(t, `{"model":"single","input":"next","temperature":0,"previous_response_id":"`+prev+`"}`)
		responseObject(t, w)
		return w.Header().Get("x-vigil-cache")
	}
	if got := next(a1); got != "miss" {
		t.Fatalf("first chain: cache %q", got)
	}
	if got := next(a2); got != "hit" || h.a.count("solo") != calls+1 {
		t.Fatalf("the same conversation through another chain: cache %q", got)
	}
	if got := next(b); got != "miss" || h.a.count("solo") != calls+2 {
		t.Fatalf("another conversation: cache %q", got)
	}
	if got := chatMsgs(h.a.last["solo"]); got != "user:other\nassistant:B.\nuser:next\n" {
		t.Fatalf("another conversation reached the upstream as %s", got)
	}
}

// TestItemStoreResponses: a kept response costs its items, their ids and
// the overhead; the chain is walked oldest first and renews every link.
func TestItemStoreResponses(t *testing.T) {
	s, clk := newTestStore(t, ItemStoreConfig{MaxItems: 10, MaxBytes: 1 << 20, TTL: time.Hour})
	a, b := json.RawMessage(`{"role":"user","content":"a"}`), json.RawMessage(`{"role":"assistant","content":"b"}`)
	s.putResponse("k", "resp_1", "", []json.RawMessage{a, b})
	want := int64(len("k")+len("resp_1")+len(a)+len(b)) + 2*24 + itemOverhead
	if s.bytes != want || testutil.ToFloat64(s.m.bytes) != float64(want) {
		t.Fatalf("bytes %d, want %d", s.bytes, want)
	}
	s.putResponse("k", "resp_2", "resp_1", []json.RawMessage{b, a})
	if s.bytes != 2*want+int64(len("resp_1")) {
		t.Fatalf("bytes %d with the link", s.bytes)
	}
	clk.t = clk.t.Add(50 * time.Minute)
	items, ok := s.chain("k", "resp_2")
	if !ok || string(items[0]) != string(a) || string(items[3]) != string(a) || len(items) != 4 {
		t.Fatalf("chain %q", items)
	}
	clk.t = clk.t.Add(50 * time.Minute) // both renewed 50 minutes ago
	if _, ok := s.chain("k", "resp_2"); !ok {
		t.Fatal("a walked chain expired")
	}
	if _, ok := s.get("k", "resp_1"); ok {
		t.Fatal("item_reference resolved a response")
	}
	if _, ok := s.chain("other", "resp_2"); ok {
		t.Fatal("another scope walked the chain")
	}
}

// TestResponsesPreviousFieldNames: a chat-path error about a message
// rebuilt from a kept turn names previous_response_id; the request's own
// items keep their input paths after it.
func TestResponsesPreviousFieldNames(t *testing.T) {
	fm := &fieldMap{msgs: []msgSource{{path: "previous_response_id", kind: srcMessage}, {path: "input[0]", kind: srcMessage}}}
	for chat, want := range map[string]string{
		"messages[0].content":         "previous_response_id",
		"messages[0].content[1].text": "previous_response_id",
		"messages[1].content":         "input[0].content",
	} {
		if got := fm.param(chat); got != want {
			t.Errorf("%s named %s, want %s", chat, got, want)
		}
	}
}

// TestResponsesPreviousStoreFalse: a follow-up with store false is served
// from the kept chain, but is not kept itself, so it cannot be continued.
func TestResponsesPreviousStoreFalse(t *testing.T) {
	h := storeHarness(t)
	h.a.answers["solo"] = []string{"One.", "Two."}
	r1 := responseObject(t, h.responses(t, `{"model":"single","input":"first"}`))
	r2 := responseObject(t, h.responses(t, `{"model":"single","input":"second","store":false,"previous_response_id":"`+r1["id"].(string)+`"}`))
	if got := chatMsgs(h.a.last["solo"]); got != "user:first\nassistant:One.\nuser:second\n" || r2["store"] != false || r2["previous_response_id"] != r1["id"] {
		t.Fatalf("store false follow-up: store %v, upstream\n%s", r2["store"], got)
	}
	w := h.responses(t, `{"model":"single","input":"third","previous_response_id":"`+r2["id"].(string)+`"}`)
	if e := errBody(t, w); w.Code != http.StatusNotFound || e.Code != "previous_response_not_found" {
		t.Fatalf("continuing a store false follow-up: %d %s", w.Code, w.Body)
	}
}
