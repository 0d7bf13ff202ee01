package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// Cert makes a certificate with a fresh P-256 key, valid for an hour
// either side of now: a self-signed CA when parent is nil, else one signed
// by parent (and parentKey) for 127.0.0.1 with the given extended key
// usage (server or client authentication).
func Cert(t testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour),
		NotAfter:  time.Now().Add(time.Hour),
		KeyUsage:  x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	return makeCert(t, tmpl, elliptic.P256(), parent, parentKey)
}

// AutoMTLSCert makes a certificate like the ones go-plugin's AutoMTLS
// makes for its host and its plugins: self-signed and its own CA, with a
// P-521 key, for the name localhost, for both client and server
// authentication, valid for an hour either side of now.
func AutoMTLSCert(t testing.TB) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	cert, key, err := NewAutoMTLSCert()
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// NewAutoMTLSCert is AutoMTLSCert for programs that are not tests, such as
// bench/gateway/hop.
func NewAutoMTLSCert() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	return newCert(tmpl, elliptic.P521(), nil, nil)
}

// makeCert is newCert for tests.
func makeCert(t testing.TB, tmpl *x509.Certificate, curve elliptic.Curve, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	cert, key, err := newCert(tmpl, curve, parent, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newCert gives tmpl a serial number and a fresh key on curve, and signs
// it with parentKey, or with that key when parent is nil.
func newCert(tmpl *x509.Certificate, curve elliptic.Curve, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(curve, rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

// PEM returns cert encoded as a PEM "CERTIFICATE" block.
func PEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// WriteCert writes cert to path as PEM (mode 0600) and returns path.
func WriteCert(t testing.TB, path string, cert *x509.Certificate) string {
	t.Helper()
	if err := os.WriteFile(path, PEM(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKey writes key to path as a PEM "EC PRIVATE KEY" (mode 0600) and
// returns path.
func WriteKey(t testing.TB, path string, key *ecdsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, path, "EC PRIVATE KEY", der)
	return path
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
