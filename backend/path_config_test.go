package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestConfig_DefaultsAndUpdate(t *testing.T) {
	b, s := getTestBackend(t)
	resp := mustOK(t, request(t, b, s, logical.ReadOperation, "config", nil))
	want := map[string]any{"org_id": "", "trust_domain": "cullis.local", "default_role": "agent", "leaf_not_after": "truncate"}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("default %s = %v, want %v", k, resp.Data[k], v)
		}
	}

	// generate fills in org_id when config has none.
	generateCA(t, b, s)
	if got := mustOK(t, request(t, b, s, logical.ReadOperation, "config", nil)).Data["org_id"]; got != "acme" {
		t.Errorf("org_id after generate = %v, want acme", got)
	}

	resp = mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"trust_domain": "acme.example", "default_role": "principal"}))
	if resp.Data["trust_domain"] != "acme.example" || resp.Data["default_role"] != "principal" || resp.Data["leaf_not_after"] != "truncate" {
		t.Fatalf("after update: %v", resp.Data)
	}
	// The new trust domain and default role govern sign-csr.
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{
		"csr": testpki.MakeCSR(t, testpki.CSR{URIs: []string{"spiffe://acme.example/acme/user/bob"}}),
	}))
}

func TestConfig_BadInput(t *testing.T) {
	runBadInputs(t, false, []badInput{
		{name: "trust domain with scheme", path: "config", data: map[string]any{"trust_domain": "spiffe://x"}, want: "not a valid SPIFFE trust domain"},
		{name: "trust domain uppercase", path: "config", data: map[string]any{"trust_domain": "Acme.Example"}, want: "not a valid SPIFFE trust domain"},
		{name: "bad leaf_not_after", path: "config", data: map[string]any{"leaf_not_after": "clip"}, want: `leaf_not_after "clip" is not valid`},
		{name: "missing default_role", path: "config", data: map[string]any{"default_role": "ghost"}, want: `default_role "ghost" does not exist`},
		{name: "bad org_id", path: "config", data: map[string]any{"org_id": ".."}, want: `org_id ".." is not valid`},
		{name: "unknown field", path: "config", data: map[string]any{"trustdomain": "x"}, want: "unknown field(s) trustdomain"},
	})
	runBadInputs(t, true, []badInput{
		{name: "org_id other than the CA's", path: "config", data: map[string]any{"org_id": "other"}, want: `the Org CA was made for "acme"`},
	})
}
