package acceptance

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// `mastio-ca bench`, shortened, against the shared Vault: every scenario
// signs without an error, the table lands between the markers of the
// --out file (the rest of the file kept), and the bench's mounts are gone
// afterwards. The numbers themselves are make bench's business.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a real Vault")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "BENCH.md")
	before, after := "# Numbers\n\nIntro kept.\n\n", "\n\nOutro kept.\n"
	stale := "<!-- mastio-ca bench: start -->\nold table\n<!-- mastio-ca bench: end -->"
	if err := os.WriteFile(out, []byte(before+stale+after), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), server.cli, "bench", "--plugin", pluginName,
		"--duration", "900ms", "--concurrency", "2,8", "--rsa=false", "--out", out)
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+server.addr, "VAULT_TOKEN="+server.token)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("mastio-ca bench: %v\n%s", err, stdout)
	}
	t.Logf("mastio-ca bench:\n%s", stdout)

	// | EC P-256 | 8 | A mastio-ca sign-csr | 1459 | 4.96 ms | 9.80 ms | 14 ms | 0 |
	rowRE := regexp.MustCompile(`(?m)^\| EC P-256 \| (\d+) \| ([^|]+) \| (\d+) \|[^|]+\|[^|]+\|[^|]+\| (\d+) \|$`)
	rows := map[string]bool{}
	for _, m := range rowRE.FindAllStringSubmatch(string(stdout), -1) {
		name := m[1] + " " + strings.TrimSpace(m[2])
		rows[name] = true
		if n, _ := strconv.Atoi(m[3]); n <= 0 {
			t.Errorf("%s: %s certificates/s", name, m[3])
		}
		if m[4] != "0" {
			t.Errorf("%s: %s errors", name, m[4])
		}
	}
	for _, want := range []string{
		"2 A mastio-ca sign-csr", "2 B builtin PKI sign", "2 C in-process floor",
		"8 A mastio-ca sign-csr", "8 B builtin PKI sign", "8 C in-process floor",
		"8 A sign-csr, batches of 10 (latency per batch)", "8 A sign-csr, batches of 100 (latency per batch)",
	} {
		if !rows[want] {
			t.Errorf("no row %q in the table", want)
		}
	}
	for _, want := range []string{"concurrency 8: A/B = ", "batch of 100 at concurrency 8: "} {
		if !strings.Contains(string(stdout), want) {
			t.Errorf("no ratio line %q", want)
		}
	}

	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(md); !strings.HasPrefix(s, before) || !strings.HasSuffix(s, after) ||
		strings.Contains(s, "old table") || !strings.Contains(s, strings.TrimSpace(string(stdout))) {
		t.Errorf("--out did not replace just the marked section:\n%s", s)
	}

	mounts, err := server.root.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for path := range mounts {
		if strings.HasPrefix(path, "bench-") {
			t.Errorf("bench left its mount %s behind", path)
		}
	}
}
