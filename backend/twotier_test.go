package backend

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// mount is one backend and its storage: a root or an issuing mount.
type mount struct {
	b *mastioBackend
	s logical.Storage
}

func newTestMount(t *testing.T) mount {
	b, s := getTestBackend(t)
	return mount{b, s}
}

func (m mount) write(t *testing.T, path string, data map[string]any) *logical.Response {
	t.Helper()
	return mustOK(t, request(t, m.b, m.s, logical.UpdateOperation, path, data))
}

func (m mount) read(t *testing.T, path string) *logical.Response {
	t.Helper()
	return mustOK(t, request(t, m.b, m.s, logical.ReadOperation, path, nil))
}

// csrRound runs one CSR round: generate-csr on issuing, sign on root,
// set-signed on issuing. It returns set-signed's answer.
func csrRound(t *testing.T, root, issuing mount, setSigned map[string]any) *logical.Response {
	t.Helper()
	csr := issuing.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr, "ttl": "8760h"})
	if setSigned == nil {
		setSigned = map[string]any{}
	}
	setSigned["certificate"] = signed.Data["certificate"]
	setSigned["ca_chain"] = signed.Data["ca_chain"].([]string)[1:]
	return issuing.write(t, "intermediate/set-signed", setSigned)
}

func TestTwoTier_IssuingMountHoldsNoOrgCAKey(t *testing.T) {
	root, iss := newTestMount(t), newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	iss.write(t, "config", map[string]any{"org_id": "acme"})
	before := snapshot(t, iss.s)

	pending := iss.write(t, "intermediate/generate-csr", nil)
	csrPEM := pending.Data["csr"].(string)
	block, _ := pem.Decode([]byte(csrPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.Subject.CommonName != "acme Mastio CA" || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v, subject %q", err, csr.Subject)
	}
	if got := iss.read(t, "intermediate/pending").Data["csr"]; got != csrPEM {
		t.Fatalf("intermediate/pending csr differs from generate-csr's")
	}
	// Create-only: a second round needs cas.
	assertRefused(t, iss.b, iss.s, "intermediate/generate-csr", nil, http.StatusConflict, "pass cas=1")
	// Signing on the issuing mount needs an intermediate; there is none.
	assertRefused(t, iss.b, iss.s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a")}, http.StatusNotFound, "no Org CA")

	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": csrPEM, "ttl": "8760h"})
	rootPEM := root.read(t, "cert").Data["certificate"].(string)
	chain := signed.Data["ca_chain"].([]string)
	if chain[0] != signed.Data["certificate"] || chain[len(chain)-1] != rootPEM {
		t.Fatalf("ca_chain is not [certificate, Org CA]: %d entries", len(chain))
	}
	// Without the Org CA the issuing mount cannot activate it.
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"]}, http.StatusBadRequest, "pass the Org CA certificate")
	assertUnchanged(t, withPending(t, before, iss), iss.s)

	act := iss.write(t, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "ca_chain": rootPEM})
	if act.Data["org_ca_installed"] != true || act.Data["unchanged"] != false {
		t.Fatalf("set-signed: org_ca_installed %v, unchanged %v", act.Data["org_ca_installed"], act.Data["unchanged"])
	}
	if resp := request(t, iss.b, iss.s, logical.ReadOperation, "intermediate/pending", nil); resp != nil {
		t.Fatalf("the pending key is still there after set-signed")
	}
	org := iss.read(t, "cert")
	if org.Data["source"] != sourceAnchor || org.Data["certificate"] != rootPEM {
		t.Fatalf("issuing mount's Org CA: source %v", org.Data["source"])
	}
	e, err := readCA(t.Context(), iss.s, orgCA)
	if err != nil || len(e.KeyPKCS8) != 0 {
		t.Fatalf("the anchor entry holds %d key bytes (%v)", len(e.KeyPKCS8), err)
	}
	// A retry of set-signed succeeds unchanged.
	if again := iss.write(t, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"]}); again.Data["unchanged"] != true {
		t.Fatalf("set-signed retry: unchanged %v", again.Data["unchanged"])
	}

	// Leaves chain to the root mount's Org CA through the new intermediate.
	leaf := iss.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "agent-1")})
	verifyLeaf(t, leaf, rootPEM)

	// What needs the Org CA key is refused, 422, and names the way.
	assertRefused(t, iss.b, iss.s, "intermediate/rotate", nil, http.StatusUnprocessableEntity, "intermediate/generate-csr")
	assertRefused(t, iss.b, iss.s, "intermediate/generate", nil, http.StatusUnprocessableEntity, "intermediate/generate-csr")
	assertRefused(t, iss.b, iss.s, "intermediate/generate", map[string]any{"cas": 1}, http.StatusUnprocessableEntity, "intermediate/generate-csr")
	assertRefused(t, iss.b, iss.s, "root/sign-intermediate", map[string]any{"csr": csrPEM}, http.StatusUnprocessableEntity, "root mount")
	assertRefused(t, iss.b, iss.s, "generate", map[string]any{"org_id": "acme"}, http.StatusConflict, "create-only")
	iss.write(t, "roles/by-org", map[string]any{"issuer": "org-ca", "uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*"})
	assertRefused(t, iss.b, iss.s, "sign-csr/by-org", map[string]any{"csr": testpki.AgentCSR(t, "a")}, http.StatusUnprocessableEntity, "only the Org CA's certificate")
	if h := iss.read(t, "health"); h.Data["org-ca_not_after"] == nil || h.Data["intermediate-ca_not_after"] == nil {
		t.Fatalf("health on the issuing mount: %v", h.Data)
	}
	// The bundle is the same on both mounts.
	if rb, ib := root.read(t, "bundle").Data[logical.HTTPRawBody], iss.read(t, "bundle").Data[logical.HTTPRawBody]; string(rb.([]byte)) != string(ib.([]byte)) {
		t.Fatalf("bundles differ:\nroot %s\nissuing %s", rb, ib)
	}
}

// withPending is before plus the pending key iss now holds.
func withPending(t *testing.T, before map[string]string, iss mount) map[string]string {
	out := map[string]string{}
	for k, v := range before {
		out[k] = v
	}
	e, err := iss.s.Get(t.Context(), pendingStorageKey)
	if err != nil || e == nil {
		t.Fatalf("no pending entry: %v", err)
	}
	out[pendingStorageKey] = string(e.Value)
	return out
}

func verifyLeaf(t *testing.T, leaf *logical.Response, rootPEM string) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM([]byte(rootPEM))
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM([]byte(leaf.Data["issuing_ca"].(string)))
	cert := testpki.ParseCertPEM(t, leaf.Data["certificate"].(string))
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("leaf does not verify under the root mount's Org CA: %v", err)
	}
}

func TestTwoTier_RotationByCSRRound(t *testing.T) {
	root, iss := newTestMount(t), newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	iss.write(t, "config", map[string]any{"org_id": "acme"})
	first := csrRound(t, root, iss, nil)
	oldCert := testpki.ParseCertPEM(t, first.Data["certificate"].(string))
	bundleBefore := iss.read(t, "bundle").Data[logical.HTTPRawBody]

	second := csrRound(t, root, iss, map[string]any{"grace_period": "48h", "cas": first.Data["version"]})
	newCert := testpki.ParseCertPEM(t, second.Data["certificate"].(string))
	if newCert.Equal(oldCert) || second.Data["previous"] != first.Data["certificate"] {
		t.Fatalf("rotation: the previous intermediate is not published as previous")
	}
	proof, err := base64.RawURLEncoding.DecodeString(second.Data["continuity_proof"].(string))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(newCert.Raw)
	if !ecdsa.VerifyASN1(oldCert.PublicKey.(*ecdsa.PublicKey), digest[:], proof) {
		t.Fatalf("continuity proof does not verify with the old intermediate's key")
	}
	until, _ := time.Parse(time.RFC3339, second.Data["previous_grace_until"].(string))
	if d := time.Until(until); d < 47*time.Hour || d > 48*time.Hour {
		t.Fatalf("previous_grace_until is %s away, want 48h", d)
	}
	if after := iss.read(t, "bundle").Data[logical.HTTPRawBody]; string(after.([]byte)) != string(bundleBefore.([]byte)) {
		t.Fatalf("the bundle changed with the intermediate")
	}
	leaf := iss.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "agent-2")})
	if !testpki.ParseCertPEM(t, leaf.Data["issuing_ca"].(string)).Equal(newCert) {
		t.Fatalf("leaves are not signed by the new intermediate")
	}
	verifyLeaf(t, leaf, root.read(t, "cert").Data["certificate"].(string))
	// A stale cas is a 409 and leaves the pending key.
	csr := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "cas": first.Data["version"]}, http.StatusConflict, "check-and-set failed")
	iss.read(t, "intermediate/pending")
}

func TestTwoTier_SetSignedRefusals(t *testing.T) {
	root, iss := newTestMount(t), newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme", "path_len": 2})
	iss.write(t, "config", map[string]any{"org_id": "acme"})
	rootPEM := root.read(t, "cert").Data["certificate"].(string)
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": rootPEM}, http.StatusNotFound, "no intermediate key is pending")

	csr := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	before := snapshot(t, iss.s)
	// A certificate for another key.
	other := root.write(t, "root/sign-intermediate", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{})})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": other.Data["certificate"], "ca_chain": rootPEM}, http.StatusBadRequest, "not for the pending key")
	// pathLen 1 is not an issuing intermediate.
	root.write(t, "root/profile", map[string]any{"max_path_length": 1})
	wide := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": wide.Data["certificate"], "ca_chain": rootPEM}, http.StatusBadRequest, "pathLen 1")
	// Signed by a different Org CA than the one given.
	root2 := newTestMount(t)
	root2.write(t, "generate", map[string]any{"org_id": "acme"})
	byOther := root2.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": byOther.Data["certificate"], "ca_chain": rootPEM}, http.StatusBadRequest, "did not sign")
	// Not PEM; a private key in ca_chain.
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": "hello"}, http.StatusBadRequest, "not PEM")
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": byOther.Data["certificate"], "ca_chain": testpki.PKCS8PEM(t, testpki.NewECKey(t, elliptic.P256()))}, http.StatusBadRequest, "only CERTIFICATE blocks")
	assertUnchanged(t, before, iss.s)

	// Once this mount has an Org CA, another one is refused.
	root.write(t, "root/profile", map[string]any{"max_path_length": 0})
	good := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	iss.write(t, "intermediate/set-signed", map[string]any{"certificate": good.Data["certificate"], "ca_chain": rootPEM})
	csr2 := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	foreign := root2.write(t, "root/sign-intermediate", map[string]any{"csr": csr2})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": foreign.Data["certificate"]}, http.StatusConflict, "create-only: pass cas=1")
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": foreign.Data["certificate"], "ca_chain": root2.read(t, "cert").Data["certificate"], "cas": 1}, http.StatusBadRequest, "pass org_ca_cas=1")
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": foreign.Data["certificate"], "cas": 1}, http.StatusBadRequest, "does not chain to the stored Org CA")
	// cas replaces the pending key; delete drops it.
	iss.write(t, "intermediate/generate-csr", map[string]any{"cas": 1})
	mustOK(t, request(t, iss.b, iss.s, logical.DeleteOperation, "intermediate/pending", nil))
	if resp := request(t, iss.b, iss.s, logical.ReadOperation, "intermediate/pending", nil); resp != nil {
		t.Fatalf("the pending key survived its delete")
	}
	if resp := request(t, iss.b, iss.s, logical.DeleteOperation, "intermediate/pending", nil); resp == nil || resp.Data[logical.HTTPStatusCode] != http.StatusNotFound {
		t.Fatalf("deleting no pending key: %v, want 404", resp)
	}
}

func TestRootSignIntermediate_SPIREShape(t *testing.T) {
	root := newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	key := testpki.NewECKey(t, elliptic.P256())
	csr := testpki.MakeCSR(t, testpki.CSR{Key: key, URIs: []string{"spiffe://cullis.local"}})
	for _, ttl := range []string{"86400", "", "24h"} {
		// SPIRE sends every value as a string.
		resp := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr, "common_name": "", "organization": "SPIFFE", "country": "US", "uri_sans": "spiffe://cullis.local", "ttl": ttl})
		c := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
		want := 24 * time.Hour
		if ttl == "" {
			want = issuing.DefaultSignedCATTL
		}
		if !c.IsCA || c.MaxPathLen != 0 || !c.MaxPathLenZero || c.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign ||
			len(c.URIs) != 1 || c.URIs[0].String() != "spiffe://cullis.local" || c.Subject.CommonName != "acme Intermediate CA" ||
			len(c.Subject.Organization) != 1 || c.Subject.Organization[0] != "acme" || len(c.PermittedURIDomains) != 0 {
			t.Fatalf("ttl %q: CA %v pathLen %d KU %v URIs %v subject %q NC %v", ttl, c.IsCA, c.MaxPathLen, c.KeyUsage, c.URIs, c.Subject, c.PermittedURIDomains)
		}
		if d := time.Until(c.NotAfter); d < want-time.Minute || d > want {
			t.Fatalf("ttl %q: valid for %s more, want %s", ttl, d, want)
		}
		if resp.Data["expiration"] != c.NotAfter.Unix() || resp.Data["issuing_ca"] != root.read(t, "cert").Data["certificate"] {
			t.Fatalf("expiration or issuing_ca wrong")
		}
	}

	root.write(t, "root/profile", map[string]any{"uri_name_constraint": true, "allow_digital_signature": true, "max_ttl": "48h", "ttl": "1h"})
	resp := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr, "ttl": "720h", "key_usage": "CertSign,CRLSign,DigitalSignature"})
	c := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if len(c.PermittedURIDomains) != 1 || c.PermittedURIDomains[0] != "cullis.local" || !c.PermittedDNSDomainsCritical || c.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Fatalf("name constraint %v critical %v, KU %v", c.PermittedURIDomains, c.PermittedDNSDomainsCritical, c.KeyUsage)
	}
	if d := time.Until(c.NotAfter); d > 48*time.Hour || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "max_ttl") {
		t.Fatalf("ttl above max_ttl: valid %s, warnings %v", d, resp.Warnings)
	}

	root.write(t, "root/profile", map[string]any{"allow_digital_signature": false})
	// cert-manager's isCA request lists the CSR's names: not copied, a warning.
	named := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr, "alt_names": "spire.example,", "ip_sans": "10.0.0.1"})
	if c := testpki.ParseCertPEM(t, named.Data["certificate"].(string)); len(c.DNSNames)+len(c.IPAddresses) != 0 || len(named.Warnings) == 0 || !strings.Contains(named.Warnings[0], "not copied") {
		t.Fatalf("alt_names/ip_sans on a CA: DNS %v IP %v, warnings %v", c.DNSNames, c.IPAddresses, named.Warnings)
	}
	before := snapshot(t, root.s)
	for _, bad := range []struct {
		data map[string]any
		want string
	}{
		{map[string]any{"csr": csr, "uri_sans": "spiffe://other.example"}, "exactly spiffe://cullis.local"},
		{map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://other.example"}})}, "this mount's trust domain is cullis.local"},
		{map[string]any{"csr": csr, "use_csr_values": "true"}, "use_csr_values"},
		{map[string]any{"csr": csr, "format": "der"}, "format"},
		{map[string]any{"csr": csr, "not_after": "2030-01-01T00:00:00Z"}, "not_after"},
		{map[string]any{"csr": csr, "key_usage": "DigitalSignature"}, "allow_digital_signature"},
		{map[string]any{"csr": csr, "key_usage": "KeyEncipherment"}, "not a CA key usage"},
		{map[string]any{"csr": csr, "max_path_length": 1}, "above this mount's limit"},
		{map[string]any{"csr": csr, "ttl": "30m"}, "under the 1h"},
		{map[string]any{"csr": csr, "permitted_uri_domains": "x"}, "unknown field"},
		{map[string]any{"csr": "not a csr"}, "csr is not PEM"},
		{map[string]any{"csr": testpki.HostileRSACSR(t, 16384, 65537)}, "csr"},
	} {
		assertRefused(t, root.b, root.s, "root/sign-intermediate", bad.data, http.StatusBadRequest, bad.want)
	}
	assertUnchanged(t, before, root.s)
	assertRefused(t, root.b, root.s, "root/profile", map[string]any{"common_name": "{{name}} CA"}, http.StatusBadRequest, "unknown placeholder")
	assertRefused(t, root.b, root.s, "root/profile", map[string]any{"max_path_length": 9}, http.StatusBadRequest, "out of range")
	assertRefused(t, root.b, root.s, "root/profile", map[string]any{"ttl": "100h", "max_ttl": "50h"}, http.StatusBadRequest, "ttl <= max_ttl")

	// pathLen 1 under an Org CA with path_len 1 leaves no room.
	root.write(t, "root/profile", map[string]any{"max_path_length": 1})
	assertRefused(t, root.b, root.s, "root/sign-intermediate", map[string]any{"csr": csr}, http.StatusUnprocessableEntity, "pathLen 1")
	empty := newTestMount(t)
	assertRefused(t, empty.b, empty.s, "root/sign-intermediate", map[string]any{"csr": csr}, http.StatusNotFound, "no Org CA")
}

func TestSignPKI_CertManagerShape(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "intermediate/generate", nil)
	m.write(t, "roles/k8s", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "ext_key_usage": "ServerAuth,ClientAuth", "ttl": "24h", "max_ttl": "720h", "allow_dns_sans": true, "allowed_dns_sans": "*.acme.example"})
	web := "spiffe://cullis.local/acme/web"
	key := testpki.NewECKey(t, elliptic.P256())
	csr := testpki.MakeCSR(t, testpki.CSR{Key: key, URIs: []string{web}, DNS: []string{"web.acme.example"}})
	body := map[string]any{"alt_names": "web.acme.example", "common_name": "", "csr": csr, "exclude_cn_from_sans": "true", "ip_sans": "", "ttl": "2160h0m0s", "uri_sans": "spiffe://cullis.local/acme/web"}
	resp := m.write(t, "sign/k8s", body)
	leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if len(leaf.ExtKeyUsage) != 2 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || leaf.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("EKU %v, want serverAuth, clientAuth", leaf.ExtKeyUsage)
	}
	if d := time.Until(leaf.NotAfter); d > 720*time.Hour || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "max_ttl") {
		t.Fatalf("ttl 2160h over max_ttl 720h: valid %s, warnings %v", d, resp.Warnings)
	}
	chain := resp.Data["ca_chain"].([]string)
	if len(chain) != 2 || chain[0] != resp.Data["issuing_ca"] || resp.Data["expiration"] != leaf.NotAfter.Unix() {
		t.Fatalf("ca_chain has %d entries (want intermediate, Org CA), expiration %v", len(chain), resp.Data["expiration"])
	}
	body["remove_roots_from_chain"] = "true"
	if got := m.write(t, "sign/k8s", body).Data["ca_chain"].([]string); len(got) != 1 || got[0] != chain[0] {
		t.Fatalf("remove_roots_from_chain: %d entries", len(got))
	}
	delete(body, "remove_roots_from_chain")

	before := snapshot(t, m.s)
	for _, bad := range []struct {
		field, value, want string
		status             int
	}{
		{"alt_names", "other.acme.example", "DNS name \"other.acme.example\", which the csr does not carry", http.StatusBadRequest},
		{"uri_sans", "spiffe://cullis.local/acme/db", "uri_sans asks for \"spiffe://cullis.local/acme/db\"", http.StatusBadRequest},
		{"ip_sans", "10.0.0.1", "ip_sans asks for 10.0.0.1", http.StatusBadRequest},
		{"ip_sans", "ten", "not an IP address", http.StatusBadRequest},
		{"common_name", "web", "not the csr's common name", http.StatusBadRequest},
		{"other_sans", "1.2.3.4;UTF8:x", "otherName", http.StatusBadRequest},
		{"format", "pem_bundle", "format", http.StatusBadRequest},
		{"not_after", "2030-01-01T00:00:00Z", "not_after", http.StatusBadRequest},
	} {
		data := map[string]any{}
		for k, v := range body {
			data[k] = v
		}
		data[bad.field] = bad.value
		assertRefused(t, m.b, m.s, "sign/k8s", data, bad.status, bad.want)
	}
	// The role still judges the CSR: a DNS name outside its allow-list.
	evil := testpki.MakeCSR(t, testpki.CSR{URIs: []string{web}, DNS: []string{"evil.example"}})
	assertRefused(t, m.b, m.s, "sign/k8s", map[string]any{"csr": evil, "alt_names": "evil.example"}, http.StatusBadRequest, "allowed_dns_sans")
	// A CN the role does not put in the subject.
	withCN := testpki.MakeCSR(t, testpki.CSR{CN: "web", URIs: []string{web}})
	assertRefused(t, m.b, m.s, "sign/k8s", map[string]any{"csr": withCN, "common_name": "web"}, http.StatusBadRequest, "not what this role puts in the subject")
	assertRefused(t, m.b, m.s, "sign/nope", map[string]any{"csr": csr}, http.StatusNotFound, "role \"nope\" does not exist")
	assertUnchanged(t, before, m.s)
	// The CSR's CN is fine when it is not asked for: the subject is the role's.
	m.write(t, "sign/k8s", map[string]any{"csr": withCN, "common_name": ""})
}

func TestBundle_SPIFFEFormatAndETag(t *testing.T) {
	m := newTestMount(t)
	if resp := request(t, m.b, m.s, logical.ReadOperation, "bundle", nil); resp != nil {
		t.Fatalf("bundle without an Org CA: %v, want 404", resp.Data)
	}
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	resp := m.read(t, "bundle")
	body := resp.Data[logical.HTTPRawBody].([]byte)
	b, err := spiffebundle.Parse(spiffeid.RequireTrustDomainFromString("cullis.local"), body)
	if err != nil {
		t.Fatalf("spiffebundle.Parse: %v\n%s", err, body)
	}
	org := testpki.ParseCertPEM(t, m.read(t, "cert").Data["certificate"].(string))
	if auth := b.X509Authorities(); len(auth) != 1 || !auth[0].Equal(org) {
		t.Fatalf("bundle authorities: %d", len(auth))
	}
	if seq, ok := b.SequenceNumber(); !ok || seq != uint64(org.NotBefore.Unix()) {
		t.Fatalf("spiffe_sequence %d %v", seq, ok)
	}
	etag := resp.Headers["ETag"][0]
	m.write(t, "intermediate/generate", nil)
	m.write(t, "intermediate/rotate", nil)
	again, err := requestErr(m.b, m.s, logical.ReadOperation, "bundle", nil)
	if err != nil || string(again.Data[logical.HTTPRawBody].([]byte)) != string(body) || again.Headers["ETag"][0] != etag {
		t.Fatalf("the bundle changed with the intermediate's rotation")
	}
	notModified, err := m.b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "bundle", Storage: m.s, Headers: map[string][]string{"If-None-Match": {etag}}})
	if _, hasBody := notModified.Data[logical.HTTPRawBody]; err != nil || notModified.Data[logical.HTTPStatusCode] != http.StatusNotModified || hasBody {
		t.Fatalf("If-None-Match: %v %v", notModified.Data[logical.HTTPStatusCode], err)
	}
	m.write(t, "generate", map[string]any{"org_id": "acme", "cas": 1})
	if changed := m.read(t, "bundle"); changed.Headers["ETag"][0] == etag {
		t.Fatalf("a new Org CA kept the ETag")
	}
}

// The review's cases: nothing is written by a refused set-signed, a key is
// never rotated out for itself, rotations take cas, versions only rise,
// and an issuing mount follows its root to a new Org CA.
func TestTwoTier_SetSignedCustody(t *testing.T) {
	root, iss := newTestMount(t), newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	iss.write(t, "config", map[string]any{"org_id": "acme"})
	rootPEM := root.read(t, "cert").Data["certificate"].(string)
	csr := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	before := snapshot(t, iss.s)
	// A refusal after the anchor would have been stored writes nothing.
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "ca_chain": rootPEM, "cas": 5}, http.StatusConflict, "check-and-set failed")
	assertUnchanged(t, before, iss.s)

	first := iss.write(t, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "ca_chain": rootPEM})
	// The pending key's tidy-up did not land: a retry, even with another
	// certificate for the same key, never rotates the key out for itself.
	e, _ := iss.s.Get(t.Context(), caPrefix+"intermediate-ca")
	var active caEntry
	_ = e.DecodeJSON(&active)
	csrBlock, _ := pem.Decode([]byte(csr))
	_ = putEntry(t.Context(), iss.s, pendingStorageKey, "pending", &pendingEntry{Version: 1, KeyPKCS8: active.KeyPKCS8, CSRDER: csrBlock.Bytes})
	again := iss.write(t, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"]})
	if again.Data["unchanged"] != true || again.Data["version"] != first.Data["version"] {
		t.Fatalf("retry with the pending key active: unchanged %v, version %v", again.Data["unchanged"], again.Data["version"])
	}
	if resp := request(t, iss.b, iss.s, logical.ReadOperation, "intermediate/pending", nil); resp != nil {
		t.Fatalf("the leftover pending key was not dropped")
	}

	// A rotation without cas is refused; the pending versions only rise.
	next := iss.write(t, "intermediate/generate-csr", nil)
	if next.Data["version"] != 2 {
		t.Fatalf("the pending version after one round is %v, want 2", next.Data["version"])
	}
	rotated := root.write(t, "root/sign-intermediate", map[string]any{"csr": next.Data["csr"]})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": rotated.Data["certificate"]}, http.StatusConflict, "pass cas=1")
	mustOK(t, request(t, iss.b, iss.s, logical.DeleteOperation, "intermediate/pending", nil))
	assertRefused(t, iss.b, iss.s, "intermediate/generate-csr", map[string]any{"cas": 2}, http.StatusConflict, "check-and-set failed")

	// The root replaces its Org CA: the issuing mount follows with
	// org_ca_cas, and the new intermediate rotates the old one out.
	root.write(t, "generate", map[string]any{"org_id": "acme", "cas": 1})
	newRoot := root.read(t, "cert").Data["certificate"].(string)
	csr3 := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	under := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr3})
	before = snapshot(t, iss.s)
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": under.Data["certificate"], "ca_chain": newRoot, "cas": 1}, http.StatusBadRequest, "pass org_ca_cas=1")
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": under.Data["certificate"], "ca_chain": newRoot, "org_ca_cas": 1}, http.StatusConflict, "pass cas=1")
	assertUnchanged(t, before, iss.s)
	moved := iss.write(t, "intermediate/set-signed", map[string]any{"certificate": under.Data["certificate"], "ca_chain": newRoot, "org_ca_cas": 1, "cas": 1})
	if moved.Data["org_ca_installed"] != true || moved.Data["continuity_proof"] == nil || iss.read(t, "cert").Data["certificate"] != newRoot {
		t.Fatalf("following the new Org CA: installed %v, proof %v", moved.Data["org_ca_installed"], moved.Data["continuity_proof"])
	}
	verifyLeaf(t, iss.write(t, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "after")}), newRoot)
	// A root mount is never turned into an issuing one.
	csr4 := root.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	other := newTestMount(t)
	other.write(t, "generate", map[string]any{"org_id": "acme"})
	byOther := other.write(t, "root/sign-intermediate", map[string]any{"csr": csr4})
	assertRefused(t, root.b, root.s, "intermediate/set-signed", map[string]any{"certificate": byOther.Data["certificate"], "ca_chain": other.read(t, "cert").Data["certificate"], "org_ca_cas": 2}, http.StatusBadRequest, "holds the key of another Org CA")
}

// Vault PKI's readings of what cert-manager and SPIRE may send.
func TestSignPKI_VaultReadings(t *testing.T) {
	m := newTestMount(t)
	m.write(t, "generate", map[string]any{"org_id": "acme"})
	m.write(t, "roles/k8s", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "ttl": "24h", "max_ttl": "720h"})
	web := "spiffe://cullis.local/acme/web"
	csr := testpki.MakeCSR(t, testpki.CSR{URIs: []string{web}})
	// ttl "" is no ttl; "a," is the list [a]; with the Org CA as the only
	// issuer, remove_roots_from_chain leaves no ca_chain at all, not null.
	resp := m.write(t, "sign/k8s", map[string]any{"csr": csr, "ttl": "", "uri_sans": web + ",", "remove_roots_from_chain": true})
	leaf := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 24*time.Hour+10*time.Minute {
		t.Fatalf("ttl \"\": valid %s, want the role's 24h", d)
	}
	if _, ok := resp.Data["ca_chain"]; ok {
		t.Fatalf("ca_chain present without any non-root issuer: %v", resp.Data["ca_chain"])
	}
	// A long list costs one lookup per name.
	long := strings.Repeat("x.example,", 50000)
	assertRefused(t, m.b, m.s, "sign/k8s", map[string]any{"csr": csr, "alt_names": long}, http.StatusBadRequest, "x.example")
}

func TestBundle_IfNoneMatchForms(t *testing.T) {
	for _, c := range []struct {
		header []string
		want   bool
	}{
		{[]string{`"abc"`}, true},
		{[]string{`"x", "abc"`}, true},
		{[]string{`W/"abc"`}, true},
		{[]string{`*`}, true},
		{[]string{`"abd"`}, false},
		{nil, false},
	} {
		if got := etagMatches(c.header, `"abc"`); got != c.want {
			t.Errorf("If-None-Match %q: %v, want %v", c.header, got, c.want)
		}
	}
}

// A pending entry whose key is not its CSR's (a corrupted or crafted
// entry) is never activated: 422, nothing written.
func TestTwoTier_PendingKeyMustBeTheCSRs(t *testing.T) {
	root, iss := newTestMount(t), newTestMount(t)
	root.write(t, "generate", map[string]any{"org_id": "acme"})
	iss.write(t, "config", map[string]any{"org_id": "acme"})
	csr := iss.write(t, "intermediate/generate-csr", nil).Data["csr"].(string)
	p, err := readPending(t.Context(), iss.s)
	if err != nil {
		t.Fatal(err)
	}
	p.KeyPKCS8 = mustPKCS8(t, testpki.PKCS8PEM(t, testpki.NewECKey(t, elliptic.P256())))
	if err := putEntry(t.Context(), iss.s, pendingStorageKey, "pending", p); err != nil {
		t.Fatal(err)
	}
	signed := root.write(t, "root/sign-intermediate", map[string]any{"csr": csr})
	assertRefused(t, iss.b, iss.s, "intermediate/set-signed", map[string]any{"certificate": signed.Data["certificate"], "ca_chain": root.read(t, "cert").Data["certificate"]}, http.StatusUnprocessableEntity, "not the key of its CSR")
}
