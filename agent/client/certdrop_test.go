package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
)

// dropServer is a TLS 1.3 server that finishes the handshake, asking for a
// client certificate when ask is set, and then resets the connection
// without an alert or an answer: what a client sees when an agent's
// refusal is lost to the close that follows it.
func dropServer(t *testing.T, cfg *tls.Config, ask bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.Clone()
	cfg.MinVersion = tls.VersionTLS13
	cfg.ClientCAs = nil
	cfg.ClientAuth = tls.NoClientCert
	if ask {
		cfg.ClientAuth = tls.RequestClientCert
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = tls.Server(conn, cfg).Handshake()
			_ = conn.(*net.TCPConn).SetLinger(0) // reset, not a clean close
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// TestClientCertificateDroppedConnection: when an agent that asked for a
// client certificate ends the connection without an alert the client could
// read (TLS 1.3 refusals race the request), the error still says what to
// do; when the server asked for none, it does not blame the certificate.
func TestClientCertificateDroppedConnection(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name      string
		ask       bool
		cert, key string
		want      []string
		notWant   []string
	}{
		{"asked, none sent", true, "", "", []string{"requires a client certificate", "-client-cert", "-client-key", EnvClientCert, EnvClientKey}, []string{"is it running?"}},
		{"asked, one sent", true, p.otherCert, p.otherKey, []string{"closed the connection after it asked for a client certificate and was sent " + p.otherCert, "most likely refused", "api.tls.client_ca_file"}, []string{"is it running?"}},
		{"not asked", false, "", "", []string{"is it running?"}, []string{"client certificate", "-client-cert"}},
	} {
		addr := dropServer(t, p.serverTLS, tc.ask)
		c, err := New(Config{Addr: addr, CAFile: p.caFile, ClientCert: tc.cert, ClientKey: tc.key})
		if err != nil {
			t.Fatalf("%s: New: %v", tc.name, err)
		}
		_, err = c.Get(context.Background(), "/v1/status", nil)
		if err == nil {
			t.Errorf("%s: the server answered; it drops every connection", tc.name)
			continue
		}
		if !droppedConn(err) {
			t.Fatalf("%s: error = %v; the test needs a dropped connection", tc.name, err)
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error = %v; want it to say %q", tc.name, err, want)
			}
		}
		for _, bad := range tc.notWant {
			if strings.Contains(err.Error(), bad) {
				t.Errorf("%s: error = %v; it should not say %q", tc.name, err, bad)
			}
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestDroppedConn: the connection endings that can hide a TLS 1.3 refusal
// are recognised through the wrapping the HTTP transport adds, among them
// the local close the transport reports when its read side got the alert
// first ("use of closed network connection"); a timeout, a refused dial and
// other errors are not.
func TestDroppedConn(t *testing.T) {
	get := func(err error) error { return &url.Error{Op: "Get", URL: "https://agent/v1/status", Err: err} }
	op := func(err error) error { return &net.OpError{Op: "read", Net: "tcp", Err: err} }
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{get(op(net.ErrClosed)), true},
		{get(fmt.Errorf("readLoopPeekFailLocked: %w", op(&os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}))), true},
		{get(op(&os.SyscallError{Syscall: "write", Err: syscall.EPIPE})), true},
		{get(io.EOF), true},
		{get(io.ErrUnexpectedEOF), true},
		{get(op(timeoutErr{})), false},
		{get(op(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})), false},
		{get(context.Canceled), false},
		{errors.New("something else"), false},
	} {
		if got := droppedConn(tc.err); got != tc.want {
			t.Errorf("droppedConn(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
