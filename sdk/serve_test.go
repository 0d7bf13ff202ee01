package sdk

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/vigilml/vigil/internal/testutil"
	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

func TestCheckProtocolVersions(t *testing.T) {
	for _, ok := range []string{"", "1", "1,2", " 2, 1 "} {
		if err := checkProtocolVersions(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"2", "0,2", "x"} {
		err := checkProtocolVersions(bad)
		if err == nil || !strings.Contains(err.Error(), "contract version 1") {
			t.Errorf("%q: got %v, want a refusal naming contract version 1", bad, err)
		}
	}
}

func TestAutoMTLSRefusesBadClientCert(t *testing.T) {
	if _, _, err := autoMTLS([]byte("not a certificate")); err == nil || !strings.Contains(err.Error(), "PLUGIN_CLIENT_CERT") {
		t.Fatalf("got %v, want an error naming PLUGIN_CLIENT_CERT", err)
	}
}

// TestServeHostProtocol runs the plugin side as go-plugin's host sees it:
// the handshake line, AutoMTLS both ways, the health service, the plugin's
// own services, then Shutdown ends serving and removes the socket.
func TestServeHostProtocol(t *testing.T) {
	// The host's certificate, as go-plugin's host passes it in PLUGIN_CLIENT_CERT.
	hostX509, hostKey := testutil.AutoMTLSCert(t)
	host := tls.Certificate{Certificate: [][]byte{hostX509.Raw}, PrivateKey: hostKey}
	t.Setenv("PLUGIN_CLIENT_CERT", string(testutil.PEM(hostX509)))
	t.Setenv("PLUGIN_PROTOCOL_VERSIONS", "1")
	t.Setenv("PLUGIN_UNIX_SOCKET_DIR", t.TempDir())
	stdout := os.Stdout
	t.Cleanup(func() { os.Stdout = stdout; signal.Reset(os.Interrupt) })

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	served := make(chan error, 1)
	go func() {
		served <- serveHost(KindDetector, &DetectorPlugin{Info: Info{Name: "t", Version: "0.1.0"}, Impl: nil}, w)
		w.Close()
	}()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the handshake: %v", err)
	}
	f := strings.Split(strings.TrimSpace(line), "|")
	if len(f) != 6 || f[0] != "1" || f[1] != "1" || f[2] != "unix" || f[4] != "grpc" {
		t.Fatalf("handshake line %q, want 1|1|unix|PATH|grpc|CERT", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(f[5])
	if err != nil {
		t.Fatalf("certificate field: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	dial := func(certs []tls.Certificate) *grpc.ClientConn {
		creds := credentials.NewTLS(&tls.Config{Certificates: certs, RootCAs: roots, ServerName: "localhost", MinVersion: tls.VersionTLS12})
		cc, err := grpc.NewClient("unix:"+f[3], grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Without the host's certificate the plugin refuses the connection.
	stranger := dial(nil)
	if _, err := healthpb.NewHealthClient(stranger).Check(ctx, &healthpb.HealthCheckRequest{Service: healthService}); err == nil {
		t.Fatal("a client without the host's certificate was served")
	}
	stranger.Close()

	cc := dial([]tls.Certificate{host})
	defer cc.Close()
	hr, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: healthService})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", hr, err)
	}
	info, err := pb.NewPluginClient(cc).Info(ctx, &pb.InfoRequest{})
	if err != nil || info.GetKind() != "detector" || info.GetName() != "t" || info.GetContractVersion() != ContractVersion {
		t.Fatalf("Info: %v %v", info, err)
	}
	if err := cc.Invoke(ctx, "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{}); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serveHost: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("serveHost did not return after Shutdown")
	}
	if _, err := os.Stat(filepath.Dir(f[3])); !os.IsNotExist(err) {
		t.Fatalf("socket directory left behind: %v", err)
	}
}

func TestServeHostRefusesSocketGroup(t *testing.T) {
	t.Setenv("PLUGIN_UNIX_SOCKET_GROUP", "vigil")
	err := serveHost(KindDetector, &DetectorPlugin{}, os.Stderr)
	if err == nil || !strings.Contains(err.Error(), "PLUGIN_UNIX_SOCKET_GROUP") {
		t.Fatalf("got %v", err)
	}
}

func TestControllerShutdownTwice(t *testing.T) {
	c := &controller{srv: grpc.NewServer(), done: make(chan struct{})}
	c.shutdown()
	c.shutdown()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("done not closed after Shutdown")
	}
}

// A call still open when the host asks to stop (here a health Watch
// stream, which never ends by itself) gets shutdownGrace, then the server
// stops anyway: Shutdown never waits on a call forever.
func TestControllerShutdownStopsOpenCalls(t *testing.T) {
	lis, err := net.Listen("unix", filepath.Join(t.TempDir(), "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	cc, err := grpc.NewClient("unix:"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	stream, err := healthpb.NewHealthClient(cc).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the stream is open on the server
		t.Fatal(err)
	}
	c := &controller{srv: srv, done: make(chan struct{})}
	c.shutdown()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown waited on an open call past its grace")
	}
	if _, err := stream.Recv(); err == nil {
		t.Error("the open call survived the stop")
	}
}

type takesGreeting struct{}

func (takesGreeting) Configure(config map[string]any) []FieldError {
	if _, ok := config["greeting"].(string); !ok && len(config) > 0 {
		return []FieldError{{Field: "greeting", Message: "must be a string"}}
	}
	return nil
}

// TestConfigureWithoutConfigurer: a plugin that takes no configuration
// accepts an empty one and names each key it is given, so that the agent
// points at the lines to remove rather than at the section.
func TestConfigureWithoutConfigurer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		impl   any
		config map[string]any
		want   []string // "field: message"
	}{
		{"none, empty", struct{}{}, nil, nil},
		{"none, keys", struct{}{}, map[string]any{"timeout": "5s", "base_url": "http://x"},
			[]string{"base_url: this plugin takes no configuration", "timeout: this plugin takes no configuration"}},
		{"configurer, accepted", takesGreeting{}, map[string]any{"greeting": "hi"}, nil},
		{"configurer, rejected", takesGreeting{}, map[string]any{"greeting": 5.0}, []string{"greeting: must be a string"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req pb.ConfigureRequest
			if tc.config != nil {
				s, err := structpb.NewStruct(tc.config)
				if err != nil {
					t.Fatal(err)
				}
				req.Config = s
			}
			resp, err := (&infoServer{impl: tc.impl}).Configure(context.Background(), &req)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, fe := range resp.GetErrors() {
				got = append(got, fe.GetField()+": "+fe.GetMessage())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("field errors %q, want %q", got, tc.want)
			}
		})
	}
}
