//go:build !pkcs11

package backend

import (
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// The static build says it has no PKCS#11 and which build has.
func TestPKCS11_NotBuilt(t *testing.T) {
	b, s := getTestBackend(t)
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"module_path": "/usr/lib/softhsm/libsofthsm2.so", "token_label": "x", "pin": "1"}, http.StatusUnprocessableEntity, "no PKCS#11 support", "vault-plugin-mastio-ca-pkcs11")
	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}, http.StatusUnprocessableEntity, "no PKCS#11 support")
	if r := mustOK(t, request(t, b, s, logical.ReadOperation, "config/pkcs11", nil)); r.Data["built"] != false || r.Data["configured"] != false {
		t.Fatalf("config/pkcs11 read: %v", r.Data)
	}
	// Without an HSM, generate still defaults to a key in Vault.
	if r := generateCA(t, b, s); r.Data["key_backend"] != keyBackendVault {
		t.Fatalf("key_backend %v", r.Data["key_backend"])
	}
	// A CA whose key is in a token (stored by the PKCS#11 build) cannot
	// sign here: 422, naming the build that can.
	e, err := readCA(t.Context(), s, orgCA)
	if err != nil {
		t.Fatal(err)
	}
	e.KeyPKCS8, e.KeyPKCS11 = nil, &hsmKeyRef{ID: "00112233", Label: "mastio-ca/org-ca/00112233"}
	putCA(t, b, s, orgCA, e)
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}, http.StatusUnprocessableEntity, "no PKCS#11 support")
}
