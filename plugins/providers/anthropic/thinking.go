package main

import (
	"encoding/json"
	"fmt"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Extended thinking: OpenAI's reasoning_effort (a level) becomes
// Anthropic's thinking {"type":"enabled","budget_tokens":N} (a budget of
// thinking tokens). The budgets start at Anthropic's minimum (1024) and
// grow about fourfold a level, high staying under the smallest output
// limit of the models that think (32000 tokens) with room for the answer.
var thinkingBudgets = map[string]int32{"minimal": 1024, "low": 2048, "medium": 8192, "high": 16384}

// minThinkingBudget is the smallest budget_tokens Anthropic accepts.
const minThinkingBudget = 1024

// thinkingBody sets thinking on the Messages request b for the request's
// reasoning_effort ("none" or unset: no thinking), adjusting max_tokens:
// Anthropic counts thinking inside max_tokens, as OpenAI counts reasoning
// inside max_completion_tokens, so a client's cap is kept and the budget
// lowered below it (refused when that leaves less than 1024); without a
// cap, the default max_tokens is raised to the budget plus the default.
// What Anthropic refuses with thinking is refused here naming the
// OpenAI parameter: temperature other than 1, top_p below 0.95, a forced
// tool (tool_choice required or function) and a conversation continuing
// a tool loop whose assistant turn with the calls does not carry its
// thinking blocks back (unsignedToolTurn).
func (s *state) thinkingBody(req *pb.ChatRequest, b map[string]any) error {
	effort := req.GetReasoningEffort()
	if effort == "" || effort == "none" {
		return nil
	}
	budget, ok := thinkingBudgets[effort]
	if !ok {
		return sdk.FieldErrorf("reasoning_effort", "%q is not none, minimal, low, medium or high (the levels the anthropic plugin maps to extended thinking budgets)", effort)
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
	maxTokens := b["max_tokens"].(int32)
	switch {
	case req.MaxTokens == nil && req.MaxCompletionTokens == nil:
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
