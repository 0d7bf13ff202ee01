package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/vigilml/vigil/internal/testutil"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnauthorizedWithoutTokenSaysHowToGiveOne checks that a 401 answered
// to a request sent without a token tells the CLI user how to give one.
func TestUnauthorizedWithoutTokenSaysHowToGiveOne(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"code":"unauthorized","message":"this API needs a token"}}`))
	}))
	defer srv.Close()

	for _, tc := range []struct {
		token    string
		wantHint bool
	}{{"", true}, {"0123456789abcdef-wrong", false}} {
		c, err := New(Config{Addr: srv.URL, Token: tc.token})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(context.Background(), "/v1/status", nil)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
			t.Fatalf("token %q: error = %v; want a 401 APIError", tc.token, err)
		}
		hint := strings.Contains(err.Error(), EnvToken) && strings.Contains(err.Error(), EnvTokenFile)
		if hint != tc.wantHint {
			t.Errorf("token %q: error = %q; hint shown %v, want %v", tc.token, err, hint, tc.wantHint)
		}
	}
}

// TestTLSMistakesSayWhatToDo checks the hints for the two usual TLS
// mistakes: an agent certificate the CLI does not trust, and plain http to
// an agent that serves https.
func TestTLSMistakesSayWhatToDo(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()

	c, err := New(Config{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "-ca-file") || !strings.Contains(err.Error(), EnvCAFile) {
		t.Errorf("untrusted certificate: error = %v; want a hint at -ca-file and %s", err, EnvCAFile)
	}
	if err != nil && strings.Contains(err.Error(), "is it running?") {
		t.Errorf("untrusted certificate: error = %v; the agent is running", err)
	}

	c, err = New(Config{Addr: strings.TrimPrefix(srv.URL, "https://")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("http to an https agent: error = %v; want a hint to use https://", err)
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{}`))
	}))
	defer plain.Close()
	c, err = New(Config{Addr: "https://" + strings.TrimPrefix(plain.URL, "http://")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "plain HTTP") || !strings.Contains(err.Error(), "http://") || strings.Contains(err.Error(), "is it running?") {
		t.Errorf("https to a plain-HTTP agent: error = %v; want a hint to use http://", err)
	}
}

// pki is a throwaway CA with the files a mutual-TLS test needs.
type pki struct {
	caFile               string
	clientCert, clientKy string
	otherCert, otherKey  string // a client certificate from another CA
	ca                   *x509.Certificate
	caKey                *ecdsa.PrivateKey
	serverTLS            *tls.Config
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	p := &pki{}
	p.ca, p.caKey = testutil.Cert(t, "test CA", nil, nil, 0)
	p.caFile = testutil.WriteCert(t, filepath.Join(dir, "ca.pem"), p.ca)
	srv, srvKey := testutil.Cert(t, "agent", p.ca, p.caKey, x509.ExtKeyUsageServerAuth)
	cli, cliKey := testutil.Cert(t, "operator", p.ca, p.caKey, x509.ExtKeyUsageClientAuth)
	p.clientCert = testutil.WriteCert(t, filepath.Join(dir, "client.pem"), cli)
	p.clientKy = testutil.WriteKey(t, filepath.Join(dir, "client-key.pem"), cliKey)
	otherCA, otherCAKey := testutil.Cert(t, "other CA", nil, nil, 0)
	other, otherKey := testutil.Cert(t, "stranger", otherCA, otherCAKey, x509.ExtKeyUsageClientAuth)
	p.otherCert = testutil.WriteCert(t, filepath.Join(dir, "other.pem"), other)
	p.otherKey = testutil.WriteKey(t, filepath.Join(dir, "other-key.pem"), otherKey)
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	p.serverTLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: srvKey}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
	return p
}

// TestClientCertificate talks to a server that requires client
// certificates, over TLS 1.2 and 1.3 (whose refusals differ): with the
// right certificate the request is answered; without one, or with one from
// another CA, the error says what to do.
func TestClientCertificate(t *testing.T) {
	p := newPKI(t)
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"node_name":"n1"}`))
		}))
		srv.TLS = p.serverTLS.Clone()
		srv.TLS.MinVersion, srv.TLS.MaxVersion = version, version
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		name := tls.VersionName(version)

		for _, tc := range []struct {
			name       string
			cert, key  string
			wantErr    []string
			wantAnswer bool
		}{
			{"no certificate", "", "", []string{"requires a client certificate", "-client-cert", "-client-key", EnvClientCert, EnvClientKey}, false},
			{"certificate from another CA", p.otherCert, p.otherKey, []string{"unknown certificate authority", "refused the client certificate " + p.otherCert, "api.tls.client_ca_file"}, false},
			{"certificate signed by the agent's client CA", p.clientCert, p.clientKy, nil, true},
		} {
			c, err := New(Config{Addr: srv.URL, CAFile: p.caFile, ClientCert: tc.cert, ClientKey: tc.key})
			if err != nil {
				t.Fatalf("%s, %s: New: %v", name, tc.name, err)
			}
			var out struct {
				NodeName string `json:"node_name"`
			}
			_, err = c.Get(context.Background(), "/v1/status", &out)
			if tc.wantAnswer {
				if err != nil || out.NodeName != "n1" {
					t.Errorf("%s, %s: answer %+v, error %v; want the answer", name, tc.name, out, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s, %s: the server answered; want a refused handshake", name, tc.name)
				continue
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s, %s: error = %v; want it to say %q", name, tc.name, err, want)
				}
			}
			if strings.Contains(err.Error(), "is it running?") {
				t.Errorf("%s, %s: error = %v; the agent is running", name, tc.name, err)
			}
		}
	}
}

// TestClientCertificateFiles checks that a client certificate and key that
// are not a usable pair are refused before anything is sent, naming the
// file, the flag or variable to set, or the mismatch.
func TestClientCertificateFiles(t *testing.T) {
	p := newPKI(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	for _, tc := range []struct {
		name      string
		cert, key string
		want      []string
	}{
		{"certificate without key", p.clientCert, "", []string{"without its key", "-client-key", EnvClientKey}},
		{"key without certificate", "", p.clientKy, []string{"without its certificate", "-client-cert", EnvClientCert}},
		{"missing certificate", missing, p.clientKy, []string{"read client certificate", missing, "no such file"}},
		{"missing key", p.clientCert, missing, []string{"read client key", missing, "no such file"}},
		{"key of another certificate", p.clientCert, p.otherKey, []string{p.clientCert, p.otherKey, "private key does not match public key"}},
		{"certificate and key swapped", p.clientKy, p.clientCert, []string{p.clientKy, p.clientCert}},
	} {
		_, err := New(Config{Addr: "https://127.0.0.1:1", ClientCert: tc.cert, ClientKey: tc.key})
		if err == nil {
			t.Errorf("%s: New accepted it", tc.name)
			continue
		}
		for _, want := range tc.want {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error = %v; want it to say %q", tc.name, err, want)
			}
		}
	}
}

// TestFromEnvClientCertificate checks the client certificate variables.
func TestFromEnvClientCertificate(t *testing.T) {
	t.Setenv(EnvClientCert, "/etc/vigil/cli.pem")
	t.Setenv(EnvClientKey, "/etc/vigil/cli-key.pem")
	cfg, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientCert != "/etc/vigil/cli.pem" || cfg.ClientKey != "/etc/vigil/cli-key.pem" {
		t.Errorf("FromEnv = %+v; want the client certificate and key from %s and %s", cfg, EnvClientCert, EnvClientKey)
	}
}

// TestAddressMistakes: an address with a scheme the client does not speak
// is refused (it was dialled as the host "ftp"), a unix socket that cannot
// be reached is named as given (the error said http://vigil), and a server
// that answers without a Vigil error body is not reported as an agent's
// empty error.
func TestAddressMistakes(t *testing.T) {
	for _, addr := range []string{"ftp://127.0.0.1:7070", "unix://", "127.0.0.1", "gpu-node-17"} { // no port: it dialled port 80
		if _, err := New(Config{Addr: addr}); err == nil || !strings.Contains(err.Error(), addr) {
			t.Errorf("New(%q): error = %v; want one naming the address", addr, err)
		}
	}

	sock := filepath.Join(t.TempDir(), "no-agent.sock")
	c, err := New(Config{Addr: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "cannot reach the agent at unix://"+sock+":") {
		t.Errorf("missing socket: error = %v; want it to name unix://%s", err, sock)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound) // an empty body, as another server or a proxy may answer
	}))
	defer srv.Close()
	c, err = New(Config{Addr: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), "/v1/status", nil)
	if err == nil || !strings.Contains(err.Error(), "empty body") || !strings.Contains(err.Error(), "is "+srv.URL+" a Vigil agent?") {
		t.Errorf("a server that is not an agent: error = %v; want it to say so", err)
	}
}
