package sdk

import (
	"context"
	"errors"
	"testing"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// embedOnly is a provider written as the docs show: UnsupportedProvider
// embedded, Models and Embed its own.
type embedOnly struct{ UnsupportedProvider }

func (embedOnly) Models(context.Context) (*pb.ModelsResponse, error) {
	return &pb.ModelsResponse{Models: []*pb.ModelInfo{{Id: "e", Embeddings: true}}}, nil
}

func (embedOnly) Embed(context.Context, *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	return &pb.EmbedResponse{}, nil
}

var _ Provider = embedOnly{}

// TestUnsupportedProvider: the methods a provider does not write answer
// class unsupported, naming what is missing; its own are called.
func TestUnsupportedProvider(t *testing.T) {
	var p Provider = embedOnly{}
	ctx := context.Background()
	if m, err := p.Models(ctx); err != nil || len(m.GetModels()) != 1 {
		t.Fatalf("Models: %v, %v; want the provider's own", m, err)
	}
	if _, err := p.Embed(ctx, &pb.EmbedRequest{}); err != nil {
		t.Fatalf("Embed: %v; want the provider's own", err)
	}
	_, chatErr := p.Chat(ctx, &pb.ChatRequest{})
	streamErr := p.ChatStream(ctx, &pb.ChatRequest{}, func(*pb.ChatEvent) error { return nil })
	_, countErr := p.CountTokens(ctx, &pb.CountTokensRequest{})
	_, modelsErr := UnsupportedProvider{}.Models(ctx)
	for name, err := range map[string]error{"Chat": chatErr, "ChatStream": streamErr, "CountTokens": countErr, "Models": modelsErr} {
		var e *Error
		if !errors.As(err, &e) || e.Class != Unsupported || e.Message == "" {
			t.Errorf("%s: %v; want an *Error of class unsupported", name, err)
		}
	}
}
