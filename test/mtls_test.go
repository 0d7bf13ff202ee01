package test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"fmt"
	"github.com/vigilml/vigil/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestTLSClientCertificates runs an agent that requires client
// certificates (api.tls.client_ca_file) and drives the CLI against it:
// without a certificate it is refused with a hint at -client-cert; with
// one signed by the client CA, given by flags or by VIGIL_CLIENT_CERT and
// VIGIL_CLIENT_KEY, status and the other commands work; a certificate
// from another CA or a key that does not match are refused clearly.
func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := agentCert(t, dir)
	clientCert := func(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn, certFile, keyFile string) {
		c, k := testutil.Cert(t, cn, ca, caKey, x509.ExtKeyUsageClientAuth)
		testutil.WriteCert(t, certFile, c)
		testutil.WriteKey(t, keyFile, k)
	}
	clientCA, clientCAKey := testutil.Cert(t, "vigil clients", nil, nil, 0)
	testutil.WriteCert(t, filepath.Join(dir, "client-ca.pem"), clientCA)
	cliCert, cliKey := filepath.Join(dir, "operator.pem"), filepath.Join(dir, "operator-key.pem")
	clientCert(clientCA, clientCAKey, "operator", cliCert, cliKey)
	otherCA, otherCAKey := testutil.Cert(t, "someone else", nil, nil, 0)
	strangerCert, strangerKey := filepath.Join(dir, "stranger.pem"), filepath.Join(dir, "stranger-key.pem")
	clientCert(otherCA, otherCAKey, "stranger", strangerCert, strangerKey)

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

	code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile)
	if code != 2 || !strings.Contains(out, "requires a client certificate") ||
		!strings.Contains(out, "-client-cert") || !strings.Contains(out, "VIGIL_CLIENT_CERT") {
		t.Errorf("status without a client certificate: exit %d, want 2 and a hint at -client-cert:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", cliCert, "-client-key", cliKey)
	if code != 0 || !strings.Contains(out, "(TLS, no auth: loopback only)") {
		t.Errorf("status with -client-cert: exit %d:\n%s", code, out)
	}

	env := []string{"VIGIL_HTTP_ADDR=" + addr, "VIGIL_CACERT=" + caFile, "VIGIL_CLIENT_CERT=" + cliCert, "VIGIL_CLIENT_KEY=" + cliKey}
	for _, args := range [][]string{{"status"}, {"host"}, {"models"}, {"alerts"}, {"plugins", "list"}} {
		if code, out := vigil(env, args...); code != 0 {
			t.Errorf("%v with VIGIL_CLIENT_CERT: exit %d:\n%s", args, code, out)
		}
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", strangerCert, "-client-key", strangerKey)
	if code != 2 || !strings.Contains(out, "refused the client certificate "+strangerCert) || !strings.Contains(out, "unknown certificate authority") {
		t.Errorf("status with a certificate from another CA: exit %d:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", cliCert, "-client-key", strangerKey)
	if code != 2 || !strings.Contains(out, "private key does not match public key") || !strings.Contains(out, cliCert) {
		t.Errorf("status with a key that is not the certificate's: exit %d:\n%s", code, out)
	}

	code, out = vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", cliCert)
	if code != 2 || !strings.Contains(out, "-client-key") {
		t.Errorf("status with -client-cert only: exit %d:\n%s", code, out)
	}

	// The client CA rotated in place: SIGHUP verifies clients against the
	// new one, without a restart.
	testutil.WriteCert(t, filepath.Join(dir, "client-ca.pem"), otherCA)
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Contains(a.stderr.String(), "API TLS client CA reloaded") }, "the client CA reload log line")
	if code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", strangerCert, "-client-key", strangerKey); code != 0 {
		t.Errorf("status with a certificate of the new client CA after SIGHUP: exit %d:\n%s", code, out)
	}
	if code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", cliCert, "-client-key", cliKey); code != 2 || !strings.Contains(out, "unknown certificate authority") {
		t.Errorf("status with a certificate of the old client CA after SIGHUP: exit %d:\n%s", code, out)
	}

	// New paths: a new server certificate (from another CA) and the first
	// client CA again, in files of their own. SIGHUP serves and verifies
	// them, without a restart and without calling the keys restart-only.
	newDir := filepath.Join(dir, "renewed")
	if err := os.Mkdir(newDir, 0o700); err != nil {
		t.Fatal(err)
	}
	newCA, newCert, newKey := agentCert(t, newDir)
	testutil.WriteCert(t, filepath.Join(newDir, "clients.pem"), clientCA)
	writeFile(t, cfg, fmt.Sprintf("data_dir: %s\napi:\n  addr: 127.0.0.1:0\n  tls:\n    cert_file: %s\n    key_file: %s\n    client_ca_file: %s\n",
		filepath.Join(dir, "data"), newCert, newKey, filepath.Join(newDir, "clients.pem")))
	a.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, func() bool { return strings.Count(a.stderr.String(), "API TLS client CA reloaded") == 2 }, "the second client CA reload")
	if code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", newCA, "-client-cert", cliCert, "-client-key", cliKey); code != 0 {
		t.Errorf("status against the new certificate, with the new client CA's certificate: exit %d:\n%s", code, out)
	}
	if code, out := vigil(nil, "status", "-http-addr", addr, "-ca-file", caFile, "-client-cert", cliCert, "-client-key", cliKey); code != 2 {
		t.Errorf("the old server CA still verifies the agent after its certificate moved: exit %d:\n%s", code, out)
	}
	if log := a.stderr.String(); strings.Contains(log, "need a restart") {
		t.Errorf("new api.tls paths were called restart-only:\n%s", log)
	}
}
