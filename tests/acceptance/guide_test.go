package acceptance

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// runnableBlock matches the fenced blocks of a doc marked `sh runnable`.
var runnableBlock = regexp.MustCompile("(?s)```sh runnable\n(.*?)\n```")

// TestOperatorGuide runs every `sh runnable` block of
// docs/operator-guide.md, in order, as one script against a fresh Vault
// server, so that the guide cannot drift from the product.
func TestOperatorGuide(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	guide := readFile(t, filepath.Join(root, "docs", "operator-guide.md"))
	blocks := runnableBlock.FindAllStringSubmatch(guide, -1)
	if len(blocks) < 6 {
		t.Fatalf("the guide has %d runnable blocks", len(blocks))
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(b[1] + "\n")
	}

	n := newVaultNode(t, "guide", nil)
	n.initialize()
	work := t.TempDir()
	if err := os.CopyFS(filepath.Join(work, "policies"), os.DirFS(filepath.Join(root, "policies"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = append(cleanEnv(),
		"PATH="+filepath.Dir(server.cli)+":"+filepath.Dir(server.vaultBin)+":"+os.Getenv("PATH"), // the CLI built for the tests, never a stale bin/mastio-ca
		"VAULT_ADDR="+n.addr, "VAULT_TOKEN="+n.token, "HOME="+work,
		"PLUGIN_SHA256="+server.pluginSHA, "PLUGIN_VERSION="+pluginVersion)
	out, err := cmd.CombinedOutput()
	t.Logf("docs/operator-guide.md, %d runnable blocks:\n%s", len(blocks), out)
	if err != nil {
		t.Fatalf("a runnable command of the guide failed: %v", err)
	}
	if !strings.Contains(string(out), "agent.pem: OK") || !strings.Contains(string(out), "Summary:") {
		t.Fatal("the guide's run lacks the chain verification or the audit report")
	}
}
