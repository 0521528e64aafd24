package backend

import (
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// crlOf reads a CRL path and checks it as a relying party: it parses, is
// signed by issuer, and is a v2 CRL with a number.
func crlOf(t *testing.T, m mount, path string, issuer *x509.Certificate) *x509.RevocationList {
	t.Helper()
	resp := m.read(t, path)
	if resp.Data[logical.HTTPContentType] != "application/pkix-crl" {
		t.Fatalf("%s: content type %v", path, resp.Data[logical.HTTPContentType])
	}
	crl, err := x509.ParseRevocationList(resp.Data[logical.HTTPRawBody].([]byte))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("%s: not signed by %s: %v", path, issuer.Subject, err)
	}
	if crl.Number == nil || !slices.Equal(crl.AuthorityKeyId, issuer.SubjectKeyId) {
		t.Fatalf("%s: number %v, AKI %x", path, crl.Number, crl.AuthorityKeyId)
	}
	return crl
}

func listed(crl *x509.RevocationList, serial *big.Int) *x509.RevocationListEntry {
	for i, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return &crl.RevokedCertificateEntries[i]
		}
	}
	return nil
}

func TestRevoke_CRLAndDelta(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	inter := testpki.ParseCertPEM(t, m.read(t, "intermediate/cert").Data["certificate"].(string))
	leafPEM := m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}).Data["certificate"].(string)
	leaf := testpki.ParseCertPEM(t, leafPEM)
	other := testpki.ParseCertPEM(t, m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a2")}).Data["certificate"].(string))

	empty := crlOf(t, m, "crl", inter)
	if len(empty.RevokedCertificateEntries) != 0 || time.Until(empty.NextUpdate) < 71*time.Hour {
		t.Fatalf("first CRL: %d entries, nextUpdate in %s", len(empty.RevokedCertificateEntries), time.Until(empty.NextUpdate))
	}
	r := m.write(t, "revoke", map[string]any{"certificate": leafPEM, "reason": "keyCompromise"})
	if r.Data["already_revoked"] != false || r.Data["issuer_id"] != issuing.KeyID(inter) || r.Data["reason"] != "keyCompromise" {
		t.Fatalf("revoke: %v", r.Data)
	}
	crl := crlOf(t, m, "crl", inter)
	e := listed(crl, leaf.SerialNumber)
	if e == nil || e.ReasonCode != ocsp.KeyCompromise || crl.Number.Cmp(empty.Number) <= 0 || listed(crl, other.SerialNumber) != nil {
		t.Fatalf("CRL after revoke: entry %+v, number %v (was %v)", e, crl.Number, empty.Number)
	}
	// The same CRL under every name of its issuer, and in PEM.
	byID := crlOf(t, m, "issuer/"+issuing.KeyID(inter)+"/crl", inter)
	if byID.Number.Cmp(crl.Number) != 0 || crlOf(t, m, "issuer/intermediate-ca/crl", inter).Number.Cmp(crl.Number) != 0 {
		t.Fatalf("issuer/<ref>/crl serves another CRL")
	}
	if p := m.read(t, "crl/pem").Data[logical.HTTPRawBody].([]byte); !strings.HasPrefix(string(p), "-----BEGIN X509 CRL-----") {
		t.Fatalf("crl/pem: %q", p[:20])
	}
	// The delta: against the first complete CRL, with the revocation.
	delta := crlOf(t, m, "crl/delta", inter)
	var base *big.Int
	for _, x := range delta.Extensions {
		if x.Id.Equal(issuing.OIDDeltaCRLIndicator) {
			if !x.Critical {
				t.Fatal("the delta CRL indicator is not critical")
			}
			base = new(big.Int).SetBytes(x.Value[2:])
		}
	}
	if base == nil || base.Cmp(empty.Number) != 0 || delta.Number.Cmp(crl.Number) != 0 || listed(delta, leaf.SerialNumber) == nil {
		t.Fatalf("delta: base %v (want %v), number %v, lists the revocation %v", base, empty.Number, delta.Number, listed(delta, leaf.SerialNumber) != nil)
	}

	// Idempotent: the first time and reason stay.
	again := m.write(t, "revoke", map[string]any{"certificate": leafPEM, "reason": "superseded"})
	if again.Data["already_revoked"] != true || again.Data["reason"] != "keyCompromise" || again.Data["revocation_time"] != r.Data["revocation_time"] {
		t.Fatalf("second revoke: %v", again.Data)
	}
	if n := crlOf(t, m, "crl", inter).Number; n.Cmp(crl.Number) != 0 {
		t.Fatalf("a second revoke moved the CRL on: %v", n)
	}
	// By serial, for a caller that kept only that.
	bySerial := m.write(t, "revoke", map[string]any{"serial_number": issuing.FormatSerial(other.SerialNumber), "issuer": "intermediate-ca", "not_after": other.NotAfter.Format(time.RFC3339)})
	if bySerial.Data["already_revoked"] != false || listed(crlOf(t, m, "crl", inter), other.SerialNumber) == nil {
		t.Fatalf("revoke by serial: %v", bySerial.Data)
	}

	before := snapshot(t, m.s)
	foreign := testpki.MakeCert(t, testpki.CACert{Key: testpki.NewECKey(t, elliptic.P256())})
	for _, bad := range []struct {
		data   map[string]any
		status int
		want   string
	}{
		{map[string]any{"certificate": m.read(t, "intermediate/cert").Data["certificate"]}, 400, "own CAs"},
		{map[string]any{"certificate": m.read(t, "cert").Data["certificate"]}, 400, "own CAs"},
		{map[string]any{"certificate": testpki.CertPEM(foreign)}, 400, "was not issued by this mount"},
		{map[string]any{"certificate": leafPEM, "reason": "removeFromCRL"}, 400, "not an RFC 5280 CRL reason"},
		{map[string]any{"certificate": leafPEM, "serial_number": "01"}, 400, "not both"},
		{map[string]any{"serial_number": "01"}, 400, "issuer"},
		{map[string]any{"serial_number": "zz", "issuer": "intermediate-ca", "not_after": "2030-01-01T00:00:00Z"}, 400, "hex"},
		{map[string]any{"serial_number": "01", "issuer": "intermediate-ca", "not_after": "2020-01-01T00:00:00Z"}, 400, "has passed"},
		{map[string]any{"serial_number": "01", "issuer": "nope", "not_after": "2027-01-01T00:00:00Z"}, 404, "no CA of this mount"},
		{map[string]any{"serial_number": "01", "issuer": "intermediate-ca", "not_after": "tomorrow"}, 400, "RFC 3339"},
		{map[string]any{"certificate": "not pem"}, 400, "not PEM"},
	} {
		assertRefused(t, m.b, m.s, "revoke", bad.data, bad.status, bad.want)
	}
	assertUnchanged(t, before, m.s)

	// The Org CA's own CRL lists the CAs it signed that were revoked.
	org := testpki.ParseCertPEM(t, m.read(t, "cert").Data["certificate"].(string))
	spire := m.write(t, "root/sign-intermediate", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local"}})}).Data["certificate"].(string)
	m.write(t, "revoke", map[string]any{"certificate": spire, "reason": "cACompromise"})
	if e := listed(crlOf(t, m, "issuer/org-ca/crl", org), testpki.ParseCertPEM(t, spire).SerialNumber); e == nil || e.ReasonCode != ocsp.CACompromise {
		t.Fatalf("the Org CA's CRL lacks the revoked SPIRE CA")
	}
}

func ocspAsk(t *testing.T, m mount, cert, issuer *x509.Certificate) *ocsp.Response {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := mustOK(t, request(t, m.b, m.s, logical.ReadOperation, "ocsp/"+base64.StdEncoding.EncodeToString(der), nil))
	body := resp.Data[logical.HTTPRawBody].([]byte)
	answer, err := ocsp.ParseResponseForCert(body, cert, issuer)
	if err != nil {
		t.Fatalf("OCSP answer: %v", err)
	}
	return answer
}

func TestOCSP_GoodRevokedUnknown(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	inter := testpki.ParseCertPEM(t, m.read(t, "intermediate/cert").Data["certificate"].(string))
	leafPEM := m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}).Data["certificate"].(string)
	leaf := testpki.ParseCertPEM(t, leafPEM)
	if a := ocspAsk(t, m, leaf, inter); a.Status != ocsp.Good || time.Until(a.NextUpdate) < time.Hour {
		t.Fatalf("before revoke: status %d, nextUpdate in %s", a.Status, time.Until(a.NextUpdate))
	}
	m.write(t, "revoke", map[string]any{"certificate": leafPEM, "reason": "privilegeWithdrawn"})
	if a := ocspAsk(t, m, leaf, inter); a.Status != ocsp.Revoked || a.RevocationReason != ocsp.PrivilegeWithdrawn || a.RevokedAt.IsZero() {
		t.Fatalf("after revoke: status %d reason %d at %s", a.Status, a.RevocationReason, a.RevokedAt)
	}
	// A cached good answer is not served once another node revokes: its
	// Invalidate moves the cache on.
	second := testpki.ParseCertPEM(t, m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a2")}).Data["certificate"].(string))
	if a := ocspAsk(t, m, second, inter); a.Status != ocsp.Good {
		t.Fatalf("second leaf: status %d", a.Status)
	}
	entryKey := revokedPrefix + issuing.KeyID(inter) + "/" + issuing.SerialHex(second.SerialNumber)
	_ = putEntry(t.Context(), m.s, entryKey, "x", revokedEntry{Serial: issuing.SerialHex(second.SerialNumber), RevokedAt: time.Now(), Reason: ocsp.Superseded, NotAfter: second.NotAfter, CRLNumber: 99})
	m.b.revocations.invalidate(entryKey)
	if a := ocspAsk(t, m, second, inter); a.Status != ocsp.Revoked || a.RevocationReason != ocsp.Superseded {
		t.Fatalf("after another node's revoke: status %d (a stale cached answer?)", a.Status)
	}
	// An issuer this mount does not hold: unknown.
	key := testpki.NewECKey(t, elliptic.P256())
	foreignCA := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	foreignLeaf := testpki.MakeCert(t, testpki.CACert{Key: testpki.NewECKey(t, elliptic.P256()), Parent: foreignCA, ParentKey: key})
	der, _ := ocsp.CreateRequest(foreignLeaf, foreignCA, nil)
	body := mustOK(t, request(t, m.b, m.s, logical.ReadOperation, "ocsp/"+base64.StdEncoding.EncodeToString(der), nil)).Data[logical.HTTPRawBody].([]byte)
	if a, err := ocsp.ParseResponse(body, inter); err != nil || a.Status != ocsp.Unknown {
		t.Fatalf("foreign issuer: %v, %v", a, err)
	}
	// Malformed: OCSP's own unsigned malformedRequest.
	body = mustOK(t, request(t, m.b, m.s, logical.ReadOperation, "ocsp/bm90IGFuIE9DU1AgcmVxdWVzdA==", nil)).Data[logical.HTTPRawBody].([]byte)
	if _, err := ocsp.ParseResponse(body, nil); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("malformed request: %v", err)
	}
}

func TestRevoke_URLsInCertificates(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	base := "https://vault.example:8200/v1/mastio-ca/"
	m.write(t, "config", map[string]any{"crl_distribution_points": base + "issuer/{{issuer_id}}/crl", "ocsp_servers": base + "ocsp", "issuing_certificates": base + "issuer/{{issuer_id}}/der"})
	org := testpki.ParseCertPEM(t, m.read(t, "cert").Data["certificate"].(string))
	inter := testpki.ParseCertPEM(t, m.write(t, "intermediate/generate", nil).Data["certificate"].(string))
	if want := base + "issuer/" + issuing.KeyID(org) + "/crl"; len(inter.CRLDistributionPoints) != 1 || inter.CRLDistributionPoints[0] != want {
		t.Fatalf("intermediate CRL DP %v, want %s", inter.CRLDistributionPoints, want)
	}
	leaf := testpki.ParseCertPEM(t, m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}).Data["certificate"].(string))
	if want := base + "issuer/" + issuing.KeyID(inter) + "/crl"; len(leaf.CRLDistributionPoints) != 1 || leaf.CRLDistributionPoints[0] != want ||
		len(leaf.OCSPServer) != 1 || leaf.OCSPServer[0] != base+"ocsp" || leaf.IssuingCertificateURL[0] != base+"issuer/"+issuing.KeyID(inter)+"/der" {
		t.Fatalf("leaf: CRL DP %v OCSP %v AIA %v", leaf.CRLDistributionPoints, leaf.OCSPServer, leaf.IssuingCertificateURL)
	}
	if der := m.read(t, "issuer/"+issuing.KeyID(inter)+"/der").Data[logical.HTTPRawBody].([]byte); !slices.Equal(der, inter.Raw) {
		t.Fatal("issuer/<id>/der is not the intermediate")
	}
	for _, bad := range []map[string]any{
		{"crl_distribution_points": "ftp://x/crl"},
		{"ocsp_servers": "https://x/{{serial}}"},
		{"crl_expiry": "10m"},
	} {
		assertRefused(t, m.b, m.s, "config", bad, http.StatusBadRequest, "")
	}
}

func TestRevoke_TidyAndPeriodic(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	org := testpki.ParseCertPEM(t, m.read(t, "cert").Data["certificate"].(string))
	leafPEM := m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}).Data["certificate"].(string)
	m.write(t, "revoke", map[string]any{"certificate": leafPEM})
	id := issuing.KeyID(org)
	// Another node's revocation, seen through Invalidate.
	other := revokedEntry{Serial: "abc", RevokedAt: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(time.Hour), CRLNumber: 1}
	_ = putEntry(t.Context(), m.s, revokedPrefix+id+"/abc", "x", other)
	m.b.revocations.invalidate(revokedPrefix + id + "/abc")
	if listed(crlOf(t, m, "crl", org), big.NewInt(0xabc)) == nil {
		t.Fatal("the other node's revocation is not in the CRL after Invalidate")
	}
	// Its certificate has expired since: the CRL lists it until its state
	// moves on (one number, one content), and tidy drops it.
	cur, _ := readEntry[crlState](t.Context(), m.s, crlStatePrefix+id, "state")
	other.NotAfter = cur.ThisUpdate.Add(time.Millisecond)
	for !time.Now().After(other.NotAfter) {
		time.Sleep(time.Millisecond)
	}
	_ = putEntry(t.Context(), m.s, revokedPrefix+id+"/abc", "x", other)
	m.b.revocations.invalidate(revokedPrefix + id + "/abc")
	before := crlOf(t, m, "crl", org)
	if listed(before, big.NewInt(0xabc)) == nil {
		t.Fatal("an expiry changed a CRL's content under the same number")
	}
	// The first tidy issues a CRL after the expiry, which still lists it
	// (RFC 5280 3.3); the next one drops it.
	if got := m.write(t, "tidy", nil).Data["revocations_removed"]; got != 0 {
		t.Fatalf("the first tidy removed %v", got)
	}
	once := crlOf(t, m, "crl", org)
	if listed(once, big.NewInt(0xabc)) == nil || once.Number.Cmp(before.Number) <= 0 || !once.ThisUpdate.After(other.NotAfter.Add(-time.Second)) {
		t.Fatalf("the CRL after the expiry: lists it %v, number %v (was %v)", listed(once, big.NewInt(0xabc)) != nil, once.Number, before.Number)
	}
	if got := m.write(t, "tidy", nil).Data["revocations_removed"]; got != 1 {
		t.Fatalf("the second tidy removed %v", got)
	}
	after := crlOf(t, m, "crl", org)
	if listed(after, big.NewInt(0xabc)) != nil || len(after.RevokedCertificateEntries) != 1 || after.Number.Cmp(once.Number) <= 0 {
		t.Fatalf("after tidy: %d entries, number %v (was %v)", len(after.RevokedCertificateEntries), after.Number, once.Number)
	}
	// Half the CRL's life gone: the periodic function makes a new base.
	st, _ := readEntry[crlState](t.Context(), m.s, crlStatePrefix+id, "state")
	st.ThisUpdate = time.Now().Add(-40 * time.Hour)
	_ = putEntry(t.Context(), m.s, crlStatePrefix+id, "state", st)
	m.b.revocations.invalidate(crlStatePrefix + id)
	if err := m.b.periodic(t.Context(), &logical.Request{Storage: m.s}); err != nil {
		t.Fatal(err)
	}
	fresh := crlOf(t, m, "crl", org)
	if time.Since(fresh.ThisUpdate) > time.Minute || fresh.Number.Cmp(after.Number) <= 0 {
		t.Fatalf("periodic: thisUpdate %s, number %v", fresh.ThisUpdate, fresh.Number)
	}
	delta := crlOf(t, m, "crl/delta", org)
	if len(delta.RevokedCertificateEntries) != 0 {
		t.Fatalf("the delta against the new base lists %d", len(delta.RevokedCertificateEntries))
	}
}

func TestRevoke_RetiredIntermediateKeepsItsCRL(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	old := testpki.ParseCertPEM(t, m.write(t, "intermediate/generate", nil).Data["certificate"].(string))
	leafPEM := m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}).Data["certificate"].(string)
	m.write(t, "intermediate/rotate", map[string]any{"grace_period": "24h"})
	// A leaf of the rotated-out intermediate is still revocable, in its CRL.
	m.write(t, "revoke", map[string]any{"certificate": leafPEM})
	if listed(crlOf(t, m, "issuer/"+issuing.KeyID(old)+"/crl", old), testpki.ParseCertPEM(t, leafPEM).SerialNumber) == nil {
		t.Fatal("the rotated-out intermediate's CRL lacks its revoked leaf")
	}
	// After its grace, tidy drops its key, and its CRL is gone.
	e, _ := readCA(t.Context(), m.s, intermediateCA)
	e.Previous.GraceUntil = time.Now().Add(-time.Minute)
	putCA(t, m.b, m.s, intermediateCA, e)
	if got := m.write(t, "tidy", nil).Data["retired_keys_dropped"]; got != 1 {
		t.Fatalf("tidy dropped %v retired keys", got)
	}
	e, _ = readCA(t.Context(), m.s, intermediateCA)
	if len(e.Previous.KeyPKCS8) != 0 {
		t.Fatal("the retired key is still stored")
	}
	// Its revocations go once their certificates expire, though no CRL
	// of it is published any more.
	oldID := issuing.KeyID(old)
	_ = putEntry(t.Context(), m.s, revokedPrefix+oldID+"/abd", "x", revokedEntry{Serial: "abd", RevokedAt: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(-time.Minute), CRLNumber: 1})
	m.b.revocations.invalidate(revokedPrefix + oldID + "/abd")
	if got := m.write(t, "tidy", nil).Data["revocations_removed"]; got != 1 {
		t.Fatalf("tidy removed %v expired revocations of the unpublished intermediate, want 1", got)
	}
	if e, _ := m.s.Get(t.Context(), revokedPrefix+oldID+"/abd"); e != nil {
		t.Fatal("the expired revocation of the unpublished intermediate is still stored")
	}
	if gone := request(t, m.b, m.s, logical.ReadOperation, "issuer/"+issuing.KeyID(old)+"/crl", nil); gone.Data[logical.HTTPStatusCode] != http.StatusNotFound {
		t.Fatalf("the CRL of an intermediate past its grace: %v, want 404", gone.Data[logical.HTTPStatusCode])
	}
}

// A rotation with grace_period=0 (after a compromise) drops the old key at
// once, not at the next hourly tidy.
func TestRevoke_ZeroGraceDropsTheOldKeyAtOnce(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	m.write(t, "intermediate/rotate", map[string]any{"grace_period": "0s", "drop_earlier": true})
	e, err := readCA(t.Context(), m.s, intermediateCA)
	if err != nil || e.Previous == nil || len(e.Previous.KeyPKCS8) != 0 {
		t.Fatalf("after a zero-grace rotation the old key is still stored (%v)", err)
	}
	m.write(t, "intermediate/rotate", map[string]any{"grace_period": "24h"})
	if e, _ := readCA(t.Context(), m.s, intermediateCA); len(e.Previous.KeyPKCS8) == 0 {
		t.Fatal("a rotation with grace dropped the old key, which signs its CRL during the grace")
	}
}

// OCSP never waits for a CRL build, which takes half a second at 100k
// revocations: a build in progress (buildMu held here) does not hold the
// revocation lock.
func TestOCSP_NotBlockedByACRLBuild(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	resp := m.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")})
	leaf, org := testpki.ParseCertPEM(t, resp.Data["certificate"].(string)), testpki.ParseCertPEM(t, resp.Data["issuing_ca"].(string))
	m.b.revocations.buildMu.Lock()
	done := make(chan *ocsp.Response)
	go func() { done <- ocspAsk(t, m, leaf, org) }()
	select {
	case a := <-done:
		if a.Status != ocsp.Good {
			t.Errorf("status %d", a.Status)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an OCSP answer waited for a CRL build")
	}
	m.b.revocations.buildMu.Unlock()
}

// The periodic function writes nothing on a mount that never revoked or
// published a CRL (it runs every minute on every mount).
func TestPeriodic_WritesNothingUnused(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	before := snapshot(t, m.s)
	if err := m.b.periodic(t.Context(), &logical.Request{Storage: m.s}); err != nil {
		t.Fatal(err)
	}
	assertUnchanged(t, before, m.s)
}
