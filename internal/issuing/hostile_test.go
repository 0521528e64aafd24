package issuing

import (
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// Issue 12, defect 1: a CSR whose RSA key no role can accept must be
// refused before its signature is checked, whose cost grows with the key.
// The worst such CSR under MaxCSRBytes (a 192,000-bit modulus, e = 2^31-1)
// took 3-4 s of CPU to refuse; BenchmarkParseCSR_Hostile measures it now.
func TestParseCSR_BoundsKeyBeforeSignature(t *testing.T) {
	cases := []struct {
		name       string
		bits, e    int
		wantPrefix string
	}{
		{"huge modulus and exponent", 192000, 1<<31 - 1, "csr RSA key of 192000 bits is larger than the 8192-bit limit"},
		{"modulus one byte over the limit", MaxRSABits + 8, 65537, "csr RSA key of 8200 bits is larger than the 8192-bit limit"},
		{"exponent", 2048, 1<<31 - 1, "csr RSA public exponent 2147483647 is not accepted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := testpki.HostileRSACSR(t, tc.bits, tc.e)
			if len(text) > MaxCSRBytes {
				t.Fatalf("the test CSR is %d bytes, over the cap: it would not test the bounds", len(text))
			}
			_, err := ParseCSR(text)
			if !IsInput(err) || !strings.HasPrefix(err.Error(), tc.wantPrefix) {
				t.Fatalf("ParseCSR = %v, want an input error starting %q", err, tc.wantPrefix)
			}
		})
	}
	// Within the bounds the signature is still checked.
	if _, err := ParseCSR(testpki.HostileRSACSR(t, 2048, 65537)); err == nil || !strings.Contains(err.Error(), "signature does not verify") {
		t.Fatalf("a 2048-bit CSR with a random signature: %v", err)
	}
}

// BenchmarkParseCSR_Hostile is the CPU one hostile CSR costs to refuse:
// the worst under the size cap (refused by the bounds), and the worst
// that reaches the signature check (RSA-8192, e = 65537, bad signature).
// The goal (issue 12) is under 5 ms each.
func BenchmarkParseCSR_Hostile(b *testing.B) {
	for _, c := range []struct {
		name    string
		bits, e int
	}{{"192000-bit e=2^31-1", 192000, 1<<31 - 1}, {"8192-bit e=65537", 8192, 65537}} {
		text := testpki.HostileRSACSR(b, c.bits, c.e)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := ParseCSR(text); err == nil {
					b.Fatal("a hostile CSR was accepted")
				}
			}
		})
	}
}

// An imported chain is bounded like a CSR: a chain certificate's RSA key
// is checked before it verifies the certificate below it (each costs
// what a hostile CSR did), and the chain's length is capped.
func TestValidateImport_BoundsChain(t *testing.T) {
	key := testpki.NewECKey(t, elliptic.P256())
	keyPEM, certPEM := testpki.ValidCA(t, key)
	n := new(big.Int).Lsh(big.NewInt(1), 192000-1)
	n.SetBit(n, 0, 1)
	huge := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", SubjectKey: &rsa.PublicKey{N: n, E: 1<<31 - 1}})
	_, err := ValidateImport(keyPEM, certPEM, testpki.CertPEM(huge), time.Now())
	if !IsInput(err) || !strings.Contains(err.Error(), "chain_pem certificate 1's RSA key of 192000 bits is larger than the 8192-bit limit") {
		t.Fatalf("a chain certificate with a 192,000-bit key: %v", err)
	}
	long := strings.Repeat(certPEM, MaxChain+1)
	if _, err := ValidateImport(keyPEM, certPEM, long, time.Now()); !IsInput(err) || !strings.Contains(err.Error(), "at most 8 are accepted") {
		t.Fatalf("a chain of %d certificates: %v", MaxChain+1, err)
	}
	if _, err := ValidateImport(keyPEM, certPEM, strings.Repeat(certPEM, 40), time.Now()); !IsInput(err) || !strings.Contains(err.Error(), "more than 16 certificates") {
		t.Fatalf("a chain of 40 certificates: %v", err)
	}
}
