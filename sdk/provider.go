package sdk

import (
	"context"
	"errors"
	"io"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// Provider is an LLM provider plugin.
type Provider interface {
	Models(ctx context.Context) (*pb.ModelsResponse, error)
	Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error)
	// ChatStream calls send for each delta; the last event carries
	// finish_reason and usage. Stop early when send returns an error (the
	// client went away).
	ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error
	Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error)
	// CountTokens returns an Unsupported *Error when the provider cannot
	// count exactly; the agent then estimates.
	CountTokens(ctx context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error)
}

// UnsupportedProvider answers every Provider method with an Unsupported
// error naming the method, as the Python SDK's defaults do. Embed it in a
// provider and write only the methods it offers:
//
//	type embedder struct{ sdk.UnsupportedProvider }
//
//	func (embedder) Models(ctx context.Context) (*pb.ModelsResponse, error) { ... }
//	func (embedder) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) { ... }
//
// Models is still needed in practice: the conformance kit exercises the
// models it lists and fails a provider that lists none. The agent's gateway
// does not call it: it sends each request to the model its gateway.models
// target names, with that target's context window, not ModelInfo's.
type UnsupportedProvider struct{}

// Models answers Unsupported.
func (UnsupportedProvider) Models(context.Context) (*pb.ModelsResponse, error) {
	return nil, Errorf(Unsupported, "this provider does not list its models")
}

// Chat answers Unsupported.
func (UnsupportedProvider) Chat(context.Context, *pb.ChatRequest) (*pb.ChatResponse, error) {
	return nil, Errorf(Unsupported, "this provider has no chat")
}

// ChatStream answers Unsupported.
func (UnsupportedProvider) ChatStream(context.Context, *pb.ChatRequest, func(*pb.ChatEvent) error) error {
	return Errorf(Unsupported, "this provider has no streaming chat")
}

// Embed answers Unsupported.
func (UnsupportedProvider) Embed(context.Context, *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	return nil, Errorf(Unsupported, "this provider has no embeddings")
}

// CountTokens answers Unsupported: the agent then estimates.
func (UnsupportedProvider) CountTokens(context.Context, *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, Errorf(Unsupported, "this provider does not count tokens")
}

// ProviderClient is the host's handle on a provider plugin.
type ProviderClient interface {
	Base
	Provider
}

// ServeProvider serves p as a provider plugin. Call it from main.
func ServeProvider(info Info, p Provider) {
	serve(KindProvider, &ProviderPlugin{Info: info, Impl: p})
}

// ProviderPlugin is the go-plugin glue for providers.
type ProviderPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Info Info
	Impl Provider
}

// GRPCServer registers the provider's services.
func (p *ProviderPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &infoServer{kind: KindProvider, info: p.Info, impl: p.Impl})
	pb.RegisterProviderServer(s, &providerServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a ProviderClient.
func (p *ProviderPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	pc := pb.NewProviderClient(c)
	return &providerClient{baseClient: baseClient{pb.NewPluginClient(c)}, c: pc, s: &sessions{c: pc}}, nil
}

type providerServer struct {
	pb.UnimplementedProviderServer
	impl Provider
}

func (s *providerServer) Models(ctx context.Context, _ *pb.ModelsRequest) (*pb.ModelsResponse, error) {
	return s.impl.Models(ctx)
}

func (s *providerServer) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	return s.impl.Chat(ctx, req)
}

func (s *providerServer) ChatStream(req *pb.ChatRequest, stream grpc.ServerStreamingServer[pb.ChatEvent]) error {
	return s.impl.ChatStream(stream.Context(), req, stream.Send)
}

func (s *providerServer) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	return s.impl.Embed(ctx, req)
}

func (s *providerServer) CountTokens(ctx context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return s.impl.CountTokens(ctx, req)
}

type providerClient struct {
	baseClient
	c pb.ProviderClient
	// s carries Chat, ChatStream and Embed when the plugin serves sessions
	// (session.go); nil sends each as an RPC.
	s *sessions
}

func (p *providerClient) Models(ctx context.Context) (*pb.ModelsResponse, error) {
	return p.c.Models(ctx, &pb.ModelsRequest{})
}

func (p *providerClient) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	if p.s != nil {
		if resp, ok, err := answer(ctx, p.s, &pb.SessionCall{Call: &pb.SessionCall_Chat{Chat: req}}, "Chat", (*pb.SessionReply).GetChat); ok {
			return resp, err
		}
	}
	return p.c.Chat(ctx, req)
}

func (p *providerClient) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if p.s != nil {
		err := p.s.do(ctx, &pb.SessionCall{Call: &pb.SessionCall_ChatStream{ChatStream: req}}, func(r *pb.SessionReply) error {
			ev := r.GetChatEvent()
			if ev == nil {
				return unexpectedReply("ChatStream", r)
			}
			return send(ev)
		})
		if err != errNoSessions {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := p.c.ChatStream(ctx, req)
	if err != nil {
		return fromStatus(err, nil)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fromStatus(err, stream.Trailer())
		}
		if err := send(ev); err != nil {
			return err
		}
	}
}

func (p *providerClient) Embed(ctx context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	if p.s != nil {
		if resp, ok, err := answer(ctx, p.s, &pb.SessionCall{Call: &pb.SessionCall_Embed{Embed: req}}, "Embed", (*pb.SessionReply).GetEmbed); ok {
			return resp, err
		}
	}
	return p.c.Embed(ctx, req)
}

func (p *providerClient) CountTokens(ctx context.Context, req *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return p.c.CountTokens(ctx, req)
}
