package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Extended thinking comes in two request shapes, chosen per model
// (thinkingMode):
//
//   - budget: thinking {"type":"enabled","budget_tokens":N}, the only
//     shape of the models before Claude 4.6 (Sonnet 4.5, Opus 4.5, Haiku
//     4.5, 3.7, ...), which refuse the adaptive one. OpenAI's
//     reasoning_effort (a level) becomes a budget of thinking tokens
//     (thinkingBudgets): they start at Anthropic's minimum (1024) and grow
//     about fourfold a level, high staying under the smallest output limit
//     of the models that think (32000 tokens) with room for the answer.
//   - adaptive: thinking {"type":"adaptive"} and output_config
//     {"effort":E}: the model decides how much to think, the effort level
//     steering it. Claude Opus 4.7 and later and the Mythos and Fable
//     models take only this shape (400 to "enabled"); on Opus 4.6 and
//     Sonnet 4.6 "enabled" is deprecated and adaptive recommended.
//
// adaptiveModels says which models take the adaptive shape; the
// provider option thinking (auto, adaptive, budget) overrides it for
// models newer than the table. Sources: Anthropic's "Adaptive thinking"
// and "Effort" pages (platform.claude.com/docs/en/build-with-claude/
// adaptive-thinking, .../effort), AWS Bedrock's "Adaptive thinking"
// (docs.aws.amazon.com/bedrock/latest/userguide/
// claude-messages-adaptive-thinking.html), and the 400s that clients
// logged for "enabled" on newer models; see docs/gateway.md, "Extended
// thinking (Anthropic)".
var thinkingBudgets = map[string]int32{"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}

// minThinkingBudget is the smallest budget_tokens Anthropic accepts.
const minThinkingBudget = 1024

// AdaptiveModelsAsOf dates adaptiveModels.
const AdaptiveModelsAsOf = "2026-11"

// adaptiveModel is an entry of adaptiveModels: the models whose id
// starts with prefix take adaptive thinking; xhigh says whether they take
// the effort level xhigh (all of them take low, medium, high and max).
type adaptiveModel struct {
	prefix string
	xhigh  bool
}

// adaptiveModels are the model-id prefixes of the models that take
// adaptive thinking, as Anthropic and AWS documented them at
// AdaptiveModelsAsOf, the longest matching prefix deciding: Opus 4.6 and
// Sonnet 4.6 (adaptive recommended, budget deprecated; no xhigh), Mythos
// Preview (adaptive only; no xhigh), Opus 4.7 and 4.8, and the Claude 5
// models (Opus 5, Sonnet 5, Fable 5, Mythos 5 and their point releases:
// adaptive only, xhigh).
var adaptiveModels = []adaptiveModel{
	{"claude-opus-4-6", false},
	{"claude-sonnet-4-6", false},
	{"claude-mythos-preview", false},
	{"claude-opus-4-7", true},
	{"claude-opus-4-8", true},
	{"claude-opus-5", true},
	{"claude-sonnet-5", true},
	{"claude-fable-5", true},
	{"claude-mythos-5", true},
}

// lookupAdaptive finds model in adaptiveModels. The id is matched from
// its "claude-" on and in lower case, so that the ids of platforms that
// prefix or suffix Anthropic's (us.anthropic.claude-opus-4-6-v1 on
// Bedrock, claude-opus-4-6@... on Vertex) match too.
func lookupAdaptive(model string) (adaptiveModel, bool) {
	m := strings.ToLower(model)
	if i := strings.Index(m, "claude-"); i > 0 {
		m = m[i:]
	}
	var best adaptiveModel
	found := false
	for _, a := range adaptiveModels {
		if strings.HasPrefix(m, a.prefix) && len(a.prefix) > len(best.prefix) {
			best, found = a, true
		}
	}
	return best, found
}

// Thinking modes, the provider option thinking.
const (
	thinkingAuto     = "auto"     // adaptiveModels decides
	thinkingAdaptive = "adaptive" // always adaptive
	thinkingBudget   = "budget"   // always budget_tokens
)

// adaptiveEfforts maps reasoning_effort to output_config.effort under
// adaptive thinking: minimal has no counterpart and becomes low; xhigh
// and max are Anthropic's levels above high.
var adaptiveEfforts = map[string]string{"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max"}

// adaptiveRoom is the room for thinking that a request without a cap
// gets under adaptive thinking, by effort: max_tokens is then raised to
// default_max_tokens plus it (when not above it already). Thinking
// counts inside max_tokens here too, and the model decides how much to
// think, so there is no budget to size the cap by: the room is the
// budget mode's for the same level, and 32768 for xhigh and max (the
// levels for long work, which Anthropic pairs with large caps; every
// model that takes them allows 64000 output tokens or more).
var adaptiveRoom = map[string]int32{"low": 2048, "medium": 8192, "high": 16384, "xhigh": 32768, "max": 32768}

// thinkingBody sets thinking on the Messages request b for the request's
// reasoning_effort ("none" or unset: no thinking), in the shape the
// model takes (thinkingMode). What Anthropic refuses with thinking, in
// either shape, is refused here naming the OpenAI parameter: temperature
// other than 1, top_p below 0.95, a forced tool (tool_choice required or
// function) and a conversation continuing a tool loop whose assistant
// turn with the calls does not carry its thinking blocks back
// (unsignedToolTurn).
func (s *state) thinkingBody(req *pb.ChatRequest, b map[string]any) error {
	effort := req.GetReasoningEffort()
	if effort == "" || effort == "none" {
		return nil
	}
	adaptive, entry, known := s.adaptiveFor(req.GetModel())
	if adaptive {
		if _, ok := adaptiveEfforts[effort]; !ok || (effort == "xhigh" && known && !entry.xhigh) {
			levels := "none, minimal, low, medium, high, xhigh or max"
			if known && !entry.xhigh {
				levels = "none, minimal, low, medium, high or max"
			}
			return sdk.FieldErrorf("reasoning_effort", "%q is not %s (the levels the anthropic plugin maps to adaptive thinking's output_config.effort for %s)", effort, levels, req.GetModel())
		}
	} else if _, ok := thinkingBudgets[effort]; !ok {
		return sdk.FieldErrorf("reasoning_effort", "%q is not none, minimal, low, medium or high (the levels the anthropic plugin maps to extended thinking budgets for %s; xhigh and max need adaptive thinking: see the provider option thinking)", effort, req.GetModel())
	}
	if req.Temperature != nil && req.GetTemperature() != 1 {
		return sdk.FieldErrorf("temperature", "Anthropic's extended thinking (reasoning_effort) takes no temperature other than 1, got %v: leave temperature unset", req.GetTemperature())
	}
	if req.TopP != nil && req.GetTopP() < 0.95 {
		return sdk.FieldErrorf("top_p", "Anthropic's extended thinking (reasoning_effort) takes a top_p from 0.95 to 1 only, got %v", req.GetTopP())
	}
	if c := req.GetToolChoice(); c == "required" || c == "function" {
		return sdk.FieldErrorf("tool_choice", "Anthropic's extended thinking (reasoning_effort) cannot be combined with a forced tool (tool_choice %q): use auto or none", c)
	}
	if i, ok := unsignedToolTurn(req.GetMessages()); ok {
		return sdk.FieldErrorf(fmt.Sprintf("messages[%d].thinking_blocks", i), "messages[%d] is the assistant turn with tool_calls that this request continues: with extended thinking (reasoning_effort), Anthropic needs that turn to start with the thinking blocks of the answer that made the calls; send the assistant message back with its thinking_blocks as the gateway returned them (the message's thinking_blocks field, or the thinking_blocks of a stream's deltas, in order), or send this request without reasoning_effort", i)
	}
	noCap := req.MaxTokens == nil && req.MaxCompletionTokens == nil
	maxTokens := b["max_tokens"].(int32)
	if adaptive {
		// The client's cap is sent as it is (the model fits its thinking
		// in it); without one, the default is raised to leave room.
		level := adaptiveEfforts[effort]
		if room := adaptiveRoom[level]; noCap && maxTokens <= room {
			b["max_tokens"] = room + maxTokens
		}
		th := map[string]any{"type": "adaptive"}
		if s.cfg.thinkingDisplay != "" {
			th["display"] = s.cfg.thinkingDisplay
		}
		b["thinking"] = th
		b["output_config"] = map[string]any{"effort": level}
		return nil
	}
	budget := thinkingBudgets[effort]
	switch {
	case noCap:
		if maxTokens <= budget {
			b["max_tokens"] = budget + maxTokens
		}
	case maxTokens <= minThinkingBudget:
		field := "max_completion_tokens"
		if req.MaxTokens != nil {
			field = "max_tokens"
		}
		return sdk.FieldErrorf(field, "%s %d leaves no room for Anthropic's extended thinking (reasoning_effort %s): thinking counts inside the cap, and its budget must be at least %d tokens and below the cap; ask for more than %d tokens", field, maxTokens, effort, minThinkingBudget, minThinkingBudget)
	case maxTokens <= budget:
		budget = maxTokens - 1
	}
	b["thinking"] = map[string]any{"type": "enabled", "budget_tokens": budget}
	return nil
}

// adaptiveFor says whether model gets adaptive thinking under the
// configured mode, with its adaptiveModels entry when it has one.
func (s *state) adaptiveFor(model string) (adaptive bool, entry adaptiveModel, known bool) {
	entry, known = lookupAdaptive(model)
	switch s.cfg.thinkingMode {
	case thinkingAdaptive:
		return true, entry, known
	case thinkingBudget:
		return false, entry, known
	}
	return known, entry, known
}

// unsignedToolTurn finds, in a conversation continuing a tool loop, the
// assistant message that made the calls when it carries no thinking
// blocks: Anthropic wants the final assistant turn, the one before the
// last tool results, to start with a thinking or redacted_thinking block
// when thinking is enabled ("a final assistant message must start with a
// thinking block"). Earlier assistant turns may come without them (the
// upstream drops the thinking of earlier turns).
func unsignedToolTurn(msgs []*pb.Message) (int, bool) {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].GetRole() == "assistant" {
			return i, len(msgs[i].GetToolCalls()) > 0 && len(msgs[i].GetThinkingBlocks()) == 0
		}
	}
	return 0, false
}

// thinkingBlocks are an assistant message's thinking blocks as Messages
// API blocks, in order and unchanged: a thinking block with its text
// and signature, a redacted_thinking block with its data. The gateway
// checks them too; another host may not.
func thinkingBlocks(i int, tbs []*pb.ThinkingBlock) ([]block, error) {
	if len(tbs) == 0 {
		return nil, nil
	}
	out := make([]block, 0, len(tbs)+2)
	for j, tb := range tbs {
		field := fmt.Sprintf("messages[%d].thinking_blocks[%d]", i, j)
		switch tb.GetType() {
		case "thinking":
			if tb.GetSignature() == "" {
				return nil, sdk.FieldErrorf(field+".signature", "a thinking block needs the signature the upstream gave it")
			}
			text := tb.GetThinking()
			out = append(out, block{Type: "thinking", Thinking: &text, Signature: tb.GetSignature()})
		case "redacted_thinking":
			if tb.GetData() == "" {
				return nil, sdk.FieldErrorf(field+".data", "a redacted_thinking block needs the data the upstream gave it")
			}
			out = append(out, block{Type: "redacted_thinking", Data: tb.GetData()})
		default:
			return nil, sdk.FieldErrorf(field+".type", "%q is not thinking or redacted_thinking", tb.GetType())
		}
	}
	return out, nil
}

// contentBlock is a block of a Messages answer (whole, or a stream's
// content_block_start), with the fields of every type used.
type contentBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	Thinking  string          `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
}

// thinkingOut is a thinking or redacted_thinking block of an answer in
// the contract's form, or nil for another block.
func (c *contentBlock) thinkingOut() *pb.ThinkingBlock {
	switch c.Type {
	case "thinking":
		if c.Signature == "" {
			return nil // cannot be sent back; its text is in reasoning_content
		}
		return &pb.ThinkingBlock{Type: "thinking", Thinking: c.Thinking, Signature: c.Signature}
	case "redacted_thinking":
		return &pb.ThinkingBlock{Type: "redacted_thinking", Data: c.Data}
	}
	return nil
}
