package backend

import (
	"testing"

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
// apply the role, create the certificate. No framework, no storage. It is
// the function `mastio-ca bench` reports as C.
func BenchmarkSignFloor(b *testing.B) {
	sign, err := InProcessSigner(keyTypeEC, 256)
	if err != nil {
		b.Fatal(err)
	}
	csrText := agentCSR(b, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sign(csrText); err != nil {
			b.Fatal(err)
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
		csrs[i] = agentCSR(b, "bench")
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
