package issuing

import (
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// BenchmarkSignFloor is the in-process floor: parse and verify the CSR,
// apply the role, create the certificate. No framework, no storage. It is
// the function `mastio-ca bench` reports as C.
func BenchmarkSignFloor(b *testing.B) {
	sign, err := InProcessSigner(KeyTypeEC, 256)
	if err != nil {
		b.Fatal(err)
	}
	csrText := testpki.AgentCSR(b, "bench")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sign(csrText); err != nil {
			b.Fatal(err)
		}
	}
}
