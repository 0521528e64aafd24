package acceptance

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testvault"
)

// runnableBlock matches the fenced blocks of a doc marked `sh runnable`.
var runnableBlock = regexp.MustCompile("(?s)```sh runnable\n(.*?)\n```")

// runnableScript joins the `sh runnable` blocks of the doc at path, in
// order, into one bash script that stops at the first failure; the doc
// must have at least atLeast of them.
func runnableScript(t *testing.T, path string, atLeast int) (string, int) {
	t.Helper()
	blocks := runnableBlock.FindAllStringSubmatch(readFile(t, path), -1)
	if len(blocks) < atLeast {
		t.Fatalf("%s has %d runnable blocks, fewer than %d", path, len(blocks), atLeast)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1] + "\n")
	}
	return script.String(), len(blocks)
}

// TestOperatorGuide runs every `sh runnable` block of
// docs/operator-guide.md, in order, as one script against a fresh Vault
// server, so that the guide cannot drift from the product.
func TestOperatorGuide(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, blocks := runnableScript(t, filepath.Join(root, "docs", "operator-guide.md"), 6)

	n := newVaultNode(t, "guide", nil)
	n.initialize()
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "policies"), os.DirFS(filepath.Join(root, "policies"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(cleanEnv(),
		"PATH="+filepath.Dir(server.cli)+":"+filepath.Dir(server.vaultBin)+":"+os.Getenv("PATH"), // the CLI built for the tests, never a stale bin/mastio-ca
		"VAULT_ADDR="+n.addr, "VAULT_TOKEN="+n.token, "HOME="+work,
		"PLUGIN_SHA256="+server.pluginSHA, "PLUGIN_VERSION="+pluginVersion)
	out, err := cmd.CombinedOutput()
	t.Logf("docs/operator-guide.md, %d runnable blocks:\n%s", blocks, out)
	if err != nil {
		t.Fatalf("a runnable command of the guide failed: %v", err)
	}
	if !strings.Contains(string(out), "agent.pem: OK") || !strings.Contains(string(out), "Summary:") {
		t.Fatal("the guide's run lacks the chain verification or the audit report")
	}
}

// TestSPIFFEGuide runs the `sh runnable` blocks of docs/spiffe.md, in
// order, as one script against two fresh dev Vaults: a root and an
// issuing one.
func TestSPIFFEGuide(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script, blocks := runnableScript(t, filepath.Join(root, "docs", "spiffe.md"), 7)
	vaults := map[string]*testvault.Server{}
	for _, name := range []string{"ROOT", "ISSUING"} {
		vs, err := testvault.Start(testvault.Options{PluginVersion: pluginVersion, Race: raceEnabled})
		if err != nil {
			t.Fatalf("starting the %s Vault: %v", name, err)
		}
		t.Cleanup(vs.Stop)
		vaults[name] = vs
	}
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "policies"), os.DirFS(filepath.Join(root, "policies"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(cleanEnv(),
		"PATH="+filepath.Dir(server.cli)+":"+filepath.Dir(server.vaultBin)+":"+os.Getenv("PATH"),
		"HOME="+work,
		"ROOT_VAULT_ADDR="+vaults["ROOT"].Addr, "ROOT_VAULT_TOKEN="+vaults["ROOT"].Token,
		"ISSUING_VAULT_ADDR="+vaults["ISSUING"].Addr, "ISSUING_VAULT_TOKEN="+vaults["ISSUING"].Token)
	out, err := cmd.CombinedOutput()
	t.Logf("docs/spiffe.md, %d runnable blocks:\n%s", blocks, out)
	if err != nil {
		t.Fatalf("a runnable command of docs/spiffe.md failed: %v", err)
	}
	for _, want := range []string{"agent.pem: OK", "anchor", "ETag: \""} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the run of docs/spiffe.md lacks %q", want)
		}
	}
}
