package backend

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestIntermediate_GenerateProfile(t *testing.T) {
	b, s := getTestBackend(t)
	org := testpki.ParseCertPEM(t, generateCA(t, b, s).Data["certificate"].(string))
	now := time.Now()
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	inter := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))

	if inter.Subject.CommonName != "acme Mastio CA" || len(inter.Subject.Organization) != 1 || inter.Subject.Organization[0] != "acme" {
		t.Errorf("subject = %q", inter.Subject)
	}
	if pub, ok := inter.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key %T, want EC P-256", inter.PublicKey)
	}
	if !inter.IsCA || !inter.MaxPathLenZero || inter.MaxPathLen != 0 {
		t.Errorf("basicConstraints CA=%v pathLen=%d zero=%v, want CA pathLen 0", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	for _, ext := range inter.Extensions {
		if (ext.Id.Equal(issuing.OIDExtBasicConstraints) || ext.Id.Equal(issuing.OIDExtKeyUsage)) && !ext.Critical {
			t.Errorf("extension %v not critical", ext.Id)
		}
	}
	if inter.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || len(inter.SubjectKeyId) == 0 || string(inter.AuthorityKeyId) != string(org.SubjectKeyId) {
		t.Errorf("KU %b, SKI %x, AKI %x (Org SKI %x)", inter.KeyUsage, inter.SubjectKeyId, inter.AuthorityKeyId, org.SubjectKeyId)
	}
	if err := inter.CheckSignatureFrom(org); err != nil {
		t.Errorf("not signed by the Org CA: %v", err)
	}
	if d := inter.NotAfter.Sub(now); d < issuing.DefaultIntermediateTTL-time.Minute || d > issuing.DefaultIntermediateTTL+time.Minute {
		t.Errorf("validity %s, want 5 years", d)
	}
	if resp.Data["source"] != sourceGenerated || resp.Data["version"] != 1 || len(resp.Data["ca_chain"].([]string)) != 2 {
		t.Errorf("response %v", resp.Data)
	}
	// Create-only.
	assertRefused(t, b, s, "intermediate/generate", map[string]any{}, http.StatusConflict, "Mastio Intermediate CA already exists (version 1", "pass cas=1")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", map[string]any{"cas": 1}))

	// The mirror never serves a generated intermediate's key.
	if data, _ := kvRead(t, b, s, "intermediate-ca"); data["key_pem"] != nil {
		t.Fatal("generated intermediate key served by the mirror")
	}
}

func TestIntermediate_NeverOutlivesOrgCA(t *testing.T) {
	b, s := getTestBackend(t)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "ttl": "720h"}))
	org := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	if resp.Data["not_after"] != org.Data["not_after"] {
		t.Fatalf("intermediate not_after %v, Org CA %v: want capped", resp.Data["not_after"], org.Data["not_after"])
	}
}

// failingStorage fails the Put of one key, to break a rotation half way.
type failingStorage struct {
	logical.Storage
	failKey string
}

func (f *failingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if e.Key == f.failKey {
		return errors.New("injected storage failure")
	}
	return f.Storage.Put(ctx, e)
}

func TestIntermediate_Rotate(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	first := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	firstCert := testpki.ParseCertPEM(t, first.Data["certificate"].(string))

	rot := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", nil))
	second := testpki.ParseCertPEM(t, rot.Data["certificate"].(string))
	if second.Equal(firstCert) || rot.Data["version"] != 2 {
		t.Fatalf("rotate did not mint a new intermediate: %v", rot.Data["version"])
	}
	// Continuity proof: the old key's ECDSA-SHA256 signature over the new DER.
	sig, err := base64.RawURLEncoding.DecodeString(rot.Data["continuity_proof"].(string))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(second.Raw)
	if !ecdsa.VerifyASN1(firstCert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("continuity proof does not verify under the previous intermediate's key")
	}
	if ecdsa.VerifyASN1(second.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("continuity proof was made with the new key")
	}
	// The previous one is published; the new one signs.
	ic := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil))
	if ic.Data["previous"] != first.Data["certificate"] || len(ic.Data["bundle"].([]string)) != 2 {
		t.Fatalf("intermediate/cert after rotate: previous matches %v, bundle %d", ic.Data["previous"] == first.Data["certificate"], len(ic.Data["bundle"].([]string)))
	}
	sig1 := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
	if err := testpki.ParseCertPEM(t, sig1.Data["certificate"].(string)).CheckSignatureFrom(second); err != nil {
		t.Fatalf("after rotate the new intermediate does not sign: %v", err)
	}

	// Rotating again inside the grace period keeps every earlier one
	// published until its own grace ends (issue 12, defect 5): previous is
	// the one just replaced, and the first is still in retired and bundle.
	rot2 := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"grace_period": "48h"}))
	if rot2.Data["previous"] != rot.Data["certificate"] || len(rot2.Data["bundle"].([]string)) != 3 {
		t.Fatalf("second rotation: previous is the second intermediate %v, bundle %d", rot2.Data["previous"] == rot.Data["certificate"], len(rot2.Data["bundle"].([]string)))
	}
	retired := rot2.Data["retired"].([]map[string]any)
	if len(retired) != 2 || retired[1]["certificate"] != first.Data["certificate"] || retired[1]["continuity_proof"] != rot.Data["continuity_proof"] {
		t.Fatalf("second rotation: retired = %d entries, the first intermediate with its own proof: %v", len(retired), len(retired) == 2 && retired[1]["certificate"] == first.Data["certificate"])
	}
	// A zero grace period publishes no previous, and the earlier ones stay.
	rot3 := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"grace_period": 0}))
	if _, ok := rot3.Data["previous"]; ok || len(rot3.Data["bundle"].([]string)) != 3 {
		t.Fatalf("grace_period=0: previous published %v, bundle %d (want the 2 earlier in grace)", ok, len(rot3.Data["bundle"].([]string)))
	}
	if rot3.Data["continuity_proof"] == nil {
		t.Fatal("with grace_period=0 the rotate response lacks the continuity proof")
	}
	// drop_earlier ends every earlier grace now.
	rot4 := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"grace_period": 0, "drop_earlier": true}))
	if len(rot4.Data["bundle"].([]string)) != 1 {
		t.Fatalf("drop_earlier: bundle %d, want only the current intermediate", len(rot4.Data["bundle"].([]string)))
	}
}

// TestIntermediate_RotateKeepsEveryGrace is issue 12's defect 5: two
// rotations in a row, with the defaults the rotator policy allows, must not
// end the first intermediate's grace; once maxRetired are in their grace,
// a further rotation is refused unless drop_earlier is set.
func TestIntermediate_RotateKeepsEveryGrace(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	first := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"cas": 1}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"cas": 2}))
	ic := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil))
	if !slices.Contains(ic.Data["bundle"].([]string), first.Data["certificate"].(string)) {
		t.Fatal("two rotations in a row dropped the first intermediate from intermediate/cert during its grace")
	}
	for v := 3; v <= maxRetired; v++ {
		mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"cas": v}))
	}
	if n := len(mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil)).Data["bundle"].([]string)); n != maxRetired+1 {
		t.Fatalf("after %d rotations the bundle holds %d certificates, want %d", maxRetired, n, maxRetired+1)
	}
	assertRefused(t, b, s, "intermediate/rotate", map[string]any{}, http.StatusUnprocessableEntity, "still in their grace period", "drop_earlier=true")
	// A retried rotation (stale cas) still gets its 409 first.
	assertRefused(t, b, s, "intermediate/rotate", map[string]any{"cas": 1}, http.StatusConflict, "check-and-set failed")
	dropped := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"drop_earlier": true}))
	if n := len(dropped.Data["bundle"].([]string)); n != 2 {
		t.Fatalf("after drop_earlier the bundle holds %d certificates, want the current one and the one it just replaced", n)
	}
}

func TestIntermediate_RotateFailsHalfWay(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	before := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))

	// The staging write succeeds, the switch fails.
	fs := &failingStorage{Storage: s, failKey: intermediateCA.storageKey()}
	if _, err := requestErr(b, fs, logical.UpdateOperation, "intermediate/rotate", nil); err == nil {
		t.Fatal("rotate reported success although the switch failed")
	}
	ic := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil))
	if ic.Data["certificate"] != before.Data["certificate"] || ic.Data["version"] != 1 {
		t.Fatal("a failed rotation changed the intermediate")
	}
	b.resetIssuer(intermediateCA) // as after a restart: read storage, not the cache
	sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
	if sig.Data["issuing_ca"] != before.Data["certificate"] {
		t.Fatal("after a failed rotation the old intermediate is not the signer")
	}
	// A retry on healthy storage succeeds and cleans the staging entry.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", nil))
	if e, _ := s.Get(t.Context(), intermediateCA.stagingKey()); e != nil {
		t.Fatal("staging entry left behind after a good rotation")
	}
}

func TestIntermediate_NewBadInput(t *testing.T) {
	runBadInputs(t, true, []badInput{
		{name: "rotate with no intermediate", path: "intermediate/rotate", data: map[string]any{}, want: "no intermediate to rotate", status: http.StatusNotFound},
		{name: "grace too long", path: "intermediate/rotate", data: map[string]any{"grace_period": "2400h"}, want: "grace_period 2400h0m0s is out of range",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
			}},
		{name: "ttl too short", path: "intermediate/generate", data: map[string]any{"ttl": "1h"}, want: "ttl 1h0m0s is out of range"},
		{name: "bad key bits", path: "intermediate/generate", data: map[string]any{"key_bits": 521}, want: "key_bits 521 is not valid"},
		{name: "unknown field", path: "intermediate/generate", data: map[string]any{"grace_period": "1h"}, want: "unknown field(s) grace_period"},
		{name: "Org CA with pathLen 0", path: "intermediate/generate", data: map[string]any{}, want: "pathLen 0", status: http.StatusUnprocessableEntity,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "path_len": 0, "cas": 1}))
			}},
	})
	runBadInputs(t, false, []badInput{
		{name: "generate with no Org CA", path: "intermediate/generate", data: map[string]any{}, want: "no Org CA exists yet", status: http.StatusNotFound},
	})
}

// lyingStorage stores the entry and then reports failure, as a timeout
// after a successful write would.
type lyingStorage struct {
	logical.Storage
	failKey string
}

func (l *lyingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if err := l.Storage.Put(ctx, e); err != nil {
		return err
	}
	if e.Key == l.failKey {
		return errors.New("injected timeout after the write")
	}
	return nil
}

func TestIntermediate_UncertainSwitch(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	if _, err := requestErr(b, &lyingStorage{Storage: s, failKey: intermediateCA.storageKey()}, logical.UpdateOperation, "intermediate/rotate", nil); err == nil {
		t.Fatal("rotate reported success")
	}
	// The write landed: this node must sign with what storage holds, and
	// the proof must still be obtainable.
	stored := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil))
	if stored.Data["version"] != 2 || stored.Data["continuity_proof"] == nil {
		t.Fatalf("stored intermediate: version %v, proof %v", stored.Data["version"], stored.Data["continuity_proof"] != nil)
	}
	sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
	if sig.Data["issuing_ca"] != stored.Data["certificate"] {
		t.Fatal("after an uncertain switch this node still signs with the cached old intermediate")
	}
	if e, _ := s.Get(t.Context(), intermediateCA.stagingKey()); e != nil {
		t.Fatal("staging entry left behind after a failed switch")
	}
}

func TestIntermediate_RotateCASAndImportedKeySizes(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	org, err := b.loadIssuer(t.Context(), s, orgCA)
	if err != nil {
		t.Fatal(err)
	}
	// An imported P-521 intermediate rotates to the default P-256.
	key := testpki.NewECKey(t, elliptic.P521())
	cert := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", Parent: org.cert, ParentKey: org.signer})
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/import", map[string]any{"key_pem": testpki.PKCS8PEM(t, key), "cert_pem": testpki.CertPEM(cert)}))
	assertRefused(t, b, s, "intermediate/rotate", map[string]any{"cas": 5}, http.StatusConflict, "cas=5 but the current Mastio Intermediate CA version is 1")
	rot := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"cas": 1}))
	if rot.Data["key_type"] != "ec" || rot.Data["key_bits"] != 256 {
		t.Fatalf("rotated P-521 intermediate: %v/%v", rot.Data["key_type"], rot.Data["key_bits"])
	}
	// The proof was made by the P-521 key.
	sig, _ := base64.RawURLEncoding.DecodeString(rot.Data["continuity_proof"].(string))
	digest := sha256.Sum256(testpki.ParseCertPEM(t, rot.Data["certificate"].(string)).Raw)
	if !ecdsa.VerifyASN1(&key.(*ecdsa.PrivateKey).PublicKey, digest[:], sig) {
		t.Fatal("proof not made by the previous (P-521) key")
	}
	// A retry with the same cas does not rotate twice.
	assertRefused(t, b, s, "intermediate/rotate", map[string]any{"cas": 1}, http.StatusConflict, "current Mastio Intermediate CA version is 2")
}

func TestIntermediate_MoreBadInput(t *testing.T) {
	runBadInputs(t, false, []badInput{
		{name: "CN too long", path: "intermediate/generate", data: map[string]any{"common_name": strings.Repeat("x", 65)}, want: "at most 64",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) { generateCA(t, b, s) }},
		{name: "Org CA expired", path: "intermediate/generate", data: map[string]any{}, want: "the Org CA expired at", status: http.StatusUnprocessableEntity,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				storeCAValidUntil(t, b, s, time.Now().Add(-time.Minute))
			}},
		{name: "Org CA expires within 24h", path: "intermediate/generate", data: map[string]any{}, want: "under 24h from now", status: http.StatusUnprocessableEntity,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				storeCAValidUntil(t, b, s, time.Now().Add(time.Hour))
			}},
	})
}

func TestIntermediate_ImportAndSign(t *testing.T) {
	b, s := getTestBackend(t)
	org := testpki.ParseCertPEM(t, generateCA(t, b, s).Data["certificate"].(string))
	key, cert := intermediateFor(t, b, s)
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/import", map[string]any{"key_pem": key, "cert_pem": cert}))
	if resp.Data["version"] != 1 || resp.Data["unchanged"] != false {
		t.Fatalf("intermediate import: %v", resp.Data)
	}
	ic := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil))
	if chain := ic.Data["ca_chain"].([]string); len(chain) != 2 || chain[0] != cert || chain[1] != testpki.CertPEM(org) {
		t.Fatalf("intermediate ca_chain has %d entries", len(chain))
	}

	// auto signs with the intermediate; the chain is [intermediate, Org CA].
	sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
	leaf := testpki.ParseCertPEM(t, sig.Data["certificate"].(string))
	inter := testpki.ParseCertPEM(t, cert)
	if err := leaf.CheckSignatureFrom(inter); err != nil || string(leaf.AuthorityKeyId) != string(inter.SubjectKeyId) {
		t.Fatalf("leaf not issued by the intermediate: %v", err)
	}
	roots, mids := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(org)
	mids.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: mids, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	if chain := sig.Data["ca_chain"].([]string); len(chain) != 2 || sig.Data["issuing_ca"] != cert {
		t.Fatalf("sign ca_chain %d entries, issuing_ca is the intermediate: %v", len(chain), sig.Data["issuing_ca"] == cert)
	}

	// A role pinned to org-ca still signs with the Org CA.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/root-signed", map[string]any{"issuer": "org-ca", "uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*"}))
	sig = mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/root-signed", map[string]any{"csr": testpki.AgentCSR(t, "a2")}))
	if err := testpki.ParseCertPEM(t, sig.Data["certificate"].(string)).CheckSignatureFrom(org); err != nil {
		t.Fatalf("issuer=org-ca role not signed by the Org CA: %v", err)
	}
	// The mirror serves the intermediate too, without its key.
	if data, meta := kvRead(t, b, s, "intermediate-ca"); data["cert_pem"] != cert || data["key_pem"] != nil || meta["version"] != 1 {
		t.Fatalf("data/intermediate-ca = %v", data)
	}

	// Replacing the Org CA strands the intermediate: auto refuses to sign.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "cas": 1}))
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a3")}, http.StatusUnprocessableEntity, "signed by a previous Org CA")
}

func TestIntermediate_BadInput(t *testing.T) {
	otherKey, otherCert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	strangerRootKey := testpki.NewECKey(t, elliptic.P256())
	strangerRoot := testpki.MakeCert(t, testpki.CACert{Key: strangerRootKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	strangerKey := testpki.NewECKey(t, elliptic.P256())
	strangerInter := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: strangerKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", Parent: strangerRoot, ParentKey: strangerRootKey}))
	runBadInputs(t, true, []badInput{
		{name: "self-signed", path: "intermediate/import", data: map[string]any{"key_pem": otherKey, "cert_pem": otherCert}, want: "is self-signed"},
		{name: "does not chain", path: "intermediate/import", data: map[string]any{"key_pem": testpki.PKCS8PEM(t, strangerKey), "cert_pem": strangerInter}, want: "does not chain to the stored Org CA"},
		{name: "unknown field", path: "intermediate/import", data: map[string]any{"key_pem": otherKey, "cert_pem": otherCert, "chain_pem": otherCert}, want: "unknown field(s) chain_pem"},
		{name: "pinned to a missing intermediate", path: "sign-csr/pinned", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: "none exists", status: http.StatusNotFound,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/pinned", map[string]any{"issuer": "intermediate-ca", "uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*"}))
			}},
	})
	runBadInputs(t, false, []badInput{
		{name: "no Org CA", path: "intermediate/import", data: map[string]any{"key_pem": otherKey, "cert_pem": otherCert}, want: "no Org CA exists yet", status: http.StatusNotFound},
	})
}

// Issue 12, defect 2: an intermediate that outlives the Org CA is refused at import,
// and one already stored (by an earlier plugin) signs no leaf past the Org
// CA, nor anything once the Org CA has expired.
func TestIntermediate_LeavesNeverOutliveTheOrgCA(t *testing.T) {
	orgEnd := time.Now().Add(30 * 24 * time.Hour)
	orgKey, orgCert, interKey, interCert, org := orgAndIntermediate(t, orgEnd, time.Now().Add(365*24*time.Hour), false)
	b, s := getTestBackend(t)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": orgKey, "cert_pem": orgCert}))
	assertRefused(t, b, s, "intermediate/import", map[string]any{"key_pem": interKey, "cert_pem": interCert}, http.StatusBadRequest, "after the CA above it")

	// Stored behind the plugin's back, as an earlier version accepted it.
	ic := testpki.ParseCertPEM(t, interCert)
	putCA(t, b, s, intermediateCA, &caEntry{Version: 1, Source: sourceImported, OrgID: "acme", KeyPKCS8: mustPKCS8(t, interKey), CertDER: ic.Raw, ChainDER: [][]byte{org.Raw}})
	leaf := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")})).Data["certificate"].(string))
	if leaf.NotAfter.After(org.NotAfter) {
		t.Fatalf("the leaf ends %s, after the Org CA (%s)", leaf.NotAfter, org.NotAfter)
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"leaf_not_after": "error"}))
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}, http.StatusBadRequest, "would outlive its issuer")

	// An expired Org CA above a valid intermediate: nothing is signed.
	_, _, interKey2, interCert2, expiredOrg := orgAndIntermediate(t, time.Now().Add(-time.Minute), time.Now().Add(24*time.Hour), false)
	putCA(t, b, s, orgCA, &caEntry{Version: 2, Source: sourceImported, OrgID: "acme", KeyPKCS8: mustPKCS8(t, orgKey), CertDER: expiredOrg.Raw})
	putCA(t, b, s, intermediateCA, &caEntry{Version: 2, Source: sourceImported, OrgID: "acme", KeyPKCS8: mustPKCS8(t, interKey2), CertDER: testpki.ParseCertPEM(t, interCert2).Raw, ChainDER: [][]byte{expiredOrg.Raw}})
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"leaf_not_after": "truncate"}))
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}, http.StatusUnprocessableEntity, "a CA above the issuing CA, expired at")
}

// Issue 12, defect 3: an Org CA with pathLen 0 may not have an intermediate.
func TestIntermediate_ImportRefusedUnderPathLenZero(t *testing.T) {
	orgKey, orgCert, interKey, interCert, _ := orgAndIntermediate(t, time.Now().Add(365*24*time.Hour), time.Now().Add(30*24*time.Hour), true)
	b, s := getTestBackend(t)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": orgKey, "cert_pem": orgCert}))
	assertRefused(t, b, s, "intermediate/import", map[string]any{"key_pem": interKey, "cert_pem": interCert}, http.StatusUnprocessableEntity, "pathLen 0")
}
