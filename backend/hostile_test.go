package backend

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// The defects issue 12 found by trying the plugin as an attacker would,
// one regression test each (defect 1's parsing bound and defect 5's
// rotation are tested in internal/issuing/hostile_test.go and
// path_intermediate_test.go; defect 6 in tests/acceptance/custody_test.go).

// Defect 1: sign-csr looks up the role and the CA before it parses the
// CSR, so a request that cannot be signed anyway costs no parsing.
func TestSignCSR_NoParsingWithoutRoleOrCA(t *testing.T) {
	b, s := getTestBackend(t)
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": "not a csr"}, http.StatusNotFound, "no Org CA exists yet")
	generateCA(t, b, s)
	assertRefused(t, b, s, "sign-csr/ghost", map[string]any{"csr": "not a csr"}, http.StatusNotFound, `role "ghost" does not exist`)
}

// Defect 1: a batch stops when its request is done (the client gave up).
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

// orgAndIntermediate makes an Org CA and an intermediate under it outside
// the plugin, valid until orgEnd and interEnd.
func orgAndIntermediate(t *testing.T, orgEnd, interEnd time.Time, orgPathLenZero bool) (orgKey, orgCert, interKey, interCert string, org *x509.Certificate) {
	t.Helper()
	ok := testpki.NewECKey(t, elliptic.P256())
	org = testpki.MakeCert(t, testpki.CACert{Key: ok, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Org: "acme", NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: orgEnd, PathLenZero: orgPathLenZero})
	ik := testpki.NewECKey(t, elliptic.P256())
	inter := testpki.MakeCert(t, testpki.CACert{Key: ik, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", NotBefore: time.Now().Add(-time.Hour), NotAfter: interEnd, Parent: org, ParentKey: ok})
	return testpki.PKCS8PEM(t, ok), testpki.CertPEM(org), testpki.PKCS8PEM(t, ik), testpki.CertPEM(inter), org
}

// Defect 2: an intermediate that outlives the Org CA is refused at import,
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

// Defect 3: an Org CA with pathLen 0 may not have an intermediate.
func TestIntermediate_ImportRefusedUnderPathLenZero(t *testing.T) {
	orgKey, orgCert, interKey, interCert, _ := orgAndIntermediate(t, time.Now().Add(365*24*time.Hour), time.Now().Add(30*24*time.Hour), true)
	b, s := getTestBackend(t)
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": orgKey, "cert_pem": orgCert}))
	assertRefused(t, b, s, "intermediate/import", map[string]any{"key_pem": interKey, "cert_pem": interCert}, http.StatusBadRequest, "pathLen 0")
}

// Defect 4: no common name over 64 characters, at role write when the
// template alone is too long, and at signing when a name makes it so.
func TestRoles_CommonNameBounded(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	assertRefused(t, b, s, "roles/long", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "subject_common_name": strings.Repeat("x", 65) + "{{name}}"}, http.StatusBadRequest, "X.509 allows at most 64")
	name := strings.Repeat("a", 60) // "acme::" + 60 = 66 characters
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, name)}, http.StatusBadRequest, "common name", "66 characters")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, name[:58])}))
}

// Defect 7: a role may not leave the org unless it says so, and DNS, IP
// and email SANs need an allow-list.
func TestRoles_StayInTheOrg(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	assertRefused(t, b, s, "roles/wide", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/*/*"}, http.StatusBadRequest, "may name IDs outside this org", "allow_outside_org")
	assertRefused(t, b, s, "roles/dns", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "allow_dns_sans": true}, http.StatusBadRequest, "allow_dns_sans=true needs allowed_dns_sans")
	assertRefused(t, b, s, "roles/ip", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "allow_ip_sans": true, "allowed_ip_sans": "not-an-ip"}, http.StatusBadRequest, "neither a CIDR prefix nor an IP address")

	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/dns", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "allow_dns_sans": true, "allowed_dns_sans": "*.agents.{{org_id}}.example"}))
	uri := []string{"spiffe://cullis.local/acme/a1"}
	for _, tc := range []struct{ dns, want string }{
		{"*.google.com", "wildcard"},
		{"www.google.com", "matches none of the role's allowed_dns_sans"},
		{"a.b.agents.acme.example", "matches none"},
	} {
		assertRefused(t, b, s, "sign-csr/dns", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: uri, DNS: []string{tc.dns}})}, http.StatusBadRequest, tc.want)
	}
	leaf := testpki.ParseCertPEM(t, mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/dns", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: uri, DNS: []string{"A1.agents.acme.example"}})})).Data["certificate"].(string))
	if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "A1.agents.acme.example" {
		t.Fatalf("allowed DNS SAN not issued: %v", leaf.DNSNames)
	}

	// A role stored before the rule (behind the plugin's back) still
	// issues nothing outside the org; allow_outside_org makes it explicit.
	wide := newTestRole(t, "spiffe://{{trust_domain}}/*/*")
	if err := b.writeRole(t.Context(), s, "wide", wide); err != nil {
		t.Fatal(err)
	}
	other := map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://cullis.local/otherorg/admin"}})}
	assertRefused(t, b, s, "sign-csr/wide", other, http.StatusUnprocessableEntity, "may name IDs outside this org")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/wide", map[string]any{"allow_outside_org": true}))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/wide", other))
}

// Defect 8: a field of the wrong type is refused with a message that names
// the field and never the value, on every path and for every field.
func TestFields_WrongTypeNeverEchoed(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	const secret = "-----BEGIN PRIVATE KEY-----MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
	concrete := map[string]string{"roles/" + framework.GenericNameRegex("name"): "roles/x", "data/" + caNamePattern: "data/org-ca", "kv-export/" + caNamePattern: "kv-export/org-ca"}
	checked := 0
	for _, p := range b.Backend.Paths {
		pattern := strings.TrimSuffix(strings.TrimPrefix(p.Pattern, "^"), "$")
		path := strings.TrimSuffix(pattern, "(/"+framework.GenericNameRegex("role")+")?")
		if c, ok := concrete[pattern]; ok {
			path = c
		}
		var update bool
		for op := range p.Operations {
			update = update || op == logical.UpdateOperation || op == logical.CreateOperation
		}
		if !update {
			continue
		}
		fields := make([]string, 0, len(p.Fields))
		for k := range p.Fields {
			fields = append(fields, k)
		}
		sort.Strings(fields)
		for _, k := range fields {
			if k == "name" || k == "role" {
				continue // from the URL
			}
			// A value no schema type but TypeString can take holds the
			// secret; a string field gets an object holding it.
			var bad any = secret
			if p.Fields[k].Type == framework.TypeString {
				bad = map[string]any{"pem": secret}
			}
			if p.Fields[k].Type == framework.TypeCommaStringSlice || p.Fields[k].Type == framework.TypeStringSlice {
				bad = map[string]any{"pem": secret}
			}
			resp, err := requestErr(b, s, logical.UpdateOperation, path, map[string]any{k: bad})
			if err != nil || resp == nil || !resp.IsError() {
				t.Errorf("%s %s=<wrong type>: answered %v, %v; want a 400", path, k, resp, err)
				continue
			}
			if msg := resp.Error().Error(); strings.Contains(msg, "MIGHAgEAMBMG") || !strings.Contains(msg, k) {
				t.Errorf("%s %s=<wrong type>: message %q quotes the value or does not name the field", path, k, msg)
			}
			checked++
		}
	}
	if checked < 40 {
		t.Fatalf("only %d fields checked; the path table is not what this test expects", checked)
	}
}

// mustPKCS8 is the PKCS#8 DER of a PEM private key.
func mustPKCS8(t *testing.T, keyPEM string) []byte {
	t.Helper()
	k, err := issuing.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// newTestRole is a role with one URI SAN matching pattern, built without
// Validate (as stored by an earlier plugin version).
func newTestRole(t *testing.T, pattern string) *issuing.Role {
	t.Helper()
	r := issuing.NewRole()
	r.URISANPattern = pattern
	return r
}
