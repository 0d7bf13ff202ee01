package sdk

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// scripted is a provider whose answers depend on the request's model:
// "ok" answers, "err" fails with a typed error, "panic" panics, "stream"
// streams three events, "stream-err" fails after one event, "wait" waits
// for its ctx to end. It counts the calls it runs and the sessions open.
type scripted struct {
	calls atomic.Int64
	ended chan error
	// late gets the send of a "late" stream, which returns at once
	// without sending: the test then sends as a goroutine left behind by
	// the handler would.
	late chan func(*pb.ChatEvent) error
}

func (s *scripted) Models(context.Context) (*pb.ModelsResponse, error) {
	return &pb.ModelsResponse{}, nil
}

func (s *scripted) Chat(ctx context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	s.calls.Add(1)
	switch req.Model {
	case "err":
		return nil, &Error{Class: RateLimited, Message: "slow down", Field: "model", RetryAfter: 1500 * time.Millisecond}
	case "panic":
		panic("boom")
	case "status":
		// A handler that returns a gRPC status, as a plugin built on
		// plain gRPC code might.
		return nil, toStatus(ctx, Errorf(InvalidRequest, "bad"))
	case "wait":
		<-ctx.Done()
		s.ended <- ctx.Err()
		return nil, ctx.Err()
	}
	return &pb.ChatResponse{Id: "id-" + req.Model, Content: "echo:" + req.Model, FinishReason: "stop"}, nil
}

func (s *scripted) ChatStream(ctx context.Context, req *pb.ChatRequest, send func(*pb.ChatEvent) error) error {
	s.calls.Add(1)
	if req.Model == "late" {
		s.late <- send
		return nil
	}
	for i := range 3 {
		if err := send(&pb.ChatEvent{Delta: fmt.Sprint(i)}); err != nil {
			s.ended <- err
			return err
		}
		if req.Model == "stream-err" {
			return Errorf(Overloaded, "upstream overloaded mid-stream")
		}
		if req.Model == "stream-wait" {
			<-ctx.Done()
			s.ended <- ctx.Err()
			return ctx.Err()
		}
	}
	return send(&pb.ChatEvent{FinishReason: "stop", Usage: &pb.Usage{TotalTokens: 3}})
}

func (s *scripted) Embed(_ context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	s.calls.Add(1)
	out := &pb.EmbedResponse{Model: req.Model}
	for range req.Input {
		out.Embeddings = append(out.Embeddings, &pb.Embedding{Values: []float32{1, 0}})
	}
	return out, nil
}

func (s *scripted) CountTokens(context.Context, *pb.CountTokensRequest) (*pb.CountTokensResponse, error) {
	return nil, Errorf(Unsupported, "no")
}

// countingServer counts the Session streams the plugin serves.
type countingServer struct {
	*providerServer
	open, total atomic.Int64
}

func (c *countingServer) Session(stream grpc.BidiStreamingServer[pb.SessionCall, pb.SessionReply]) error {
	c.open.Add(1)
	c.total.Add(1)
	defer c.open.Add(-1)
	return c.providerServer.Session(stream)
}

// serveScripted serves impl over a unix socket with the SDK's server
// options, and returns the SDK's client for it.
func serveScripted(t *testing.T, register func(*grpc.Server)) *providerClient {
	t.Helper()
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(serverOptions()...)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("unix:"+lis.Addr().String(), append(ClientDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	c, err := (&ProviderPlugin{}).GRPCClient(context.Background(), nil, cc)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*providerClient)
}

func newScripted(t *testing.T) (*scripted, *countingServer, *providerClient) {
	impl := &scripted{ended: make(chan error, 4), late: make(chan func(*pb.ChatEvent) error, 1)}
	cs := &countingServer{providerServer: &providerServer{impl: impl}}
	c := serveScripted(t, func(s *grpc.Server) { pb.RegisterProviderServer(s, cs) })
	return impl, cs, c
}

func (p *sessions) idleCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// TestSessionCarriesCalls: sequential calls of every kind share one
// session, and their answers arrive whole.
func TestSessionCarriesCalls(t *testing.T) {
	impl, cs, c := newScripted(t)
	ctx := context.Background()
	for i := range 5 {
		model := fmt.Sprint("m", i)
		resp, err := c.Chat(ctx, &pb.ChatRequest{Model: model})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Content != "echo:"+model || resp.Id != "id-"+model {
			t.Fatalf("call %d answered %+v", i, resp)
		}
		var deltas []string
		var last *pb.ChatEvent
		if err := c.ChatStream(ctx, &pb.ChatRequest{Model: "stream"}, func(ev *pb.ChatEvent) error {
			deltas = append(deltas, ev.Delta)
			last = ev
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if strings.Join(deltas, ",") != "0,1,2," || last.FinishReason != "stop" || last.Usage.GetTotalTokens() != 3 {
			t.Fatalf("stream %d: deltas %q, last %+v", i, deltas, last)
		}
		emb, err := c.Embed(ctx, &pb.EmbedRequest{Model: "e", Input: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(emb.Embeddings) != 2 {
			t.Fatalf("embed %d: %d embeddings", i, len(emb.Embeddings))
		}
	}
	if got := impl.calls.Load(); got != 15 {
		t.Errorf("the plugin ran %d calls, want 15", got)
	}
	if got := cs.total.Load(); got != 1 {
		t.Errorf("%d sessions were opened for sequential calls, want 1", got)
	}
	if c.s.unsupported.Load() {
		t.Error("the client marked a plugin that serves sessions as without them")
	}
}

// TestSessionErrors: a typed error, a gRPC status, a panic and a failure
// mid-stream reach the host as the same *Error an RPC gives, and the
// session carries the next call.
func TestSessionErrors(t *testing.T) {
	impl, cs, c := newScripted(t)
	rpc := &providerClient{c: c.c}
	ctx := context.Background()
	for _, model := range []string{"err", "status", "panic"} {
		_, viaSession := c.Chat(ctx, &pb.ChatRequest{Model: model})
		_, viaRPC := rpc.Chat(ctx, &pb.ChatRequest{Model: model})
		var se, re *Error
		if !errors.As(viaSession, &se) || !errors.As(viaRPC, &re) {
			t.Fatalf("%s: errors %T %v and %T %v, want *Error", model, viaSession, viaSession, viaRPC, viaRPC)
		}
		if *se != *re {
			t.Errorf("%s: session error %+v, RPC error %+v", model, *se, *re)
		}
		if resp, err := c.Chat(ctx, &pb.ChatRequest{Model: "after-" + model}); err != nil || resp.Content != "echo:after-"+model {
			t.Fatalf("the call after %s: %v %v", model, resp, err)
		}
	}
	var se *Error
	_, err := c.Chat(ctx, &pb.ChatRequest{Model: "err"})
	if !errors.As(err, &se) || se.Class != RateLimited || se.Field != "model" || se.RetryAfter != 1500*time.Millisecond || se.Message != "slow down" {
		t.Errorf("typed error crossed as %#v", err)
	}
	_, err = c.Chat(ctx, &pb.ChatRequest{Model: "panic"})
	if !errors.As(err, &se) || se.Class != Internal || !strings.Contains(se.Message, "panicked") || strings.Contains(se.Message, "goroutine") {
		t.Errorf("panic crossed as %#v", err)
	}

	var deltas int
	err = c.ChatStream(ctx, &pb.ChatRequest{Model: "stream-err"}, func(*pb.ChatEvent) error { deltas++; return nil })
	if !errors.As(err, &se) || se.Class != Overloaded || deltas != 1 {
		t.Errorf("mid-stream failure: %d deltas, error %#v", deltas, err)
	}
	if _, err := c.Chat(ctx, &pb.ChatRequest{Model: "last"}); err != nil {
		t.Fatal(err)
	}
	if got := cs.total.Load(); got != 1 {
		t.Errorf("failed calls cost sessions: %d opened, want 1", got)
	}
	if impl.calls.Load() == 0 {
		t.Error("no calls ran")
	}
}

// TestSessionAbandonedCall: a call whose context ends, or a stream whose
// caller stops taking events, ends the call's context in the plugin and
// its session; the next call gets a new one and works.
func TestSessionAbandonedCall(t *testing.T) {
	impl, cs, c := newScripted(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Chat(ctx, &pb.ChatRequest{Model: "wait"})
	if ClassOf(err) != Timeout {
		t.Errorf("a call past its deadline failed with %v, want a timeout", err)
	}
	if err := <-impl.ended; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		t.Errorf("the handler's ctx ended with %v", err)
	}

	// The plugin's copy of the deadline (timeout_us) may end the call
	// there first: its error reply then comes before the host's own timer
	// has fired, and the session, whose call the plugin ended, is reused.
	// Which of the two happens first is up to the scheduler, so only the
	// stream abandoned below is counted.
	stopped := errors.New("client went away")
	err = c.ChatStream(context.Background(), &pb.ChatRequest{Model: "stream-wait"}, func(*pb.ChatEvent) error { return stopped })
	if !errors.Is(err, stopped) {
		t.Errorf("ChatStream returned %v, want the send error", err)
	}
	if err := <-impl.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("after the caller stopped taking events the handler's ctx ended with %v", err)
	}

	streamed := cs.total.Load()
	if resp, err := c.Chat(context.Background(), &pb.ChatRequest{Model: "again"}); err != nil || resp.Content != "echo:again" {
		t.Fatalf("the call after abandoned ones: %v %v", resp, err)
	}
	if after := cs.total.Load(); after-streamed != 1 {
		t.Errorf("the call after the abandoned stream opened %d sessions, want 1: an abandoned session is never reused", after-streamed)
	}
	// The abandoned sessions' streams end in the plugin.
	deadline := time.Now().Add(10 * time.Second)
	for cs.open.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := cs.open.Load(); got != 1 {
		t.Errorf("%d sessions still open in the plugin, want the idle one", got)
	}
}

// TestSessionLateSendRefused: a ChatStream handler's send called after
// the handler returned (from a goroutine it left behind) fails, as it
// would on an RPC of its own, instead of putting the event into the next
// call on the same session.
func TestSessionLateSendRefused(t *testing.T) {
	impl, cs, c := newScripted(t)
	ctx := context.Background()
	if err := c.ChatStream(ctx, &pb.ChatRequest{Model: "late"}, func(ev *pb.ChatEvent) error {
		t.Errorf("the late stream answered %v", ev)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	send := <-impl.late
	if err := send(&pb.ChatEvent{Delta: "leaked"}); !errors.Is(err, errCallOver) {
		t.Errorf("a send after the handler returned: %v, want errCallOver", err)
	}
	var got string
	if err := c.ChatStream(ctx, &pb.ChatRequest{Model: "stream"}, func(ev *pb.ChatEvent) error { got += ev.Delta; return nil }); err != nil || got != "012" {
		t.Errorf("the next stream on the session answered %q, %v; want \"012\"", got, err)
	}
	if n := cs.total.Load(); n != 1 {
		t.Errorf("%d sessions opened, want the one for both calls", n)
	}
}

// TestSessionConcurrentCalls: concurrent calls each get a session of
// their own, and the pool keeps at most maxIdleSessions of them.
func TestSessionConcurrentCalls(t *testing.T) {
	_, cs, c := newScripted(t)
	const n = maxIdleSessions + 16
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			model := fmt.Sprint("c", i)
			resp, err := c.Chat(context.Background(), &pb.ChatRequest{Model: model})
			if err == nil && resp.Content != "echo:"+model {
				err = fmt.Errorf("call %d got %q", i, resp.Content)
			}
			errs <- err
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if idle := c.s.idleCount(); idle > maxIdleSessions {
		t.Errorf("%d idle sessions kept, want at most %d", idle, maxIdleSessions)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cs.open.Load() > maxIdleSessions && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := cs.open.Load(); got > maxIdleSessions {
		t.Errorf("%d sessions open in the plugin after the burst, want at most %d", got, maxIdleSessions)
	}
}

// rpcOnly is a provider server built without sessions (an older SDK, or
// plain gRPC code in another language): Session is UNIMPLEMENTED.
type rpcOnly struct {
	pb.UnimplementedProviderServer
	chats, embeds, streams atomic.Int64
}

func (r *rpcOnly) Chat(_ context.Context, req *pb.ChatRequest) (*pb.ChatResponse, error) {
	r.chats.Add(1)
	return &pb.ChatResponse{Content: "rpc:" + req.Model}, nil
}

func (r *rpcOnly) ChatStream(req *pb.ChatRequest, s grpc.ServerStreamingServer[pb.ChatEvent]) error {
	r.streams.Add(1)
	return s.Send(&pb.ChatEvent{Delta: "rpc:" + req.Model, FinishReason: "stop"})
}

func (r *rpcOnly) Embed(_ context.Context, req *pb.EmbedRequest) (*pb.EmbedResponse, error) {
	r.embeds.Add(1)
	return &pb.EmbedResponse{Model: req.Model}, nil
}

// TestSessionFallsBackToRPCs: against a plugin without sessions every
// call is sent as an RPC, the first included, and each runs once.
func TestSessionFallsBackToRPCs(t *testing.T) {
	for _, first := range []string{"Chat", "ChatStream", "Embed"} {
		t.Run(first, func(t *testing.T) {
			srv := &rpcOnly{}
			c := serveScripted(t, func(s *grpc.Server) { pb.RegisterProviderServer(s, srv) })
			ctx := context.Background()
			chat := func() {
				resp, err := c.Chat(ctx, &pb.ChatRequest{Model: "m"})
				if err != nil || resp.Content != "rpc:m" {
					t.Fatalf("Chat: %v %v", resp, err)
				}
			}
			stream := func() {
				var got string
				if err := c.ChatStream(ctx, &pb.ChatRequest{Model: "s"}, func(ev *pb.ChatEvent) error { got += ev.Delta; return nil }); err != nil || got != "rpc:s" {
					t.Fatalf("ChatStream: %q %v", got, err)
				}
			}
			embed := func() {
				resp, err := c.Embed(ctx, &pb.EmbedRequest{Model: "e"})
				if err != nil || resp.Model != "e" {
					t.Fatalf("Embed: %v %v", resp, err)
				}
			}
			switch first {
			case "Chat":
				chat()
			case "ChatStream":
				stream()
			case "Embed":
				embed()
			}
			if !c.s.unsupported.Load() {
				t.Fatal("the client did not notice that the plugin has no sessions")
			}
			chat()
			stream()
			embed()
			want := map[string]int64{"Chat": 1, "ChatStream": 1, "Embed": 1}
			want[first]++
			if srv.chats.Load() != want["Chat"] || srv.streams.Load() != want["ChatStream"] || srv.embeds.Load() != want["Embed"] {
				t.Errorf("the plugin ran %d chats, %d streams, %d embeds; want %v", srv.chats.Load(), srv.streams.Load(), srv.embeds.Load(), want)
			}
		})
	}
}

// severingListener records the connections it accepts, so that a test can
// close them under the server: the host's connection breaks while the
// plugin lives on, and gRPC reconnects.
type severingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *severingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *severingListener) sever() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// TestSessionPoolAfterConnectionLoss: idle sessions die with their
// connection; gRPC reconnects to the plugin, which lives on, and the
// client is the same. The next calls must not fail on the dead sessions
// (each would be a failed request): a pooled session found dead before
// its call was sent is dropped, and the call goes on another.
func TestSessionPoolAfterConnectionLoss(t *testing.T) {
	impl := &scripted{ended: make(chan error, 4)}
	cs := &countingServer{providerServer: &providerServer{impl: impl}}
	inner, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	lis := &severingListener{Listener: inner}
	srv := grpc.NewServer(serverOptions()...)
	pb.RegisterProviderServer(srv, cs)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	cc, err := grpc.NewClient("unix:"+inner.Addr().String(), append(ClientDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	raw, _ := (&ProviderPlugin{}).GRPCClient(context.Background(), nil, cc)
	c := raw.(*providerClient)

	// A few idle sessions.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := c.Chat(context.Background(), &pb.ChatRequest{Model: fmt.Sprint("warm", i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	idle := c.s.idleCount()
	if idle == 0 {
		t.Fatal("no idle sessions after the first calls")
	}
	lis.sever()
	// The plugin has seen the sessions end.
	deadline := time.Now().Add(10 * time.Second)
	for cs.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := cs.open.Load(); n > 0 {
		t.Fatalf("%d sessions still open in the plugin after their connection closed", n)
	}
	// And the host has: a Recv on each idle session returns (it would
	// block on a live one). Without this wait the first call might send
	// on a stream the host does not know yet to be dead, and fail as any
	// call in flight when a connection breaks does.
	c.s.mu.Lock()
	stale := slices.Clone(c.s.idle)
	c.s.mu.Unlock()
	for _, st := range stale {
		ended := make(chan error, 1)
		go func() { _, err := st.stream.Recv(); ended <- err }()
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("an idle session answered after its connection closed")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("an idle session's stream did not end with its connection")
		}
	}
	for i := range idle + 1 {
		model := fmt.Sprint("after", i)
		resp, err := c.Chat(context.Background(), &pb.ChatRequest{Model: model})
		if err != nil || resp.GetContent() != "echo:"+model {
			t.Fatalf("call %d after the connection was lost (%d sessions were idle): %v %v", i, idle, resp, err)
		}
	}
	if n := impl.calls.Load(); n != 4+int64(idle)+1 {
		t.Errorf("the plugin ran %d calls, want %d: each once", n, 4+idle+1)
	}
}

// TestSessionOpenHonoursDeadline: a session opened while the plugin's
// connection is not ready (here it never completes its handshake) waits no
// longer than its call's deadline, as an RPC of its own would, rather than
// gRPC's connect timeout (20 s).
func TestSessionOpenHonoursDeadline(t *testing.T) {
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	// Accepts, and then says nothing.
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	cc, err := grpc.NewClient("unix:"+lis.Addr().String(), append(ClientDialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	raw, _ := (&ProviderPlugin{}).GRPCClient(context.Background(), nil, cc)
	c := raw.(*providerClient)
	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Chat", func(ctx context.Context) error { _, err := c.Chat(ctx, &pb.ChatRequest{Model: "m"}); return err }},
		{"ChatStream", func(ctx context.Context) error {
			return c.ChatStream(ctx, &pb.ChatRequest{Model: "m"}, func(*pb.ChatEvent) error { return nil })
		}},
		{"Embed", func(ctx context.Context) error { _, err := c.Embed(ctx, &pb.EmbedRequest{Model: "m"}); return err }},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := call.do(ctx)
		cancel()
		if ClassOf(err) != Timeout {
			t.Errorf("%s while the connection never became ready: %v, want class timeout (the call's deadline)", call.name, err)
		}
	}
}

// TestOversizeMessageIsInvalid: gRPC refuses a message over the size limit
// with RESOURCE_EXHAUSTED and no class trailer; that is an invalid
// request (sending it again fails again), not a rate limit to retry.
func TestOversizeMessageIsInvalid(t *testing.T) {
	_, _, c := newScripted(t)
	huge := strings.Repeat("x", MaxMessageBytes+1)
	for name, call := range map[string]func() error{
		"session": func() error { _, err := c.Chat(context.Background(), &pb.ChatRequest{Model: huge}); return err },
		"rpc": func() error {
			_, err := (&providerClient{c: c.c}).Chat(context.Background(), &pb.ChatRequest{Model: huge})
			return err
		},
	} {
		if err := call(); ClassOf(err) != InvalidRequest {
			t.Errorf("%s: a message over MaxMessageBytes failed with %v (class %s), want invalid_request", name, err, ClassOf(err))
		}
	}
}
