package acceptance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// TestClient_AgentProfileFieldByField signs an openssl CSR through the Go
// client and checks every field the agent profile promises.
func TestClient_AgentProfileFieldByField(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)

	if _, err := c.CA(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("CA on an empty mount: %v, want ErrNotFound", err)
	}
	ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Version != 1 || ca.Source != "generated" || ca.KeyType != "ec" || ca.KeyBits != 256 || ca.Certificate.Subject.CommonName != "acme CA" {
		t.Fatalf("generated CA: %+v", ca)
	}

	dir := t.TempDir()
	csr := readFile(t, agentCSR(t, dir, "agent-42"))
	before := time.Now()
	signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := signed.Certificate

	if got := leaf.Subject.String(); got != "CN=acme::agent-42,O=acme" {
		t.Errorf("subject = %q", got)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cullis.local/acme/agent-42" || signed.SPIFFEID != leaf.URIs[0].String() {
		t.Errorf("URIs = %v, spiffe_id = %q", leaf.URIs, signed.SPIFFEID)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs")
	}
	bcCritical := false
	for _, e := range leaf.Extensions {
		if e.Id.String() == "2.5.29.19" {
			bcCritical = e.Critical
		}
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA || !bcCritical {
		t.Errorf("basicConstraints: valid=%v CA=%v critical=%v", leaf.BasicConstraintsValid, leaf.IsCA, bcCritical)
	}
	if string(leaf.AuthorityKeyId) != string(ca.Certificate.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AKI %x, CA SKI %x", leaf.AuthorityKeyId, ca.Certificate.SubjectKeyId)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 100 {
		t.Errorf("serial: %d bits", leaf.SerialNumber.BitLen())
	}
	if d := leaf.NotAfter.Sub(before); d < 365*24*time.Hour-time.Minute || d > 365*24*time.Hour+time.Minute {
		t.Errorf("validity from now: %s, want 365 days", d)
	}
	if d := before.Sub(leaf.NotBefore); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("notBefore %s before now, want 5m", d)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("KU %b EKU %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if err := leaf.CheckSignatureFrom(ca.Certificate); err != nil {
		t.Errorf("signature: %v", err)
	}
	if signed.IssuingCA.Equal(ca.Certificate) == false || len(signed.CAChainPEM) != 1 {
		t.Errorf("issuing_ca / ca_chain do not name the Org CA")
	}
	assertLints(t, ca.CertificatePEM, signed.CertificatePEM)

	// Refusals map to the sentinel errors.
	if _, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); !errors.Is(err, client.ErrExists) {
		t.Errorf("second Generate: %v, want ErrExists", err)
	} else if !strings.Contains(err.Error(), "version 1") {
		t.Errorf("ErrExists message lacks the version: %v", err)
	}
	bad := readFile(t, func() string {
		mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", "bad.key", "-out", "bad.csr", "-subj", "/CN=x",
			"-addext", "subjectAltName=URI:spiffe://evil.example/acme/x")
		return filepath.Join(dir, "bad.csr")
	}())
	if _, err := c.SignCSR(ctx, []byte(bad), client.SignOptions{}); !errors.Is(err, client.ErrPolicy) || !strings.Contains(err.Error(), "evil.example") {
		t.Errorf("SignCSR with a foreign trust domain: %v, want ErrPolicy naming it", err)
	}
	if _, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{TTL: 9000 * time.Hour}); !errors.Is(err, client.ErrPolicy) {
		t.Errorf("SignCSR above max_ttl: %v, want ErrPolicy", err)
	}
	if _, err := c.Role(ctx, "ghost"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Role(ghost): %v, want ErrNotFound", err)
	}
	pemBytes, err := c.CAPEM(ctx)
	if err != nil || strings.TrimSpace(string(pemBytes)) != strings.TrimSpace(ca.CertificatePEM) {
		t.Errorf("CAPEM: %v", err)
	}
}

// TestClient_ImportOpenSSLCAs imports CAs that openssl made (EC P-256 as
// SEC1 with parameters, RSA-4096 as PKCS#8) and signs under each; openssl
// verifies the chain.
func TestClient_ImportOpenSSLCAs(t *testing.T) {
	cases := []struct {
		name    string
		keyCmd  []string
		keyType string
		keyBits int
	}{
		{"ec-p256-sec1", []string{"ecparam", "-name", "prime256v1", "-genkey", "-out", "ca.key"}, "ec", 256},
		{"rsa-4096-pkcs8", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", "ca.key"}, "rsa", 4096},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mount := newMount(t)
			c := client.New(server.root, mount)
			dir := t.TempDir()
			mustOpenSSL(t, dir, tc.keyCmd...)
			mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-out", "ca.pem",
				"-subj", "/CN=acme CA/O=acme",
				"-addext", "basicConstraints=critical,CA:TRUE,pathlen:1",
				"-addext", "keyUsage=critical,keyCertSign,cRLSign")
			keyPEM, caPEM := readFile(t, filepath.Join(dir, "ca.key")), readFile(t, filepath.Join(dir, "ca.pem"))

			res, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: caPEM})
			if err != nil {
				t.Fatal(err)
			}
			caCert := testpki.ParseCertPEM(t, caPEM)
			if res.Version != 1 || res.Source != "imported" || res.KeyType != tc.keyType || res.KeyBits != tc.keyBits || res.Unchanged {
				t.Fatalf("import result: %+v", res)
			}
			if got := mustOpenSSL(t, dir, "x509", "-in", "ca.pem", "-noout", "-fingerprint", "-sha256"); !strings.Contains(strings.ToLower(strings.ReplaceAll(got, ":", "")), res.FingerprintSHA256) {
				t.Fatalf("fingerprint %s differs from openssl's %s", res.FingerprintSHA256, got)
			}
			again, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: caPEM})
			if err != nil || !again.Unchanged || again.Version != 1 {
				t.Fatalf("idempotent import: %+v, %v", again, err)
			}
			got, err := c.CA(ctx)
			if err != nil || !got.Certificate.Equal(caCert) {
				t.Fatalf("CA after import: %v", err)
			}

			csr := readFile(t, agentCSR(t, dir, "agent-1"))
			signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{Role: "agent"})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "leaf.pem"), []byte(signed.CertificatePEM), 0o600); err != nil {
				t.Fatal(err)
			}
			if out := mustOpenSSL(t, dir, "verify", "-CAfile", "ca.pem", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
				t.Fatalf("openssl verify: %s", out)
			}
			assertLints(t, signed.CertificatePEM)
			switch tc.keyType {
			case "ec":
				if _, ok := caCert.PublicKey.(*ecdsa.PublicKey); !ok || caCert.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
					t.Fatal("openssl CA is not P-256")
				}
			case "rsa":
				if k, ok := caCert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
					t.Fatal("openssl CA is not RSA-4096")
				}
			}
		})
	}
}
