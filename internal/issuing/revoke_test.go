package issuing

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// An issuer the mount does not hold gets "unknown" about the very CertID
// asked (name and key hash, serial), signed by the mount's CA, for every
// key type a CA may have.
func TestAnswerOCSP_UnknownEchoesTheCertID(t *testing.T) {
	foreignKey := testpki.NewECKey(t, elliptic.P256())
	foreignCA := testpki.MakeCert(t, testpki.CACert{Key: foreignKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	leaf := testpki.MakeCert(t, testpki.CACert{Key: testpki.NewECKey(t, elliptic.P256()), Parent: foreignCA, ParentKey: foreignKey})
	for name, key := range map[string]crypto.Signer{
		"P-256": testpki.NewECKey(t, elliptic.P256()), "P-384": testpki.NewECKey(t, elliptic.P384()),
		"RSA-2048": testpki.NewRSAKey(t, 2048), "Ed25519": testpki.NewEd25519Key(t),
	} {
		ours := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign})
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			der, err := ocsp.CreateRequest(leaf, foreignCA, &ocsp.RequestOptions{Hash: h})
			if err != nil {
				t.Fatal(err)
			}
			answer, err := AnswerOCSP(der, []OCSPIssuer{{Cert: ours, Key: key}}, 0, nil, nil, time.Now())
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			verifyBy := ours
			if name == "Ed25519" {
				verifyBy = nil // x/crypto/ocsp cannot check Ed25519; x509 does below
			}
			r, err := ocsp.ParseResponse(answer, verifyBy)
			if err != nil || r.Status != ocsp.Unknown || r.SerialNumber.Cmp(leaf.SerialNumber) != 0 || r.IssuerHash != h {
				t.Fatalf("%s/%v: %v, %+v", name, h, err, r)
			}
			if name == "Ed25519" {
				if err := ours.CheckSignature(x509.PureEd25519, r.TBSResponseData, r.Signature); err != nil {
					t.Fatalf("Ed25519: the answer's signature: %v", err)
				}
			}
			req, _ := ocsp.ParseRequest(der)
			var outer struct {
				Status   asn1.Enumerated
				Response ocspResponseBytes `asn1:"explicit,tag:0"`
			}
			var basic ocspBasic
			var tbs struct {
				ResponderID asn1.RawValue
				ProducedAt  time.Time `asn1:"generalized"`
				Responses   []ocspSingle
			}
			if _, err := asn1.Unmarshal(answer, &outer); err != nil {
				t.Fatal(err)
			}
			if _, err := asn1.Unmarshal(outer.Response.Response, &basic); err != nil {
				t.Fatal(err)
			}
			if _, err := asn1.Unmarshal(basic.TBSResponseData.FullBytes, &tbs); err != nil {
				t.Fatal(err)
			}
			id := tbs.Responses[0].CertID
			if !bytes.Equal(id.IssuerNameHash, req.IssuerNameHash) || !bytes.Equal(id.IssuerKeyHash, req.IssuerKeyHash) {
				t.Fatalf("%s/%v: the answer's CertID is not the request's", name, h)
			}
		}
	}
	// No CA to sign with: unauthorized, unsigned.
	der, _ := ocsp.CreateRequest(leaf, foreignCA, nil)
	if answer, _ := AnswerOCSP(der, nil, -1, nil, nil, time.Now()); !bytes.Equal(answer, ocsp.UnauthorizedErrorResponse) {
		t.Fatal("no CA: not unauthorized")
	}
}

func TestParseReasonAndSerial(t *testing.T) {
	for in, want := range map[string]int{"": 0, "keyCompromise": 1, "key_compromise": 1, "KEYCOMPROMISE": 1, "4": 4, "aACompromise": 10} {
		if got, err := ParseReason(in); err != nil || got != want {
			t.Errorf("ParseReason(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"removeFromCRL", "8", "7", "nope", "-1"} {
		if _, err := ParseReason(bad); err == nil || !IsInput(err) {
			t.Errorf("ParseReason(%q): %v, want a 400", bad, err)
		}
	}
	n, err := ParseSerial("4f:2A-01")
	if err != nil || n.Cmp(big.NewInt(0x4f2a01)) != 0 {
		t.Fatalf("ParseSerial: %v %v", n, err)
	}
	for _, bad := range []string{"", "zz", "00", ":", string(make([]byte, 41))} {
		if _, err := ParseSerial(bad); err == nil {
			t.Errorf("ParseSerial(%q) accepted", bad)
		}
	}
}

// Good and revoked answers for each CA key type, judged by x/crypto/ocsp
// (which checks the CertID against cert and issuer, and the signature).
func TestAnswerOCSP_GoodAndRevoked(t *testing.T) {
	for name, key := range map[string]crypto.Signer{
		"P-256": testpki.NewECKey(t, elliptic.P256()), "P-384": testpki.NewECKey(t, elliptic.P384()), "RSA-2048": testpki.NewRSAKey(t, 2048),
	} {
		ca := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign})
		leaf := testpki.MakeCert(t, testpki.CACert{Key: testpki.NewECKey(t, elliptic.P256()), Parent: ca, ParentKey: key})
		der, _ := ocsp.CreateRequest(leaf, ca, nil)
		now := time.Now()
		w := func(int) OCSPWindow {
			return OCSPWindow{ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(72 * time.Hour)}
		}
		for _, revoked := range []bool{false, true} {
			lookup := func(int, *big.Int) (Revocation, bool) {
				return Revocation{RevokedAt: now.Add(-time.Hour), Reason: ocsp.KeyCompromise}, revoked
			}
			answer, err := AnswerOCSP(der, []OCSPIssuer{{Cert: ca, Key: key}}, 0, lookup, w, now)
			if err != nil {
				t.Fatal(err)
			}
			r, err := ocsp.ParseResponseForCert(answer, leaf, ca)
			if err != nil {
				t.Fatalf("%s revoked=%v: %v", name, revoked, err)
			}
			if want := map[bool]int{false: ocsp.Good, true: ocsp.Revoked}[revoked]; r.Status != want || revoked && (r.RevocationReason != ocsp.KeyCompromise || !r.RevokedAt.Equal(now.Add(-time.Hour).UTC().Truncate(time.Second))) {
				t.Fatalf("%s: status %d reason %d at %s", name, r.Status, r.RevocationReason, r.RevokedAt)
			}
		}
	}
}
