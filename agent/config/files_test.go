package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckFilesFindsWhatTheAgentWouldFailOn checks that the files the
// forwarder reads at start (secrets, TLS) are checked by CheckFiles, with
// the file and line of their key, so that `vigil config validate` does not
// call valid a configuration the agent refuses to start with.
func TestCheckFilesFindsWhatTheAgentWouldFailOn(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "secret\n")
	missing := filepath.Join(dir, "missing")
	p := writeFile(t, dir, "vigil.yaml", `forward:
  remote_write:
    - name: good
      url: http://127.0.0.1:9090/api/v1/write
      bearer_token_file: `+token+`
    - name: bad
      url: https://127.0.0.1:9090/api/v1/write
      bearer_token_file: `+missing+`
      tls:
        ca_file: `+missing+`
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = l.CheckFiles(noEnv)
	if err == nil {
		t.Fatal("CheckFiles found nothing wrong")
	}
	for _, want := range []string{
		"vigil.yaml:8: forward.remote_write[1].bearer_token_file: cannot read " + missing,
		"vigil.yaml:10: forward.remote_write[1].tls.ca_file: cannot read " + missing,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "remote_write[0]") {
		t.Errorf("readable file reported:\n%v", err)
	}

	if err := os.WriteFile(missing, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFiles(noEnv); err != nil {
		t.Errorf("all files readable: %v", err)
	}
}

// TestCheckFilesAlertsAndGateway checks the alert receivers' token files
// and variables and the gateway providers' key variables, which the agent
// also needs at start.
func TestCheckFilesAlertsAndGateway(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	p := writeFile(t, dir, "vigil.yaml", `alerts:
  alertmanagers:
    - url: http://127.0.0.1:9093
      bearer_token_file: `+missing+`
  webhooks:
    - url: http://127.0.0.1:9999/hook
      bearer_token_env: HOOK_TOKEN
gateway:
  providers:
    - name: oa
      plugin: openai
      api_key_env: OA_KEY
`)
	l, err := Load(Options{Path: p, Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = l.CheckFiles(noEnv)
	for _, want := range []string{
		"vigil.yaml:4: alerts.alertmanagers[0].bearer_token_file: cannot read " + missing,
		"vigil.yaml:7: alerts.webhooks[0].bearer_token_env: environment variable HOOK_TOKEN is not set",
		"vigil.yaml:12: gateway.providers[0].api_key_env: environment variable OA_KEY is not set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	env := func(k string) (string, bool) { return "set", k == "HOOK_TOKEN" || k == "OA_KEY" }
	if err := os.WriteFile(missing, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.CheckFiles(env); err != nil {
		t.Errorf("everything present: %v", err)
	}
}

// TestCheckFilesAPITLS checks api.tls: the agent loads the certificate, its
// key and the client CA bundle only when it starts listening, after opening
// its stores, so a missing file, a key that is not the certificate's, or a
// CA bundle without certificates must fail `vigil config validate` instead.
func TestCheckFilesAPITLS(t *testing.T) {
	dir := t.TempDir()
	cert, key := writeSelfSigned(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	notPEM := writeFile(t, dir, "ca.txt", "not a certificate\n")
	for _, tc := range []struct {
		name, tls string
		want      []string // empty: valid
	}{
		{"good", "    cert_file: " + cert + "\n    key_file: " + key + "\n    client_ca_file: " + cert + "\n", nil},
		{"missing cert", "    cert_file: " + missing + "\n    key_file: " + key + "\n",
			[]string{"vigil.yaml:4: api.tls.cert_file: cannot load the certificate " + missing + " and key " + key + ": open " + missing + ": no such file or directory"}},
		{"swapped", "    cert_file: " + key + "\n    key_file: " + cert + "\n",
			[]string{"vigil.yaml:4: api.tls.cert_file: cannot load the certificate " + key + " and key " + cert}},
		{"missing CA", "    cert_file: " + cert + "\n    key_file: " + key + "\n    client_ca_file: " + missing + "\n",
			[]string{"vigil.yaml:6: api.tls.client_ca_file: cannot read " + missing + ": no such file or directory"}},
		{"CA not PEM", "    cert_file: " + cert + "\n    key_file: " + key + "\n    client_ca_file: " + notPEM + "\n",
			[]string{"vigil.yaml:6: api.tls.client_ca_file: " + notPEM + " holds no PEM certificates"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, dir, "vigil.yaml", "api:\n  addr: 127.0.0.1:0\n  tls:\n"+tc.tls)
			l, err := Load(Options{Path: p, Env: noEnv})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			err = l.CheckFiles(noEnv)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckFiles: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckFiles found nothing wrong")
			}
			for _, want := range tc.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

// writeSelfSigned writes a self-signed ECDSA certificate and its key as PEM
// files in dir and returns their paths.
func writeSelfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vigil-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert = writeFile(t, dir, "api.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	key = writeFile(t, dir, "api-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})))
	return cert, key
}

// TestCheckFilesUnixSocketDir checks api.unix_socket's directory, which the
// agent needs when it starts listening: /run/vigil exists only when systemd
// made it for vigil.service (RuntimeDirectory), so an agent run by hand
// with the packaged example failed to start after validate called it valid.
func TestCheckFilesUnixSocketDir(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, sock, want string
	}{
		{"existing dir", filepath.Join(dir, "api.sock"), ""},
		{"missing dir", filepath.Join(dir, "run", "vigil", "api.sock"),
			"vigil.yaml:3: api.unix_socket: directory " + filepath.Join(dir, "run", "vigil") + " does not exist"},
		{"file as dir", filepath.Join(dir, "vigil.yaml", "api.sock"),
			"vigil.yaml:3: api.unix_socket: " + filepath.Join(dir, "vigil.yaml") + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCheckFiles(t, dir, "api:\n  addr: 127.0.0.1:0\n  unix_socket: "+tc.sock+"\n", tc.want)
		})
	}
}

// TestCheckFilesDataDir checks data_dir, which the agent creates and locks
// first thing at start: a path through a regular file, or a data_dir that
// is a file, cannot work, and validate says so with the key's line.
func TestCheckFilesDataDir(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "plain", "x")
	for _, tc := range []struct {
		name, dataDir, want string
	}{
		{"existing", dir, ""},
		{"to be created", filepath.Join(dir, "new", "data"), ""},
		{"a file", file, "vigil.yaml:1: data_dir: " + file + " is not a directory"},
		{"under a file", filepath.Join(file, "data"), "vigil.yaml:1: data_dir: " + file + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCheckFiles(t, dir, "data_dir: "+tc.dataDir+"\n", tc.want)
		})
	}
}

// wantCheckFiles loads yaml as dir/vigil.yaml and checks that CheckFiles
// passes (want empty) or fails with an error containing want.
func wantCheckFiles(t *testing.T, dir, yaml, want string) {
	t.Helper()
	l, err := Load(Options{Path: writeFile(t, dir, "vigil.yaml", yaml), Env: noEnv})
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	err = l.CheckFiles(noEnv)
	if want == "" {
		if err != nil {
			t.Fatalf("CheckFiles: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v; want one containing %q", err, want)
	}
}
