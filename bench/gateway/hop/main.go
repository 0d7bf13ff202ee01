// Command hop measures the plugin hop's reference cost for
// bench/gateway.sh: a bare gRPC round trip between two processes, over a
// unix socket with mutual TLS as go-plugin's AutoMTLS sets it up, driven
// open-loop at a fixed rate as vegeta drives the gateway (a call starts
// on every tick whether or not the previous one has returned). The call
// is the standard health check, so the server does no work of its own.
//
//	hop -rate 500 -duration 20s
//
// It prints one JSON object: requests, p50_us, p99_us, max_us, and the
// CPU microseconds per call of the server process (server_cpu_us) and of
// this process, which is also the load generator (client_cpu_us).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vigilml/vigil/internal/testutil"
)

func main() {
	rate := flag.Int("rate", 500, "calls per second")
	duration := flag.Duration("duration", 20*time.Second, "how long to measure, after a 2 s warm-up at the same rate")
	serve := flag.String("serve", "", "(internal) serve on this directory's socket with its certificates")
	flag.Parse()
	if *serve != "" {
		if err := runServer(*serve); err != nil {
			log.Fatal(err)
		}
		return
	}
	if *rate < 1 || *duration <= 0 {
		log.Fatal("-rate must be at least 1 and -duration positive")
	}
	if err := run(*rate, *duration); err != nil {
		log.Fatal(err)
	}
}

// pair makes a certificate and key as AutoMTLS makes one per side
// (self-signed, P-521) and writes both to dir as name.pem and
// name-key.pem, for the server process.
func pair(dir, name string) (tls.Certificate, *x509.Certificate, error) {
	cert, key, err := testutil.NewAutoMTLSCert()
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := testutil.PEM(cert)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	if err := os.WriteFile(filepath.Join(dir, name+".pem"), certPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-key.pem"), keyPEM, 0o600); err != nil {
		return tls.Certificate{}, nil, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	return c, cert, err
}

func load(dir, name string) (tls.Certificate, *x509.CertPool, error) {
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"))
	if err != nil {
		return c, nil, err
	}
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return c, nil, err
	}
	pool.AddCert(leaf)
	return c, pool, nil
}

func runServer(dir string) error {
	cert, _, err := load(dir, "server")
	if err != nil {
		return err
	}
	_, clientPool, err := load(dir, "client")
	if err != nil {
		return err
	}
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientPool,
		MinVersion:   tls.VersionTLS13,
	})
	ln, err := net.Listen("unix", filepath.Join(dir, "hop.sock"))
	if err != nil {
		return err
	}
	srv := grpc.NewServer(grpc.Creds(creds))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	fmt.Println("ready")
	return srv.Serve(ln)
}

func run(rate int, duration time.Duration) error {
	dir, err := os.MkdirTemp("", "hop")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	clientCert, _, err := pair(dir, "client")
	if err != nil {
		return err
	}
	_, serverLeaf, err := pair(dir, "server")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "-serve", dir)
	child.Stderr = os.Stderr
	// The server goes with this process, however it ends.
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		return fmt.Errorf("the server process did not start: %q %v", buf, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(serverLeaf)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{clientCert},
		RootCAs:      pool,
		ServerName:   "localhost",
		MinVersion:   tls.VersionTLS13,
	})
	conn, err := grpc.NewClient("unix://"+filepath.Join(dir, "hop.sock"), grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)
	if _, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
		return fmt.Errorf("first call: %w", err)
	}

	attack(client, rate, 2*time.Second) // warm-up
	serverCPU0, clientCPU0 := procCPU(child.Process.Pid), selfCPU()
	lat, failed := attack(client, rate, duration)
	serverCPU, clientCPU := procCPU(child.Process.Pid)-serverCPU0, selfCPU()-clientCPU0
	if failed > 0 {
		return fmt.Errorf("%d of %d calls failed", failed, len(lat)+failed)
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	n := float64(len(lat))
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"requests":      len(lat),
		"p50_us":        q(0.50),
		"p99_us":        q(0.99),
		"max_us":        float64(lat[len(lat)-1].Microseconds()),
		"server_cpu_us": float64(serverCPU.Microseconds()) / n,
		"client_cpu_us": float64(clientCPU.Microseconds()) / n,
	})
}

// attack starts a call every 1/rate seconds for d, each in its own
// goroutine, and returns the latencies of those that succeeded.
func attack(client healthpb.HealthClient, rate int, d time.Duration) ([]time.Duration, int) {
	var (
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, int(d.Seconds()*float64(rate))+1)
		failed int
		wg     sync.WaitGroup
	)
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= d {
			break
		}
		time.Sleep(time.Until(at))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			t0 := time.Now()
			_, err := client.Check(ctx, &healthpb.HealthCheckRequest{})
			took := time.Since(t0)
			mu.Lock()
			if err != nil {
				failed++
			} else {
				lat = append(lat, took)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return lat, failed
}

// procCPU is a process's user + system CPU time, from /proc.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	i := slices.Index(b, ')')
	var f [11]string
	var utime, stime int64
	fmt.Sscan(string(b[i+2:]), &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &f[9], &f[10], &utime, &stime)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
