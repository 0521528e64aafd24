// Package testpki makes keys, CSRs and certificates for tests: one set of
// fixtures for every package's tests.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"
)

// NewECKey makes an EC key on curve c.
func NewECKey(t testing.TB, c elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewRSAKey makes an RSA key of bits.
func NewRSAKey(t testing.TB, bits int) crypto.Signer {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// NewEd25519Key makes an Ed25519 key.
func NewEd25519Key(t testing.TB) crypto.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// CSR describes a test CSR.
type CSR struct {
	Key        crypto.Signer
	CN         string
	URIs       []string
	DNS        []string
	Emails     []string
	IPs        []net.IP
	ExtraExts  []pkix.Extension
	CorruptSig bool
}

// MakeCSR makes a PEM CSR as spec says (a fresh P-256 key when Key is nil).
func MakeCSR(t testing.TB, spec CSR) string {
	t.Helper()
	if spec.Key == nil {
		spec.Key = NewECKey(t, elliptic.P256())
	}
	tmpl := &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: spec.CN},
		DNSNames:        spec.DNS,
		EmailAddresses:  spec.Emails,
		IPAddresses:     spec.IPs,
		ExtraExtensions: spec.ExtraExts,
	}
	for _, u := range spec.URIs {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, spec.Key)
	if err != nil {
		t.Fatal(err)
	}
	if spec.CorruptSig {
		// Flip the last byte of the signature: the CSR still parses but
		// its self-signature no longer verifies.
		der[len(der)-1] ^= 0x01
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// AgentCSR is a CSR the default agent profile accepts for org acme.
func AgentCSR(t testing.TB, name string) string {
	return MakeCSR(t, CSR{CN: "acme::" + name, URIs: []string{"spiffe://cullis.local/acme/" + name}})
}

// MustExt is an extension with v DER-encoded.
func MustExt(t testing.TB, id asn1.ObjectIdentifier, critical bool, v any) pkix.Extension {
	t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: id, Critical: critical, Value: der}
}

// CACert describes a certificate made outside the plugin for import tests.
type CACert struct {
	Key       crypto.Signer
	IsCA      bool
	KeyUsage  x509.KeyUsage
	NotBefore time.Time
	NotAfter  time.Time
	Org       string
	Parent    *x509.Certificate
	ParentKey crypto.Signer
	// PathLenZero sets basicConstraints pathLen 0; PathLen above 0 sets
	// that pathLen.
	PathLenZero bool
	PathLen     int
	// SubjectKey, when set, is the certified public key instead of Key's
	// (Key still signs a self-signed certificate).
	SubjectKey crypto.PublicKey
}

// MakeCert makes a certificate as spec says, self-signed unless Parent is set.
func MakeCert(t testing.TB, spec CACert) *x509.Certificate {
	t.Helper()
	if spec.NotBefore.IsZero() {
		spec.NotBefore = time.Now().Add(-time.Hour)
	}
	if spec.NotAfter.IsZero() {
		spec.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "test CA", Organization: []string{spec.Org}},
		NotBefore:             spec.NotBefore,
		NotAfter:              spec.NotAfter,
		BasicConstraintsValid: true,
		IsCA:                  spec.IsCA,
		KeyUsage:              spec.KeyUsage,
		MaxPathLenZero:        spec.PathLenZero,
		MaxPathLen:            spec.PathLen,
	}
	if spec.Org == "" {
		tmpl.Subject.Organization = nil
	}
	parent, parentKey := tmpl, spec.Key
	if spec.Parent != nil {
		parent, parentKey = spec.Parent, spec.ParentKey
	}
	pub := spec.Key.Public()
	if spec.SubjectKey != nil {
		pub = spec.SubjectKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// CertPEM is c as PEM.
func CertPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// PKCS8PEM is k as PKCS#8 PEM.
func PKCS8PEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// ValidCA returns a key and CA certificate that import accepts.
func ValidCA(t testing.TB, key crypto.Signer) (string, string) {
	t.Helper()
	cert := MakeCert(t, CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Org: "acme"})
	return PKCS8PEM(t, key), CertPEM(cert)
}

// ParseCertPEM parses the first certificate of s.
func ParseCertPEM(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		t.Fatalf("no PEM in %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SANExt is a subjectAltName extension of raw GeneralNames.
func SANExt(t testing.TB, names ...asn1.RawValue) pkix.Extension {
	return MustExt(t, asn1.ObjectIdentifier{2, 5, 29, 17}, false, names)
}

// HostileRSACSR is a PEM CSR whose RSA key has a random modulus of bits
// bits and public exponent e, with a random signature: nothing anyone
// could sign with, built to cost a verifier as much as possible.
func HostileRSACSR(t testing.TB, bits, e int) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	if err != nil {
		t.Fatal(err)
	}
	n.SetBit(n, bits-1, 1).SetBit(n, 0, 1)
	pub, err := asn1.Marshal(struct {
		N *big.Int
		E int
	}{n, e})
	if err != nil {
		t.Fatal(err)
	}
	type spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	type info struct {
		Version    int
		Subject    asn1.RawValue
		PublicKey  spki
		Attributes asn1.RawValue
	}
	tbs, err := asn1.Marshal(info{
		Subject:    asn1.RawValue{FullBytes: []byte{0x30, 0x00}},
		PublicKey:  spki{Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}, Parameters: asn1.NullRawValue}, PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}},
		Attributes: asn1.RawValue{FullBytes: []byte{0xa0, 0x00}},
	})
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, (bits+7)/8)
	if _, err := rand.Read(sig); err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct {
		Info      asn1.RawValue
		Algorithm pkix.AlgorithmIdentifier
		Signature asn1.BitString
	}{asn1.RawValue{FullBytes: tbs}, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, Parameters: asn1.NullRawValue}, asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}})
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// PublicKeyPEM is k's public key as PEM SubjectPublicKeyInfo.
func PublicKeyPEM(t testing.TB, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}
