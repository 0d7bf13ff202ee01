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

// lostAlertServer is a TLS 1.3 server that asks for a client certificate
// (unless ask is false) on its first connection, finishes the handshake,
// and resets the connection without an alert or an answer: what a client
// sees when an agent's refusal is lost. Later connections are handled as
// later says: "drop" the same way; "refuse" as the agent refuses them (the
// server's config requires and verifies client certificates); "accept"
// finishes the handshake and waits for a request that it never answers.
func lostAlertServer(t *testing.T, cfg *tls.Config, ask bool, later string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	strict := cfg.Clone()
	strict.MinVersion = tls.VersionTLS13
	lax := strict.Clone()
	lax.ClientCAs, lax.ClientAuth = nil, tls.NoClientCert
	if ask {
		lax.ClientAuth = tls.RequestClientCert
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			switch {
			case n > 0 && later == "refuse":
				_ = tls.Server(conn, strict).Handshake() // sends the alert
			case n > 0 && later == "accept":
				tc := tls.Server(conn, lax)
				if tc.Handshake() == nil {
					_, _ = io.Copy(io.Discard, tc) // until the client closes
				}
			default:
				_ = tls.Server(conn, lax).Handshake()
				_ = conn.(*net.TCPConn).SetLinger(0) // reset, no alert
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return "https://" + ln.Addr().String()
}

// TestClientCertificateLostAlert: when an agent that asked for a client
// certificate ends the connection without an alert the client could read
// (a TLS 1.3 refusal races the request), the client shakes hands again
// without a request to read the refusal, and the error says what to do;
// if no refusal can be read, it says what the refusal most likely was; if
// the second handshake is accepted, or the server asked for no
// certificate, it does not blame the certificate.
func TestClientCertificateLostAlert(t *testing.T) {
	p := newPKI(t)
	for _, tc := range []struct {
		name      string
		ask       bool
		later     string
		cert, key string
		want      []string
		notWant   []string
	}{
		{"asked, none sent, refusal read again", true, "refuse", "", "", []string{"requires a client certificate", "-client-cert", "-client-key", EnvClientCert, EnvClientKey}, []string{"is it running?"}},
		{"asked, none sent, no refusal", true, "drop", "", "", []string{"closed the connection when none was sent, so it most likely requires one", "-client-cert", "-client-key", EnvClientCert, EnvClientKey}, []string{"is it running?"}},
		{"asked, one sent, refusal read again", true, "refuse", p.otherCert, p.otherKey, []string{"refused the client certificate " + p.otherCert, `answered "remote error: tls: unknown certificate authority"`, "api.tls.client_ca_file"}, []string{"is it running?", "most likely"}},
		{"asked, one sent, no refusal", true, "drop", p.otherCert, p.otherKey, []string{"closed the connection after it asked for a client certificate and was sent " + p.otherCert, "most likely refused", "api.tls.client_ca_file"}, []string{"is it running?"}},
		{"asked, one sent, accepted the second time", true, "accept", p.otherCert, p.otherKey, nil, []string{"client certificate", "-client-cert", "most likely"}},
		{"not asked", false, "drop", "", "", []string{"is it running?"}, []string{"client certificate", "-client-cert"}},
	} {
		addr := lostAlertServer(t, p.serverTLS, tc.ask, tc.later)
		c, err := New(Config{Addr: addr, CAFile: p.caFile, ClientCert: tc.cert, ClientKey: tc.key})
		if err != nil {
			t.Fatalf("%s: New: %v", tc.name, err)
		}
		_, err = c.Get(context.Background(), "/v1/status", nil)
		if err == nil {
			t.Errorf("%s: the server answered; it answers no request", tc.name)
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
