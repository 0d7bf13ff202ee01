package main

import (
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
// a tool loop, whose assistant turns would need their thinking blocks,
// which the OpenAI chat shape cannot carry back.
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
	for i, m := range req.GetMessages() {
		if m.GetRole() == "assistant" && len(m.GetToolCalls()) > 0 {
			return sdk.FieldErrorf("reasoning_effort", "messages[%d] is an assistant turn with tool_calls: continuing a tool loop with extended thinking, Anthropic needs that turn's thinking blocks sent back, and the OpenAI chat shape has no place for them; send this request without reasoning_effort (a first request with tools is fine)", i)
		}
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
