package backend

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestSignCSR_AgentProfile(t *testing.T) {
	b, s := getTestBackend(t)
	caResp := generateCA(t, b, s)
	ca := testpki.ParseCertPEM(t, caResp.Data["certificate"].(string))

	now := time.Now()
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{
		"csr": testpki.MakeCSR(t, testpki.CSR{CN: "whatever-the-csr-says", URIs: []string{"spiffe://cullis.local/acme/agent-7"}}),
	}))
	leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))

	if got := leaf.Subject.String(); got != "CN=acme::agent-7,O=acme" {
		t.Errorf("subject = %q, want CN=acme::agent-7,O=acme (from the role, not the CSR)", got)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cullis.local/acme/agent-7" {
		t.Errorf("URIs = %v, want exactly the agent's SPIFFE ID", leaf.URIs)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs: %v %v %v", leaf.DNSNames, leaf.IPAddresses, leaf.EmailAddresses)
	}
	if resp.Data["spiffe_id"] != "spiffe://cullis.local/acme/agent-7" {
		t.Errorf("spiffe_id = %v", resp.Data["spiffe_id"])
	}
	var bcCritical bool
	for _, ext := range leaf.Extensions {
		if ext.Id.Equal(issuing.OIDExtBasicConstraints) {
			bcCritical = ext.Critical
		}
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA || !bcCritical {
		t.Errorf("basicConstraints valid=%v CA=%v critical=%v, want CA:false critical", leaf.BasicConstraintsValid, leaf.IsCA, bcCritical)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature {
		t.Errorf("key usage = %b, want digitalSignature", leaf.KeyUsage)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("EKU = %v, want clientAuth", leaf.ExtKeyUsage)
	}
	if string(leaf.AuthorityKeyId) != string(ca.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AKI %x != issuer SKI %x", leaf.AuthorityKeyId, ca.SubjectKeyId)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 100 {
		t.Errorf("serial bit length %d, want a positive ~128-bit number", leaf.SerialNumber.BitLen())
	}
	if got := leaf.NotAfter.Sub(now); got < 365*24*time.Hour-time.Minute || got > 365*24*time.Hour+time.Minute {
		t.Errorf("lifetime from now = %s, want 365 days", got)
	}
	if got := now.Sub(leaf.NotBefore); got < 4*time.Minute || got > 6*time.Minute {
		t.Errorf("notBefore is %s before now, want 5m", got)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		t.Errorf("leaf does not verify under the CA: %v", err)
	}
	if resp.Data["issuing_ca"] != caResp.Data["certificate"] || resp.Data["serial_number"] != issuing.FormatSerial(leaf.SerialNumber) {
		t.Errorf("issuing_ca/serial_number do not describe the issued certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("chain verification: %v", err)
	}
}

func TestSignCSR_PrincipalProfile(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	for _, kind := range []string{"user", "agent", "workload"} {
		id := "spiffe://cullis.local/acme/" + kind + "/alice"
		now := time.Now()
		resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/principal", map[string]any{
			"csr": testpki.MakeCSR(t, testpki.CSR{Key: testpki.NewECKey(t, elliptic.P384()), CN: "ignored", URIs: []string{id}}),
		}))
		leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
		if len(leaf.Subject.Names) != 0 {
			t.Errorf("%s: subject = %q, want empty", kind, leaf.Subject)
		}
		var sanCritical bool
		for _, ext := range leaf.Extensions {
			if ext.Id.Equal(issuing.OIDExtSubjectAltName) {
				sanCritical = ext.Critical
			}
		}
		if !sanCritical {
			t.Errorf("%s: SAN must be critical when the subject is empty (RFC 5280 4.2.1.6)", kind)
		}
		if got := leaf.NotAfter.Sub(now); got < 59*time.Minute || got > 61*time.Minute {
			t.Errorf("%s: lifetime %s, want 1h", kind, got)
		}
		if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
			t.Errorf("%s: KU %b EKU %v", kind, leaf.KeyUsage, leaf.ExtKeyUsage)
		}
	}
}

func TestSignCSR_TTLAndIssuerCap(t *testing.T) {
	b, s := getTestBackend(t)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "ttl": "48h"}))

	// A shorter requested ttl is honoured.
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/agent", map[string]any{"csr": testpki.AgentCSR(t, "a"), "ttl": "2h"}))
	if leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string)); time.Until(leaf.NotAfter) > 2*time.Hour+time.Minute {
		t.Fatalf("ttl=2h gave notAfter %s", leaf.NotAfter)
	}

	// The default 365d is capped at the CA's notAfter (truncate is the default).
	ca := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	resp = mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}))
	leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if got := leaf.NotAfter.UTC().Format(time.RFC3339); got != ca.Data["not_after"] {
		t.Fatalf("leaf notAfter %s, want capped at CA notAfter %s", got, ca.Data["not_after"])
	}
}

// countingStorage counts storage calls, to prove the signing path makes
// none. It is safe for concurrent use.
type countingStorage struct {
	logical.Storage
	gets, lists, puts, deletes atomic.Int64
}

func (c *countingStorage) Get(ctx context.Context, k string) (*logical.StorageEntry, error) {
	c.gets.Add(1)
	return c.Storage.Get(ctx, k)
}

func (c *countingStorage) List(ctx context.Context, p string) ([]string, error) {
	c.lists.Add(1)
	return c.Storage.List(ctx, p)
}

func (c *countingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.puts.Add(1)
	return c.Storage.Put(ctx, e)
}

func (c *countingStorage) Delete(ctx context.Context, k string) error {
	c.deletes.Add(1)
	return c.Storage.Delete(ctx, k)
}

func TestSignCSR_WritesNothing(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	b.resetIssuer(orgCA) // include the cache fill in what is counted
	cs := &countingStorage{Storage: s}
	for i := 0; i < 3; i++ {
		mustOK(t, request(t, b, cs, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}))
	}
	if cs.puts.Load() != 0 || cs.deletes.Load() != 0 {
		t.Fatalf("sign-csr wrote to storage: %d puts, %d deletes", cs.puts.Load(), cs.deletes.Load())
	}
}

// After the first signing, 1,000 more touch no storage at all: config,
// role and both CAs (present or absent) come from the caches.
func TestSignCSR_NoStorageAfterFirst(t *testing.T) {
	for _, withIntermediate := range []bool{false, true} {
		b, s := getTestBackend(t)
		generateCA(t, b, s)
		if withIntermediate {
			mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
		}
		cs := &countingStorage{Storage: s}
		data := map[string]any{"csr": testpki.AgentCSR(t, "a1")}
		mustOK(t, request(t, b, cs, logical.UpdateOperation, "sign-csr", data))
		cs.gets.Store(0)
		for i := 0; i < 1000; i++ {
			mustOK(t, request(t, b, cs, logical.UpdateOperation, "sign-csr", data))
		}
		if n := cs.gets.Load() + cs.lists.Load() + cs.puts.Load() + cs.deletes.Load(); n != 0 {
			t.Fatalf("intermediate=%v: 1000 signings made %d storage calls (%d gets, %d lists, %d puts, %d deletes)",
				withIntermediate, n, cs.gets.Load(), cs.lists.Load(), cs.puts.Load(), cs.deletes.Load())
		}
	}
}

// The caches never serve a stale CA, role or config: every change, ours or
// another node's (Invalidate), shows in the next signing.
func TestSignCSR_CachesFollowChanges(t *testing.T) {
	b, s := getTestBackend(t)
	sign := func() *x509.Certificate {
		t.Helper()
		resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
		return testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	}
	issuerOf := func(c *x509.Certificate) string { return string(c.AuthorityKeyId) }
	org1 := testpki.ParseCertPEM(t, generateCA(t, b, s).Data["certificate"].(string))
	if issuerOf(sign()) != string(org1.SubjectKeyId) {
		t.Fatal("first signing not by the Org CA")
	}
	inter := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil)).Data["certificate"].(string))
	if issuerOf(sign()) != string(inter.SubjectKeyId) {
		t.Fatal("after intermediate/generate the cached Org CA still signs")
	}
	rot := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", nil)).Data["certificate"].(string))
	if issuerOf(sign()) != string(rot.SubjectKeyId) {
		t.Fatal("after rotate the cached intermediate still signs")
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/agent", map[string]any{"ttl": "2h", "max_ttl": "2h"}))
	if c := sign(); c.NotAfter.Sub(c.NotBefore) > 2*time.Hour+6*time.Minute {
		t.Fatal("after a role update the cached role still applies")
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"trust_domain": "other.example"}))
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}, http.StatusBadRequest, `this role allows only "other.example"`)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"trust_domain": "cullis.local"}))

	// Another node replaces the Org CA and the intermediate disappears:
	// storage changes under us, and Vault calls Invalidate.
	key, cert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	ic, err := issuing.ValidateImport(key, cert, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := logical.StorageEntryJSON(orgCA.storageKey(), &caEntry{Version: 9, Source: sourceImported, OrgID: "acme", KeyPKCS8: ic.KeyPKCS8, CertDER: ic.Cert.Raw})
	if err := s.Put(t.Context(), entry); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(t.Context(), intermediateCA.storageKey()); err != nil {
		t.Fatal(err)
	}
	b.invalidate(t.Context(), orgCA.storageKey())
	b.invalidate(t.Context(), intermediateCA.storageKey())
	if issuerOf(sign()) != string(ic.Cert.SubjectKeyId) {
		t.Fatal("after another node's change and Invalidate, a stale CA still signs")
	}
	// A role deleted elsewhere: Invalidate, then 404.
	if err := s.Delete(t.Context(), rolePrefix+"agent"); err != nil {
		t.Fatal(err)
	}
	b.invalidate(t.Context(), rolePrefix+"agent")
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}, http.StatusNotFound, `role "agent" does not exist`)
}

func TestSignCSR_AllowedSANsAreCopied(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/svc", map[string]any{
		"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/svc/*",
		"allow_dns_sans":  true, "allow_ip_sans": true,
		"allowed_dns_sans": "*.acme.internal", "allowed_ip_sans": "10.0.0.0/8",
		"ext_key_usage": "ServerAuth,ClientAuth", "ttl": "24h",
	}))
	csr := testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/acme/svc/api"}, DNS: []string{"api.acme.internal"},
		ExtraExts: nil})
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/svc", map[string]any{"csr": csr}))
	leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if !slices.Equal(leaf.DNSNames, []string{"api.acme.internal"}) || len(leaf.Subject.Names) != 0 {
		t.Fatalf("DNS = %v subject = %q", leaf.DNSNames, leaf.Subject)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("EKU = %v", leaf.ExtKeyUsage)
	}
}

func TestSignCSR_BadInput(t *testing.T) {
	uri := "spiffe://cullis.local/acme/a1"
	certBlock := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x00}}))
	ku := func(bits ...int) pkix.Extension {
		var bs asn1.BitString
		bs.BitLength = 9
		bs.Bytes = make([]byte, 2)
		for _, i := range bits {
			bs.Bytes[i/8] |= 0x80 >> uint(i%8)
		}
		return testpki.MustExt(t, issuing.OIDExtKeyUsage, true, bs)
	}
	type bc struct {
		IsCA bool `asn1:"optional"`
	}
	cases := []badInput{
		{name: "garbage PEM", path: "sign-csr", data: map[string]any{"csr": "not a csr"}, want: "csr is not PEM"},
		{name: "oversized CSR", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, ExtraExts: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: make([]byte, 70<<10)}}})}, want: "at most 65536 are accepted"},
		{name: "empty csr", path: "sign-csr", data: map[string]any{"csr": ""}, want: "csr is required"},
		{name: "certificate instead of CSR", path: "sign-csr", data: map[string]any{"csr": certBlock}, want: "expected CERTIFICATE REQUEST"},
		{name: "truncated DER", path: "sign-csr", data: map[string]any{"csr": "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"}, want: "could not be parsed"},
		{name: "two CSRs", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1") + testpki.AgentCSR(t, "a2")}, want: "exactly one CSR"},
		{name: "signature does not verify", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, CorruptSig: true})}, want: "signature does not verify"},
		{name: "RSA-1024", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: testpki.NewRSAKey(t, 1024), URIs: []string{uri}})}, want: "RSA key of 1024 bits is not allowed"},
		{name: "P-224", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: testpki.NewECKey(t, elliptic.P224()), URIs: []string{uri}})}, want: "224-bit curve is not allowed"},
		{name: "Ed25519 under agent", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{Key: testpki.NewEd25519Key(t), URIs: []string{uri}})}, want: "key type ed25519 is not allowed"},
		{name: "CA:true requested", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, ExtraExts: []pkix.Extension{testpki.MustExt(t, issuing.OIDExtBasicConstraints, true, bc{IsCA: true})}})}, want: "CA:true"},
		{name: "keyCertSign requested", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, ExtraExts: []pkix.Extension{ku(0, 5)}})}, want: "keyCertSign"},
		{name: "keyEncipherment beyond role", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, ExtraExts: []pkix.Extension{ku(0, 2)}})}, want: "outside the role's key_usage"},
		{name: "serverAuth beyond role", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, ExtraExts: []pkix.Extension{testpki.MustExt(t, issuing.OIDExtExtKeyUsage, false, []asn1.ObjectIdentifier{issuing.ExtKeyUsageOIDs[x509.ExtKeyUsageServerAuth]})}})}, want: "outside the role's ext_key_usage"},
		{name: "two URI SANs", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri, "spiffe://cullis.local/acme/a2"}})}, want: "carries 2 URI SANs; this role requires exactly 1"},
		{name: "no URI SAN", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{CN: "acme::a1"})}, want: "carries 0 URI SANs"},
		{name: "wrong trust domain", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://evil.example/acme/a1"}})}, want: `trust domain "evil.example"`},
		{name: "wrong org", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/other/a1"}})}, want: "does not match the role's pattern"},
		{name: "too deep for agent", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/acme/x/a1"}})}, want: "does not match the role's pattern"},
		{name: "not SPIFFE", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"https://cullis.local/acme/a1"}})}, want: "not a valid SPIFFE ID"},
		{name: "principal bad kind", path: "sign-csr/principal", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/acme/robot/r2"}})}, want: "does not match the role's pattern"},
		{name: "DNS SAN", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, DNS: []string{"evil.example"}})}, want: "DNS SANs"},
		{name: "email SAN", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{uri}, Emails: []string{"a@acme.example"}})}, want: "email SANs"},
		{name: "IP SAN", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{ExtraExts: []pkix.Extension{testpki.SANExt(t,
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: issuing.SANTagURI, Bytes: []byte(uri)},
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: issuing.SANTagIP, Bytes: net.IPv4(10, 0, 0, 1).To4()})}})}, want: "IP address SANs"},
		{name: "otherName SAN", path: "sign-csr", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{ExtraExts: []pkix.Extension{testpki.SANExt(t,
			asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: []byte{0x06, 0x01, 0x01}})}})}, want: "subjectAltName of type [0]"},
		{name: "ttl above max", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "ttl": "9000h"}, want: "exceeds the role's max_ttl"},
		{name: "ttl not a duration", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "ttl": "soon"}, want: "ttl"},
		{name: "explicit ttl 0", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "ttl": 0}, want: "ttl 0s is not a validity"},
		{name: "negative ttl", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "ttl": "-1h"}, want: "cannot provide negative value"},
		{name: "unknown role", path: "sign-csr/nope", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: `role "nope" does not exist`, status: http.StatusNotFound},
		{name: "trust domain ID", path: "sign-csr/td", data: map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local"}})}, want: "names a trust domain, not a workload",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/td", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/*", "subject_common_name": "{{name}}", "allow_outside_org": true}))
			}},
		{name: "role in body", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "role": "principal"}, want: "role goes in the path"},
		{name: "unknown field", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1"), "tll": "1h"}, want: "unknown field(s) tll"},
		{name: "outlives issuer with leaf_not_after=error", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: "outlive its issuer",
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "ttl": "48h", "cas": 1}))
				mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"leaf_not_after": "error"}))
			}},
	}
	runBadInputs(t, true, cases)

	runBadInputs(t, false, []badInput{
		{name: "no CA yet", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: "no Org CA exists yet", status: http.StatusNotFound},
		{name: "expired CA", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: "the issuing CA expired at", status: http.StatusUnprocessableEntity,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				storeCAValidUntil(t, b, s, time.Now().Add(-time.Second))
			}},
		{name: "CA expires within a minute", path: "sign-csr", data: map[string]any{"csr": testpki.AgentCSR(t, "a1")}, want: "less than 1m0s from now", status: http.StatusUnprocessableEntity,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				storeCAValidUntil(t, b, s, time.Now().Add(30*time.Second))
			}},
	})
}

// storeCAValidUntil stores an Org CA that expires at notAfter, bypassing
// import's own expiry check, as if time had passed since the import.
func storeCAValidUntil(t *testing.T, b *mastioBackend, s logical.Storage, notAfter time.Time) {
	t.Helper()
	key := testpki.NewECKey(t, elliptic.P256())
	cert := testpki.MakeCert(t, testpki.CACert{Key: key, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter})
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	putCA(t, b, s, orgCA, &caEntry{Version: 1, Source: sourceImported, OrgID: "acme", KeyPKCS8: der, CertDER: cert.Raw})
}

func TestSignCSR_Batch(t *testing.T) {
	b, s := getTestBackend(t)
	org := testpki.ParseCertPEM(t, generateCA(t, b, s).Data["certificate"].(string))
	csrs := []string{testpki.AgentCSR(t, "a0"), testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://evil.example/acme/a1"}}), testpki.AgentCSR(t, "a2")}
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csrs": csrs}))
	results := resp.Data["certificates"].([]map[string]any)
	if len(results) != 3 || resp.Data["failed"] != 1 || resp.Data["issuing_ca"] != testpki.CertPEM(org) {
		t.Fatalf("batch: %d results, failed %v", len(results), resp.Data["failed"])
	}
	for i, r := range results {
		if r["index"] != i {
			t.Fatalf("result %d has index %v", i, r["index"])
		}
		if i == 1 {
			if msg, _ := r["error"].(string); !strings.Contains(msg, "csrs[1]") || !strings.Contains(msg, "evil.example") || r["certificate"] != nil {
				t.Fatalf("the bad CSR's result: %v", r)
			}
			continue
		}
		leaf := testpki.ParseCertPEM(t, r["certificate"].(string))
		if err := leaf.CheckSignatureFrom(org); err != nil || r["spiffe_id"] != fmt.Sprintf("spiffe://cullis.local/acme/a%d", i) {
			t.Fatalf("result %d: %v %v", i, err, r["spiffe_id"])
		}
	}
	many := make([]string, maxBatch+1)
	for i := range many {
		many[i] = csrs[0]
	}
	runBadInputs(t, true, []badInput{
		{name: "csr and csrs", path: "sign-csr", data: map[string]any{"csr": csrs[0], "csrs": csrs}, want: "not both"},
		{name: "empty batch", path: "sign-csr", data: map[string]any{"csrs": []string{}}, want: "csrs holds 0 CSRs"},
		{name: "101 CSRs", path: "sign-csr", data: map[string]any{"csrs": many}, want: "csrs holds 101 CSRs; send 1 to 100"},
	})
}

// Issue 12, defect 1: sign-csr looks up the role and the CA before it parses the
// CSR, so a request that cannot be signed anyway costs no parsing.
func TestSignCSR_NoParsingWithoutRoleOrCA(t *testing.T) {
	b, s := getTestBackend(t)
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": "not a csr"}, http.StatusNotFound, "no Org CA exists yet")
	generateCA(t, b, s)
	assertRefused(t, b, s, "sign-csr/ghost", map[string]any{"csr": "not a csr"}, http.StatusNotFound, `role "ghost" does not exist`)
}

// Issue 12, defect 1: a batch stops when its request is done (the client gave up).
func TestSignBatch_StopsWhenRequestDone(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	csrs := make([]string, maxBatch)
	for i := range csrs {
		csrs[i] = testpki.AgentCSR(t, "a1")
	}
	// Warm the caches: the abandoned request then reads no storage, which
	// would refuse a done context by itself.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": csrs[0]}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.UpdateOperation, Path: "sign-csr", Data: map[string]any{"csrs": csrs}, Storage: s, MountPoint: "mastio-ca/"})
	if err == nil || !strings.Contains(err.Error(), "batch abandoned after 0 of 100") {
		t.Fatalf("an abandoned batch answered %v, %v; want it stopped before signing", resp, err)
	}
	if n := b.signed.Load(); n != 1 {
		t.Fatalf("an abandoned batch signed %d certificates", n-1)
	}
}
