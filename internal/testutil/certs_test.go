package testutil

import (
	"crypto/elliptic"
	"crypto/x509"
	"testing"
)

// TestAutoMTLSCert: the certificate is what go-plugin's AutoMTLS makes: a
// P-521 key, and a self-signed certificate that, trusted as its own root,
// verifies for localhost as a server and as a client.
func TestAutoMTLSCert(t *testing.T) {
	cert, key := AutoMTLSCert(t)
	if key.Curve != elliptic.P521() {
		t.Errorf("curve %s, want P-521", key.Curve.Params().Name)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("usage %v: %v", usage, err)
		}
	}
	if !cert.IsCA {
		t.Error("not a CA")
	}
}

// TestCert: a leaf signed by a CA from Cert verifies against that CA for
// 127.0.0.1 with its usage only, and a second CA's leaf does not.
func TestCert(t *testing.T) {
	ca, caKey := Cert(t, "CA", nil, nil, 0)
	leaf, _ := Cert(t, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	other, otherKey := Cert(t, "other CA", nil, nil, 0)
	stranger, _ := Cert(t, "stranger", other, otherKey, x509.ExtKeyUsageServerAuth)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	opts := x509.VerifyOptions{DNSName: "127.0.0.1", Roots: roots}
	if _, err := leaf.Verify(opts); err != nil {
		t.Errorf("leaf: %v", err)
	}
	if _, err := stranger.Verify(opts); err == nil {
		t.Error("another CA's leaf verified")
	}
	opts.KeyUsages = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := leaf.Verify(opts); err == nil {
		t.Error("a server certificate verified for client authentication")
	}
	if leaf.SerialNumber.Cmp(ca.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}
}
