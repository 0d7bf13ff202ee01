package sdk

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// waiter is a plugin whose every call waits for its ctx to end and
// reports how it ended: the handler a plugin author writes when it honours
// ctx (an upstream call made with ctx ends the same way).
type waiter struct{ ended chan error }

func (w waiter) wait(ctx context.Context) error {
	<-ctx.Done()
	w.ended <- ctx.Err()
	return ctx.Err()
}

func (w waiter) Describe(ctx context.Context) (*pb.DescribeResponse, error) { return nil, w.wait(ctx) }
func (w waiter) Detect(ctx context.Context, _ *DetectRequest) (*pb.DetectResponse, error) {
	return nil, w.wait(ctx)
}
func (w waiter) Models(ctx context.Context) (*pb.ModelsResponse, error) { return nil, w.wait(ctx) }
func (w waiter) Chat(ctx context.Context, _ *pb.ChatRequest) (*pb.ChatResponse, error) {
	return nil, w.wait(ctx)
}
func (w waiter) ChatStream(ctx context.Context, _ *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	if err := send(&pb.ChatEvent{Delta: "first"}); err != nil {
		return err
	}
	return w.wait(ctx)
}
func (w waiter) Embed(ctx context.Context, _ *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	return nil, w.wait(ctx)
}
func (w waiter) CountTokens(ctx context.Context, _ *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, w.wait(ctx)
}

// TestHandlerCtxEndsAtHostDeadline: when the host's deadline for a call
// passes (plugins.call_timeout) or the host gives up on it, the SDK ends
// the handler's ctx, for unary calls, client streams (Detect), server
// streams (ChatStream) and calls on a provider session alike, so a
// handler that honours ctx stops. The client side is the SDK's own, as in
// the agent; the server runs with the SDK's server options.
func TestHandlerCtxEndsAtHostDeadline(t *testing.T) {
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	w := waiter{ended: make(chan error, 1)}
	srv := grpc.NewServer(serverOptions()...)
	if err := (&DetectorPlugin{Impl: w}).GRPCServer(nil, srv); err != nil {
		t.Fatal(err)
	}
	pb.RegisterProviderServer(srv, &providerServer{impl: w})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	cc, err := grpc.NewClient("unix:"+lis.Addr().String(), append(ClientDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	det, _ := (&DetectorPlugin{}).GRPCClient(context.Background(), nil, cc)
	prov, _ := (&ProviderPlugin{}).GRPCClient(context.Background(), nil, cc)
	d, p := det.(DetectorClient), prov.(ProviderClient)
	// The same provider calls as RPCs of their own, as for a plugin
	// without sessions.
	rpc := &providerClient{c: pb.NewProviderClient(cc)}

	calls := map[string]func(context.Context) error{
		"Describe (unary)": func(ctx context.Context) error { _, err := d.Describe(ctx); return err },
		"Detect (client stream)": func(ctx context.Context) error {
			_, err := d.Detect(ctx, &DetectRequest{Method: "m", ReferenceNumeric: []float64{1, 2}, CurrentNumeric: []float64{1}})
			return err
		},
		"Chat (session)": func(ctx context.Context) error { _, err := p.Chat(ctx, &pb.ChatRequest{Model: "m"}); return err },
		"ChatStream (session)": func(ctx context.Context) error {
			return p.ChatStream(ctx, &pb.ChatRequest{Model: "m"}, func(*pb.ChatEvent) error { return nil })
		},
		"Embed (session)": func(ctx context.Context) error { _, err := p.Embed(ctx, &pb.EmbedRequest{Model: "m"}); return err },
		"Chat (unary)":    func(ctx context.Context) error { _, err := rpc.Chat(ctx, &pb.ChatRequest{Model: "m"}); return err },
		"ChatStream (server stream)": func(ctx context.Context) error {
			return rpc.ChatStream(ctx, &pb.ChatRequest{Model: "m"}, func(*pb.ChatEvent) error { return nil })
		},
	}
	for name, call := range calls {
		for _, how := range []string{"deadline", "cancel"} {
			t.Run(name+"/"+how, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
				if how == "cancel" {
					ctx, cancel = context.WithCancel(context.Background())
					time.AfterFunc(300*time.Millisecond, cancel)
				}
				defer cancel()
				if err := call(ctx); err == nil {
					t.Fatal("the call succeeded; the handler never answers")
				}
				// No timing assertion beyond "it ends": the bound is
				// only there so a broken SDK fails instead of hanging.
				select {
				case err := <-w.ended:
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						t.Errorf("the handler's ctx ended with %v", err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("the handler's ctx did not end after the host's deadline passed")
				}
			})
		}
	}
}
