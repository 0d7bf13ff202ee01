package test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLSClientCertificates runs an agent that requires client
// certificates (api.tls.client_ca_file) and drives the CLI against it:
// without a certificate it is refused with a hint at -client-cert; with
// one signed by the client CA, given by flags or by VIGIL_CLIENT_CERT and
// VIGIL_CLIENT_KEY, status and the other commands work; a certificate
// from another CA or a key that does not match are refused clearly.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	makeCert(t, certFile, keyFile) // the agent's certificate, its own CA
	clientCA, clientCAKey := mtlsCA(t, "vigil clients", filepath.Join(dir, "client-ca.pem"))
	cliCert, cliKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator-key.pem")
	mtlsClientCert(t, clientCA, clientCAKey, "operator", cliCert, cliKey)
	otherCA, otherCAKey := mtlsCA(t, "someone else", filepath.Join(dir, "other-ca.pem"))
	strangerCert, strangerKey := filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger-key.pem")
	mtlsClientCert(t, otherCA, otherCAKey, "stranger", strangerCert, strangerKey)

	cfg := filepath.Join(dir, "vigil.yaml")
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\napi:\n  addr: 127.0.0.1:0\n  tls:\n    cert_file: %s\n    key_file: %s\n    client_ca_file: %s\n",
		filepath.Join(dir, "data"), certFile, keyFile, filepath.Join(dir, "client-ca.pem")))
	a := startAgent(t, nil, "-config", cfg)
	addr := "https://" + a.addr

	vigil := func(env []string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(vigilBin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", certFile)
	if code != 2 || !strings.Contains(out, "requires a client certificate") ||
		!strings.Contains(out, "-client-cert") || !strings.Contains(out, "VIGIL_CLIENT_CERT") {
		t.Errorf("status without a client certificate: exit %d, want 2 and a hint at -client-cert:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", certFile, "-client-cert", cliCert, "-client-key", cliKey)
	if code != 0 || !strings.Contains(out, "(TLS, no auth: loopback only)") {
		t.Errorf("status with -client-cert: exit %d:\n%s", code, out)
	}

	env := []string{"VIGIL_HTTP_ADDR=" + addr, "VIGIL_CACERT=" + certFile, "VIGIL_CLIENT_CERT=" + cliCert, "VIGIL_CLIENT_KEY=" + cliKey}
	for _, args := range [][]string{{"status"}, {"host"}, {"models"}, {"alerts"}, {"plugins", "list"}} {
		if code, out := vigil(env, args...); code != 0 {
			t.Errorf("%v with VIGIL_CLIENT_CERT: exit %d:\n%s", args, code, out)
		}
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", certFile, "-client-cert", strangerCert, "-client-key", strangerKey)
	if code != 2 || !strings.Contains(out, "refused the client certificate "+strangerCert) || !strings.Contains(out, "unknown certificate authority") {
		t.Errorf("status with a certificate from another CA: exit %d:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", certFile, "-client-cert", cliCert, "-client-key", strangerKey)
	if code != 2 || !strings.Contains(out, "private key does not match public key") || !strings.Contains(out, cliCert) {
		t.Errorf("status with a key that is not the certificate's: exit %d:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", certFile, "-client-cert", cliCert)
	if code != 2 || !strings.Contains(out, "-client-key") {
		t.Errorf("status with -client-cert only: exit %d:\n%s", code, out)
	}
}

// mtlsCA writes a self-signed CA certificate to file and returns it with its key.
func mtlsCA(t *testing.T, cn, file string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, file, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	return ca, key
}

// mtlsClientCert writes a client-authentication certificate signed by ca,
// and its key.
func mtlsClientCert(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
}
