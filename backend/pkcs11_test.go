//go:build pkcs11

package backend

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testhsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// hsmBackend is a test backend with a fresh SoftHSM2 token configured at
// config/pkcs11, the module on the allow-list.
func hsmBackend(t *testing.T, label string) (*mastioBackend, logical.Storage, *testhsm.Token) {
	t.Helper()
	tok := testhsm.New(t, label)
	t.Setenv(hsm.ModulesEnv, "/nonexistent/other.so:"+testhsm.Module)
	b, s := getTestBackend(t)
	t.Cleanup(b.tokens.reset)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config/pkcs11", map[string]any{
		"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN,
	}))
	return b, s, tok
}

// storedEntry is CA name as stored.
func storedEntry(t *testing.T, s logical.Storage, name caName) *caEntry {
	t.Helper()
	e, err := readCA(t.Context(), s, name)
	if err != nil || e == nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

// tokenOf opens the test token outside the backend, as an auditor would.
func tokenOf(t *testing.T, tok *testhsm.Token) *hsm.Token {
	t.Helper()
	h := hsm.Open(hsm.Config{ModulePath: testhsm.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	t.Cleanup(h.Close)
	return h
}

func TestPKCS11_Config(t *testing.T) {
	tok := testhsm.New(t, "cfg")
	t.Setenv(hsm.ModulesEnv, testhsm.Module)
	b, s := getTestBackend(t)
	t.Cleanup(b.tokens.reset)
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"module_path": "/tmp/evil.so", "token_label": tok.Label, "pin": tok.PIN}, http.StatusBadRequest, "not on the plugin's allow-list", hsm.ModulesEnv)
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": tok.Label, "pin": "99999"}, http.StatusBadRequest, "refused the PIN", "not stored")
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": "absent", "pin": tok.PIN}, http.StatusBadRequest, "has no token \"absent\"")
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": tok.Label, "slot": 1, "pin": tok.PIN}, http.StatusBadRequest, "not both")
	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}, http.StatusUnprocessableEntity, "no config/pkcs11")

	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN}))
	raw, _ := json.Marshal(resp.Data)
	if strings.Contains(string(raw), tok.PIN) || resp.Data["pin_set"] != true || resp.Data["status"] != "ok" {
		t.Fatalf("config/pkcs11 answer: %s", raw)
	}
	read := mustOK(t, request(t, b, s, logical.ReadOperation, "config/pkcs11", nil))
	raw, _ = json.Marshal(read.Data)
	if strings.Contains(string(raw), `"pin"`) || strings.Contains(string(raw), tok.PIN) {
		t.Fatalf("config/pkcs11 read shows the PIN: %s", raw)
	}
	// Another mount of the same process may not use the same token: the
	// login is shared, it would not need the PIN.
	b2, s2 := getTestBackend(t)
	t.Cleanup(b2.tokens.reset)
	assertRefused(t, b2, s2, "config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": tok.Label, "pin": "anything"}, http.StatusBadRequest, "in use by another mount")

	// Delete is refused while a CA key is in the token.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}))
	resp, err := requestErr(b, s, logical.DeleteOperation, "config/pkcs11", nil)
	if err != nil || resp.Data[logical.HTTPStatusCode] != http.StatusUnprocessableEntity {
		t.Fatalf("delete with a CA key in the token: %v %v", resp, err)
	}
}

// The Org CA and the intermediate made in the token: no key bytes in
// Vault's storage, attributes forbid extraction, signatures verify, a
// rotation keeps the key in the token, and the rotated-out key signs its
// CRL during the grace.
func TestPKCS11_GenerateSignRotate(t *testing.T) {
	b, s, tok := hsmBackend(t, "ca")
	org := mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}))
	if org.Data["key_backend"] != keyBackendPKCS11 {
		t.Fatalf("generate answered key_backend %v", org.Data["key_backend"])
	}
	inter := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", map[string]any{"key_backend": "pkcs11", "key_type": "ec", "key_bits": 384}))
	orgCert := testpki.ParseCertPEM(t, org.Data["certificate"].(string))
	interCert := testpki.ParseCertPEM(t, inter.Data["certificate"].(string))
	if err := interCert.CheckSignatureFrom(orgCert); err != nil {
		t.Fatalf("the token's Org CA key did not sign the intermediate: %v", err)
	}
	auditor := tokenOf(t, tok)
	for _, n := range caNames {
		e := storedEntry(t, s, n)
		if len(e.KeyPKCS8) != 0 || e.KeyPKCS11 == nil {
			t.Fatalf("%s: stored key bytes %d, reference %v", n, len(e.KeyPKCS8), e.KeyPKCS11)
		}
		attrs, err := auditor.KeyAttributes(e.KeyPKCS11.ref())
		if err != nil {
			t.Fatal(err)
		}
		if !attrs.Protected() {
			t.Fatalf("%s: the key's attributes allow extraction: %+v", n, attrs)
		}
		if err := auditor.Probe(e.KeyPKCS11.ref(), storedCert(t, e).PublicKey); err != nil {
			t.Fatalf("%s: %v", n, err)
		}
	}
	for k, v := range snapshot(t, s) {
		if strings.Contains(v, "PRIVATE KEY") || (strings.HasPrefix(k, caPrefix) && strings.Contains(v, `"key_pkcs8":"`)) {
			t.Fatalf("storage entry %s holds key bytes", k)
		}
	}

	leaf := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "agent-1")}))
	leafCert := testpki.ParseCertPEM(t, leaf.Data["certificate"].(string))
	if err := leafCert.CheckSignatureFrom(interCert); err != nil {
		t.Fatalf("leaf not signed by the token's intermediate key: %v", err)
	}

	before := storedEntry(t, s, intermediateCA).KeyPKCS11
	rot := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"grace_period": "1h"}))
	after := storedEntry(t, s, intermediateCA)
	if after.KeyPKCS11 == nil || after.KeyPKCS11.ID == before.ID || after.Previous.KeyPKCS11 == nil || after.Previous.KeyPKCS11.ID != before.ID {
		t.Fatalf("rotation: next key %v, previous %v (was %v)", after.KeyPKCS11, after.Previous, before)
	}
	if rot.Data["continuity_proof"] == "" {
		t.Fatal("no continuity proof")
	}
	next := testpki.ParseCertPEM(t, rot.Data["certificate"].(string))
	leaf2 := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "agent-2")})).Data["certificate"].(string))
	if err := leaf2.CheckSignatureFrom(next); err != nil {
		t.Fatal(err)
	}
	// The rotated-out key still signs its CRL during the grace.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "revoke", map[string]any{"certificate": leaf.Data["certificate"]}))
	crlResp := mustOK(t, request(t, b, s, logical.ReadOperation, "issuer/"+issuing.KeyID(interCert)+"/crl", nil))
	list, err := x509.ParseRevocationList(crlResp.Data[logical.HTTPRawBody].([]byte))
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(interCert); err != nil || len(list.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL of the rotated-out intermediate: %v, %d entries", err, len(list.RevokedCertificateEntries))
	}

	// A dry run makes a key and destroys it; a vault-backed rotation
	// moves the key out of the token and keeps the previous one's.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"dry_run": true}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"key_backend": "vault", "grace_period": "0s", "drop_earlier": true}))
	moved := storedEntry(t, s, intermediateCA)
	if moved.KeyPKCS11 != nil || len(moved.KeyPKCS8) == 0 {
		t.Fatalf("rotation to key_backend=vault: %v", moved.KeyPKCS11)
	}
	// Grace 0 and drop_earlier: no CA uses the earlier token keys, which
	// are destroyed.
	for _, gone := range []*hsmKeyRef{before, after.KeyPKCS11} {
		if err := tokenOf(t, tok).Probe(gone.ref(), nil); err == nil || !strings.Contains(err.Error(), "holds no key") {
			t.Errorf("key %s of an intermediate past its grace is still in the token: %v", gone.ID, err)
		}
	}
}

func storedCert(t *testing.T, e *caEntry) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(e.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Imports stay in Vault; ed25519 and unknown backends are refused with why.
func TestPKCS11_Refusals(t *testing.T) {
	b, s, _ := hsmBackend(t, "refuse")
	key, cert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	assertRefused(t, b, s, "import", map[string]any{"key_pem": key, "cert_pem": cert, "key_backend": "pkcs11"}, http.StatusBadRequest, "cannot import a key", "generate")
	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11", "key_type": "ed25519"}, http.StatusBadRequest, "ed25519")
	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "key_backend": "hsm"}, http.StatusBadRequest, "key_backend")
}

// The token gone while the plugin runs: health names the problem, signing
// is a 503 and never a crash; back, signing recovers without a reload. A
// PIN changed behind the plugin's back: a fresh plugin (restart) says the
// PIN was refused.
func TestPKCS11_Unavailable(t *testing.T) {
	b, s, tok := hsmBackend(t, "gone")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}))

	tok.Hide(t)
	resp, err := requestErr(b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "b")})
	if err != nil || resp == nil || resp.Data[logical.HTTPStatusCode] != http.StatusServiceUnavailable {
		t.Fatalf("signing with the token gone: %v %v; want 503", resp, err)
	}
	if body := resp.Data[logical.HTTPRawBody].(string); !strings.Contains(body, "PKCS#11") {
		t.Fatalf("503 body %s", body)
	}
	h := mustOK(t, request(t, b, s, logical.ReadOperation, "health", nil))
	if h.Data["pkcs11_status"] != "unavailable" || h.Data["pkcs11_error"] == nil || h.Data["org-ca_key_backend"] != keyBackendPKCS11 {
		t.Fatalf("health with the token gone: %v", h.Data)
	}

	tok.Restore(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err = requestErr(b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "c")})
		if err == nil && !resp.IsError() && resp.Data[logical.HTTPStatusCode] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("signing did not recover once the token came back: %v %v", resp, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if h := mustOK(t, request(t, b, s, logical.ReadOperation, "health", nil)); h.Data["pkcs11_status"] != "ok" {
		t.Fatalf("health after recovery: %v", h.Data)
	}

	// The PIN changed behind the plugin's back; a new plugin process
	// (here: a new backend on the same storage, the old one closed)
	// cannot log in.
	b.tokens.reset()
	tok.SetPIN(t, "4321")
	b2 := reopenBackend(t, s)
	h = mustOK(t, request(t, b2, s, logical.ReadOperation, "health", nil))
	if h.Data["pkcs11_status"] != "unavailable" || !strings.Contains(h.Data["pkcs11_error"].(string), "refused the PIN") {
		t.Fatalf("health with a wrong PIN: %v", h.Data)
	}
	resp, err = requestErr(b2, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "d")})
	if err != nil || resp.Data[logical.HTTPStatusCode] != http.StatusServiceUnavailable {
		t.Fatalf("signing with a wrong PIN: %v %v; want 503", resp, err)
	}
	// The right PIN written: signing works again, with the same key.
	mustOK(t, request(t, b2, s, logical.UpdateOperation, "config/pkcs11", map[string]any{"pin": "4321"}))
	mustOK(t, request(t, b2, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "e")}))
}

// reopenBackend is a new backend on storage s, as after a plugin restart.
func reopenBackend(t *testing.T, s logical.Storage) *mastioBackend {
	t.Helper()
	config := logical.TestBackendConfig()
	config.StorageView = s
	config.Logger = hclog.NewNullLogger()
	lb, err := Factory(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*mastioBackend)
	if err := b.Initialize(context.Background(), &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.tokens.reset)
	return b
}

// A rewrite of config/pkcs11 on the mount's own open token checks the PIN
// for real (a live login would take any PIN), and a token that holds a
// different key under a CA key's CKA_ID is refused: nothing is stored.
func TestPKCS11_ConfigRewrite(t *testing.T) {
	tok := testhsm.New(t, "rewrite")
	tok.Init(t, "two") // before the module is loaded: SoftHSM2 reads its slots then
	t.Setenv(hsm.ModulesEnv, testhsm.Module)
	b, s := getTestBackend(t)
	t.Cleanup(b.tokens.reset)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config/pkcs11", map[string]any{
		"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN,
	}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}))
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"pin": "totally-wrong"}, http.StatusBadRequest, "refused the PIN", "not stored")
	// The refusal left the stored config, which still signs.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config/pkcs11", map[string]any{"pin": tok.PIN}))

	// Token "two" holds a key under the Org CA key's CKA_ID, but not
	// that key.
	ref := storedEntry(t, s, orgCA).KeyPKCS11.ref()
	c, err := crypto11.Configure(&crypto11.Config{Path: testhsm.Module, TokenLabel: "two", Pin: tok.PIN})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateECDSAKeyPairWithLabel(ref.ID, []byte(ref.Label), elliptic.P256()); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	assertRefused(t, b, s, "config/pkcs11", map[string]any{"token_label": "two"}, http.StatusBadRequest, "not the key of the CA certificate", "not stored")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "b")}))
}

// The issuing mount of the two-tier setup with its intermediate's key in
// the token: generate-csr makes the pending key there, set-signed activates
// it (no key bytes anywhere in storage), the next round's key replaces it
// and the rotated-out key signs its CRL; a replaced or dropped pending key
// is destroyed in the token.
func TestPKCS11_CSRRound(t *testing.T) {
	b, s, tok := hsmBackend(t, "csr")
	root, iss := newTestMount(t), mount{b, s}
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	iss.write(t, "config", map[string]any{"org_id": "acme"})

	first := iss.write(t, "intermediate/generate-csr", map[string]any{"key_backend": "pkcs11"})
	if first.Data["key_backend"] != keyBackendPKCS11 {
		t.Fatalf("generate-csr: %v", first.Data)
	}
	p, err := readPending(t.Context(), s)
	if err != nil || p.KeyPKCS11 == nil || len(p.KeyPKCS8) != 0 {
		t.Fatalf("pending entry: %+v, %v", p, err)
	}
	firstRef := *p.KeyPKCS11
	// Replacing the pending key (cas) destroys the first one in the token.
	iss.write(t, "intermediate/generate-csr", map[string]any{"key_backend": "pkcs11", "cas": 1})
	if err := tokenOf(t, tok).Probe(firstRef.ref(), nil); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Fatalf("the replaced pending key is still in the token: %v", err)
	}
	pending := iss.read(t, "intermediate/pending")
	// config/pkcs11 stays while a pending key is in the token.
	resp, err := requestErr(b, s, logical.DeleteOperation, "config/pkcs11", nil)
	if err != nil || resp.Data[logical.HTTPStatusCode] != http.StatusUnprocessableEntity {
		t.Fatalf("delete config/pkcs11 with a pending key in the token: %v %v", resp, err)
	}
	activated, _ := readPending(t.Context(), s)
	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": pending.Data["csr"], "ttl": "8760h"})
	iss.write(t, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "ca_chain": signed.Data["ca_chain"].([]string)[1:]})
	inter := storedEntry(t, s, intermediateCA)
	p, _ = readPending(t.Context(), s)
	if inter.KeyPKCS11 == nil || len(inter.KeyPKCS8) != 0 || p.live() {
		t.Fatalf("after set-signed: intermediate key %v, pending %+v", inter.KeyPKCS11, p)
	}
	// set-signed's tidy-up did not land (the pending entry still refers to
	// the key it activated): dropping it keeps the active key.
	if err := putEntry(t.Context(), s, pendingStorageKey, "pending", activated); err != nil {
		t.Fatal(err)
	}
	mustOK(t, request(t, b, s, logical.DeleteOperation, "intermediate/pending", nil))
	if err := tokenOf(t, tok).Probe(inter.KeyPKCS11.ref(), nil); err != nil {
		t.Fatalf("dropping a stale pending entry destroyed the active key: %v", err)
	}
	for k, v := range snapshot(t, s) {
		if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, `"key_pkcs8":"`) {
			t.Fatalf("storage entry %s holds key bytes", k)
		}
	}
	interCert := storedCert(t, inter)
	if pub := iss.read(t, "intermediate/cert"); pub.Data["key_backend"] != keyBackendPKCS11 {
		t.Fatalf("intermediate/cert: %v", pub.Data["key_backend"])
	}
	leaf := iss.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")})
	if err := testpki.ParseCertPEM(t, leaf.Data["certificate"].(string)).CheckSignatureFrom(interCert); err != nil {
		t.Fatalf("leaf not signed by the token's key: %v", err)
	}

	// The second round rotates it out; its key signs its CRL in the grace.
	csrRound(t, root, iss, map[string]any{"cas": 1, "grace_period": "1h"})
	next := storedEntry(t, s, intermediateCA)
	if next.KeyPKCS11 == nil || next.Previous.KeyPKCS11 == nil || next.Previous.KeyPKCS11.ID != inter.KeyPKCS11.ID {
		t.Fatalf("rotation by CSR round: key %v, previous %v", next.KeyPKCS11, next.Previous)
	}
	iss.write(t, "revoke", map[string]any{"certificate": leaf.Data["certificate"]})
	crl := iss.read(t, "issuer/"+issuing.KeyID(interCert)+"/crl")
	list, err := x509.ParseRevocationList(crl.Data[logical.HTTPRawBody].([]byte))
	if err != nil || list.CheckSignatureFrom(interCert) != nil || len(list.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL of the rotated-out intermediate: %v", err)
	}

	// A dropped pending key is destroyed in the token too.
	iss.write(t, "intermediate/generate-csr", map[string]any{"key_backend": "pkcs11"})
	p, _ = readPending(t.Context(), s)
	dropped := *p.KeyPKCS11
	mustOK(t, request(t, b, s, logical.DeleteOperation, "intermediate/pending", nil))
	if err := tokenOf(t, tok).Probe(dropped.ref(), nil); err == nil || !strings.Contains(err.Error(), "holds no key") {
		t.Fatalf("the dropped pending key is still in the token: %v", err)
	}
	if err := tokenOf(t, tok).Probe(next.KeyPKCS11.ref(), nil); err != nil {
		t.Fatalf("the active key is gone: %v", err)
	}
}
