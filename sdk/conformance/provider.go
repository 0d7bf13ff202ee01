package conformance

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// unknownModel is a model name no provider offers.
const unknownModel = "vigil-conformance-no-such-model"

func userMessage(text string) []*pb.Message {
	return []*pb.Message{{Role: "user", Content: text}}
}

func (r *runner) provider(p sdk.ProviderClient) {
	var chatModel, embedModel *pb.ModelInfo
	r.check("provider/models", func() error {
		c, cancel := r.call()
		defer cancel()
		resp, err := p.Models(c)
		if err != nil {
			return fmt.Errorf("the Models call failed: %w", err)
		}
		if len(resp.GetModels()) == 0 {
			return errors.New("the Models call lists no models")
		}
		for i, m := range resp.GetModels() {
			if m.GetId() == "" {
				return fmt.Errorf("models[%d] has no id", i)
			}
			if m.GetContextWindow() < 0 || m.GetEmbeddingDimensions() < 0 {
				return fmt.Errorf("models[%d] (%q) has a negative context window or embedding dimension", i, m.GetId())
			}
			if m.GetChat() && chatModel == nil {
				chatModel = m
			}
			if m.GetEmbeddings() && embedModel == nil {
				embedModel = m
			}
		}
		if chatModel == nil && embedModel == nil {
			return errors.New("no model offers chat or embeddings")
		}
		return nil
	})

	noChat := errSkip("no model offers chat")
	r.check("provider/chat", func() error {
		if chatModel == nil {
			return noChat
		}
		c, cancel := r.call()
		defer cancel()
		maxTokens := int32(32)
		resp, err := p.Chat(c, &pb.ChatRequest{Model: chatModel.GetId(), Messages: userMessage("Reply with the single word: ready"), MaxTokens: &maxTokens})
		if err != nil {
			return fmt.Errorf("the Chat call with model %q failed: %w", chatModel.GetId(), err)
		}
		if strings.TrimSpace(resp.GetContent()) == "" {
			return errors.New("the Chat call answered with empty content")
		}
		if resp.GetFinishReason() == "" {
			return errors.New("the Chat response has no finish_reason")
		}
		return nil
	})
	r.check("provider/chat-stream", func() error {
		if chatModel == nil {
			return noChat
		}
		c, cancel := r.call()
		defer cancel()
		var events []*pb.ChatEvent
		err := p.ChatStream(c, &pb.ChatRequest{Model: chatModel.GetId(), Messages: userMessage("Count from one to five.")}, func(ev *pb.ChatEvent) error {
			events = append(events, ev)
			return nil
		})
		if err != nil {
			return fmt.Errorf("the ChatStream call with model %q failed after %d events: %w", chatModel.GetId(), len(events), err)
		}
		if len(events) == 0 {
			return errors.New("the ChatStream call sent no events")
		}
		var text strings.Builder
		for _, ev := range events {
			text.WriteString(ev.GetDelta())
		}
		if strings.TrimSpace(text.String()) == "" {
			return errors.New("ChatStream's deltas add up to nothing")
		}
		last := events[len(events)-1]
		if last.GetUsage() == nil {
			return errors.New("ChatStream's last event carries no usage")
		}
		if last.GetFinishReason() == "" {
			return errors.New("ChatStream's last event has no finish_reason")
		}
		return nil
	})
	r.check("provider/chat-stream-cancelled", func() error {
		if chatModel == nil {
			return noChat
		}
		return r.chatAfterCancel(p, chatModel.GetId())
	})
	r.check("provider/chat-unknown-model", func() error {
		c, cancel := r.call()
		defer cancel()
		_, err := p.Chat(c, &pb.ChatRequest{Model: unknownModel, Messages: userMessage("hello")})
		classes := []sdk.Class{sdk.InvalidRequest, sdk.NotFound}
		if chatModel == nil {
			// A provider without chat (embeddings only) may say so.
			classes = append(classes, sdk.Unsupported)
		}
		return classed(err, "Chat with an unknown model", false, classes...)
	})
	r.check("provider/chat-no-messages", func() error {
		if chatModel == nil {
			return noChat
		}
		c, cancel := r.call()
		defer cancel()
		_, err := p.Chat(c, &pb.ChatRequest{Model: chatModel.GetId()})
		return classed(err, "Chat without messages", true, sdk.InvalidRequest)
	})

	noEmbed := errSkip("no model offers embeddings")
	r.check("provider/embed", func() error {
		if embedModel == nil {
			return noEmbed
		}
		c, cancel := r.call()
		defer cancel()
		inputs := []string{"the first text", "a second, longer text to embed", "third"}
		resp, err := p.Embed(c, &pb.EmbedRequest{Model: embedModel.GetId(), Input: inputs})
		if err != nil {
			return fmt.Errorf("the Embed call with model %q failed: %w", embedModel.GetId(), err)
		}
		if len(resp.GetEmbeddings()) != len(inputs) {
			return fmt.Errorf("the Embed call of %d inputs returned %d vectors", len(inputs), len(resp.GetEmbeddings()))
		}
		dim := len(resp.GetEmbeddings()[0].GetValues())
		if dim == 0 {
			return errors.New("the Embed call returned an empty vector")
		}
		for i, e := range resp.GetEmbeddings() {
			if len(e.GetValues()) != dim {
				return fmt.Errorf("the Embed vectors differ in dimension: embeddings[0] has %d, embeddings[%d] %d", dim, i, len(e.GetValues()))
			}
			for _, v := range e.GetValues() {
				if !finite(float64(v)) {
					return fmt.Errorf("embeddings[%d] holds %v", i, v)
				}
			}
		}
		if want := int(embedModel.GetEmbeddingDimensions()); want > 0 && dim != want {
			return fmt.Errorf("the Models call says %q has %d dimensions, Embed returned %d", embedModel.GetId(), want, dim)
		}
		return nil
	})
	r.check("provider/embed-no-input", func() error {
		if embedModel == nil {
			return noEmbed
		}
		c, cancel := r.call()
		defer cancel()
		_, err := p.Embed(c, &pb.EmbedRequest{Model: embedModel.GetId()})
		return classed(err, "Embed without input", true, sdk.InvalidRequest)
	})
	r.check("provider/count-tokens", func() error {
		model := chatModel
		if model == nil {
			model = embedModel
		}
		if model == nil {
			return errSkip("no models")
		}
		c, cancel := r.call()
		defer cancel()
		resp, err := p.CountTokens(c, &pb.CountTokensRequest{Model: model.GetId(), Messages: userMessage("How many tokens is this sentence?")})
		if err != nil {
			var e *sdk.Error
			if errors.As(err, &e) && e.Class == sdk.Unsupported {
				return nil // allowed: the agent estimates instead
			}
			return fmt.Errorf("the CountTokens call failed with %v; a provider that cannot count answers class unsupported", err)
		}
		if resp.GetTokens() <= 0 {
			return fmt.Errorf("the CountTokens call counted %d tokens in a non-empty message", resp.GetTokens())
		}
		return nil
	})
}

// errStopStream ends a ChatStream from the caller's side.
var errStopStream = errors.New("stopped by the check")

// chatAfterCancel cancels a ChatStream at its first event, as the agent
// does when its client goes away or plugins.call_timeout passes, then
// asks for a Chat: the plugin must answer it within the call timeout. A
// handler that goes on after its ctx ended while holding what the next
// call needs (one upstream connection, a lock, the only worker) fails it.
// No other timing is asserted: a handler that runs on without holding
// anything cannot be seen from outside.
func (r *runner) chatAfterCancel(p sdk.ProviderClient, model string) error {
	c, cancel := r.call()
	events := 0
	err := p.ChatStream(c, &pb.ChatRequest{Model: model, Messages: userMessage("Count from one to twenty.")}, func(*pb.ChatEvent) error {
		events++
		cancel() // the plugin's handler sees its ctx end
		return errStopStream
	})
	cancel()
	if err != nil && !errors.Is(err, errStopStream) {
		return fmt.Errorf("the ChatStream call with model %q failed before its first event: %w", model, err)
	}
	if events == 0 {
		return errors.New("the ChatStream call sent no events")
	}
	c2, cancel2 := r.call()
	defer cancel2()
	maxTokens := int32(32)
	if _, err := p.Chat(c2, &pb.ChatRequest{Model: model, Messages: userMessage("Reply with the single word: ready"), MaxTokens: &maxTokens}); err != nil {
		if c2.Err() != nil {
			return fmt.Errorf("after a ChatStream was cancelled at its first event, a Chat call got no answer within the call timeout (%s): the cancelled call's handler must stop when its ctx ends and release what it holds", r.opts.CallTimeout)
		}
		return fmt.Errorf("after a ChatStream was cancelled at its first event, a Chat call failed: %w", err)
	}
	return nil
}
