package main

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// unsupportedParams refuses, as class unsupported, the contract's chat
// parameters the Messages API has no counterpart for, rather than drop
// them: presence_penalty and frequency_penalty (when not 0), logprobs
// and OpenAI's pass-through parameters (openai_params: logit_bias,
// store, metadata, ...). (reasoning_effort becomes extended thinking:
// thinking.go.) The plugin does not declare the "penalties", "logprobs"
// and "openai_params" capabilities, so the gateway does not send them
// here; this is for any other host.
func unsupportedParams(req *pb.ChatRequest) error {
	switch {
	case req.GetPresencePenalty() != 0:
		return sdk.Errorf(sdk.Unsupported, "presence_penalty is not supported by Anthropic's Messages API")
	case req.GetFrequencyPenalty() != 0:
		return sdk.Errorf(sdk.Unsupported, "frequency_penalty is not supported by Anthropic's Messages API")
	case req.GetLogprobs() || req.TopLogprobs != nil:
		return sdk.Errorf(sdk.Unsupported, "logprobs are not supported by Anthropic's Messages API")
	case req.GetOpenaiParams() != "" && req.GetOpenaiParams() != "{}":
		names := openAIParamNames(req.GetOpenaiParams())
		return sdk.Errorf(sdk.Unsupported, "%s: OpenAI request parameters (openai_params) are not supported by the anthropic plugin; the Messages API has no counterpart for them", names)
	}
	return nil
}

// openAIParamNames are the keys of openai_params (a JSON object), sorted
// and joined, for messages; "openai_params" when it is not an object.
func openAIParamNames(params string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(params), &m) != nil || len(m) == 0 {
		return "openai_params"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
