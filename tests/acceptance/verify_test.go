package acceptance

import (
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// verifyCLI runs `mastio-ca verify` against the Vault at addr with token
// and returns its exit code and output.
func verifyCLI(t *testing.T, addr, token string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), server.cli, append([]string{"verify"}, args...)...)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+addr, "VAULT_TOKEN="+token)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("mastio-ca verify: %v", err)
		return 0, ""
	}
}

// `mastio-ca verify` on a real mount through its life: empty (critical),
// Org CA only, with the intermediate, after a rotation, a warning window
// wider than the CAs' lives, the shipped admin policy (enough), the
// monitor policy (enough without test signings) and the signer policy
// (not enough: could not check). The
// temporary roles it creates are gone afterwards.
func TestVerifyCommand(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	expect := func(code int, args []string, wants ...string) string {
		t.Helper()
		got, out := verifyCLI(t, server.addr, server.token, append([]string{"--mount", mount}, args...)...)
		if got != code {
			t.Fatalf("verify %v: exit %d, want %d\n%s", args, got, code, out)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Fatalf("verify %v: output lacks %q:\n%s", args, w, out)
			}
		}
		return out
	}

	expect(2, nil, "FAIL  Org CA: none", "Result: CRITICAL")

	c := client.New(server.root, mount)
	org, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	out := expect(0, nil, "OK    Org CA: CN=acme CA,O=acme, EC P-256, self-signed, sha256 "+org.FingerprintSHA256,
		"OK    Org CA: proof of possession", "OK    Chain: the test certificate verifies as leaf → Org CA", "Result: OK")
	t.Logf("mastio-ca verify (Org CA only):\n%s", out)

	inter, err := c.GenerateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	expect(0, nil, "issued by the Org CA, path length 0, sha256 "+inter.FingerprintSHA256,
		"OK    Mastio Intermediate CA: proof of possession",
		"OK    Chain: the test certificate verifies as leaf → Mastio Intermediate CA → Org CA")

	next, err := c.RotateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	out = expect(0, nil, "issued by the Org CA, path length 0, sha256 "+next.FingerprintSHA256+"\n",
		"OK    Rotated-out intermediate (sha256 "+inter.FingerprintSHA256+"): issued by the Org CA, still accepted until")
	if strings.Contains(out, "path length 0, sha256 "+inter.FingerprintSHA256+"\n") {
		t.Fatalf("verify still reports the rotated-out intermediate as the active one:\n%s", out)
	}

	out = expect(1, []string{"--warn-days", "100000"}, "WARN  Org CA: expires in", "WARN  Mastio Intermediate CA: expires in",
		"vault write -f "+mount+"/intermediate/rotate", "Result: WARNING (2 warnings)")
	t.Logf("mastio-ca verify --warn-days 100000:\n%s", out)

	admin := tokenWith(t, "mastio-ca-admin.hcl", mount)
	if code, out := verifyCLI(t, server.addr, admin.Token(), "--mount", mount); code != 0 {
		t.Fatalf("verify with the admin policy: exit %d, want 0\n%s", code, out)
	}
	monitor := tokenWith(t, "mastio-ca-monitor.hcl", mount)
	code, out := verifyCLI(t, server.addr, monitor.Token(), "--mount", mount, "--prove=false")
	if code != 0 || !strings.Contains(out, "SKIP  proof of possession") || !strings.Contains(out, "OK    Mastio Intermediate CA: valid until") {
		t.Fatalf("verify --prove=false with the monitor policy: exit %d, want 0 and the certificate checks\n%s", code, out)
	}
	csr := readFile(t, agentCSR(t, t.TempDir(), "monitor-agent"))
	assertDenied(t, monitor, mount, "monitor", append(adminOnlyCalls,
		deniedCall{"write", "intermediate/rotate", nil},
		deniedCall{"write", "sign-csr", map[string]any{"csr": csr}},
		deniedCall{"write", "sign-csr/agent", map[string]any{"csr": csr}},
		deniedCall{"write", "sign-public-key", map[string]any{"public_key": "x", "name": "a"}},
	))
	if code, out := verifyCLI(t, server.addr, monitor.Token(), "--mount", mount); code != 3 {
		t.Fatalf("verify (with test signings) with the monitor policy: exit %d, want 3\n%s", code, out)
	}
	signer := tokenWith(t, "mastio-signer.hcl", mount)
	if code, out := verifyCLI(t, server.addr, signer.Token(), "--mount", mount); code != 3 || !strings.Contains(out, "could not check "+mount+"/") {
		t.Fatalf("verify with the signer policy: exit %d, want 3\n%s", code, out)
	}

	roles, err := c.ListRoles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"agent", "principal"}) {
		t.Fatalf("roles after verify: %v, want only the defaults", roles)
	}
}
