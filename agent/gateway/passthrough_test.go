package gateway

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// TestOpenAIParamsValidation: each pass-through parameter is checked for
// the JSON shape OpenAI documents; a wrong one is a 400 naming the field,
// before any upstream call. Parameters outside the allowlist are still
// refused as unknown.
func TestOpenAIParamsValidation(t *testing.T) {
	h := newHarness(t, testCfg())
	long := strings.Repeat("k", 65)
	pairs := make([]string, 17)
	for i := range pairs {
		pairs[i] = fmt.Sprintf(`"k%d":"v"`, i)
	}
	many := "{" + strings.Join(pairs, ",") + "}"
	for _, tc := range []struct{ extra, param, says string }{
		{`,"logit_bias":[1,2]`, "logit_bias", "must be a JSON object, got an array"},
		{`,"logit_bias":{"abc":1}`, "logit_bias", "token ids"},
		{`,"logit_bias":{"-5":1}`, "logit_bias", "token ids"},
		{`,"logit_bias":{"50256":-101}`, "logit_bias", "from -100 to 100"},
		{`,"logit_bias":{"50256":100.5}`, "logit_bias", "from -100 to 100"},
		{`,"logit_bias":{"50256":"5"}`, "logit_bias", "must be a number"},
		{`,"store":"yes"`, "store", "true or false, got a string"},
		{`,"store":1`, "store", "true or false, got a number"},
		{`,"metadata":"tag"`, "metadata", "must be a JSON object"},
		{`,"metadata":{"n":1}`, "metadata", `metadata["n"] must be a string, got a number`},
		{`,"metadata":{"` + long + `":"v"}`, "metadata", "more than 64"},
		{`,"metadata":{"k":"` + strings.Repeat("v", 513) + `"}`, "metadata", "more than 512"},
		{`,"metadata":` + many, "metadata", "17 pairs, more than the 16"},
		{`,"service_tier":5`, "service_tier", "must be a string"},
		{`,"service_tier":"Flex"`, "service_tier", "lowercase word"},
		{`,"verbosity":""`, "verbosity", "lowercase word"},
		{`,"verbosity":["low"]`, "verbosity", "must be a string, got an array"},
		{`,"prediction":"text"`, "prediction", "must be a JSON object"},
		{`,"prediction":{"type":"text","content":"x"}`, "prediction", `prediction.type must be "content"`},
		{`,"prediction":{"type":"content"}`, "prediction", "prediction.content must be a string or an array"},
		{`,"prediction":{"type":"content","content":5}`, "prediction", "prediction.content must be a string or an array"},
		{`,"prediction":{"type":"content","content":[{"type":"image_url","text":"x"}]}`, "prediction", "prediction.content[0] must be"},
		{`,"prediction":{"type":"content","content":"x","extra":1}`, "prediction", `unknown field "extra"`},
		{`,"prompt_cache_key":7`, "prompt_cache_key", "must be a string"},
		{`,"safety_identifier":{"id":"u"}`, "safety_identifier", "must be a string, got an object"},
		{`,"prompt_cache_retention":24`, "prompt_cache_retention", "must be a string"},
		{`,"prompt_cache_options":"30m"`, "prompt_cache_options", "must be a JSON object"},
		{`,"prompt_cache_options":{"ttl":30}`, "prompt_cache_options", "prompt_cache_options.ttl must be a string"},
		{`,"moderation":{"mode":"auto"}`, "moderation", "does not support it"},
		// Outside the allowlist: still unknown.
		{`,"modalities":["text"]`, "modalities", "does not support it"},
		{`,"audio":{"voice":"alloy","format":"wav"}`, "audio", "does not support it"},
		{`,"logit_biases":{}`, "logit_biases", "does not support it"},
	} {
		w := h.do(t, "/chat", chatBody("chain", tc.extra))
		e := errBody(t, w)
		param := ""
		if e.Param != nil {
			param = *e.Param
		}
		if w.Code != 400 || param != tc.param || e.Code != "invalid_request" || !strings.Contains(e.Message, tc.says) {
			t.Errorf("%s:\n  %d param %q code %q %q, want 400 %q saying %q", tc.extra, w.Code, param, e.Code, e.Message, tc.param, tc.says)
		}
	}
	if h.a.count("m1")+h.b.count("m2") != 0 {
		t.Fatal("a bad request reached an upstream")
	}
}

// TestOpenAIParamsReachProvider: the parameters reach the provider as one
// compact JSON object in a canonical order (names sorted, object keys
// sorted, whatever order the client used), whole and streamed; null is
// absent; a request without them has an empty field.
func TestOpenAIParamsReachProvider(t *testing.T) {
	h := newHarness(t, testCfg())
	for _, tc := range []struct{ extra, want string }{
		{``, ``},
		{`,"store":null,"metadata":null`, ``},
		{`,"store":false`, `{"store":false}`},
		{`,"verbosity":"low","store":true,"service_tier":"flex"`, `{"service_tier":"flex","store":true,"verbosity":"low"}`},
		{`,"metadata":{"z":"1","a":"2"},"logit_bias":{"50256":-100,"12":5.5,"3":0}`, `{"logit_bias":{"12":5.5,"3":0,"50256":-100},"metadata":{"a":"2","z":"1"}}`},
		{`,"metadata":{}`, `{"metadata":{}}`},
		{`, "prediction" : { "content" : "the old code", "type" : "content" }`, `{"prediction":{"content":"the old code","type":"content"}}`},
		{`,"prediction":{"type":"content","content":[{"text":"a","type":"text"}]}`, `{"prediction":{"content":[{"text":"a","type":"text"}],"type":"content"}}`},
		{`,"safety_identifier":"user-\u00e9","prompt_cache_key":"k1"`, `{"prompt_cache_key":"k1","safety_identifier":"user-é"}`},
		{`,"prompt_cache_retention":"24h","prompt_cache_options":{"ttl":"30m","mode":"explicit"}`, `{"prompt_cache_options":{"mode":"explicit","ttl":"30m"},"prompt_cache_retention":"24h"}`},
	} {
		for _, stream := range []string{"", `,"stream":true`} {
			w := h.do(t, "/chat", chatBody("single", tc.extra+stream))
			if w.Code != 200 {
				t.Fatalf("%s%s: %d %s", tc.extra, stream, w.Code, w.Body)
			}
			if got := h.a.last["solo"].GetOpenaiParams(); got != tc.want {
				t.Errorf("%s%s reached the provider as %s, want %s", tc.extra, stream, got, tc.want)
			}
		}
	}
}

// TestOpenAIParamsNeedCapability: a request with a pass-through parameter
// skips a target whose plugin does not declare openai_params (it would drop
// them, or cannot speak them) and goes to the next; with none left the
// answer is 400 unsupported naming the provider and the parameters.
func TestOpenAIParamsNeedCapability(t *testing.T) {
	h := newHarness(t, testCfg())
	all := []string{"chat", "stream", ToolsCapability, LogprobsCapability, PenaltiesCapability, ReasoningEffortCapability, OpenAIParamsCapability}
	h.g.providers = logprobFleet{fleet: fleet{"pa": h.a, "pb": h.b}, caps: map[string][]string{"pa": {"chat", "stream", ToolsCapability, PenaltiesCapability}, "pb": all}}
	for _, tc := range []struct{ extra, says string }{
		{`,"logit_bias":{"1":1}`, "does not support logit_bias: its plugin does not declare the \"openai_params\" capability"},
		{`,"store":true,"metadata":{"a":"b"}`, "does not support metadata, store:"},
		{`,"store":false`, "does not support store:"},
		{`,"prediction":{"type":"content","content":"x"}`, "does not support prediction:"},
	} {
		expectSkipped(t, h, tc.extra, tc.says)
	}
	if n := h.a.count("solo") + h.a.count("m1"); n != 0 {
		t.Fatalf("pa was called %d times", n)
	}
	// null is no parameter: pa serves it.
	if w := h.do(t, "/chat", chatBody("single", `,"store":null,"logit_bias":null`)); w.Code != 200 {
		t.Fatalf("null parameters on pa: %d %s", w.Code, w.Body)
	}
}

// TestOpenAIParamsInCacheKey: the parameters are part of the cache key
// (a cached answer for one metadata is not served for another), and a
// request without them keeps the key it had before they existed.
func TestOpenAIParamsInCacheKey(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	base := func() *pb.ChatRequest {
		return &pb.ChatRequest{Messages: []*pb.Message{{Role: "user", Content: "hi"}}, MaxTokens: i32(5)}
	}
	// The same key as TestParamsInCacheKey's: computed before any of the
	// newer fields existed.
	if k, before := cacheKey("x", "", base()), "d0b4560a9f6589e86205ad36af83be0ce4a630bc750c236d244d86924ea5263a"; k != before {
		t.Errorf("the key of a request without openai_params changed: %s, was %s", k, before)
	}
	keys := map[string]string{cacheKey("x", "", base()): "none"}
	for _, p := range []string{`{"store":true}`, `{"store":false}`, `{"metadata":{"a":"b"}}`, `{"metadata":{"a":"c"}}`, `{"logit_bias":{"1":5}}`} {
		r := base()
		r.OpenaiParams = p
		k := cacheKey("x", "", r)
		if other, dup := keys[k]; dup {
			t.Errorf("%s and %s have the same cache key", p, other)
		}
		keys[k] = p
	}

	// Through the handler: the same parameters in another order hit; other
	// values miss.
	h := newHarness(t, testCfg())
	withCache(t, h, filepath.Join(t.TempDir(), "cache.db"))
	h.a.answers["solo"] = []string{"one", "two", "three", "four", "five"}
	for i, tc := range []struct{ extra, cache string }{
		{`,"metadata":{"a":"1","b":"2"},"store":false`, "miss"},
		{`,"store":false,"metadata":{"b":"2","a":"1"}`, "hit"},
		{`,"store":false,"metadata":{"b":"2","a":"other"}`, "miss"},
		{``, "miss"},
		// store: true asks OpenAI to keep the completion, which a cached
		// answer would skip: such requests bypass the cache.
		{`,"store":true`, "bypass"},
		{`,"store":true`, "bypass"},
	} {
		w := h.doHeader(t, chatBody("single", `,"temperature":0`+tc.extra), nil)
		if w.Code != 200 || w.Header().Get("x-vigil-cache") != tc.cache {
			t.Fatalf("request %d (%s): %d cache %q, want %q", i, tc.extra, w.Code, w.Header().Get("x-vigil-cache"), tc.cache)
		}
	}
	if n := h.a.count("solo"); n != 5 {
		t.Fatalf("%d upstream calls, want 5", n)
	}
}

// BenchmarkChatOpenAIParams is BenchmarkChat with pass-through parameters
// (logit_bias, metadata, store): the cost of checking and encoding them.
// BenchmarkChat itself measures that requests without them pay nothing.
func BenchmarkChatOpenAIParams(b *testing.B) {
	h := &harness{a: newScripted(), b: newScripted()}
	g, err := New(testCfg(), fleet{"pa": h.a, "pb": h.b}, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	body := chatBody("single", `,"temperature":0,"max_tokens":16,"logit_bias":{"50256":-100},"metadata":{"team":"ml"},"store":true`)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/chat", strings.NewReader(body))
		w := httptest.NewRecorder()
		g.HandleChat(w, r)
		if w.Code != 200 || h.a.last["solo"].GetOpenaiParams() == "" {
			b.Fatal(w.Body)
		}
	}
}
