package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
	"github.com/vigilml/vigil/test/anthropicstub"
)

// TestToolsThroughPluginProcess builds the plugin and drives it as the
// agent's gateway does (agent/pluginhost, go-plugin, AutoMTLS, an
// instance configured with the upstream) through a whole tool round
// against the stub: the call, whole and streamed, then the results.
func TestToolsThroughPluginProcess(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "anthropic"), ".").CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	stub := anthropicstub.New("claude-test")
	stub.APIKey = "sk-ant-test"
	stub.ParallelToolUse = true
	srv := httptest.NewServer(stub)
	t.Cleanup(srv.Close)

	cfg := pluginhost.DefaultConfig()
	cfg.Dirs = nil
	cfg.StartTimeout = 20 * time.Second
	cfg.CallTimeout = time.Minute
	h, err := pluginhost.New(cfg, pluginhost.Options{CatalogPath: filepath.Join(t.TempDir(), "plugins.db"), DevDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	if err := h.SetInstances([]pluginhost.Instance{{Name: "anthropic-main", Plugin: "anthropic", ConfigKey: "gateway.providers[0]",
		Config: map[string]any{"base_url": srv.URL, "api_key": "sk-ant-test", "timeout": "5s"}}}); err != nil {
		t.Fatal(err)
	}
	with := func(fn func(context.Context, sdk.ProviderClient) error) error {
		return h.WithProvider(context.Background(), "anthropic-main", "Chat", fn)
	}

	req := &pb.ChatRequest{Model: "claude-test", Messages: []*pb.Message{{Role: "user", Content: "weather in Paris?"}}, Tools: weatherTools()}
	var whole *pb.ChatResponse
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		var err error
		whole, err = c.Chat(ctx, req)
		return err
	})
	want := []*pb.ToolCall{{Id: "toolu_stub_0_0", Name: "get_weather", Arguments: `{"city":"weather in Paris?"}`}, {Id: "toolu_stub_0_1", Name: "now", Arguments: `{}`}}
	if err != nil || whole.GetFinishReason() != "tool_calls" || whole.GetContent() != "Let me call get_weather and now." ||
		len(whole.GetToolCalls()) != 2 || !protoEqual(whole.GetToolCalls()[0], want[0]) || !protoEqual(whole.GetToolCalls()[1], want[1]) {
		t.Fatalf("Chat: %v %v", whole, err)
	}

	// Streamed: the deltas, put together by index, are the same calls.
	var text, finish string
	args := map[int32]string{}
	ids := map[int32]string{}
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		return c.ChatStream(ctx, req, func(ev *pb.ChatEvent) error {
			text += ev.GetDelta()
			if ev.GetFinishReason() != "" {
				finish = ev.GetFinishReason()
			}
			for _, d := range ev.GetToolCalls() {
				if d.GetId() != "" {
					ids[d.GetIndex()] = d.GetId()
				}
				args[d.GetIndex()] += d.GetArguments()
			}
			return nil
		})
	})
	if err != nil || finish != "tool_calls" || text != whole.GetContent() || len(ids) != 2 ||
		ids[0] != want[0].GetId() || args[0] != want[0].GetArguments() || ids[1] != want[1].GetId() || args[1] != want[1].GetArguments() {
		t.Fatalf("ChatStream: %v text %q finish %q ids %v args %v", err, text, finish, ids, args)
	}

	// The results go back (two tool messages, then the user's text): one
	// user turn, accepted by the stub, which quotes them.
	req.Messages = append(req.Messages, &pb.Message{Role: "assistant", Content: whole.GetContent(), ToolCalls: whole.GetToolCalls()},
		&pb.Message{Role: "tool", ToolCallId: want[0].GetId(), Content: "18C"},
		&pb.Message{Role: "tool", ToolCallId: want[1].GetId(), Content: "Monday"},
		&pb.Message{Role: "user", Content: "thanks"})
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		var err error
		whole, err = c.Chat(ctx, req)
		return err
	})
	if err != nil || whole.GetContent() != "tool said: 18C; Monday (and you said: thanks)" || whole.GetFinishReason() != "stop" || len(whole.GetToolCalls()) != 0 {
		t.Fatalf("Chat with the results: %v %v", whole, err)
	}

	// Bad arguments come back as invalid_request naming the field, across
	// the process boundary.
	req.Messages[1].ToolCalls = []*pb.ToolCall{{Id: "toolu_stub_0_0", Name: "get_weather", Arguments: `"Paris"`}}
	req.Messages = req.Messages[:3]
	err = with(func(ctx context.Context, c sdk.ProviderClient) error {
		_, err := c.Chat(ctx, req)
		return err
	})
	var se *sdk.Error
	if !errors.As(err, &se) || se.Class != sdk.InvalidRequest || se.Field != "messages[1].tool_calls[0].arguments" {
		t.Fatalf("bad arguments: %v", err)
	}
}
