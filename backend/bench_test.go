package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// BenchmarkSignCSR measures sign-csr through the framework (field parsing,
// config and role reads from in-memory storage, cached issuer), without
// Vault's HTTP and gRPC hops: EC P-256 CA, EC P-256 CSR, agent role.
func BenchmarkSignCSR(b *testing.B) {
	be, s := getTestBackend(b)
	generateCA(b, be, s)
	data := map[string]any{"csr": testpki.AgentCSR(b, "bench")}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := requestErr(be, s, logical.UpdateOperation, "sign-csr", data)
		if err != nil || resp.IsError() {
			b.Fatalf("sign: %v %v", resp, err)
		}
	}
}

// BenchmarkSignBatch100 signs 100 CSRs per request through the framework;
// ns/op is per request.
func BenchmarkSignBatch100(b *testing.B) {
	be, s := getTestBackend(b)
	generateCA(b, be, s)
	csrs := make([]string, 100)
	for i := range csrs {
		csrs[i] = testpki.AgentCSR(b, "bench")
	}
	data := map[string]any{"csrs": csrs}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := requestErr(be, s, logical.UpdateOperation, "sign-csr", data)
		if err != nil || resp.IsError() || resp.Data["failed"] != 0 {
			b.Fatalf("batch: %v %v", resp, err)
		}
	}
}
