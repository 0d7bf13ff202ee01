// Package plugins benchmarks a Detect call through the plugin host against
// the floor: the same gRPC call to a second process over a unix socket,
// without go-plugin or the host. See bench/README.md for how to run it and
// the figures.
package plugins

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/agent/pluginhost"
	"github.com/vigilml/vigil/internal/testutil"
	"github.com/vigilml/vigil/sdk"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// The floor server is this test binary run again with floorEnv set: a
// plain gRPC server in another process that answers Detect with the same
// statistic as the test plugin's "mean" method, and the health check.
const floorEnv = "VIGIL_BENCH_FLOOR_SOCKET"

var testPlugin, pyPlugin string

func TestMain(m *testing.M) {
	if sock := os.Getenv(floorEnv); sock != "" {
		serveFloor(sock, os.Getenv("VIGIL_BENCH_FLOOR_CERT"), os.Getenv("VIGIL_BENCH_FLOOR_KEY"))
		return
	}
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		os.Exit(m.Run()) // not benchmarking (go test ./...): nothing to build
	}
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		panic(err)
	}
	testPlugin = filepath.Join(dir, "test-detector")
	if out, err := exec.Command("go", "build", "-o", testPlugin, "../../test/plugins/testplugin").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	pyPlugin = filepath.Join(dir, "py-mean-shift")
	if out, err := exec.Command("/usr/bin/python3", "../../sdk/python/pack.py", "../../sdk/python/examples/mean_shift.py", "-o", pyPlugin).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "pack the Python example (needs python3-grpcio, python3-protobuf, python3-cryptography): %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// --- the floor ----------------------------------------------------------

type floorDetector struct {
	pb.UnimplementedDetectorServer
}

func (floorDetector) Detect(stream grpc.ClientStreamingServer[pb.DetectChunk, pb.DetectResponse]) error {
	var ref, cur []float64
	for {
		c, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if s := c.GetSample(); s != nil {
			if s.GetWhich() == pb.SampleChunk_REFERENCE {
				ref = append(ref, s.GetNumeric()...)
			} else {
				cur = append(cur, s.GetNumeric()...)
			}
		}
	}
	return stream.SendAndClose(meanShift(ref, cur))
}

// meanShift is the test plugin's "mean" statistic, with the same details.
func meanShift(ref, cur []float64) *pb.DetectResponse {
	mr, sr := meanStd(ref)
	mc, _ := meanStd(cur)
	if sr == 0 {
		sr = 1
	}
	stat := math.Abs(mc-mr) / sr
	details, _ := structpb.NewStruct(map[string]any{"reference_mean": mr, "current_mean": mc, "n_reference": float64(len(ref)), "n_current": float64(len(cur))})
	return &pb.DetectResponse{Method: "mean", Statistic: stat, Threshold: 0.5, Direction: pb.Direction_STATISTIC_ABOVE, Drifted: stat > 0.5, Details: details}
}

func meanStd(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	m := s / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return m, math.Sqrt(ss / float64(len(xs)))
}

func serveFloor(sock, certFile, keyFile string) {
	l, err := net.Listen("unix", sock)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	opts := []grpc.ServerOption{grpc.MaxRecvMsgSize(sdk.MaxMessageBytes)}
	if certFile != "" {
		cfg, err := tlsConfig(certFile, keyFile)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
	}
	s := grpc.NewServer(opts...)
	pb.RegisterDetectorServer(s, floorDetector{})
	grpc_health_v1.RegisterHealthServer(s, health.NewServer())
	fmt.Println("ready")
	go func() {
		// The parent closes our stdin when it is done.
		_, _ = io.Copy(io.Discard, os.Stdin)
		s.Stop()
	}()
	_ = s.Serve(l)
}

// tlsConfig trusts exactly the one self-signed certificate both sides use.
func tlsConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}, nil
}

// writeCert writes one certificate like go-plugin's AutoMTLS makes (P-521,
// self-signed, client and server authentication) and its key.
func writeCert(tb testing.TB, dir string) (string, string) {
	cert, key := testutil.AutoMTLSCert(tb)
	return testutil.WriteCert(tb, filepath.Join(dir, "cert.pem"), cert), testutil.WriteKey(tb, filepath.Join(dir, "key.pem"), key)
}

// startFloor runs the floor server process and dials it.
func startFloor(b *testing.B, withTLS bool) *grpc.ClientConn {
	b.Helper()
	dir := b.TempDir()
	sock := filepath.Join(dir, "floor.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floorEnv+"="+sock)
	creds := insecure.NewCredentials()
	if withTLS {
		cf, kf := writeCert(b, dir)
		cmd.Env = append(cmd.Env, "VIGIL_BENCH_FLOOR_CERT="+cf, "VIGIL_BENCH_FLOOR_KEY="+kf)
		cfg, err := tlsConfig(cf, kf)
		if err != nil {
			b.Fatal(err)
		}
		creds = credentials.NewTLS(cfg)
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("floor server: %q %v", line, err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(sdk.MaxMessageBytes)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		stdin.Close()
		_ = cmd.Wait()
	})
	return conn
}

// floorDetect sends the request the way the SDK's client does: a header,
// then the samples in chunks of sdk.ChunkValues.
func floorDetect(ctx context.Context, c pb.DetectorClient, req *sdk.DetectRequest) (*pb.DetectResponse, error) {
	stream, err := c.Detect(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&pb.DetectChunk{Part: &pb.DetectChunk_Header{Header: &pb.DetectHeader{Method: req.Method, DataType: req.DataType}}}); err != nil {
		return nil, err
	}
	for _, s := range []struct {
		which pb.SampleChunk_Which
		xs    []float64
	}{{pb.SampleChunk_REFERENCE, req.ReferenceNumeric}, {pb.SampleChunk_CURRENT, req.CurrentNumeric}} {
		xs := s.xs
		for len(xs) > 0 {
			n := min(len(xs), sdk.ChunkValues)
			if err := stream.Send(&pb.DetectChunk{Part: &pb.DetectChunk_Sample{Sample: &pb.SampleChunk{Which: s.which, Numeric: xs[:n]}}}); err != nil {
				return nil, err
			}
			xs = xs[n:]
		}
	}
	return stream.CloseAndRecv()
}

// --- the host -----------------------------------------------------------

func startHost(b *testing.B) *pluginhost.Host { return startHostWith(b, testPlugin) }

func startHostWith(b *testing.B, plugin string) *pluginhost.Host {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, filepath.Base(plugin))
	data, err := os.ReadFile(plugin)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		b.Fatal(err)
	}
	cfg := pluginhost.DefaultConfig()
	cfg.Dirs = []string{dir}
	cfg.Start = "boot"
	h, err := pluginhost.New(cfg, pluginhost.Options{CatalogPath: filepath.Join(dir, "plugins.db"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	if _, err := h.Register(context.Background(), bin, ""); err != nil {
		b.Fatal(err)
	}
	return h
}

// startGoPlugin launches the test plugin with go-plugin and AutoMTLS, as
// the host does, but without the host: it separates the host's own cost
// from go-plugin's and the SDK's.
func startGoPlugin(b *testing.B) *plugin.GRPCClient {
	b.Helper()
	data, err := os.ReadFile(testPlugin)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig: sdk.Handshake, VersionedPlugins: sdk.PluginMap(), Cmd: exec.Command(testPlugin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC}, AutoMTLS: true, GRPCDialOptions: sdk.ClientDialOptions(),
		SecureConfig: &plugin.SecureConfig{Checksum: sum[:], Hash: sha256.New()},
		Logger:       hclog.NewNullLogger(),
	})
	b.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		b.Fatal(err)
	}
	return rpc.(*plugin.GRPCClient)
}

// --- measuring ------------------------------------------------------------

// measure runs call b.N times after a warm-up and reports p50, p99 and
// calls per second of sequential calls.
func measure(b *testing.B, call func() error) {
	b.Helper()
	for range 50 {
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		t0 := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

func sample(n int, mean float64, seed uint64) []float64 {
	r := mrand.New(mrand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + r.NormFloat64()
	}
	return out
}

// Sizes, in values per sample (a Detect carries two samples): "small" is
// 100 a side; "100k" is 50,000 a side (100,000 values in the call);
// "200k" is 100,000 a side (two chunks each).
var sizes = []struct {
	name string
	n    int
}{{"small", 100}, {"100k", 50_000}, {"200k", 100_000}}

func BenchmarkDetect(b *testing.B) {
	for _, size := range sizes {
		req := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: sample(size.n, 0, 1), CurrentNumeric: sample(size.n, 0.1, 2)}
		b.Run(size.name+"/floor-plain", func(b *testing.B) {
			c := pb.NewDetectorClient(startFloor(b, false))
			measure(b, func() error { _, err := floorDetect(context.Background(), c, req); return err })
		})
		b.Run(size.name+"/floor-mtls", func(b *testing.B) {
			c := pb.NewDetectorClient(startFloor(b, true))
			measure(b, func() error { _, err := floorDetect(context.Background(), c, req); return err })
		})
		b.Run(size.name+"/goplugin-raw", func(b *testing.B) {
			c := pb.NewDetectorClient(startGoPlugin(b).Conn)
			measure(b, func() error { _, err := floorDetect(context.Background(), c, req); return err })
		})
		b.Run(size.name+"/goplugin-sdk", func(b *testing.B) {
			raw, err := startGoPlugin(b).Dispense(string(sdk.KindDetector))
			if err != nil {
				b.Fatal(err)
			}
			c := raw.(sdk.DetectorClient)
			measure(b, func() error { _, err := c.Detect(context.Background(), req); return err })
		})
		b.Run(size.name+"/host", func(b *testing.B) {
			h := startHost(b)
			measure(b, func() error {
				return h.WithDetector(context.Background(), "test-detector", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
					_, err := c.Detect(ctx, req)
					return err
				})
			})
		})
	}
}

// BenchmarkTrivial is the floor the issue quotes: a unary health check
// between two processes over a unix socket, no TLS.
func BenchmarkTrivial(b *testing.B) {
	c := grpc_health_v1.NewHealthClient(startFloor(b, false))
	measure(b, func() error {
		_, err := c.Check(context.Background(), &grpc_health_v1.HealthCheckRequest{})
		return err
	})
}

// BenchmarkCompare runs the floor and the host paths side by side, in
// alternating batches of 100 calls, so that load from other processes on
// the machine falls on all of them alike. b.N is the number of calls per
// path. It reports each path's p50 and p99 and the host's p50 over the
// floors'.
func BenchmarkCompare(b *testing.B) {
	for _, size := range sizes {
		b.Run(size.name, func(b *testing.B) {
			req := &sdk.DetectRequest{Method: "mean", DataType: pb.DataType_NUMERIC, ReferenceNumeric: sample(size.n, 0, 1), CurrentNumeric: sample(size.n, 0.1, 2)}
			plain := pb.NewDetectorClient(startFloor(b, false))
			mtls := pb.NewDetectorClient(startFloor(b, true))
			raw, err := startGoPlugin(b).Dispense(string(sdk.KindDetector))
			if err != nil {
				b.Fatal(err)
			}
			gp := raw.(sdk.DetectorClient)
			h := startHost(b)
			paths := []struct {
				name string
				call func() error
			}{
				{"floor-plain", func() error { _, err := floorDetect(context.Background(), plain, req); return err }},
				{"floor-mtls", func() error { _, err := floorDetect(context.Background(), mtls, req); return err }},
				{"goplugin", func() error { _, err := gp.Detect(context.Background(), req); return err }},
				{"host", func() error {
					return h.WithDetector(context.Background(), "test-detector", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
						_, err := c.Detect(ctx, req)
						return err
					})
				}},
			}
			lat := make([][]time.Duration, len(paths))
			for i, p := range paths {
				for range 20 { // warm up
					if err := p.call(); err != nil {
						b.Fatal(err)
					}
				}
				lat[i] = make([]time.Duration, 0, b.N)
			}
			b.ResetTimer()
			for done := 0; done < b.N; {
				batch := min(100, b.N-done)
				for i, p := range paths {
					for range batch {
						t0 := time.Now()
						if err := p.call(); err != nil {
							b.Fatal(err)
						}
						lat[i] = append(lat[i], time.Since(t0))
					}
				}
				done += batch
			}
			b.StopTimer()
			p50 := make([]float64, len(paths))
			for i, p := range paths {
				l := lat[i]
				slices.Sort(l)
				p50[i] = float64(l[len(l)/2].Microseconds())
				b.ReportMetric(p50[i], p.name+"-p50-µs")
				b.ReportMetric(float64(l[min(len(l)-1, len(l)*99/100)].Microseconds()), p.name+"-p99-µs")
			}
			b.ReportMetric(p50[3]/p50[0], "host/floor-plain")
			b.ReportMetric(p50[3]/p50[1], "host/floor-mtls")
		})
	}
}

// BenchmarkPython is a Detect through the host to the Python SDK's example
// detector (method mean_shift, pure Python statistics), under Debian's
// /usr/bin/python3.
func BenchmarkPython(b *testing.B) {
	for _, size := range sizes[:2] {
		b.Run(size.name, func(b *testing.B) {
			req := &sdk.DetectRequest{Method: "mean_shift", DataType: pb.DataType_NUMERIC, ReferenceNumeric: sample(size.n, 0, 1), CurrentNumeric: sample(size.n, 0.1, 2)}
			h := startHostWith(b, pyPlugin)
			measure(b, func() error {
				return h.WithDetector(context.Background(), "py-mean-shift", "Detect", func(ctx context.Context, c sdk.DetectorClient) error {
					_, err := c.Detect(ctx, req)
					return err
				})
			})
		})
	}
}
