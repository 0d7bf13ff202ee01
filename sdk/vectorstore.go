package sdk

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// VectorStore is a vector store plugin. Return a NotFound *Error for an
// unknown collection and an InvalidRequest *Error naming the field for a
// vector of the wrong dimension.
type VectorStore interface {
	CreateCollection(ctx context.Context, req *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error)
	DropCollection(ctx context.Context, req *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error)
	Upsert(ctx context.Context, req *pb.UpsertRequest) (*pb.UpsertResponse, error)
	Query(ctx context.Context, req *pb.QueryRequest) (*pb.QueryResponse, error)
	Delete(ctx context.Context, req *pb.DeleteRequest) (*pb.DeleteResponse, error)
	Stats(ctx context.Context, req *pb.StatsRequest) (*pb.StatsResponse, error)
}

// VectorStoreClient is the host's handle on a vector store plugin.
type VectorStoreClient interface {
	Base
	VectorStore
}

// ServeVectorStore serves v as a vector store plugin. Call it from main.
func ServeVectorStore(info Info, v VectorStore) {
	serve(KindVectorStore, &VectorStorePlugin{Info: info, Impl: v})
}

// VectorStorePlugin is the go-plugin glue for vector stores.
type VectorStorePlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Info Info
	Impl VectorStore
}

// GRPCServer registers the vector store's services.
func (p *VectorStorePlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &infoServer{kind: KindVectorStore, info: p.Info, impl: p.Impl})
	pb.RegisterVectorStoreServer(s, vectorStoreServer{impl: p.Impl})
	return nil
}

// GRPCClient returns a VectorStoreClient.
func (p *VectorStorePlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return &vectorStoreClient{baseClient: baseClient{pb.NewPluginClient(c)}, VectorStore: vectorStoreStub{pb.NewVectorStoreClient(c)}}, nil
}

type vectorStoreServer struct {
	pb.UnimplementedVectorStoreServer
	impl VectorStore
}

func (s vectorStoreServer) CreateCollection(ctx context.Context, r *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	return s.impl.CreateCollection(ctx, r)
}

func (s vectorStoreServer) DropCollection(ctx context.Context, r *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error) {
	return s.impl.DropCollection(ctx, r)
}

func (s vectorStoreServer) Upsert(ctx context.Context, r *pb.UpsertRequest) (*pb.UpsertResponse, error) {
	return s.impl.Upsert(ctx, r)
}

func (s vectorStoreServer) Query(ctx context.Context, r *pb.QueryRequest) (*pb.QueryResponse, error) {
	return s.impl.Query(ctx, r)
}

func (s vectorStoreServer) Delete(ctx context.Context, r *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	return s.impl.Delete(ctx, r)
}

func (s vectorStoreServer) Stats(ctx context.Context, r *pb.StatsRequest) (*pb.StatsResponse, error) {
	return s.impl.Stats(ctx, r)
}

// vectorStoreStub adapts the generated client (which takes call options)
// to the VectorStore interface.
type vectorStoreStub struct{ c pb.VectorStoreClient }

func (v vectorStoreStub) CreateCollection(ctx context.Context, r *pb.CreateCollectionRequest) (*pb.CreateCollectionResponse, error) {
	return v.c.CreateCollection(ctx, r)
}

func (v vectorStoreStub) DropCollection(ctx context.Context, r *pb.DropCollectionRequest) (*pb.DropCollectionResponse, error) {
	return v.c.DropCollection(ctx, r)
}

func (v vectorStoreStub) Upsert(ctx context.Context, r *pb.UpsertRequest) (*pb.UpsertResponse, error) {
	return v.c.Upsert(ctx, r)
}

func (v vectorStoreStub) Query(ctx context.Context, r *pb.QueryRequest) (*pb.QueryResponse, error) {
	return v.c.Query(ctx, r)
}

func (v vectorStoreStub) Delete(ctx context.Context, r *pb.DeleteRequest) (*pb.DeleteResponse, error) {
	return v.c.Delete(ctx, r)
}

func (v vectorStoreStub) Stats(ctx context.Context, r *pb.StatsRequest) (*pb.StatsResponse, error) {
	return v.c.Stats(ctx, r)
}

type vectorStoreClient struct {
	baseClient
	VectorStore
}
