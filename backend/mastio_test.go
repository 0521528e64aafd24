package backend

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// Issue 13: what Mastio's signing sites need from the plugin.

// mastioName is a subject built to Mastio's reference profile: CN then O,
// one RDN each, UTF8String (pyca/cryptography's default).
func mastioName(t *testing.T, cn, o string) []byte {
	t.Helper()
	var rdns pkix.RDNSequence
	for _, a := range []struct {
		oid asn1.ObjectIdentifier
		v   string
	}{{asn1.ObjectIdentifier{2, 5, 4, 3}, cn}, {asn1.ObjectIdentifier{2, 5, 4, 10}, o}} {
		v, err := asn1.MarshalWithParams(a.v, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		rdns = append(rdns, pkix.RelativeDistinguishedNameSET{{Type: a.oid, Value: asn1.RawValue{FullBytes: v}}})
	}
	der, err := asn1.Marshal(rdns)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestSubjects_ShapedLikeMastio(t *testing.T) {
	b, s := getTestBackend(t)
	org := testpki.ParseCertPEM(t, generateCA(t, b, s).Data["certificate"].(string))
	inter := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil)).Data["certificate"].(string))
	leaf := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")})).Data["certificate"].(string))
	for _, c := range []struct {
		what    string
		got     []byte
		cn, org string
	}{
		{"Org CA subject", org.RawSubject, "acme CA", "acme"},
		{"intermediate subject", inter.RawSubject, "acme Mastio CA", "acme"},
		{"intermediate issuer", inter.RawIssuer, "acme CA", "acme"},
		{"agent subject", leaf.RawSubject, "acme::a1", "acme"},
		{"agent issuer", leaf.RawIssuer, "acme Mastio CA", "acme"},
	} {
		if want := mastioName(t, c.cn, c.org); !bytes.Equal(c.got, want) {
			t.Errorf("%s is %x, want Mastio's CN-then-O UTF8String DN %x", c.what, c.got, want)
		}
	}
	// An empty subject stays empty, and the SAN is then critical.
	p := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/principal", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/acme/user/alice"}})})).Data["certificate"].(string))
	if len(p.Subject.Names) != 0 {
		t.Fatalf("principal subject = %q, want empty", p.Subject)
	}
	for _, e := range p.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 17}) && !e.Critical {
			t.Fatal("an empty subject with a non-critical SAN")
		}
	}
}

// The recipes of docs/mastio-integration.md for the Mastio leaf (S6-S8)
// and the nginx server certificate (S9).
var mastioRecipes = map[string]map[string]any{
	"mastio-leaf": {
		"uri_san_pattern": "spiffe://{{trust_domain}}/proxy/{{org_id}}", "allow_outside_org": true, "uri_san_count": 1,
		"subject_common_name": "proxy:{{org_id}}", "subject_organization": "{{org_id}}",
		"key_usage": "", "ext_key_usage": "", "ttl": "8760h", "max_ttl": "8760h",
	},
	"mastio-server": {
		"uri_san_count": 0, "subject_common_name": "{{first_san}}", "subject_organization": "{{org_id}}",
		"allow_dns_sans": true, "allowed_dns_sans": "mastio.local,mastio.acme.example", "allow_ip_sans": true, "allowed_ip_sans": "10.0.0.0/8",
		"key_usage": "DigitalSignature,KeyEncipherment", "ext_key_usage": "ServerAuth", "ttl": "2160h", "max_ttl": "2160h",
	},
}

func TestMastioRecipes(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	for name, data := range mastioRecipes {
		mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/"+name, data))
	}

	key := testpki.NewECKey(t, elliptic.P256())
	leafResp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-public-key/mastio-leaf", map[string]any{"public_key": testpki.PublicKeyPEM(t, key), "spiffe_id": "spiffe://cullis.local/proxy/acme"}))
	leaf := testpki.ParseCertPEM(t, leafResp.Data["certificate"].(string))
	if !bytes.Equal(leaf.RawSubject, mastioName(t, "proxy:acme", "acme")) || len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cullis.local/proxy/acme" ||
		leaf.KeyUsage != 0 || len(leaf.ExtKeyUsage) != 0 || leaf.IsCA || leaf.NotAfter.Sub(leaf.NotBefore) != 365*24*time.Hour+5*time.Minute {
		t.Fatalf("Mastio leaf: subject %q, URIs %v, KU %v, EKU %v, CA %v, validity %s", leaf.Subject, leaf.URIs, leaf.KeyUsage, leaf.ExtKeyUsage, leaf.IsCA, leaf.NotAfter.Sub(leaf.NotBefore))
	}
	assertRefused(t, b, s, "sign-public-key/mastio-leaf", map[string]any{"public_key": testpki.PublicKeyPEM(t, key), "spiffe_id": "spiffe://cullis.local/proxy/other"}, http.StatusBadRequest, "does not match the role's pattern")

	csr := testpki.MakeCSR(t, testpki.CSR{DNS: []string{"mastio.local", "mastio.acme.example"}, IPs: []net.IP{net.ParseIP("10.1.2.3")}})
	srv := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/mastio-server", map[string]any{"csr": csr})).Data["certificate"].(string))
	if !bytes.Equal(srv.RawSubject, mastioName(t, "mastio.local", "acme")) || strings.Join(srv.DNSNames, ",") != "mastio.local,mastio.acme.example" || len(srv.IPAddresses) != 1 ||
		srv.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment || len(srv.ExtKeyUsage) != 1 || srv.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth ||
		srv.NotAfter.Sub(srv.NotBefore) != 90*24*time.Hour+5*time.Minute {
		t.Fatalf("nginx: subject %q, DNS %v, IP %v, KU %v, EKU %v, validity %s", srv.Subject, srv.DNSNames, srv.IPAddresses, srv.KeyUsage, srv.ExtKeyUsage, srv.NotAfter.Sub(srv.NotBefore))
	}
	ipOnly := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/mastio-server", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{IPs: []net.IP{net.ParseIP("10.9.9.9")}})})).Data["certificate"].(string))
	if ipOnly.Subject.CommonName != "10.9.9.9" {
		t.Fatalf("nginx with an IP SAN only: CN %q", ipOnly.Subject.CommonName)
	}
	assertRefused(t, b, s, "sign-csr/mastio-server", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{DNS: []string{"evil.example"}})}, http.StatusBadRequest, "matches none of the role's allowed_dns_sans")
	assertRefused(t, b, s, "roles/bad", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "subject_common_name": "{{first_san}}"}, http.StatusBadRequest, "needs allow_dns_sans or allow_ip_sans")
}

// S4/S5 as Mastio calls them: grace_days, dry_run, and the fields its
// admin endpoint returns.
func TestIntermediate_RotateLikeMastio(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	first := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/generate", nil))
	firstCert := testpki.ParseCertPEM(t, first.Data["certificate"].(string))
	before := snapshot(t, s)
	dry := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"dry_run": true, "grace_days": 30}))
	assertUnchanged(t, before, s)
	if ic := mustOK(t, request(t, b, s, logical.ReadOperation, "intermediate/cert", nil)); ic.Data["certificate"] != first.Data["certificate"] {
		t.Fatal("a dry run changed the intermediate")
	}
	if dry.Data["dry_run"] != true || dry.Data["grace_days"] != 30 || dry.Data["old_intermediate_cn"] != "acme Mastio CA" || dry.Data["new_intermediate_cn"] != "acme Mastio CA" || dry.Data["certificate"] == first.Data["certificate"] {
		t.Fatalf("dry run answered %v", dry.Data)
	}
	wouldBe := testpki.ParseCertPEM(t, dry.Data["certificate"].(string))
	sig, err := base64.RawURLEncoding.DecodeString(dry.Data["continuity_proof"].(string))
	digest := sha256.Sum256(wouldBe.Raw)
	if err != nil || !ecdsa.VerifyASN1(firstCert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatal("the dry run's continuity proof does not verify over the certificate it returned")
	}

	rot := mustOK(t, request(t, b, s, logical.UpdateOperation, "intermediate/rotate", map[string]any{"grace_days": 30}))
	until, _ := time.Parse(time.RFC3339, rot.Data["previous_grace_until"].(string))
	if rot.Data["dry_run"] != false || rot.Data["grace_days"] != 30 || time.Until(until) < 30*24*time.Hour-time.Minute || time.Until(until) > 30*24*time.Hour {
		t.Fatalf("rotate grace_days=30: dry_run %v, grace_days %v, previous until %s", rot.Data["dry_run"], rot.Data["grace_days"], until)
	}
	for _, bad := range []map[string]any{{"grace_days": 0}, {"grace_days": 91}, {"grace_days": 14, "grace_period": "336h"}} {
		assertRefused(t, b, s, "intermediate/rotate", bad, http.StatusBadRequest, "grace")
	}
}

// S14: after a new Org CA, every agent certificate is re-signed for its
// existing public key in one request.
func TestSignPublicKey_Batch(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	k1, k2 := testpki.NewECKey(t, elliptic.P256()), testpki.NewECKey(t, elliptic.P384())
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-public-key/agent", map[string]any{"requests": []any{
		map[string]any{"public_key": testpki.PublicKeyPEM(t, k1), "name": "a1"},
		map[string]any{"public_key": "not a key", "name": "a2"},
		map[string]any{"public_key": testpki.PublicKeyPEM(t, k2), "spiffe_id": "spiffe://cullis.local/acme/a3"},
	}}))
	results := resp.Data["certificates"].([]map[string]any)
	if resp.Data["failed"] != 1 || len(results) != 3 || !strings.HasPrefix(results[1]["error"].(string), "requests[1]: public_key is not PEM") {
		t.Fatalf("batch: failed %v, results %v", resp.Data["failed"], results)
	}
	for i, k := range map[int]*ecdsa.PrivateKey{0: k1.(*ecdsa.PrivateKey), 2: k2.(*ecdsa.PrivateKey)} {
		c := testpki.ParseCertPEM(t, results[i]["certificate"].(string))
		if !c.PublicKey.(*ecdsa.PublicKey).Equal(&k.PublicKey) {
			t.Fatalf("requests[%d] was signed for another key", i)
		}
	}
	assertRefused(t, b, s, "sign-public-key/agent", map[string]any{"requests": []any{"x"}}, http.StatusBadRequest, "requests[0] must be an object")
	assertRefused(t, b, s, "sign-public-key/agent", map[string]any{"requests": []any{map[string]any{"public_key": "x"}}, "name": "a"}, http.StatusBadRequest, "not both")
}
