package gateway

import (
	"slices"

	"github.com/vigilml/vigil/internal/openaiwire"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is the chat parameters beyond sampling and tools: the output
// cap under either of OpenAI's names, the penalties, reasoning_effort and
// logprobs; checked into the provider contract, and kept from plugins that
// would drop them (capabilities). The answer's logprobs are encoded in
// OpenAI's shape here too.

// Provider capabilities (Info.capabilities) for chat parameters that a
// plugin built on an older contract, or for an upstream without them,
// would drop without a word: protobuf ignores fields a plugin does not
// read. A request that uses one is not sent to a running plugin that does
// not declare it (class unsupported: the next target is tried).
const (
	// LogprobsCapability: the plugin carries ChatRequest.logprobs and
	// top_logprobs and returns ChatResponse.logprobs and ChatEvent.logprobs.
	LogprobsCapability = "logprobs"
	// PenaltiesCapability: the plugin carries presence_penalty and
	// frequency_penalty.
	PenaltiesCapability = "penalties"
	// ReasoningEffortCapability: the plugin carries reasoning_effort.
	ReasoningEffortCapability = "reasoning_effort"
)

// maxTopLogprobs is OpenAI's limit on top_logprobs.
const maxTopLogprobs = 20

// contractParams checks the output cap, penalties, reasoning_effort and
// logprobs into out.
func (req *chatRequest) contractParams(out *pb.ChatRequest) *Error {
	if req.MaxTokens != nil && req.MaxCompletionTokens != nil {
		// OpenAI refuses the pair whatever the values (400
		// invalid_parameter_combination, param max_tokens); so does the
		// gateway, so that a client sees the same answer through it.
		e := invalid("max_tokens", "Setting 'max_tokens' and 'max_completion_tokens' at the same time is not supported: send only max_completion_tokens (max_tokens is its deprecated name)")
		e.Code = "invalid_parameter_combination"
		return e
	}
	if m := req.MaxTokens; m != nil {
		if *m < 1 {
			return invalid("max_tokens", "max_tokens must be at least 1, got %d", *m)
		}
		out.MaxTokens = m
	}
	if m := req.MaxCompletionTokens; m != nil {
		if *m < 1 {
			return invalid("max_completion_tokens", "max_completion_tokens must be at least 1, got %d", *m)
		}
		// Both: max_tokens for plugins that predate max_completion_tokens.
		out.MaxTokens, out.MaxCompletionTokens = m, m
	}
	for _, p := range []struct {
		name string
		v    *float64
		out  **float64
	}{{"presence_penalty", req.PresencePenalty, &out.PresencePenalty}, {"frequency_penalty", req.FrequencyPenalty, &out.FrequencyPenalty}} {
		if p.v == nil {
			continue
		}
		if *p.v < -2 || *p.v > 2 {
			return invalid(p.name, "%s must be from -2 to 2, got %v", p.name, *p.v)
		}
		*p.out = p.v
	}
	if r := req.ReasoningEffort; r != nil {
		if !lowerWord(*r) {
			return invalid("reasoning_effort", "reasoning_effort must be a lowercase word such as \"low\", \"medium\" or \"high\" (the upstream checks which it knows), got %q", *r)
		}
		out.ReasoningEffort = *r
	}
	if req.Logprobs != nil && *req.Logprobs {
		out.Logprobs = true
	}
	if n := req.TopLogprobs; n != nil {
		if *n < 0 || *n > maxTopLogprobs {
			return invalid("top_logprobs", "top_logprobs must be from 0 to %d, got %d", maxTopLogprobs, *n)
		}
		if !out.Logprobs {
			return invalid("top_logprobs", "top_logprobs needs logprobs: true")
		}
		out.TopLogprobs = n
	}
	return nil
}

// lowerWord reports whether s is 1 to 32 characters of a-z, 0-9 and _,
// starting with a letter.
func lowerWord(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// checkSupport refuses, as class unsupported (the gateway then tries the
// next target), a request for a target whose running plugin does not
// declare a capability the request needs: tools, images, files, logprobs, non-zero
// penalties, reasoning_effort, OpenAI's pass-through parameters. Called
// once the plugin runs (inside WithProvider), so its capabilities are
// known; a plugin that has not started is not judged.
func (g *Gateway) checkSupport(t *target, req *pb.ChatRequest) error {
	tools, images, files := usesTools(req), usesImages(req), usesFiles(req)
	penalties := req.GetPresencePenalty() != 0 || req.GetFrequencyPenalty() != 0
	if !tools && !images && !files && !req.GetLogprobs() && !penalties && req.GetReasoningEffort() == "" && req.GetOpenaiParams() == "" {
		return nil
	}
	cr, ok := g.providers.(CapabilityReporter)
	if !ok {
		return nil
	}
	caps, known := cr.Capabilities(t.provider)
	if !known {
		return nil
	}
	missing := func(c string) bool { return !slices.Contains(caps, c) }
	switch {
	case tools && missing(ToolsCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not support tool calls: its plugin does not declare the %q capability, so it would drop the tools", t.provider, ToolsCapability)
	case images && missing(ImagesCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not take images: its plugin does not declare the %q capability, so it would drop them", t.provider, ImagesCapability)
	case files && missing(FilesCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not take files: its plugin does not declare the %q capability, so it would drop them", t.provider, FilesCapability)
	case req.GetLogprobs() && missing(LogprobsCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not support logprobs: its plugin does not declare the %q capability", t.provider, LogprobsCapability)
	case penalties && missing(PenaltiesCapability):
		name := "presence_penalty"
		if req.GetPresencePenalty() == 0 {
			name = "frequency_penalty"
		}
		return sdk.Errorf(sdk.Unsupported, "provider %s does not support %s: its plugin does not declare the %q capability", t.provider, name, PenaltiesCapability)
	case req.GetReasoningEffort() != "" && missing(ReasoningEffortCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not support reasoning_effort: its plugin does not declare the %q capability", t.provider, ReasoningEffortCapability)
	case req.GetOpenaiParams() != "" && missing(OpenAIParamsCapability):
		return sdk.Errorf(sdk.Unsupported, "provider %s does not support %s: its plugin does not declare the %q capability", t.provider, openAIParamNames(req.GetOpenaiParams()), OpenAIParamsCapability)
	}
	return nil
}

// logprobsJSON is a choice's logprobs in OpenAI's shape:
// {"content": [...], "refusal": null}.
type logprobsJSON struct {
	Content []openaiwire.TokenLogprob `json:"content"`
	Refusal *struct{}                 `json:"refusal"`
}

// bytesJSON is a token's bytes as OpenAI writes them (a list of
// integers), or null when there are none.
func bytesJSON(b []byte) []int {
	if len(b) == 0 {
		return nil
	}
	out := make([]int, len(b))
	for i, c := range b {
		out[i] = int(c)
	}
	return out
}

// logprobsOut is the logprobs of a choice or a chunk: nil (JSON null) when
// the request did not ask for them, else the tokens' (an empty list when
// the upstream sent none for this piece).
func logprobsOut(asked bool, lps []*pb.TokenLogprob) *logprobsJSON {
	if !asked {
		return nil
	}
	out := &logprobsJSON{Content: make([]openaiwire.TokenLogprob, len(lps))}
	for i, lp := range lps {
		top := make([]openaiwire.TopLogprob, len(lp.GetTopLogprobs()))
		for j, tl := range lp.GetTopLogprobs() {
			top[j] = openaiwire.TopLogprob{Token: tl.GetToken(), Logprob: tl.GetLogprob(), Bytes: bytesJSON(tl.GetBytes())}
		}
		out.Content[i] = openaiwire.TokenLogprob{Token: lp.GetToken(), Logprob: lp.GetLogprob(), Bytes: bytesJSON(lp.GetBytes()), TopLogprobs: top}
	}
	return out
}

// capName names the request's output cap in messages: the name the
// client used.
func capName(req *pb.ChatRequest) string {
	if req.MaxCompletionTokens != nil {
		return "max_completion_tokens"
	}
	return "max_tokens"
}
