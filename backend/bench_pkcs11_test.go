//go:build pkcs11

package backend

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testhsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// BenchmarkPKCS11SignCSR is BenchmarkSignCSR with the intermediate's key
// (EC P-256) in a SoftHSM2 token (key=pkcs11) and, beside it, the same CAs
// with the key in Vault (key=vault): an EC P-256 Org CA and intermediate
// on each, the same CSR, the agent role, through the framework without
// Vault's HTTP and gRPC hops. Each runs one request at a time and then 8
// at once (goroutines=8 on 2 cores), as `mastio-ca bench` does at
// concurrency 8 (make bench).
func BenchmarkPKCS11SignCSR(b *testing.B) {
	tok := testhsm.New(b, "bench")
	b.Setenv(hsm.ModulesEnv, testhsm.Module)
	procs := runtime.GOMAXPROCS(0)
	perProc := (8 + procs - 1) / procs
	for _, backend := range []string{keyBackendVault, keyBackendPKCS11} {
		be, s := getTestBackend(b)
		b.Cleanup(be.tokens.reset)
		if backend == keyBackendPKCS11 {
			mustOK(b, request(b, be, s, logical.UpdateOperation, "config/pkcs11", map[string]any{
				"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN,
			}))
		}
		mustOK(b, request(b, be, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "key_backend": backend}))
		inter := mustOK(b, request(b, be, s, logical.UpdateOperation, "intermediate/generate", map[string]any{
			"key_backend": backend, "key_type": "ec", "key_bits": 256,
		}))
		if inter.Data["key_backend"] != backend {
			b.Fatalf("intermediate/generate answered key_backend %v, want %s", inter.Data["key_backend"], backend)
		}
		data := map[string]any{"csr": testpki.AgentCSR(b, "bench")}
		sign := func() error {
			resp, err := requestErr(be, s, logical.UpdateOperation, "sign-csr", data)
			if err != nil || resp.IsError() {
				return fmt.Errorf("sign: %v %v", resp, err)
			}
			return nil
		}
		b.Run("key="+backend, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := sign(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("key="+backend+"/goroutines="+strconv.Itoa(perProc*procs), func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(perProc)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sign(); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
		})
	}
}
