package main

import (
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// unsupportedParams refuses, as class unsupported, the contract's chat
// parameters the Messages API has no counterpart for, rather than drop
// them: presence_penalty and frequency_penalty (when not 0), logprobs
// and reasoning_effort. (Anthropic's extended thinking is a budget of
// thinking tokens, not an effort level, and is not built.) The plugin
// does not declare the "penalties", "logprobs" and "reasoning_effort"
// capabilities, so the gateway does not send them here; this is for any
// other host.
func unsupportedParams(req *pb.ChatRequest) error {
	switch {
	case req.GetPresencePenalty() != 0:
		return sdk.Errorf(sdk.Unsupported, "presence_penalty is not supported by Anthropic's Messages API")
	case req.GetFrequencyPenalty() != 0:
		return sdk.Errorf(sdk.Unsupported, "frequency_penalty is not supported by Anthropic's Messages API")
	case req.GetLogprobs() || req.TopLogprobs != nil:
		return sdk.Errorf(sdk.Unsupported, "logprobs are not supported by Anthropic's Messages API")
	case req.GetReasoningEffort() != "":
		return sdk.Errorf(sdk.Unsupported, "reasoning_effort is not supported by the anthropic plugin (extended thinking is not built)")
	}
	return nil
}
