package sdk

// A provider plugin written with the Python SDK (which serves no sessions)
// as a real process: the client falls back to RPCs on the first call, and
// for good: it does not try a session again on every call.

import (
	"context"
	"crypto/sha256"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/openaistub"
)

// countingProvider counts the Session streams a client opens.
type countingProvider struct {
	pb.ProviderClient
	sessions atomic.Int64
}

func (c *countingProvider) Session(ctx context.Context, opts ...grpc.CallOption) (grpc.BidiStreamingClient[pb.SessionCall, pb.SessionReply], error) {
	c.sessions.Add(1)
	return c.ProviderClient.Session(ctx, opts...)
}

func TestSessionFallbackWithPythonPlugin(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, cryptography").CombinedOutput(); err != nil {
		t.Fatalf("the Python SDK needs Debian's python3-grpcio, python3-protobuf and python3-cryptography (make test-deps): %v: %s", err, out)
	}
	bin := filepath.Join(t.TempDir(), "py-openai")
	if out, err := exec.Command(python, "python/pack.py", "python/examples/openai_compat.py", "-o", bin).CombinedOutput(); err != nil {
		t.Fatalf("pack: %v: %s", err, out)
	}
	stub := openaistub.New("gpt-test", "text-embedding-test")
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)

	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/nonexistent"}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: PluginMap(),
		Cmd:              cmd,
		SkipHostEnv:      true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		SecureConfig:     &plugin.SecureConfig{Checksum: sum[:], Hash: sha256.New()},
		AutoMTLS:         true,
		Stderr:           os.Stderr,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "go-plugin", Level: hclog.Warn, Output: os.Stderr}),
		GRPCDialOptions:  ClientDialOptions(),
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := rpc.Dispense(string(KindProvider))
	if err != nil {
		t.Fatal(err)
	}
	c := raw.(*providerClient)
	counting := &countingProvider{ProviderClient: c.s.c}
	c.s.c = counting
	ctx := context.Background()
	if ferrs, err := c.Configure(ctx, map[string]any{"base_url": srv.URL + "/v1"}); err != nil || len(ferrs) > 0 {
		t.Fatalf("Configure: %v %v", ferrs, err)
	}

	ask := &pb.ChatRequest{Model: "gpt-test", Messages: []*pb.Message{{Role: "user", Content: "hello"}}}
	// The first calls come at once, before any has learnt that the
	// plugin has no sessions: each may try one.
	const first = 4
	var wg sync.WaitGroup
	for range first {
		wg.Go(func() {
			if resp, err := c.Chat(ctx, ask); err != nil || resp.GetContent() == "" {
				t.Errorf("a first Chat: %v %v", resp, err)
			}
		})
	}
	wg.Wait()
	if !c.s.unsupported.Load() {
		t.Fatal("the client did not notice that the plugin has no sessions")
	}
	tried := counting.sessions.Load()
	if tried < 1 || tried > first {
		t.Errorf("the first %d calls tried %d sessions, want 1 to %d", first, tried, first)
	}
	for range 10 {
		if resp, err := c.Chat(ctx, ask); err != nil || resp.GetContent() == "" {
			t.Fatalf("Chat: %v %v", resp, err)
		}
		var got strings.Builder
		if err := c.ChatStream(ctx, ask, func(ev *pb.ChatEvent) error { got.WriteString(ev.GetDelta()); return nil }); err != nil || got.Len() == 0 {
			t.Fatalf("ChatStream: %q %v", got.String(), err)
		}
		if resp, err := c.Embed(ctx, &pb.EmbedRequest{Model: "text-embedding-test", Input: []string{"a b"}}); err != nil || len(resp.GetEmbeddings()) != 1 {
			t.Fatalf("Embed: %v %v", resp, err)
		}
	}
	if n := counting.sessions.Load(); n != tried {
		t.Errorf("30 calls after the fallback tried %d more sessions, want none", n-tried)
	}
	// Every call reached the upstream once: none was run twice (once on
	// a session, once as an RPC).
	if n := stub.Calls("/v1/chat/completions", "gpt-test"); n != first+20 {
		t.Errorf("the upstream got %d chat requests, want %d", n, first+20)
	}
}
