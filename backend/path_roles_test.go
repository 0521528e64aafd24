package backend

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestRoles_DefaultsReadable(t *testing.T) {
	b, s := getTestBackend(t)
	agent := mustOK(t, request(t, b, s, logical.ReadOperation, "roles/agent", nil))
	if agent.Data["uri_san_pattern"] != "spiffe://{{trust_domain}}/{{org_id}}/*" || agent.Data["uri_san_count"] != 1 ||
		agent.Data["subject_common_name"] != "{{org_id}}::{{name}}" || agent.Data["ttl"] != int64(365*24*3600) ||
		agent.Data["allow_dns_sans"] != false {
		t.Fatalf("agent role = %v", agent.Data)
	}
	principal := mustOK(t, request(t, b, s, logical.ReadOperation, "roles/principal", nil))
	if principal.Data["subject_common_name"] != "" || principal.Data["ttl"] != int64(3600) || principal.Data["not_before_skew"] != int64(300) {
		t.Fatalf("principal role = %v", principal.Data)
	}
	if resp := request(t, b, s, logical.ReadOperation, "roles/ghost", nil); resp != nil {
		t.Fatalf("missing role = %v, want 404", resp)
	}
}

func TestRoles_CreateUpdateDelete(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)

	// vault write sends create when the existence check says "absent".
	req := &logical.Request{Operation: logical.CreateOperation, Path: "roles/workload", Storage: s}
	if _, exists, err := b.HandleExistenceCheck(t.Context(), req); err != nil || exists {
		t.Fatalf("existence of a new role: exists=%v err=%v", exists, err)
	}
	mustOK(t, request(t, b, s, logical.CreateOperation, "roles/workload", map[string]any{
		"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/workload/*",
		"ttl":             "24h", "max_ttl": "72h",
	}))
	req.Operation = logical.UpdateOperation
	if _, exists, err := b.HandleExistenceCheck(t.Context(), req); err != nil || !exists {
		t.Fatalf("existence after create: exists=%v err=%v", exists, err)
	}

	// An update changes only what it names.
	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/workload", map[string]any{"allowed_key_types": "ec,ed25519"}))
	if !reflect.DeepEqual(resp.Data["allowed_key_types"], []string{"ec", "ed25519"}) || resp.Data["max_ttl"] != int64(72*3600) || resp.Data["uri_san_pattern"] != "spiffe://{{trust_domain}}/{{org_id}}/workload/*" {
		t.Fatalf("after partial update: %v", resp.Data)
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr/workload", map[string]any{
		"csr": testpki.MakeCSR(t, testpki.CSR{Key: testpki.NewEd25519Key(t), URIs: []string{"spiffe://cullis.local/acme/workload/batch"}}), "ttl": "48h",
	}))

	list := mustOK(t, request(t, b, s, logical.ListOperation, "roles/", nil))
	if !reflect.DeepEqual(list.Data["keys"], []string{"agent", "principal", "workload"}) {
		t.Fatalf("roles = %v", list.Data["keys"])
	}
	request(t, b, s, logical.DeleteOperation, "roles/workload", nil)
	if resp := request(t, b, s, logical.ReadOperation, "roles/workload", nil); resp != nil {
		t.Fatalf("deleted role still reads: %v", resp)
	}
}

func TestRoles_BadInput(t *testing.T) {
	pattern := "spiffe://{{trust_domain}}/{{org_id}}/*"
	runBadInputs(t, false, []badInput{
		{name: "missing pattern", path: "roles/w", data: map[string]any{}, want: "uri_san_pattern is required"},
		{name: "http pattern", path: "roles/w", data: map[string]any{"uri_san_pattern": "https://x/y"}, want: "must start with spiffe://"},
		{name: "bad trust domain in pattern", path: "roles/w", data: map[string]any{"uri_san_pattern": "spiffe://UPPER/x"}, want: "trust domain is not valid"},
		{name: "pattern without path", path: "roles/w", data: map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}"}, want: "at least one path segment"},
		{name: "bad segment", path: "roles/w", data: map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/a b"}, want: "is not valid"},
		{name: "unknown placeholder", path: "roles/w", data: map[string]any{"uri_san_pattern": "spiffe://{{td}}/x"}, want: "unknown placeholder {{td}}"},
		{name: "name without star", path: "roles/w", data: map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/x", "subject_common_name": "{{name}}"}, want: "needs a * segment"},
		{name: "ttl above max_ttl", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "ttl": "2h", "max_ttl": "1h"}, want: "must not exceed max_ttl"},
		{name: "keyCertSign usage", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "key_usage": "CertSign"}, want: "not allowed for leaf certificates"},
		{name: "unknown EKU", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "ext_key_usage": "Any"}, want: "unknown usage"},
		{name: "unknown key type", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "allowed_key_types": "dsa"}, want: `unknown key type "dsa"`},
		{name: "weak rsa minimum", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "rsa_min_bits": 1024}, want: "rsa_min_bits (1024)"},
		{name: "unknown curve", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "allowed_ec_curves": "P-224"}, want: `unknown curve "P-224"`},
		{name: "names nobody", path: "roles/w", data: map[string]any{"uri_san_count": 0}, want: "name nobody"},
		{name: "bad issuer", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "issuer": "root"}, want: `issuer "root" is not valid`},
		{name: "unknown field", path: "roles/w", data: map[string]any{"uri_san_pattern": pattern, "alow_dns_sans": true}, want: "unknown field(s) alow_dns_sans"},
		{name: "update agent to bad skew", path: "roles/agent", data: map[string]any{"not_before_skew": "2h"}, want: "not_before_skew"},
	})
}

// Issue 12, defect 4: no common name over 64 characters, at role write when the
// template alone is too long, and at signing when a name makes it so.
func TestRoles_CommonNameBounded(t *testing.T) {
	b, s := getTestBackend(t)
	generateCA(t, b, s)
	assertRefused(t, b, s, "roles/long", map[string]any{"uri_san_pattern": "spiffe://{{trust_domain}}/{{org_id}}/*", "subject_common_name": strings.Repeat("x", 65) + "{{name}}"}, http.StatusBadRequest, "X.509 allows at most 64")
	name := strings.Repeat("a", 60) // "acme::" + 60 = 66 characters
	assertRefused(t, b, s, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, name)}, http.StatusBadRequest, "common name", "66 characters")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, name[:58])}))
}

// Issue 12, defect 7: a role may not leave the org unless it says so, and DNS, IP
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

	// A role stored with allow_dns_sans and no list issues no DNS name.
	old := newTestRole(t, "spiffe://{{trust_domain}}/{{org_id}}/*")
	old.AllowDNSSANs = true
	if err := b.writeRole(t.Context(), s, "old", old); err != nil {
		t.Fatal(err)
	}
	assertRefused(t, b, s, "sign-csr/old", map[string]any{"csr": testpki.MakeCSR(t, testpki.CSR{URIs: uri, DNS: []string{"www.google.com"}})}, http.StatusUnprocessableEntity, "names none in allowed_dns_sans")
}
