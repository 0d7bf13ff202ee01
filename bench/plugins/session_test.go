package plugins

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// BenchmarkProviderChat compares a provider's Chat sent as an RPC of its
// own with the same Chat on a provider session (sdk/session.go), against
// the test plugin built as a provider, launched by go-plugin with AutoMTLS
// as the agent launches it. The two paths share the plugin process and
// take turns in batches of 100 calls, so the machine's changing load
// falls on both alike. Reported per path: p50 and p99 of sequential calls,
// and the CPU per call of the calling process (this benchmark's, the
// host side) and of the plugin process. The request is a small chat with
// a system and a user message, about what the gateway sends for a short
// prompt.
func BenchmarkProviderChat(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "test-provider")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.kind=provider", "-o", bin, "../../test/plugins/testplugin").CombinedOutput(); err != nil {
		b.Fatalf("build the test plugin as a provider: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake, VersionedPlugins: sdk.PluginMap(), Cmd: exec.Command(bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, AutoMTLS: true, GRPCDialOptions: sdk.ClientDialOptions(),
		SecureConfig: &plugin.SecureConfig{Checksum: sum[:], Hash: sha256.New()},
		Logger:       hclog.NewNullLogger(),
	})
	b.Cleanup(client.Kill)
	rpcClient, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	raw, err := rpcClient.Dispense(string(sdk.KindProvider))
	if err != nil {
		b.Fatal(err)
	}
	withSessions := raw.(sdk.ProviderClient)
	// The generated client on go-plugin's connection, whose dial options
	// are the SDK's: every call an RPC, as for a plugin without sessions.
	rpcs := pb.NewProviderClient(rpcClient.(*plugin.GRPCClient).Conn)
	pid := client.ReattachConfig().Pid

	maxTokens := int32(64)
	temp := 0.0
	req := &pb.ChatRequest{Model: "echo", MaxTokens: &maxTokens, Temperature: &temp, Messages: []*pb.Message{
		{Role: "system", Content: "You are a terse assistant. Answer in one sentence."},
		{Role: "user", Content: "What is the capital of France? " + strings.Repeat("Please be brief. ", 8)},
	}}
	paths := []struct {
		name string
		call func(context.Context) error
	}{
		{"rpc", func(ctx context.Context) error { _, err := rpcs.Chat(ctx, req); return err }},
		{"session", func(ctx context.Context) error { _, err := withSessions.Chat(ctx, req); return err }},
	}
	// The agent calls with a deadline (plugins.call_timeout or the
	// gateway's request deadline); so do both paths here.
	call := func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return paths[i].call(ctx)
	}
	for i := range paths {
		for range 200 {
			if err := call(i); err != nil {
				b.Fatalf("%s: %v", paths[i].name, err)
			}
		}
	}
	const batch = 100
	lat := make([][]time.Duration, len(paths))
	hostCPU := make([]time.Duration, len(paths))
	pluginCPU := make([]time.Duration, len(paths))
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		for i := range paths {
			h0, p0 := selfCPU(), procCPU(pid)
			for range batch {
				t0 := time.Now()
				if err := call(i); err != nil {
					b.Fatalf("%s: %v", paths[i].name, err)
				}
				lat[i] = append(lat[i], time.Since(t0))
			}
			hostCPU[i] += selfCPU() - h0
			pluginCPU[i] += procCPU(pid) - p0
		}
	}
	b.StopTimer()
	for i, p := range paths {
		l := lat[i]
		slices.Sort(l)
		n := float64(len(l))
		pct := func(q float64) float64 { return float64(l[min(len(l)-1, int(q*n))].Microseconds()) }
		b.ReportMetric(pct(0.50), p.name+"-p50-µs")
		b.ReportMetric(pct(0.99), p.name+"-p99-µs")
		b.ReportMetric(float64(hostCPU[i].Microseconds())/n, p.name+"-host-cpu-µs/call")
		b.ReportMetric(float64(pluginCPU[i].Microseconds())/n, p.name+"-plugin-cpu-µs/call")
	}
	b.ReportMetric(0, "ns/op")
}

// selfCPU is this process's user plus system time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is another process's user plus system time, from
// /proc/PID/stat (in clock ticks, 100 a second on Linux: summed over many
// batches the rounding evens out).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		panic(err)
	}
	// The fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14 and stime 15.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var utime, stime int64
	fmt.Sscan(fields[11], &utime)
	fmt.Sscan(fields[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}
