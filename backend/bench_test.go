package backend

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
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

// BenchmarkRevocation measures, with 1k, 10k and 100k serials already
// revoked under one intermediate: revoke (one entry and the CRL state
// written to in-memory storage; the CRL is rebuilt lazily), rebuild (the
// complete CRL and its delta signed from memory, as the first fetch after
// a revoke does; crl-bytes is the complete CRL's size), and load (a fresh
// node reading every revocation from storage on first use).
func BenchmarkRevocation(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("revoked=%d", n), func(b *testing.B) {
			be, s := getTestBackend(b)
			generateCA(b, be, s)
			if _, err := requestErr(be, s, logical.UpdateOperation, "intermediate/generate", nil); err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			issuers, err := be.crlIssuers(ctx, s)
			if err != nil {
				b.Fatal(err)
			}
			is := issuers[0]
			notAfter := is.cert.NotAfter.Add(-time.Hour).UTC()
			for i := 0; i < n; i++ {
				key := issuing.SerialHex(big.NewInt(int64(1 + i)))
				e := revokedEntry{Serial: key, RevokedAt: time.Now().UTC(), NotAfter: notAfter, CRLNumber: 1}
				if err := putEntry(ctx, s, revokedPrefix+is.id+"/"+key, "r", e); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := be.crl(ctx, s, "", false); err != nil { // loads them all
				b.Fatal(err)
			}
			next := int64(n + 1)
			b.Run("rebuild", func(b *testing.B) {
				var size int
				for b.Loop() {
					be.revocations.mu.Lock()
					delete(be.revocations.built, is.id)
					be.revocations.mu.Unlock()
					der, err := be.crl(ctx, s, "", false)
					if err != nil {
						b.Fatal(err)
					}
					size = len(der)
				}
				b.ReportMetric(float64(size), "crl-bytes")
			})
			b.Run("load", func(b *testing.B) {
				for b.Loop() {
					r := newRevocations()
					r.mu.Lock()
					err := r.refresh(ctx, s)
					r.mu.Unlock()
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			// Last: every iteration adds a revocation.
			b.Run("revoke", func(b *testing.B) {
				for b.Loop() {
					next++
					if _, err := be.revoke(ctx, s, revokeRequest{serial: big.NewInt(next).Text(16), issuerRef: "intermediate-ca", notAfter: notAfter}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkOCSP answers OCSP GETs through the framework (request
// parsing, lookup among 1,000 revoked serials, signing), without Vault's
// HTTP and gRPC hops: EC P-256 intermediate; "same" asks about one
// certificate (answered from the cache after the first), "distinct" about
// a new serial each time (signed each time).
func BenchmarkOCSP(b *testing.B) {
	be, s := getTestBackend(b)
	generateCA(b, be, s)
	if _, err := requestErr(be, s, logical.UpdateOperation, "intermediate/generate", nil); err != nil {
		b.Fatal(err)
	}
	resp, err := requestErr(be, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(b, "bench")})
	if err != nil {
		b.Fatal(err)
	}
	leaf := testpki.ParseCertPEM(b, resp.Data["certificate"].(string))
	inter := testpki.ParseCertPEM(b, resp.Data["issuing_ca"].(string))
	for i := 0; i < 1000; i++ {
		if _, err := be.revoke(context.Background(), s, revokeRequest{serial: big.NewInt(int64(1 + i)).Text(16), issuerRef: "intermediate-ca", notAfter: leaf.NotAfter}); err != nil {
			b.Fatal(err)
		}
	}
	ask := func(b *testing.B, der []byte) {
		resp, err := requestErr(be, s, logical.ReadOperation, "ocsp/"+base64.StdEncoding.EncodeToString(der), nil)
		if err != nil || resp.Data[logical.HTTPStatusCode] != 200 {
			b.Fatalf("ocsp: %v %v", resp, err)
		}
	}
	b.Run("same", func(b *testing.B) {
		der, err := ocsp.CreateRequest(leaf, inter, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			ask(b, der)
		}
	})
	b.Run("distinct", func(b *testing.B) {
		next := int64(1 << 40)
		b.ReportAllocs()
		for b.Loop() {
			next++
			der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: big.NewInt(next)}, inter, nil)
			if err != nil {
				b.Fatal(err)
			}
			ask(b, der)
		}
	})
}
