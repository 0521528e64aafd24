package acceptance

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestClient_BatchSigning: 10 CSRs in one request, one of them refused.
func TestClient_BatchSigning(t *testing.T) {
	ctx := t.Context()
	_, c, ca, _ := newCA(t, false)
	dir := t.TempDir()
	csrs := make([][]byte, 10)
	for i := range csrs {
		csrs[i] = []byte(readFile(t, agentCSR(t, dir, fmt.Sprintf("batch-%d", i))))
	}
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "bad.key", "-out", "bad.csr", "-subj", "/CN=x", "-addext", "subjectAltName=DNS:evil.example")
	csrs[4] = []byte(readFile(t, filepath.Join(dir, "bad.csr")))
	results, err := c.SignCSRBatch(ctx, csrs, client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 10 {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		switch {
		case i == 4:
			if !errors.Is(r.Err, client.ErrPolicy) || !strings.Contains(r.Err.Error(), "csrs[4]") {
				t.Fatalf("the bad CSR: %v", r.Err)
			}
		case r.Err != nil || r.Certificate.Certificate.CheckSignatureFrom(ca.Certificate) != nil:
			t.Fatalf("CSR %d: %v", i, r.Err)
		case r.Certificate.SPIFFEID != fmt.Sprintf("spiffe://cullis.local/acme/batch-%d", i):
			t.Fatalf("CSR %d signed as %s", i, r.Certificate.SPIFFEID)
		default:
			assertLints(t, r.Certificate.CertificatePEM)
		}
	}
}
