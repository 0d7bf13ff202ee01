package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// responsesAs posts body as API token token ("" : none).
func (h *harness) responsesAs(t *testing.T, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/openai/v1/responses", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Test-Token", token)
	w := httptest.NewRecorder()
	h.g.HandleResponses(w, r)
	if h.g.cache != nil {
		h.g.cache.sync()
	}
	return w
}

// outputIDs are the ids of a Response's output items, in order.
func outputIDs(t *testing.T, r map[string]any) []string {
	t.Helper()
	var ids []string
	for _, it := range r["output"].([]any) {
		ids = append(ids, it.(map[string]any)["id"].(string))
	}
	return ids
}

// streamed is the final Response of a streamed answer.
func streamed(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	evs := readEvents(t, w.Body.String())
	last := evs[len(evs)-1]
	if last.name != "response.completed" {
		t.Fatalf("stream ends with %s: %s", last.name, w.Body)
	}
	return last.data["response"].(map[string]any)
}

// chatMsgs renders what reached the upstream, one line per message.
func chatMsgs(req *pb.ChatRequest) string {
	var b strings.Builder
	for _, m := range req.GetMessages() {
		fmt.Fprintf(&b, "%s:%s", m.GetRole(), m.GetContent())
		for _, c := range m.GetToolCalls() {
			fmt.Fprintf(&b, " call(%s %s %s)", c.GetId(), c.GetName(), c.GetArguments())
		}
		if id := m.GetToolCallId(); id != "" {
			fmt.Fprintf(&b, " for %s", id)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func itemRef(id string) string { return `{"type":"item_reference","id":"` + id + `"}` }

func storeHarness(t *testing.T) *harness {
	h := newHarness(t, testCfg())
	h.g.TokenName = func(r *http.Request) string { return r.Header.Get("X-Test-Token") }
	return h
}

// TestResponsesItemReference: the output items of an answer (store
// absent: OpenAI's default) are resolved by item_reference in the next
// request, whole or streamed, as the chat messages the items themselves
// would be.
func TestResponsesItemReference(t *testing.T) {
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
			// Turn 1: a plain answer.
			h.a.answers["solo"] = []string{"Hello, Ann."}
			r1 := ask(`{"model":"single","input":[{"role":"user","content":"I am Ann"}]}`)
			if r1["store"] != true {
				t.Fatalf("store echo %v", r1["store"])
			}
			msg1 := outputIDs(t, r1)[0]
			// Turn 2 refers to it, as the AI SDK does: an answer with text
			// and a call.
			h.a.callText["solo"] = "Let me look."
			h.a.toolCalls["solo"] = []*pb.ToolCall{{Id: "call_1", Name: "weather", Arguments: `{"city":"Oslo"}`}}
			r2 := ask(`{"model":"single","input":[{"role":"user","content":"I am Ann"},` + itemRef(msg1) + `,{"role":"user","content":"Weather in Oslo?"}],` + tools + `}`)
			if got, want := chatMsgs(h.a.last["solo"]), "user:I am Ann\nassistant:Hello, Ann.\nuser:Weather in Oslo?\n"; got != want {
				t.Fatalf("turn 2 reached the upstream as\n%s\nwant\n%s", got, want)
			}
			ids := outputIDs(t, r2)
			if len(ids) != 2 || !strings.HasPrefix(ids[0], "msg_") || !strings.HasPrefix(ids[1], "fc_") {
				t.Fatalf("turn 2 output ids %v", ids)
			}
			delete(h.a.toolCalls, "solo")
			delete(h.a.callText, "solo")
			// Step 2 of the tool loop: the message by reference, the call
			// by value (the AI SDK's way), the output by value.
			h.a.answers["solo"] = []string{"Sunny."}
			ask(`{"model":"single","input":[{"role":"user","content":"I am Ann"},` + itemRef(msg1) + `,{"role":"user","content":"Weather in Oslo?"},` +
				itemRef(ids[0]) + `,{"type":"function_call","call_id":"call_1","name":"weather","arguments":"{\"city\":\"Oslo\"}"},{"type":"function_call_output","call_id":"call_1","output":"18 C"}],` + tools + `}`)
			want := "user:I am Ann\nassistant:Hello, Ann.\nuser:Weather in Oslo?\nassistant:Let me look. call(call_1 weather {\"city\":\"Oslo\"})\ntool:18 C for call_1\n"
			if got := chatMsgs(h.a.last["solo"]); got != want {
				t.Fatalf("step 2 reached the upstream as\n%s\nwant\n%s", got, want)
			}
			// The same with the call by reference too (fc_ id), as the
			// OpenAI SDKs allow.
			h.a.answers["solo"] = []string{"Sunny."}
			ask(`{"model":"single","input":[{"role":"user","content":"I am Ann"},` + itemRef(msg1) + `,{"role":"user","content":"Weather in Oslo?"},` +
				itemRef(ids[0]) + `,{"id":"` + ids[1] + `"},{"type":"function_call_output","call_id":"call_1","output":"18 C"}],` + tools + `}`)
			if got := chatMsgs(h.a.last["solo"]); got != want {
				t.Fatalf("call by reference reached the upstream as\n%s\nwant\n%s", got, want)
			}
			// A referenced call still needs its output before the next
			// message, as if sent by value.
			w := h.responses(t, `{"model":"single","input":[{"role":"user","content":"x"},`+itemRef(ids[1])+`,{"role":"user","content":"y"}],`+tools+`}`)
			if e := errBody(t, w); w.Code != http.StatusBadRequest || *e.Param != "input[1]" {
				t.Fatalf("unanswered referenced call: %d %s", w.Code, w.Body)
			}
		})
	}
	hits := testutil.ToFloat64(h.g.items.m.hit)
	if hits != 14 || testutil.ToFloat64(h.g.items.m.miss) != 0 {
		t.Fatalf("lookups: %v hits, %v misses", hits, testutil.ToFloat64(h.g.items.m.miss))
	}
}

// TestResponsesItemReferenceCached: an answer served from the response
// cache gets fresh item ids, kept like any other answer's.
func TestResponsesItemReferenceCached(t *testing.T) {
	h := storeHarness(t)
	withCache(t, h, filepath.Join(t.TempDir(), "llm-cache.db"))
	for _, stream := range []string{"false", "true"} {
		body := `{"model":"single","input":"hello","temperature":0,"stream":` + stream + `}`
		get := func() map[string]any {
			w := h.responses(t, body)
			if stream == "true" {
				return streamed(t, w)
			}
			return responseObject(t, w)
		}
		first := outputIDs(t, get())[0]
		w := h.responses(t, body)
		if w.Header().Get("x-vigil-cache") != "hit" {
			t.Fatalf("stream=%s: not from the cache: %v", stream, w.Header())
		}
		var second string
		if stream == "true" {
			second = outputIDs(t, streamed(t, w))[0]
		} else {
			second = outputIDs(t, responseObject(t, w))[0]
		}
		if first == second {
			t.Fatalf("stream=%s: the cached answer repeats item id %s", stream, first)
		}
		for _, id := range []string{first, second} {
			responseObject(t, h.responses(t, `{"model":"single","input":[{"role":"user","content":"hello"},`+itemRef(id)+`,{"role":"user","content":"more"}]}`))
			if got := chatMsgs(h.a.last["solo"]); !strings.HasPrefix(got, "user:hello\nassistant:hi ") {
				t.Fatalf("stream=%s: %s reached the upstream as %s", stream, id, got)
			}
		}
	}
}

// TestResponsesItemReferenceRefused: store false keeps nothing; an item is
// kept for the token that asked only, and another token's reference gets
// the same answer as an unknown id.
func TestResponsesItemReferenceRefused(t *testing.T) {
	h := storeHarness(t)
	r := responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"hi","store":false}`))
	if r["store"] != false || h.g.items.lru.Len() != 0 {
		t.Fatalf("store false: echo %v, %d items kept", r["store"], h.g.items.lru.Len())
	}
	unstored := outputIDs(t, r)[0]
	kept := outputIDs(t, responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":"hi"}`)))[0]
	calls := h.a.count("solo")

	refer := func(token, id string) (int, Error) {
		w := h.responsesAs(t, token, `{"model":"single","input":[{"role":"user","content":"hi"},`+itemRef(id)+`]}`)
		e := errBody(t, w)
		e.Message = strings.ReplaceAll(e.Message, id, "ID")
		return w.Code, e
	}
	code, unknown := refer("app-a", "msg_0123")
	if code != http.StatusNotFound || unknown.Type != "invalid_request_error" || unknown.Code != "item_not_found" || *unknown.Param != "input[1].id" ||
		!strings.Contains(unknown.Message, `Item with id "ID" not found`) || !strings.Contains(unknown.Message, "store: false") {
		t.Fatalf("unknown: %d %+v", code, unknown)
	}
	for _, c := range []struct{ token, id string }{{"app-a", unstored}, {"app-b", kept}, {"", kept}} {
		code, e := refer(c.token, c.id)
		if code != http.StatusNotFound || e.Message != unknown.Message || *e.Param != *unknown.Param || e.Code != unknown.Code {
			t.Fatalf("token %q, id %s: %d %+v, want the unknown id's answer %+v", c.token, c.id, code, e, unknown)
		}
	}
	if h.a.count("solo") != calls {
		t.Fatal("a refused reference reached the upstream")
	}
	// The owner still resolves it.
	responseObject(t, h.responsesAs(t, "app-a", `{"model":"single","input":[{"role":"user","content":"hi"},`+itemRef(kept)+`,{"role":"user","content":"again"}]}`))
	if testutil.ToFloat64(h.g.items.m.miss) != 4 || testutil.ToFloat64(h.g.items.m.hit) != 1 {
		t.Fatalf("lookups: %v hits, %v misses", testutil.ToFloat64(h.g.items.m.hit), testutil.ToFloat64(h.g.items.m.miss))
	}

	// max_items 0: nothing kept, store echoes false, references unknown.
	cfg := testCfg()
	cfg.Responses.ItemStore.MaxItems = 0
	off := newHarness(t, cfg)
	r = responseObject(t, off.responses(t, `{"model":"single","input":"hi"}`))
	w := off.responses(t, `{"model":"single","input":[{"role":"user","content":"hi"},`+itemRef(outputIDs(t, r)[0])+`]}`)
	if e := errBody(t, w); r["store"] != false || w.Code != http.StatusNotFound || !strings.Contains(e.Message, "max_items is 0") {
		t.Fatalf("store off: echo %v, %d %s", r["store"], w.Code, w.Body)
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newTestStore(t *testing.T, c ItemStoreConfig) (*itemStore, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	return newItemStore(c, newItemMetrics(prometheus.NewRegistry()), clk.now), clk
}

func TestItemStoreBounds(t *testing.T) {
	raw := json.RawMessage(`{"type":"message","role":"assistant","content":"x"}`)
	has := func(s *itemStore, ids ...string) string {
		var out []string
		for _, id := range ids {
			if _, ok := s.get("", id); ok {
				out = append(out, id)
			}
		}
		return strings.Join(out, " ")
	}

	// By count: the least recently used goes.
	s, _ := newTestStore(t, ItemStoreConfig{MaxItems: 3, MaxBytes: 1 << 20, TTL: time.Hour})
	for _, id := range []string{"a", "b", "c"} {
		s.put("", id, raw)
	}
	s.get("", "a") // a is now the most recent
	s.put("", "d", raw)
	if got := has(s, "a", "b", "c", "d"); got != "a c d" {
		t.Fatalf("kept %q, want a c d", got)
	}
	if testutil.ToFloat64(s.m.evictItems) != 1 || testutil.ToFloat64(s.m.items) != 3 {
		t.Fatal("count eviction not counted")
	}

	// By bytes: each item costs its id, scope, JSON and the overhead.
	one := int64(len("k")+len("a")+len(raw)) + itemOverhead
	s, _ = newTestStore(t, ItemStoreConfig{MaxItems: 100, MaxBytes: 0, TTL: time.Hour})
	s.maxBytes = 2*one + one/2
	s.put("k", "a", raw)
	s.put("k", "b", raw)
	s.put("k", "c", raw)
	if _, ok := s.get("k", "a"); ok || s.bytes != 2*one || testutil.ToFloat64(s.m.evictBytes) != 1 || testutil.ToFloat64(s.m.bytes) != float64(2*one) {
		t.Fatalf("bytes: %d kept (want %d), evictions %v", s.bytes, 2*one, testutil.ToFloat64(s.m.evictBytes))
	}
	// Larger than the whole budget: never kept, nothing else evicted.
	s.put("k", "huge", json.RawMessage(`"`+strings.Repeat("x", int(s.maxBytes))+`"`))
	if _, ok := s.get("k", "huge"); ok || s.lru.Len() != 2 || testutil.ToFloat64(s.m.tooLarge) != 1 {
		t.Fatal("an item over max_bytes was kept, or evicted others")
	}
	// Scopes are apart: the same id in another scope is another item.
	if _, ok := s.get("other", "b"); ok {
		t.Fatal("another scope resolved the item")
	}
}

func TestItemStoreTTL(t *testing.T) {
	raw := json.RawMessage(`{}`)
	s, clk := newTestStore(t, ItemStoreConfig{MaxItems: 10, MaxBytes: 1 << 20, TTL: time.Hour})
	s.put("", "a", raw)
	s.put("", "b", raw)
	clk.t = clk.t.Add(50 * time.Minute)
	if _, ok := s.get("", "a"); !ok { // a is kept an hour from now
		t.Fatal("a expired early")
	}
	clk.t = clk.t.Add(10 * time.Minute)
	if _, ok := s.get("", "b"); ok {
		t.Fatal("b outlived its ttl")
	}
	if _, ok := s.get("", "a"); !ok {
		t.Fatal("a referenced 10 minutes ago expired")
	}
	clk.t = clk.t.Add(time.Hour)
	if _, ok := s.get("", "a"); ok || s.lru.Len() != 0 || s.bytes != 0 {
		t.Fatal("a outlived its ttl")
	}
	if testutil.ToFloat64(s.m.expiry) != 2 || testutil.ToFloat64(s.m.items) != 0 || testutil.ToFloat64(s.m.bytes) != 0 {
		t.Fatalf("expiry: %v counted", testutil.ToFloat64(s.m.expiry))
	}
}

func TestItemStoreConfig(t *testing.T) {
	for _, c := range []struct {
		set  func(*ItemStoreConfig)
		want string
	}{
		{func(s *ItemStoreConfig) { s.MaxItems = -1 }, "gateway.responses.item_store.max_items: must not be negative"},
		{func(s *ItemStoreConfig) { s.MaxBytes = -1 }, "gateway.responses.item_store.max_bytes: must not be negative"},
		{func(s *ItemStoreConfig) { s.TTL = -time.Second }, "gateway.responses.item_store.ttl: must not be negative"},
		{func(s *ItemStoreConfig) { s.MaxBytes = 0 }, "gateway.responses.item_store.max_bytes: must be positive"},
		{func(s *ItemStoreConfig) { s.TTL = 0 }, "gateway.responses.item_store.ttl: must be positive"},
	} {
		cfg := testCfg()
		c.set(&cfg.Responses.ItemStore)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("want %q, got %v", c.want, err)
		}
	}
	cfg := testCfg()
	cfg.Responses.ItemStore = ItemStoreConfig{} // off: nothing else needed
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
