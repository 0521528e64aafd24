package backend

import (
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func publicKeyPEM(t *testing.T, k crypto.Signer) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestSignPublicKey_AgentAndPrincipal(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	key := testpki.NewECKey(t, elliptic.P256())

	// Same output as sign-csr: the agent profile, signed by the intermediate.
	fromKey := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-public-key", map[string]any{"public_key": publicKeyPEM(t, key), "name": "agent-9"}))
	fromCSR := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: key, URIs: []string{"spiffe://cullis.local/acme/agent-9"}})}))
	a := testpki.ParseCertPEM(t, fromKey.Data["certificate"].(string))
	c := testpki.ParseCertPEM(t, fromCSR.Data["certificate"].(string))
	if a.Subject.String() != c.Subject.String() || a.URIs[0].String() != c.URIs[0].String() || a.KeyUsage != c.KeyUsage ||
		a.NotAfter.Sub(a.NotBefore) != c.NotAfter.Sub(c.NotBefore) || string(a.AuthorityKeyId) != string(c.AuthorityKeyId) ||
		!issuing.PublicKeysEqual(a.PublicKey, key.Public()) || fromKey.Data["spiffe_id"] != "spiffe://cullis.local/acme/agent-9" {
		t.Fatalf("sign-public-key and sign-csr disagree: %q %v vs %q %v", a.Subject, a.URIs, c.Subject, c.URIs)
	}
	for _, k := range []string{"issuing_ca", "ca_chain", "serial_number", "not_after"} {
		if fromKey.Data[k] == nil {
			t.Errorf("response lacks %s", k)
		}
	}

	// principal has alternatives: the full SPIFFE ID is named.
	p := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-public-key/principal", map[string]any{"public_key": publicKeyPEM(t, key), "spiffe_id": "spiffe://cullis.local/acme/user/alice"}))
	if cert := testpki.ParseCertPEM(t, p.Data["certificate"].(string)); len(cert.Subject.Names) != 0 || cert.URIs[0].String() != "spiffe://cullis.local/acme/user/alice" {
		t.Fatalf("principal: %q %v", cert.Subject, cert.URIs)
	}
}

func TestSignPublicKey_BadInput(t *testing.T) {
	good := publicKeyPEM(t, testpki.NewECKey(t, elliptic.P256()))
	runBadInputs(t, true, []badInput{
		{name: "garbage", path: "sign-public-key", data: map[string]any{"public_key": "nope", "name": "a"}, want: "public_key is not PEM"},
		{name: "missing", path: "sign-public-key", data: map[string]any{"name": "a"}, want: "public_key is required"},
		{name: "a CSR instead", path: "sign-public-key", data: map[string]any{"public_key": testpki.AgentCSR(t, "a"), "name": "a"}, want: `has type "CERTIFICATE REQUEST"`},
		{name: "corrupt DER", path: "sign-public-key", data: map[string]any{"public_key": "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n", "name": "a"}, want: "could not be parsed"},
		{name: "two keys", path: "sign-public-key", data: map[string]any{"public_key": good + good, "name": "a"}, want: "exactly one key"},
		{name: "P-224", path: "sign-public-key", data: map[string]any{"public_key": publicKeyPEM(t, testpki.NewECKey(t, elliptic.P224())), "name": "a"}, want: "224-bit curve is not allowed"},
		{name: "RSA-1024", path: "sign-public-key", data: map[string]any{"public_key": publicKeyPEM(t, testpki.NewRSAKey(t, 1024)), "name": "a"}, want: "RSA key of 1024 bits is not allowed"},
		{name: "Ed25519 under agent", path: "sign-public-key", data: map[string]any{"public_key": publicKeyPEM(t, testpki.NewEd25519Key(t)), "name": "a"}, want: "key type ed25519 is not allowed"},
		{name: "name breaks the pattern", path: "sign-public-key", data: map[string]any{"public_key": good, "name": "a/b"}, want: `name "a/b" is not a valid SPIFFE path segment`},
		{name: "dot name", path: "sign-public-key", data: map[string]any{"public_key": good, "name": ".."}, want: "is not a valid SPIFFE path segment"},
		{name: "name on a pattern with alternatives", path: "sign-public-key/principal", data: map[string]any{"public_key": good, "name": "alice"}, want: "pass spiffe_id instead of name"},
		{name: "neither name nor spiffe_id", path: "sign-public-key", data: map[string]any{"public_key": good}, want: "name or spiffe_id is required"},
		{name: "both", path: "sign-public-key", data: map[string]any{"public_key": good, "name": "a", "spiffe_id": "spiffe://cullis.local/acme/a"}, want: "not both"},
		{name: "foreign spiffe_id", path: "sign-public-key", data: map[string]any{"public_key": good, "spiffe_id": "spiffe://evil.example/acme/a"}, want: `trust domain "evil.example"`},
		{name: "ttl above max", path: "sign-public-key", data: map[string]any{"public_key": good, "name": "a", "ttl": "9000h"}, want: "exceeds the role's max_ttl"},
		{name: "role in body", path: "sign-public-key", data: map[string]any{"public_key": good, "name": "a", "role": "agent"}, want: "role goes in the path"},
		{name: "unknown role", path: "sign-public-key/ghost", data: map[string]any{"public_key": good, "name": "a"}, want: `role "ghost" does not exist`, status: http.StatusNotFound},
		{name: "role without URI SANs", path: "sign-public-key/dns", data: map[string]any{"public_key": good, "name": "a"}, want: "requires exactly one URI SAN",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/dns", map[string]any{"uri_san_count": 0, "allow_dns_sans": true, "allowed_dns_sans": "*.acme.example"}))
			}},
	})
}

func TestSignPublicKey_MoreBadInput(t *testing.T) {
	good := publicKeyPEM(t, testpki.NewECKey(t, elliptic.P256()))
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	xDER, err := x509.MarshalPKIXPublicKey(x.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	runBadInputs(t, true, []badInput{
		{name: "X25519 key", path: "sign-public-key", data: map[string]any{"public_key": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: xDER})), "name": "a"}, want: "unsupported public key type"},
		{name: "spiffe_id not a URI", path: "sign-public-key", data: map[string]any{"public_key": good, "spiffe_id": "spiffe://cullis.local/acme/%zz"}, want: "is not a URI"},
		{name: "two stars", path: "sign-public-key/two", data: map[string]any{"public_key": good, "name": "a"}, want: "does not have exactly one * segment",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/two", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/*/*", "allow_outside_org": true}))
			}},
	})
}
