package gateway

import (
	"flag"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/store"
	"github.com/vigilml/vigil/internal/testutil"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// updateGolden regenerates the golden encodings under testdata/golden.
var updateGolden = flag.Bool("update", false, "rewrite the golden encodings in testdata/golden")

const goldenRegen = "go test ./agent/gateway -run TestGoldenEncoding -update"

// goldenNow is the fixed clock of the golden tests.
var goldenNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func kvVersion() []testutil.Version {
	return []testutil.Version{{Name: "KVSchemaVersion in agent/store/kv.go", Value: int(store.KVSchemaVersion)}}
}

// TestGoldenEncodingCache guards the response cache file (llm-cache.db):
// an older agent must refuse it (KV schema version) rather than misread
// a cached answer. One answer goes through the real path (HandleChat of
// a deterministic request, the scripted upstream's answer), one with
// every field the cache stores is put directly (tool calls, thinking
// blocks, refusal, usage details: the scripted upstream gives none).
// Its key is the hash of cacheKey's JSON, so a change there shows too.
// The clock is fixed, so created and expires are too.
func TestGoldenEncodingCache(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-cache.db")
	h := newHarness(t, testCfg())
	h.clk.now = goldenNow
	withCache(t, h, path)
	if w := h.doHeader(t, chatBody("single", `,"temperature":0`), nil); w.Code != 200 || w.Header().Get("x-vigil-cache") != "miss" {
		t.Fatalf("chat: %d %v %s", w.Code, w.Header(), w.Body)
	}
	temp, seed := 0.0, int64(7)
	req := &pb.ChatRequest{Model: "m1", Temperature: &temp, Seed: &seed, Messages: []*pb.Message{
		{Role: "system", Content: "be brief"},
		{Role: "user", Content: "weather?", Parts: []*pb.ContentPart{{Type: "text", Text: "weather?"}}},
	}, Tools: []*pb.Tool{{Name: "get_weather", Description: "weather", Parameters: `{"type":"object"}`}}}
	h.g.cache.put(cacheKey("chain", "", req), cachedAnswer{
		Provider: "pa", Model: "m1", Content: "", Refusal: "no", FinishReason: "tool_calls",
		Usage: &usageJSON{PromptTokens: 3, CompletionTokens: 4, TotalTokens: 7,
			PromptTokensDetails: &promptDetails{CachedTokens: 1}, CompletionTokensDetails: &completionDetails{ReasoningTokens: 2}},
		UsageEstimated: true, SystemFingerprint: "fp_1",
		ToolCalls:        []cachedToolCall{{ID: "call_1", Name: "get_weather", Arguments: `{"city":"Oslo"}`}},
		ReasoningContent: "thinking", ThinkingBlocks: []cachedThinkingBlock{{Type: "thinking", Thinking: "t", Signature: "sig"}, {Type: "redacted_thinking", Data: "d"}},
	})
	h.g.cache.sync()
	if err := h.g.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "the gateway response cache (llm-cache.db)",
		File:     filepath.Join("testdata", "golden", "cache.txt"),
		Versions: kvVersion(),
		Regen:    goldenRegen,
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}

// TestGoldenEncodingSpend guards the budgets' spend ledger: requests
// charged through HandleChat at a fixed clock, one budget by token and
// one by alias.
func TestGoldenEncodingSpend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "llm-spend.db")
	h := budgetHarness(t, path)
	h.clk.now = goldenNow
	if w := h.as(t, "app", chatBody("single", "")); w.Code != 200 {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	h.clk.Add(time.Hour)
	if w := h.as(t, "other", chatBody("single", "")); w.Code != 200 {
		t.Fatalf("chat: %d %s", w.Code, w.Body)
	}
	if err := h.g.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Golden{
		What:     "the gateway budgets' spend ledger (llm-spend.db)",
		File:     filepath.Join("testdata", "golden", "spend.txt"),
		Versions: kvVersion(),
		Regen:    goldenRegen,
	}.Check(t, testutil.DumpBolt(t, path, nil), *updateGolden)
}
