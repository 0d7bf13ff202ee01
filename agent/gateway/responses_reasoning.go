package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// This file is the answer's reasoning on the Responses API, in OpenAI's
// shape: a reasoning output item ({"type": "reasoning", "id": "rs_...",
// "summary": [{"type": "summary_text", "text"}], "encrypted_content"})
// before the message and function calls, streamed as OpenAI streams one;
// and reasoning input items, whose signed thinking blocks go back first in
// the assistant turn they precede (what Anthropic needs to continue a tool
// loop with extended thinking).
//
// The summary is the upstream's reasoning text (Anthropic's thinking, or
// its summarized thinking; DeepSeek's or vLLM's reasoning_content), not a
// summary written by OpenAI. encrypted_content is not encrypted: it is
// base64 of a small versioned JSON object holding the answer's thinking
// blocks as the upstream gave them ({"vigil_thinking": 1, "blocks":
// [...]}); Anthropic's signatures are what guard their integrity.

// packedVersion is the version of encrypted_content's JSON.
const packedVersion = 1

// packedReasoning is what encrypted_content holds, before base64.
type packedReasoning struct {
	Version int                 `json:"vigil_thinking"`
	Blocks  []thinkingBlockJSON `json:"blocks"`
}

// packThinking is encrypted_content for blocks (none: an empty list).
func packThinking(blocks []*pb.ThinkingBlock) string {
	p := packedReasoning{Version: packedVersion, Blocks: thinkingBlocksOut(blocks)}
	if p.Blocks == nil {
		p.Blocks = []thinkingBlockJSON{}
	}
	b, _ := json.Marshal(p)
	return base64.StdEncoding.EncodeToString(b)
}

// unpackThinking reads encrypted_content (at field) back into the blocks
// it packs, strictly: what is not this gateway's packing, or holds a
// block that is not exactly one of the answers' shapes, is a 400 naming
// field.
func unpackThinking(field, s string) ([]*pb.ThinkingBlock, *Error) {
	bad := func(why string, args ...any) *Error {
		return invalid(field, "%s is not the encrypted_content of a reasoning item this gateway gave (%s): send it back exactly as the answer gave it (the encrypted_content of OpenAI's own reasoning items cannot be read here)", field, fmt.Sprintf(why, args...))
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, bad("not base64: %v", err)
	}
	var p struct {
		Version *int               `json:"vigil_thinking"`
		Blocks  *[]json.RawMessage `json:"blocks"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || dec.More() {
		return nil, bad("not its JSON object")
	}
	if p.Version == nil || *p.Version != packedVersion {
		return nil, bad("version missing or not %d", packedVersion)
	}
	if p.Blocks == nil {
		return nil, bad("no blocks")
	}
	out := make([]*pb.ThinkingBlock, 0, len(*p.Blocks))
	for j, rawBlock := range *p.Blocks {
		b, e := thinkingBlockIn(fmt.Sprintf("blocks[%d]", j), rawBlock)
		if e != nil {
			return nil, bad("%s", e.Message)
		}
		out = append(out, b)
	}
	return out, nil
}

// summaryTextJSON is a summary_text part of a reasoning item.
type summaryTextJSON struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// reasoningItemJSON is a reasoning output item. blocks are the thinking
// blocks it stands for (kept with the item; in encrypted_content only
// when the request's include asked for it).
type reasoningItemJSON struct {
	ID               string            `json:"id"`
	Type             string            `json:"type"`
	Summary          []summaryTextJSON `json:"summary"`
	EncryptedContent *string           `json:"encrypted_content,omitempty"`
	blocks           []*pb.ThinkingBlock
}

// reasoningItem is the reasoning output item for an answer's reasoning
// text and thinking blocks; encrypted says the request asked for
// encrypted_content.
func reasoningItem(id, text string, blocks []*pb.ThinkingBlock, encrypted bool) *reasoningItemJSON {
	it := &reasoningItemJSON{ID: id, Type: "reasoning", Summary: []summaryTextJSON{}, blocks: blocks}
	if text != "" {
		it.Summary = append(it.Summary, summaryTextJSON{Type: "summary_text", Text: text})
	}
	if encrypted {
		packed := packThinking(blocks)
		it.EncryptedContent = &packed
	}
	return it
}

// keptReasoning is a reasoning item as the item store keeps it: what a
// client would send back by value, its encrypted_content always there
// (whatever include said), so that a reference, or the item sent back by
// id without encrypted_content, resolves to its blocks. The summary is
// left out: it is not sent upstream.
type keptReasoning struct {
	Type             string            `json:"type"`
	ID               string            `json:"id"`
	Summary          []summaryTextJSON `json:"summary"`
	EncryptedContent string            `json:"encrypted_content"`
}

func keptReasoningOf(it *reasoningItemJSON) keptReasoning {
	return keptReasoning{Type: "reasoning", ID: it.ID, Summary: []summaryTextJSON{}, EncryptedContent: packThinking(it.blocks)}
}

// reasoningIn reads a reasoning input item (at path): its thinking blocks,
// from its encrypted_content or, without one, from the item this gateway
// keeps under its id. summary (summary_text parts), content
// (reasoning_text parts), id and status are checked and not passed on.
func (rw *responsesAPI) reasoningIn(path string, fields map[string]json.RawMessage) ([]*pb.ThinkingBlock, *Error) {
	for _, key := range []string{"summary", "content"} {
		raw := fields[key]
		if isNull(raw) {
			continue
		}
		part := "summary_text"
		if key == "content" {
			part = "reasoning_text"
		}
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil {
			return nil, invalid(path+"."+key, "%s.%s must be an array of %s parts, got %s", path, key, part, jsonType(raw))
		}
		for j, p := range list {
			pf := fmt.Sprintf("%s.%s[%d]", path, key, j)
			var v struct {
				Type string  `json:"type"`
				Text *string `json:"text"`
			}
			dec := json.NewDecoder(bytes.NewReader(p))
			dec.DisallowUnknownFields()
			if dec.Decode(&v) != nil || v.Type != part || v.Text == nil {
				return nil, invalid(pf, "%s must be {\"type\": %q, \"text\": ...}", pf, part)
			}
		}
	}
	var id string
	if raw, ok := fields["id"]; ok && !isNull(raw) {
		if jsonType(raw) != "a string" || json.Unmarshal(raw, &id) != nil {
			return nil, invalid(path+".id", "%s.id must be a string: the id of the reasoning item (rs_...)", path)
		}
	}
	field := path + ".encrypted_content"
	if raw := fields["encrypted_content"]; !isNull(raw) {
		var s string
		if jsonType(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
			return nil, invalid(field, "%s must be a string, as the answer gave it", field)
		}
		return unpackThinking(field, s)
	}
	// Without encrypted_content: the item kept under its id, as OpenAI
	// reads a stored reasoning item.
	if id != "" {
		if raw, ok := rw.items.get(rw.scope, id); ok {
			kept, e := object(path, raw)
			if e != nil {
				return nil, e
			}
			var s string
			if typ, _ := itemType(path, kept); typ == "reasoning" && json.Unmarshal(kept["encrypted_content"], &s) == nil {
				return unpackThinking(field, s)
			}
		}
	}
	why := "its id is not one this agent keeps for the API token (unknown, given with store false, or no longer kept)"
	if id == "" {
		why = "it has no id either"
	}
	return nil, invalid(field, "%s is required: the reasoning item has no encrypted_content and %s, so its reasoning cannot be sent back; ask for it with include: [\"reasoning.encrypted_content\"] (with store: false) and send the item back as it came, or keep store on (the default) and send the item, or an item_reference to it, within the item store's bounds, or continue with previous_response_id", field, why)
}

// thinkingRefusalRE is the chat field of the anthropic plugin's refusal of
// a tool loop continued with reasoning_effort and no thinking blocks.
var thinkingRefusalRE = regexp.MustCompile(`^messages\[(\d+)\]\.thinking_blocks$`)

// thinkingRefusal rewrites that refusal for the Responses API, naming the
// function_call item that made the call (or previous_response_id) and
// saying how to send its reasoning item back; nil for another error.
func (m *fieldMap) thinkingRefusal(e *Error) *Error {
	if e.Param == nil || m == nil {
		return nil
	}
	sub := thinkingRefusalRE.FindStringSubmatch(*e.Param)
	if sub == nil {
		return nil
	}
	var i int
	_, _ = fmt.Sscan(sub[1], &i)
	if i >= len(m.msgs) {
		return nil
	}
	src := m.msgs[i]
	p := src.path
	if src.path != "previous_response_id" && len(src.calls) > 0 {
		p = src.calls[0]
	}
	out := *e
	out.Param = &p
	out.Message = fmt.Sprintf("%s is a function_call of the assistant turn this request continues: with extended thinking (reasoning.effort) on this alias's upstream, that turn must start with the reasoning item of the answer that made the call, and none came before it; send that answer's reasoning item back just before its function_call items: by value with its encrypted_content (ask for it with include: [\"reasoning.encrypted_content\"], as store: false clients do), or with store on (the default) by id or as an item_reference, or continue with previous_response_id; or send this request without reasoning.effort", p)
	return &out
}

// --- streaming ----------------------------------------------------------

// streamReasoning is the reasoning item being streamed.
type streamReasoning struct {
	index    int
	item     *reasoningItemJSON
	text     strings.Builder
	partOpen bool
}

// reasoning streams the answer's reasoning as a reasoning item, as OpenAI
// streams one: output_item.added; for the text, reasoning_summary_part.added
// and a reasoning_summary_text.delta per piece; and, when the next item
// begins (or the answer ends), reasoning_summary_text.done,
// reasoning_summary_part.done and output_item.done with the summary and,
// when asked for, encrypted_content. Reasoning after another item (an
// upstream's interleaved thinking) opens a second reasoning item there.
func (s *responseEvents) reasoning(text string, blocks []*pb.ThinkingBlock) error {
	if text == "" && len(blocks) == 0 {
		return nil
	}
	if s.rs == nil || s.open != s.rs.index {
		if err := s.closeOpen("completed"); err != nil {
			return err
		}
		s.rs = &streamReasoning{index: len(s.items), item: &reasoningItemJSON{ID: newID("rs_"), Type: "reasoning", Summary: []summaryTextJSON{}}}
		s.items = append(s.items, s.rs.item)
		s.open, s.isText = s.rs.index, false
		added := *s.rs.item
		if err := s.named("response.output_item.added", map[string]any{"output_index": s.rs.index, "item": &added}); err != nil {
			return err
		}
	}
	rs := s.rs
	if text != "" {
		if !rs.partOpen {
			rs.partOpen = true
			if err := s.named("response.reasoning_summary_part.added", map[string]any{"item_id": rs.item.ID, "output_index": rs.index, "summary_index": 0, "part": summaryTextJSON{Type: "summary_text"}}); err != nil {
				return err
			}
		}
		rs.text.WriteString(text)
		if err := s.named("response.reasoning_summary_text.delta", map[string]any{"item_id": rs.item.ID, "output_index": rs.index, "summary_index": 0, "delta": text}); err != nil {
			return err
		}
	}
	rs.item.blocks = append(rs.item.blocks, blocks...)
	return nil
}

// closeReasoning ends the open reasoning item.
func (s *responseEvents) closeReasoning() error {
	rs := s.rs
	done := reasoningItem(rs.item.ID, rs.text.String(), rs.item.blocks, s.rw.req.encrypted)
	*rs.item = *done
	if rs.partOpen {
		rs.partOpen = false
		part := done.Summary[0]
		if err := s.named("response.reasoning_summary_text.done", map[string]any{"item_id": done.ID, "output_index": rs.index, "summary_index": 0, "text": part.Text}); err != nil {
			return err
		}
		if err := s.named("response.reasoning_summary_part.done", map[string]any{"item_id": done.ID, "output_index": rs.index, "summary_index": 0, "part": part}); err != nil {
			return err
		}
	}
	return s.named("response.output_item.done", map[string]any{"output_index": rs.index, "item": done})
}

// answered reports whether items hold a message or a function call (not
// only reasoning).
func answered(items []any) bool {
	for _, it := range items {
		if _, ok := it.(*reasoningItemJSON); !ok {
			return true
		}
	}
	return false
}
