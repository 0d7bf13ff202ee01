package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is the answer's reasoning on the chat completions API, in
// LiteLLM's convention (which the OpenAI SDKs pass through, keeping
// fields they do not know): an assistant message's reasoning_content (the
// reasoning text) and thinking_blocks (the signed blocks Anthropic wants
// back to continue a tool loop with extended thinking), in answers, in
// streamed deltas and in the cache, and thinking_blocks in the assistant
// messages a client sends back.

// thinkingBlockJSON is one entry of thinking_blocks: {"type": "thinking",
// "thinking", "signature"} or {"type": "redacted_thinking", "data"}.
type thinkingBlockJSON struct {
	Type      string  `json:"type"`
	Thinking  *string `json:"thinking,omitempty"`
	Signature *string `json:"signature,omitempty"`
	Data      *string `json:"data,omitempty"`
}

// thinkingBlocksOut are contract blocks in the wire's shape; nil for none.
func thinkingBlocksOut(blocks []*pb.ThinkingBlock) []thinkingBlockJSON {
	if len(blocks) == 0 {
		return nil
	}
	out := make([]thinkingBlockJSON, len(blocks))
	for i, b := range blocks {
		out[i].Type = b.GetType()
		if b.GetType() == "redacted_thinking" {
			d := b.GetData()
			out[i].Data = &d
			continue
		}
		th, sig := b.GetThinking(), b.GetSignature()
		out[i].Thinking, out[i].Signature = &th, &sig
	}
	return out
}

// contractThinking checks a message's reasoning_content and
// thinking_blocks (field is "messages[i]") and puts the blocks into pm.
// Both are only for assistant messages. reasoning_content, a string or
// null, is accepted and not passed on: it is what an answer's message
// carries, so that the message can be sent back as it came, and no
// upstream wants it back (Anthropic checks the signed blocks; DeepSeek
// refuses it in input). thinking_blocks is checked strictly, each entry
// exactly {"type": "thinking", "thinking": string, "signature": non-empty
// string} or {"type": "redacted_thinking", "data": non-empty string}.
func contractThinking(field string, m *chatMessage, pm *pb.Message) *Error {
	if !isNull(m.ReasoningContent) {
		if pm.Role != "assistant" {
			return invalid(field+".reasoning_content", "%s.reasoning_content is only allowed in assistant messages", field)
		}
		var s string
		if json.Unmarshal(m.ReasoningContent, &s) != nil {
			return invalid(field+".reasoning_content", "%s.reasoning_content must be a string or null", field)
		}
	}
	if isNull(m.ThinkingBlocks) {
		return nil
	}
	if pm.Role != "assistant" {
		return invalid(field+".thinking_blocks", "%s.thinking_blocks is only allowed in assistant messages: the reasoning blocks of the answer the message repeats", field)
	}
	var list []json.RawMessage
	if json.Unmarshal(m.ThinkingBlocks, &list) != nil {
		return invalid(field+".thinking_blocks", "%s.thinking_blocks must be an array of thinking blocks, as the answer's message carried them", field)
	}
	pm.ThinkingBlocks = make([]*pb.ThinkingBlock, 0, len(list))
	for j, raw := range list {
		f := fmt.Sprintf("%s.thinking_blocks[%d]", field, j)
		b, e := thinkingBlockIn(f, raw)
		if e != nil {
			return e
		}
		pm.ThinkingBlocks = append(pm.ThinkingBlocks, b)
	}
	return nil
}

// thinkingBlockIn checks one thinking_blocks entry (at field f).
func thinkingBlockIn(f string, raw json.RawMessage) (*pb.ThinkingBlock, *Error) {
	var obj map[string]json.RawMessage
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		_ = json.Unmarshal(raw, &obj)
	}
	if obj == nil {
		return nil, invalid(f, `%s must be an object: {"type": "thinking", "thinking", "signature"} or {"type": "redacted_thinking", "data"}`, f)
	}
	str := func(key string, required bool) (string, *Error) {
		v, ok := obj[key]
		var s string
		if !ok || json.Unmarshal(v, &s) != nil || isNull(v) {
			return "", invalid(f+"."+key, "%s.%s is required and must be a string, as the answer gave it", f, key)
		}
		if required && s == "" {
			return "", invalid(f+"."+key, "%s.%s must not be empty: send it back as the answer gave it", f, key)
		}
		return s, nil
	}
	typ, e := str("type", true)
	if e != nil {
		return nil, e
	}
	var known []string
	b := &pb.ThinkingBlock{Type: typ}
	switch typ {
	case "thinking":
		known = []string{"type", "thinking", "signature"}
		if b.Thinking, e = str("thinking", false); e != nil {
			return nil, e
		}
		if b.Signature, e = str("signature", true); e != nil {
			return nil, e
		}
	case "redacted_thinking":
		known = []string{"type", "data"}
		if b.Data, e = str("data", true); e != nil {
			return nil, e
		}
	default:
		return nil, invalid(f+".type", "%s.type %q is not thinking or redacted_thinking", f, typ)
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(known, k) {
			return nil, invalid(f+"."+k, "%s.%s: unknown field in a %s block (its fields are %v)", f, k, typ, known)
		}
	}
	return b, nil
}

// cachedThinkingBlock is a thinking block as the cache stores it.
type cachedThinkingBlock struct {
	Type      string `json:"type"`
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

func cacheThinking(blocks []*pb.ThinkingBlock) []cachedThinkingBlock {
	if len(blocks) == 0 {
		return nil
	}
	out := make([]cachedThinkingBlock, len(blocks))
	for i, b := range blocks {
		out[i] = cachedThinkingBlock{b.GetType(), b.GetThinking(), b.GetSignature(), b.GetData()}
	}
	return out
}

// thinkingBlocks are the cached blocks in the contract's form.
func (a *cachedAnswer) thinkingBlocks() []*pb.ThinkingBlock {
	if len(a.ThinkingBlocks) == 0 {
		return nil
	}
	out := make([]*pb.ThinkingBlock, len(a.ThinkingBlocks))
	for i, b := range a.ThinkingBlocks {
		out[i] = &pb.ThinkingBlock{Type: b.Type, Thinking: b.Thinking, Signature: b.Signature, Data: b.Data}
	}
	return out
}
