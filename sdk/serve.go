package sdk

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/vigilml/vigil/sdk/proto/vigil/plugin/v1"
)

// The plugin side of go-plugin's protocol, written here rather than
// calling plugin.Serve, as the Python SDK does it too. The agent (the host
// side) is go-plugin itself. What the host needs from a plugin is small and
// documented by go-plugin for plugins in other languages: the handshake
// line on standard output, AutoMTLS, gRPC on a Unix socket, the health
// service and the controller's Shutdown.
//
// The reason is size. plugin.Serve also carries go-plugin's net/rpc
// protocol, and net/rpc looks methods up by reflection, which makes the Go
// linker keep every exported method of every type in the binary: a
// provider plugin is 16 MB instead of 20, and about 3 MB less of it is
// resident while it runs (bench/README.md, "Fifth pass"). Every plugin is
// its own process, so that is paid once per plugin on every host.

const (
	// coreProtocolVersion is go-plugin's own protocol version, the first
	// field of the handshake line.
	coreProtocolVersion = 1
	// healthService is the name go-plugin's host checks with the gRPC
	// health service.
	healthService = "plugin"
	// shutdownGrace bounds how long Shutdown waits for calls in progress;
	// go-plugin's host kills a plugin that has not exited 2 s after it.
	shutdownGrace = time.Second
)

// serve runs the plugin side of go-plugin's protocol for one plugin of
// kind k. It returns when the host tells the plugin to stop.
func serve(k Kind, p plugin.GRPCPlugin) {
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		os.Stderr.WriteString("This is a Vigil plugin. It is started by the Vigil agent, not by hand.\n" +
			"Register it with `vigil plugins register PATH` and configure it in the agent's config.\n")
		os.Exit(1)
	}
	if err := serveHost(k, p, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "vigil plugin (%s): %v\n", k, err)
		os.Exit(1)
	}
}

// serveHost does serve's work once the magic cookie is checked; the
// handshake line goes to out.
func serveHost(k Kind, p plugin.GRPCPlugin, out *os.File) error {
	if err := checkProtocolVersions(os.Getenv("PLUGIN_PROTOCOL_VERSIONS")); err != nil {
		return err
	}
	if g := os.Getenv("PLUGIN_UNIX_SOCKET_GROUP"); g != "" {
		return fmt.Errorf("the host asked for the plugin socket to belong to group %q (PLUGIN_UNIX_SOCKET_GROUP), which this SDK does not support", g)
	}
	opts := serverOptions()
	certField := ""
	if pemCert := os.Getenv("PLUGIN_CLIENT_CERT"); pemCert != "" {
		cfg, der, err := autoMTLS([]byte(pemCert))
		if err != nil {
			return err
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg)))
		// go-plugin reads the raw leaf certificate, base64 without padding
		// (the line cannot carry PEM's newlines).
		certField = base64.RawStdEncoding.EncodeToString(der)
	}

	dir, err := os.MkdirTemp(os.Getenv("PLUGIN_UNIX_SOCKET_DIR"), "vigil-plugin-")
	if err != nil {
		return fmt.Errorf("creating the socket directory: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "plugin.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}

	srv := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus(healthService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	done := make(chan struct{})
	srv.RegisterService(&controllerDesc, &controller{srv: srv, done: done})
	if err := p.GRPCServer(nil, srv); err != nil {
		return fmt.Errorf("registering the %s services: %w", k, err)
	}

	// An interrupt from the terminal reaches the whole process group; the
	// agent stops its plugins itself, as go-plugin's plugins expect.
	signal.Ignore(os.Interrupt)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	if _, err := fmt.Fprintf(out, "%d|%d|unix|%s|grpc|%s\n", coreProtocolVersion, ContractVersion, sock, certField); err != nil {
		srv.Stop()
		return fmt.Errorf("writing the handshake: %w", err)
	}
	// Standard output has done its job; a stray print goes to the log.
	os.Stdout = os.Stderr

	select {
	case <-done:
		<-served
		return nil
	case err := <-served:
		if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("serving: %w", err)
		}
		return nil
	}
}

// checkProtocolVersions refuses a host that does not speak this contract
// version (go-plugin's PLUGIN_PROTOCOL_VERSIONS, comma separated; unset
// means the handshake's).
func checkProtocolVersions(env string) error {
	if env == "" {
		return nil
	}
	for _, v := range strings.Split(env, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n == ContractVersion {
			return nil
		}
	}
	return fmt.Errorf("this plugin speaks contract version %d; the agent asked for %s", ContractVersion, env)
}

// autoMTLS returns the server side of go-plugin's AutoMTLS: a fresh
// self-signed certificate for this process (returned as DER for the
// handshake line), and a TLS configuration that requires the host to
// present the certificate it passed in PLUGIN_CLIENT_CERT.
func autoMTLS(hostPEM []byte) (*tls.Config, []byte, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(hostPEM) {
		return nil, nil, errors.New("PLUGIN_CLIENT_CERT holds no PEM certificate")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the plugin's key: %w", err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"Vigil plugin"}},
		DNSNames:     []string{"localhost"},
		NotBefore:    now.Add(-30 * time.Second),
		// The certificate lives as long as the process; go-plugin's host
		// trusts exactly this one, from the handshake line.
		NotAfter:              now.AddDate(30, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the plugin's certificate: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
	}
	return cfg, der, nil
}

// controller is go-plugin's GRPCController service: the host calls
// Shutdown when it stops the plugin.
type controller struct {
	srv  *grpc.Server
	done chan struct{}
	once sync.Once
}

// controllerService is the handler type of controllerDesc.
type controllerService interface {
	shutdown()
}

// shutdown answers first, then stops the server, letting calls in progress
// finish for up to shutdownGrace, and ends serve. A second call is a no-op.
func (c *controller) shutdown() {
	c.once.Do(func() { go c.stop() })
}

func (c *controller) stop() {
	stopped := make(chan struct{})
	go func() { c.srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(shutdownGrace):
		c.srv.Stop()
	}
	close(c.done)
}

// controllerDesc describes go-plugin's plugin.GRPCController service by
// hand (go-plugin keeps its generated code internal). Its Empty message is
// wire-identical to google.protobuf.Empty.
var controllerDesc = grpc.ServiceDesc{
	ServiceName: "plugin.GRPCController",
	HandlerType: (*controllerService)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Shutdown",
		Handler: func(srv any, ctx context.Context, dec func(any) error, intercept grpc.UnaryServerInterceptor) (any, error) {
			in := new(emptypb.Empty)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) {
				srv.(controllerService).shutdown()
				return &emptypb.Empty{}, nil
			}
			if intercept == nil {
				return h(ctx, in)
			}
			return intercept(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/plugin.GRPCController/Shutdown"}, h)
		},
	}},
	Metadata: "plugin/grpc_controller.proto",
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
		// Each key is named, so the agent's error points at the line of
		// its config to remove (gateway.providers[0].base_url: ...).
		var out pb.ConfigureResponse
		for _, k := range slices.Sorted(maps.Keys(req.GetConfig().GetFields())) {
			out.Errors = append(out.Errors, &pb.FieldError{Field: k, Message: "this plugin takes no configuration"})
		}
		return &out, nil
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
