package acceptance

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// policyFor loads a shipped policy file with the mount substituted.
func policyFor(t *testing.T, file, mount string) string {
	t.Helper()
	return strings.ReplaceAll(readFile(t, filepath.Join("..", "..", "policies", file)), `"mastio-ca/`, `"`+mount+`/`)
}

// tokenWith creates a token holding only the named shipped policy.
func tokenWith(t *testing.T, file, mount string) *api.Client {
	t.Helper()
	ctx := t.Context()
	name := mount + "-" + strings.TrimSuffix(file, ".hcl")
	if err := server.root.Sys().PutPolicyWithContext(ctx, name, policyFor(t, file, mount)); err != nil {
		t.Fatal(err)
	}
	tok, err := server.root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	return clientWithToken(t, tok.Auth.ClientToken)
}

// TestACL_SignerPolicy: with policies/mastio-signer.hcl a token signs and
// reads certificates, and every other path of the mount is a 403.
func TestACL_SignerPolicy(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	admin := tokenWith(t, "mastio-ca-admin.hcl", mount)
	ac := client.New(admin, mount)
	org, err := ac.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatalf("admin generate: %v", err)
	}
	// The admin policy also covers registering the plugin (catalog: sudo).
	if err := admin.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Command: pluginBinary, SHA256: server.pluginSHA, Version: pluginVersion,
	}); err != nil {
		t.Fatalf("admin registering the plugin: %v", err)
	}
	if _, err := admin.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: pluginName}); err != nil {
		t.Fatalf("admin reloading the plugin: %v", err)
	}
	if _, err := ac.GenerateIntermediate(ctx, client.IntermediateRequest{}); err != nil {
		t.Fatalf("admin intermediate: %v", err)
	}

	signer := tokenWith(t, "mastio-signer.hcl", mount)
	sc := client.New(signer, mount)
	dir := t.TempDir()
	csr := []byte(readFile(t, agentCSR(t, dir, "acl-agent")))
	mustOpenSSL(t, dir, "pkey", "-in", "acl-agent.key", "-pubout", "-out", "acl-agent.pub")
	if _, err := sc.SignCSR(ctx, csr, client.SignOptions{}); err != nil {
		t.Errorf("signer: sign-csr: %v", err)
	}
	if _, err := sc.SignCSR(ctx, csr, client.SignOptions{Role: "agent"}); err != nil {
		t.Errorf("signer: sign-csr/agent: %v", err)
	}
	if _, err := sc.SignPublicKey(ctx, []byte(readFile(t, filepath.Join(dir, "acl-agent.pub"))), client.PublicKeyOptions{Name: "acl-agent"}); err != nil {
		t.Errorf("signer: sign-public-key: %v", err)
	}
	if _, err := sc.CA(ctx); err != nil {
		t.Errorf("signer: cert: %v", err)
	}
	if _, err := sc.CAPEM(ctx); err != nil {
		t.Errorf("signer: cert/pem: %v", err)
	}

	assertDenied(t, signer, mount, "signer", append(adminOnlyCalls,
		deniedCall{"write", "intermediate/rotate", nil},
		deniedCall{"read", "health", nil},
	))
	// Nothing the signer tried changed the CA.
	ca, err := ac.CA(ctx)
	if err != nil || ca.Version != 1 || ca.FingerprintSHA256 != org.FingerprintSHA256 {
		t.Fatalf("CA after the denied calls: %+v, %v", ca, err)
	}
}

// deniedCall is one call a restricted policy must refuse.
type deniedCall struct {
	op, path string
	data     map[string]any
}

// adminOnlyCalls are the mount's calls that only the admin policy makes:
// CA creation, config, roles, the KV mirror and its export switch.
var adminOnlyCalls = []deniedCall{
	{"write", "generate", map[string]any{"org_id": "acme", "cas": 1}},
	{"write", "import", map[string]any{"key_pem": "x", "cert_pem": "y"}},
	{"read", "config", nil},
	{"write", "config", map[string]any{"trust_domain": "evil.example"}},
	{"read", "config/pkcs11", nil},
	{"write", "config/pkcs11", map[string]any{"module_path": "/tmp/evil.so", "token_label": "x", "pin": "1"}},
	{"delete", "config/pkcs11", nil},
	{"list", "roles", nil},
	{"read", "roles/agent", nil},
	{"write", "roles/agent", map[string]any{"allow_dns_sans": true}},
	{"delete", "roles/agent", nil},
	{"write", "intermediate/generate", map[string]any{"cas": 1}},
	{"write", "intermediate/import", map[string]any{"key_pem": "x", "cert_pem": "y"}},
	{"read", "data/org-ca", nil},
	{"write", "data/org-ca", map[string]any{"data": map[string]any{"key_pem": "x", "cert_pem": "y"}}},
	{"read", "data/intermediate-ca", nil},
	{"read", "metadata/org-ca", nil},
	{"read", "kv-export/org-ca", nil},
	{"write", "kv-export/org-ca", map[string]any{"kv_export": false}},
	{"read", "metadata/intermediate-ca", nil},
	{"read", "kv-export/intermediate-ca", nil},
	{"write", "kv-export/intermediate-ca", map[string]any{"kv_export": false}},
	{"write", "intermediate/generate-csr", map[string]any{"cas": 1}},
	{"read", "intermediate/pending", nil},
	{"delete", "intermediate/pending", nil},
	{"write", "intermediate/set-signed", map[string]any{"certificate": "x"}},
	{"read", "root/profile", nil},
	{"write", "root/profile", map[string]any{"max_path_length": 1}},
	{"write", "revoke", map[string]any{"serial_number": "01", "issuer": "org-ca", "not_after": "2030-01-01T00:00:00Z"}},
	{"write", "tidy", nil},
}

// assertDenied makes each call with token and wants a 403. Vault answers
// 403 to a restricted token for any path, even one that does not exist:
// each denied path is first proved real by its help, which names a
// matching route only for a path the plugin serves.
func assertDenied(t *testing.T, token *api.Client, mount, policy string, denied []deniedCall) {
	t.Helper()
	ctx := t.Context()
	isPath := func(p string) bool {
		s, err := server.root.Logical().ReadWithDataWithContext(ctx, p, map[string][]string{"help": {"1"}})
		if err != nil || s == nil {
			return false
		}
		help, _ := s.Data["help"].(string)
		return strings.Contains(help, "Matching Route")
	}
	if isPath(mount + "/intermediate/rotat") {
		t.Fatal("the path probe accepts a typo: it proves nothing")
	}
	for _, d := range denied {
		t.Run(d.op+" "+d.path, func(t *testing.T) {
			var err error
			p := mount + "/" + d.path
			if !isPath(p) {
				t.Fatalf("%s is not a path of the mount", d.path)
			}
			switch d.op {
			case "read":
				_, err = token.Logical().ReadWithContext(ctx, p)
			case "list":
				_, err = token.Logical().ListWithContext(ctx, p)
			case "write":
				_, err = token.Logical().WriteWithContext(ctx, p, d.data)
			case "delete":
				_, err = token.Logical().DeleteWithContext(ctx, p)
			}
			var re *api.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 403 {
				t.Fatalf("%s %s with the %s policy: %v, want 403", d.op, d.path, policy, err)
			}
		})
	}
}

// TestACL_RotatorPolicy: with policies/mastio-rotator.hcl a job rotates the
// intermediate (with its continuity proof) and reads the days left, and
// every other path of the mount is a 403, signing included.
func TestACL_RotatorPolicy(t *testing.T) {
	ctx := t.Context()
	mount, _, org, inter := newCA(t, true)
	rotator := tokenWith(t, "mastio-rotator.hcl", mount)
	rc := client.New(rotator, mount)

	next, err := rc.RotateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		t.Fatalf("rotator: intermediate/rotate: %v", err)
	}
	if err := client.VerifyContinuity(inter.Certificate, next.Certificate, next.ContinuityProof); err != nil {
		t.Fatalf("rotator: continuity proof: %v", err)
	}
	if err := next.Certificate.CheckSignatureFrom(org.Certificate); err != nil {
		t.Fatalf("rotator: the new intermediate is not issued by the Org CA: %v", err)
	}
	h, err := rotator.Logical().ReadWithContext(ctx, mount+"/health")
	if err != nil || h == nil || h.Data["intermediate-ca_days_left"] == nil {
		t.Fatalf("rotator: health: %v, %v", h, err)
	}

	dir := t.TempDir()
	csr := []byte(readFile(t, agentCSR(t, dir, "rotator-agent")))
	if _, err := rc.SignCSR(ctx, csr, client.SignOptions{}); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("rotator: sign-csr: %v, want permission denied", err)
	}
	// The policy lets it send cas and nothing else: no early end to the
	// old intermediate's grace, no lifetime or key of its choosing, no move
	// of the key out of (or into) the HSM.
	for _, data := range []map[string]any{{"grace_period": "0s"}, {"drop_earlier": true}, {"ttl": "87600h"}, {"key_type": "rsa"}, {"key_backend": "vault"}} {
		_, err := rotator.Logical().WriteWithContext(ctx, mount+"/intermediate/rotate", data)
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != 403 {
			t.Errorf("rotator: intermediate/rotate with %v: %v, want 403", data, err)
		}
	}
	stale := inter.Version
	if _, err := rc.RotateIntermediate(ctx, client.IntermediateRequest{CAS: &stale}); !errors.Is(err, client.ErrExists) {
		t.Errorf("rotator: intermediate/rotate with a stale cas: %v, want a check-and-set conflict", err)
	}
	third, err := rc.RotateIntermediate(ctx, client.IntermediateRequest{CAS: &next.Version})
	if err != nil {
		t.Fatalf("rotator: intermediate/rotate with cas: %v", err)
	}
	// Two rotations in a row: the first intermediate is still published,
	// its grace untouched (issue 12, defect 5; the policy's comment).
	if !slices.ContainsFunc(third.Bundle, inter.Certificate.Equal) || !slices.ContainsFunc(third.Bundle, next.Certificate.Equal) || len(third.Bundle) != 3 {
		t.Errorf("rotator: after two rotations the bundle holds %d certificates; want the current one and both earlier ones in their grace", len(third.Bundle))
	}
	assertDenied(t, rotator, mount, "rotator", append(adminOnlyCalls,
		deniedCall{"write", "sign-csr", map[string]any{"csr": string(csr)}},
		deniedCall{"write", "sign-csr/agent", map[string]any{"csr": string(csr)}},
		deniedCall{"write", "sign-public-key", map[string]any{"public_key": "x", "name": "a"}},
	))
}
