package backend

import (
	"crypto/rand"
	"crypto/x509"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// BenchmarkSignCSR measures sign-csr through the framework (field parsing,
// config and role reads from in-memory storage, cached issuer), without
// Vault's HTTP and gRPC hops: EC P-256 CA, EC P-256 CSR, agent role.
func BenchmarkSignCSR(b *testing.B) {
	be, s := getTestBackend(b)
	generateCA(b, be, s)
	data := map[string]any{"csr": agentCSR(b, "bench")}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := requestErr(be, s, logical.UpdateOperation, "sign-csr", data)
		if err != nil || resp.IsError() {
			b.Fatalf("sign: %v %v", resp, err)
		}
	}
}

// BenchmarkSignFloor is the in-process floor: parse and verify the CSR,
// apply the role, create the certificate. No framework, no storage.
func BenchmarkSignFloor(b *testing.B) {
	be, s := getTestBackend(b)
	generateCA(b, be, s)
	is, err := be.loadIssuer(b.Context(), s, orgCA)
	if err != nil {
		b.Fatal(err)
	}
	r := defaultRoles()[roleAgent]
	csrText := agentCSR(b, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req, err := parseCSR(csrText)
		if err != nil {
			b.Fatal(err)
		}
		tmpl, _, err := r.leafTemplate(req, issueParams{TrustDomain: defaultTrustDomain, OrgID: "acme", Now: time.Now(), Issuer: is.cert, TruncateLeaf: true})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, is.cert, req.csr.PublicKey, is.signer); err != nil {
			b.Fatal(err)
		}
	}
}
