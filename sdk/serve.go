package sdk

import (
	"context"
	"os"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// serve runs the go-plugin server for one plugin of kind k. It returns
// when the host tells the plugin to stop.
func serve(k Kind, p plugin.Plugin) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		os.Stderr.WriteString("This is a Vigil plugin. It is started by the Vigil agent, not by hand.\n" +
			"Register it with `vigil plugins register PATH` and configure it in the agent's config.\n")
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ContractVersion: {string(k): p},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts, serverOptions()...)...)
		},
	})
}

// infoServer serves the Plugin service every plugin has.
type infoServer struct {
	pb.UnimplementedPluginServer
	kind Kind
	info Info
	impl any
}

func (s *infoServer) Info(context.Context, *pb.InfoRequest) (*pb.InfoResponse, error) {
	return &pb.InfoResponse{
		Name:            s.info.Name,
		Kind:            string(s.kind),
		Version:         s.info.Version,
		ContractVersion: ContractVersion,
		Capabilities:    s.info.Capabilities,
	}, nil
}

func (s *infoServer) Configure(_ context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	c, ok := s.impl.(Configurer)
	if !ok {
		if len(req.GetConfig().GetFields()) > 0 {
			return &pb.ConfigureResponse{Errors: []*pb.FieldError{{Field: "", Message: "this plugin takes no configuration"}}}, nil
		}
		return &pb.ConfigureResponse{}, nil
	}
	var out pb.ConfigureResponse
	for _, fe := range c.Configure(req.GetConfig().AsMap()) {
		out.Errors = append(out.Errors, &pb.FieldError{Field: fe.Field, Message: fe.Message})
	}
	return &out, nil
}

// Base is what the host can ask of every plugin, whatever its kind.
type Base interface {
	Info(ctx context.Context) (*pb.InfoResponse, error)
	Configure(ctx context.Context, config map[string]any) ([]FieldError, error)
}

// baseClient is the host side of the Plugin service.
type baseClient struct {
	c pb.PluginClient
}

func (b baseClient) Info(ctx context.Context) (*pb.InfoResponse, error) {
	return b.c.Info(ctx, &pb.InfoRequest{})
}

func (b baseClient) Configure(ctx context.Context, config map[string]any) ([]FieldError, error) {
	s, err := structpb.NewStruct(config)
	if err != nil {
		return nil, FieldErrorf("config", "configuration cannot be sent to the plugin: %v", err)
	}
	resp, err := b.c.Configure(ctx, &pb.ConfigureRequest{Config: s})
	if err != nil {
		return nil, err
	}
	var out []FieldError
	for _, fe := range resp.GetErrors() {
		out = append(out, FieldError{Field: fe.GetField(), Message: fe.GetMessage()})
	}
	return out, nil
}

// PluginMap returns the go-plugin sets a host needs to dispense every kind,
// by contract version.
func PluginMap() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ContractVersion: {
			string(KindDetector):    &DetectorPlugin{},
			string(KindProvider):    &ProviderPlugin{},
			string(KindVectorStore): &VectorStorePlugin{},
		},
	}
}
