// Package acceptance runs the plugin inside a real Vault server.
//
// TestMain builds the plugin, starts `vault server -dev` from bin/vault (or
// $VAULT_BIN) on a free loopback port with a temporary plugin directory,
// registers the plugin by SHA-256 and version, and stops the server when the
// tests end. Each test enables the engine on its own random mount.
package acceptance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testvault"
)

const (
	pluginName    = testvault.PluginName
	pluginBinary  = testvault.PluginBinary
	pluginVersion = "v0.1.0-acceptance"
)

// server is the Vault dev server shared by the package's tests.
var server struct {
	addr      string // http://127.0.0.1:<port>
	token     string
	unsealKey string
	vaultBin  string
	root      *api.Client
	logPath   string
	cli       string // the mastio-ca operator CLI, built for the tests
	pluginDir string // holds the plugin binary, for other servers too
	pluginSHA string
}

// atExit holds the stop functions of servers started on first use (see
// postgresDSN); they run, last first, after the tests.
var atExit []func()

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("acceptance: skipped in -short mode (needs a Vault server)")
		os.Exit(0)
	}
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "acceptance:", err)
		if server.logPath != "" {
			if tail, _ := tailFile(server.logPath, 40); tail != "" {
				fmt.Fprintf(os.Stderr, "--- last lines of the Vault log (%s):\n%s\n", server.logPath, tail)
			}
		}
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	vs, err := testvault.Start(testvault.Options{PluginVersion: pluginVersion, Race: raceEnabled})
	if err != nil {
		return 0, err
	}
	defer vs.Stop()
	server.addr, server.token, server.unsealKey = vs.Addr, vs.Token, vs.UnsealKey
	server.vaultBin, server.root, server.logPath = vs.VaultBin, vs.Root, vs.LogPath
	server.pluginDir, server.pluginSHA = vs.PluginDir, vs.PluginSHA

	server.cli = filepath.Join(vs.Dir, "mastio-ca")
	buildCLI := exec.Command("go", "build", "-o", server.cli,
		"-ldflags", "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version="+strings.TrimPrefix(pluginVersion, "v"), "./cmd/mastio-ca")
	buildCLI.Dir = vs.RepoDir
	if out, err := buildCLI.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the CLI: %v\n%s", err, out)
	}
	defer func() {
		for i := len(atExit) - 1; i >= 0; i-- {
			atExit[i]()
		}
	}()
	return m.Run(), nil
}

// Helpers shared with the client's examples live in internal/testvault.
var (
	cleanEnv     = testvault.CleanEnv
	freePortPair = testvault.FreePortPair
	repoRoot     = testvault.RepoRoot
	fileSHA256   = testvault.FileSHA256
	tailFile     = testvault.TailFile
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newMount enables the engine on a random path and disables it when the
// test ends. It returns the mount path without a trailing slash.
func newMount(t *testing.T) string {
	t.Helper()
	mount := "mastio-" + randomHex(4)
	if err := server.root.Sys().MountWithContext(t.Context(), mount, &api.MountInput{Type: pluginName}); err != nil {
		t.Fatalf("enabling %s at %s: %v", pluginName, mount, err)
	}
	t.Cleanup(func() {
		if err := server.root.Sys().UnmountWithContext(context.Background(), mount); err != nil {
			t.Errorf("disabling %s: %v", mount, err)
		}
	})
	return mount
}

// vaultCLI runs the real vault CLI against the test server in dir.
func vaultCLI(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), server.vaultBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+server.addr, "VAULT_TOKEN="+server.token, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustVault runs the vault CLI and fails the test on a non-zero exit.
func mustVault(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := vaultCLI(t, dir, args...)
	if err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// mustOpenSSL runs openssl in dir and fails the test on a non-zero exit.
func mustOpenSSL(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// unauthenticatedGet fetches a path with no token at all.
func unauthenticatedGet(t *testing.T, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, server.addr+"/v1/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// clientWithToken returns an API client for the test server with token.
func clientWithToken(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := server.root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(token)
	return c
}

// newCA enables the engine on a random mount, generates an Org CA for org
// acme and, when asked, the Mastio Intermediate under it.
func newCA(t *testing.T, withIntermediate bool) (string, *client.Client, *client.CA, *client.Intermediate) {
	t.Helper()
	mount := newMount(t)
	c := client.New(server.root, mount)
	org, err := c.Generate(t.Context(), client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatalf("generating the Org CA: %v", err)
	}
	var inter *client.Intermediate
	if withIntermediate {
		if inter, err = c.GenerateIntermediate(t.Context(), client.IntermediateRequest{}); err != nil {
			t.Fatalf("generating the intermediate: %v", err)
		}
	}
	return mount, c, org, inter
}

// enableFileAudit turns on a file audit device writing to dir/audit.log for
// the rest of the test and returns the log's path.
func enableFileAudit(t *testing.T, dir string) string {
	t.Helper()
	path, _ := enableFileAuditDevice(t, dir)
	return path
}

// enableFileAuditDevice is enableFileAudit that also returns the device's
// path in sys/audit (for sys/audit-hash/<device>).
func enableFileAuditDevice(t *testing.T, dir string) (logPath, device string) {
	t.Helper()
	logPath = filepath.Join(dir, "audit.log")
	device = "file-" + randomHex(4)
	if err := server.root.Sys().EnableAuditWithOptionsWithContext(t.Context(), device, &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": logPath},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.root.Sys().DisableAuditWithContext(context.Background(), device) })
	return logPath, device
}
