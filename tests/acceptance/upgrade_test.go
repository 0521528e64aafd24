package acceptance

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestUpgradeInPlace registers the plugin's next version beside the
// running one, tunes the mount to it and reloads: the mount runs the new
// version, the CA is unchanged and signing works.
func TestUpgradeInPlace(t *testing.T) {
	ctx := t.Context()
	n := newVaultNode(t, "upgrade", nil)
	n.initialize()
	n.enablePlugin()
	c := client.New(n.client, "mastio-ca")
	ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "upgrade")))
	if _, err := c.SignCSR(ctx, csr, client.SignOptions{}); err != nil {
		t.Fatal(err)
	}

	// vX+1: the same code, another version stamped in.
	const next = "v0.1.1-acceptance"
	binary := pluginBinary + "-next"
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(server.pluginDir, binary),
		"-ldflags", "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version="+strings.TrimPrefix(next, "v"), "./cmd/vault-plugin-mastio-ca")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", next, err, out)
	}
	sum, err := fileSHA256(filepath.Join(server.pluginDir, binary))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.client.Sys().RegisterPluginWithContext(ctx, &api.RegisterPluginInput{
		Name: pluginName, Type: api.PluginTypeSecrets, Command: binary, SHA256: sum, Version: next,
	}); err != nil {
		t.Fatal(err)
	}
	if err := n.client.Sys().TuneMountAllowNilWithContext(ctx, "mastio-ca", api.TuneMountConfigInput{PluginVersion: new(next)}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Mounts: []string{"mastio-ca"}}); err != nil {
		t.Fatal(err)
	}

	n.waitFor("the mount to run "+next, 30*time.Second, func() bool {
		mounts, err := n.client.Sys().ListMountsWithContext(ctx)
		return err == nil && mounts["mastio-ca/"].RunningVersion == next
	})
	cli := exec.CommandContext(ctx, server.vaultBin, "secrets", "list", "-detailed")
	cli.Env = append(cleanEnv(), "VAULT_ADDR="+n.addr, "VAULT_TOKEN="+n.token, "HOME="+n.dir)
	out, err := cli.CombinedOutput()
	if err != nil || !strings.Contains(string(out), next) {
		t.Fatalf("vault secrets list -detailed does not show %s: %v\n%s", next, err, out)
	}
	after, err := c.CA(ctx)
	if err != nil || after.FingerprintSHA256 != ca.FingerprintSHA256 {
		t.Fatalf("after the upgrade the CA changed: %v", err)
	}
	signed, err := c.SignCSR(ctx, csr, client.SignOptions{})
	if err != nil || !signed.IssuingCA.Equal(ca.Certificate) {
		t.Fatalf("signing after the upgrade: %v", err)
	}
	health, err := n.client.Logical().ReadWithContext(ctx, "mastio-ca/health")
	if err != nil || health.Data["version"] != next {
		t.Fatalf("health after the upgrade reports %v: %v", health.Data["version"], err)
	}
}

// TestVersion_CLIMatchesPlugin: built from one tree with one stamp, the
// CLI's version and the plugin's RunningVersion agree.
func TestVersion_CLIMatchesPlugin(t *testing.T) {
	mount := newMount(t)
	out, err := exec.CommandContext(t.Context(), server.cli, "version").CombinedOutput()
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := server.root.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	running := mounts[mount+"/"].RunningVersion
	if running != pluginVersion || !strings.Contains(string(out), "mastio-ca "+running+" ") {
		t.Fatalf("mastio-ca version says %q; the mount runs %q", out, running)
	}
}
