package main

import (
	"github.com/vigilml/vigil/internal/openaiwire"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// choiceLogprobs is a choice's (or a chunk's) logprobs: OpenAI's
// {"content": [...], "refusal": [...]}. Only the content's are carried
// (a refusal has none in the contract).
type choiceLogprobs struct {
	Content []openaiwire.TokenLogprob `json:"content"`
}

// proto is the contract's form; nil for no logprobs.
func (l *choiceLogprobs) proto() ([]*pb.TokenLogprob, error) {
	if l == nil || len(l.Content) == 0 {
		return nil, nil
	}
	out := make([]*pb.TokenLogprob, len(l.Content))
	for i, t := range l.Content {
		b, err := tokenBytes(t.Bytes)
		if err != nil {
			return nil, err
		}
		lp := &pb.TokenLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: b}
		if len(t.TopLogprobs) > 0 {
			lp.TopLogprobs = make([]*pb.TopLogprob, len(t.TopLogprobs))
			for j, alt := range t.TopLogprobs {
				ab, err := tokenBytes(alt.Bytes)
				if err != nil {
					return nil, err
				}
				lp.TopLogprobs[j] = &pb.TopLogprob{Token: alt.Token, Logprob: alt.Logprob, Bytes: ab}
			}
		}
		out[i] = lp
	}
	return out, nil
}

// tokenBytes turns OpenAI's list of byte values into bytes.
func tokenBytes(v []int) ([]byte, error) {
	if len(v) == 0 {
		return nil, nil
	}
	b := make([]byte, len(v))
	for i, x := range v {
		if x < 0 || x > 255 {
			return nil, sdk.Errorf(sdk.Unavailable, "upstream sent a logprob byte value %d, not 0-255", x)
		}
		b[i] = byte(x)
	}
	return b, nil
}

// noLogprobs is the error for an upstream that answered a request for
// logprobs without them (an OpenAI-compatible server that ignores the
// parameter): unsupported, so that the gateway tries the next target
// rather than hand out an answer without what was asked for.
func noLogprobs() error {
	return sdk.Errorf(sdk.Unsupported, "the upstream answered without the logprobs the request asked for: it does not support logprobs")
}
