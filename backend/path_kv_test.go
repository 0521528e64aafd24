package backend

import (
	"crypto/elliptic"
	"crypto/x509"
	"net/http"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func kvWrite(keyPEM, certPEM string, cas ...int) map[string]any {
	body := map[string]any{"data": map[string]any{"key_pem": keyPEM, "cert_pem": certPEM}}
	if len(cas) > 0 {
		body["options"] = map[string]any{"cas": cas[0]}
	}
	return body
}

func kvRead(t *testing.T, b *mastioBackend, s logical.Storage, name string) (map[string]any, map[string]any) {
	t.Helper()
	resp := mustOK(t, request(t, b, s, logical.ReadOperation, "data/"+name, nil))
	if resp == nil {
		t.Fatalf("data/%s: 404", name)
	}
	return resp.Data["data"].(map[string]any), resp.Data["metadata"].(map[string]any)
}

func TestKV_MastioProviderLifecycle(t *testing.T) {
	b, s := getTestBackend(t)
	if resp := request(t, b, s, logical.ReadOperation, "data/org-ca", nil); resp != nil {
		t.Fatalf("data/org-ca on an empty mount = %v, want 404", resp)
	}
	keyA, certA := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))

	// First boot: no cas, empty mount -> import with kv_export on.
	w := mustOK(t, request(t, b, s, logical.CreateOperation, "data/org-ca", kvWrite(keyA, certA)))
	if w.Data["version"] != 1 || w.Data["destroyed"] != false || w.Data["deletion_time"] != "" || w.Data["created_time"] == "" {
		t.Fatalf("write metadata = %v", w.Data)
	}
	data, meta := kvRead(t, b, s, "org-ca")
	if data["cert_pem"] != certA || meta["version"] != 1 {
		t.Fatalf("read back: cert equal %v, version %v", data["cert_pem"], meta["version"])
	}
	readKey, err := issuing.ParsePrivateKeyPEM(data["key_pem"].(string))
	if err != nil || !issuing.PublicKeysEqual(readKey.Public(), testpki.ParseCertPEM(t, certA).PublicKey) {
		t.Fatalf("key_pem served for a mirror-written CA does not match: %v", err)
	}

	// Next boot: Mastio merges what it read and writes it back with cas.
	merged := kvWrite(data["key_pem"].(string), data["cert_pem"].(string), 1)
	before := snapshot(t, s)
	if w := mustOK(t, request(t, b, s, logical.UpdateOperation, "data/org-ca", merged)); w.Data["version"] != 1 {
		t.Fatalf("identical write bumped the version: %v", w.Data)
	}
	assertUnchanged(t, before, s)

	// A different key without cas is refused; with the right cas it
	// replaces the CA while kv_export is on.
	keyB, certB := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	assertRefused(t, b, s, "data/org-ca", kvWrite(keyB, certB), http.StatusConflict, "already exists (version 1")
	assertRefused(t, b, s, "data/org-ca", kvWrite(keyB, certB, 5), http.StatusConflict, "cas=5 but the current Org CA version is 1")
	if w := mustOK(t, request(t, b, s, logical.UpdateOperation, "data/org-ca", kvWrite(keyB, certB, 1))); w.Data["version"] != 2 {
		t.Fatalf("cas=1 replace: %v", w.Data)
	}
	md := mustOK(t, request(t, b, s, logical.ReadOperation, "metadata/org-ca", nil))
	if md.Data["current_version"] != 2 || md.Data["versions"].(map[string]any)["2"] == nil {
		t.Fatalf("metadata = %v", md.Data)
	}

	// Seal the export: the key disappears from the mirror, for good.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "kv-export/org-ca", map[string]any{"kv_export": false}))
	if data, _ := kvRead(t, b, s, "org-ca"); data["key_pem"] != nil {
		t.Fatal("key_pem still served after kv_export=false")
	}
	assertRefused(t, b, s, "kv-export/org-ca", map[string]any{"kv_export": true}, http.StatusBadRequest, "can never be turned on again")
	keyC, certC := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	assertRefused(t, b, s, "data/org-ca", kvWrite(keyC, certC, 2), http.StatusBadRequest, "is sign-only (kv_export is off)")
	// The same key as stored still succeeds: it proves possession, changes nothing.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "data/org-ca", kvWrite(keyB, certB, 2)))
	if cert := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil)); cert.Data["kv_export"] != false || cert.Data["version"] != 2 {
		t.Fatalf("cert after sealing export: %v", cert.Data)
	}
}

func TestKV_GeneratedKeyNeverServed(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	data, meta := kvRead(t, b, s, "org-ca")
	if data["key_pem"] != nil || data["cert_pem"] == nil || meta["version"] != 1 {
		t.Fatalf("generated CA through the mirror: %v", data)
	}
	exp := mustOK(t, request(t, b, s, logical.ReadOperation, "kv-export/org-ca", nil))
	if exp.Data["kv_export"] != false || exp.Data["source"] != sourceGenerated {
		t.Fatalf("kv-export of a generated CA: %v", exp.Data)
	}
	assertRefused(t, b, s, "kv-export/org-ca", map[string]any{"kv_export": true}, http.StatusBadRequest, "can never be turned on again")
	key, cert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	assertRefused(t, b, s, "data/org-ca", kvWrite(key, cert, 1), http.StatusBadRequest, "sign-only")
}

func TestKV_ImportExportOption(t *testing.T) {
	b, s := getTestBackend(t)
	key, cert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": key, "cert_pem": cert}))
	if data, _ := kvRead(t, b, s, "org-ca"); data["key_pem"] != nil {
		t.Fatal("import without kv_export serves the key")
	}

	b2, s2 := getTestBackend(t)
	mustOK(t, request(t, b2, s2, logical.UpdateOperation, "import", map[string]any{"key_pem": key, "cert_pem": cert, "kv_export": true}))
	if data, _ := kvRead(t, b2, s2, "org-ca"); data["key_pem"] == nil {
		t.Fatal("import with kv_export=true does not serve the key")
	}
}

func TestKV_BadInput(t *testing.T) {
	key, cert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	runBadInputs(t, false, []badInput{
		{name: "unknown data field", path: "data/org-ca", data: map[string]any{"data": map[string]any{"key_pem": key, "cert_pem": cert, "note": "x"}}, want: "unknown field(s) note"},
		{name: "data not an object", path: "data/org-ca", data: map[string]any{"data": key}, want: "data must be an object"},
		{name: "key_pem not a string", path: "data/org-ca", data: map[string]any{"data": map[string]any{"key_pem": []any{key}, "cert_pem": cert}}, want: "data.key_pem must be a string"},
		{name: "unknown option", path: "data/org-ca", data: map[string]any{"data": map[string]any{"key_pem": key, "cert_pem": cert}, "options": map[string]any{"max_versions": 3}}, want: "options.max_versions is not supported"},
		{name: "cas not a number", path: "data/org-ca", data: map[string]any{"data": map[string]any{"key_pem": key, "cert_pem": cert}, "options": map[string]any{"cas": "one"}}, want: "options.cas must be a non-negative whole number"},
		{name: "cas fractional", path: "data/org-ca", data: map[string]any{"data": map[string]any{"key_pem": key, "cert_pem": cert}, "options": map[string]any{"cas": 1.5}}, want: "whole number"},
		{name: "missing key", path: "data/org-ca", data: map[string]any{"data": map[string]any{"cert_pem": cert}}, want: "key_pem is required"},
		{name: "top-level unknown", path: "data/org-ca", data: map[string]any{"data": map[string]any{}, "version": 1}, want: "unknown field(s) version"},
		{name: "intermediate before Org CA", path: "data/intermediate-ca", data: kvWrite(key, cert), want: "no Org CA exists yet", status: http.StatusNotFound},
		{name: "kv-export without field", path: "kv-export/org-ca", data: map[string]any{}, want: "kv_export is required"},
	})
	runBadInputs(t, false, []badInput{
		{name: "kv-export with no CA", path: "kv-export/org-ca", data: map[string]any{"kv_export": false}, want: "no Org CA exists", status: http.StatusNotFound},
	})
}

// intermediateFor makes an intermediate CA signed by the mount's Org CA.
func intermediateFor(t *testing.T, b *mastioBackend, s logical.Storage) (string, string) {
	t.Helper()
	e, err := readCA(t.Context(), s, orgCA)
	if err != nil || e == nil {
		t.Fatalf("no Org CA: %v", err)
	}
	is, err := b.newIssuer(orgCA, e)
	if err != nil {
		t.Fatal(err)
	}
	key := testpki.NewECKey(t, elliptic.P256())
	cert := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Org: "acme", Parent: is.cert, ParentKey: is.signer})
	return testpki.PKCS8PEM(t, key), testpki.CertPEM(cert)
}

// Once export is sealed on a mount, no replacement may turn it on again:
// not the same key under a new certificate, not a later new key.
func TestKV_SealSurvivesReplacement(t *testing.T) {
	b, s := getTestBackend(t)
	key := testpki.NewECKey(t, elliptic.P256())
	keyPEM, certPEM := testpki.ValidCA(t, key)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": keyPEM, "cert_pem": certPEM, "kv_export": true}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "kv-export/org-ca", map[string]any{"kv_export": false}))

	_, reissued := testpki.ValidCA(t, key) // same key, new certificate
	assertRefused(t, b, s, "import", map[string]any{"key_pem": keyPEM, "cert_pem": reissued, "cas": 1, "kv_export": true}, http.StatusBadRequest, "turned off for good")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": keyPEM, "cert_pem": reissued, "cas": 1}))
	if data, _ := kvRead(t, b, s, "org-ca"); data["key_pem"] != nil {
		t.Fatal("a re-imported sealed key is served again")
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "cas": 2}))
	otherKey, otherCert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	assertRefused(t, b, s, "import", map[string]any{"key_pem": otherKey, "cert_pem": otherCert, "cas": 3, "kv_export": true}, http.StatusBadRequest, "turned off for good")
}
