// Package acceptance runs the plugin inside a real Vault server.
//
// TestMain builds the plugin, starts `vault server -dev` from bin/vault (or
// $VAULT_BIN) on a free loopback port with a temporary plugin directory,
// registers the plugin by SHA-256 and version, and stops the server when the
// tests end. Each test enables the engine on its own random mount.
package acceptance

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

const (
	pluginName    = "mastio-ca"
	pluginBinary  = "vault-plugin-mastio-ca"
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
	root, err := repoRoot()
	if err != nil {
		return 0, err
	}
	server.vaultBin = os.Getenv("VAULT_BIN")
	if server.vaultBin == "" {
		server.vaultBin = filepath.Join(root, "bin", "vault")
	}
	if _, err := os.Stat(server.vaultBin); err != nil {
		return 0, fmt.Errorf("no Vault server binary at %s: run `make bin/vault` (or set VAULT_BIN)", server.vaultBin)
	}

	tmp, err := os.MkdirTemp("", "mastio-ca-acceptance-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	pluginDir := filepath.Join(tmp, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		return 0, err
	}

	// Build the plugin with the version it will be registered under.
	// Under `go test -race` the plugin is built with -race too, so that the
	// race detector watches the process that serves the concurrent load.
	args := []string{"build", "-o", filepath.Join(pluginDir, pluginBinary),
		"-ldflags", "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version=" + strings.TrimPrefix(pluginVersion, "v")}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "./cmd/vault-plugin-mastio-ca")...)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the plugin: %v\n%s", err, out)
	}
	server.cli = filepath.Join(tmp, "mastio-ca")
	buildCLI := exec.Command("go", "build", "-o", server.cli,
		"-ldflags", "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version="+strings.TrimPrefix(pluginVersion, "v"), "./cmd/mastio-ca")
	buildCLI.Dir = root
	if out, err := buildCLI.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building the CLI: %v\n%s", err, out)
	}
	sum, err := fileSHA256(filepath.Join(pluginDir, pluginBinary))
	if err != nil {
		return 0, err
	}
	server.pluginDir, server.pluginSHA = pluginDir, sum

	stop, err := startVault(tmp, pluginDir)
	if err != nil {
		return 0, err
	}
	defer stop()

	if err := server.root.Sys().RegisterPluginWithContext(context.Background(), &api.RegisterPluginInput{
		Name:    pluginName,
		Type:    api.PluginTypeSecrets,
		Command: pluginBinary,
		SHA256:  sum,
		Version: pluginVersion,
	}); err != nil {
		return 0, fmt.Errorf("registering the plugin: %w", err)
	}
	defer func() {
		for i := len(atExit) - 1; i >= 0; i-- {
			atExit[i]()
		}
	}()
	return m.Run(), nil
}

// startVault starts a dev server on a free loopback port and waits until it
// answers. The returned func stops it; the child also dies with this process.
func startVault(tmp, pluginDir string) (func(), error) {
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	server.addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	server.token = "root-" + randomHex(8)
	cfg := filepath.Join(tmp, "vault.hcl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("plugin_directory = %q\ndisable_mlock = true\nraw_storage_endpoint = true\n", pluginDir)), 0o600); err != nil {
		return nil, err
	}
	server.logPath = filepath.Join(tmp, "vault.log")
	logFile, err := os.Create(server.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(server.vaultBin, "server", "-dev",
		"-dev-root-token-id="+server.token,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port),
		"-dev-no-store-token",
		"-config="+cfg,
		"-log-level=debug")
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(cleanEnv(), "HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting vault: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	}

	conf := api.DefaultConfig()
	conf.Address = server.addr
	client, err := api.NewClient(conf)
	if err != nil {
		stop()
		return nil, err
	}
	client.SetToken(server.token)
	server.root = client

	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			return nil, errors.New("vault exited during start-up")
		default:
		}
		if h, err := client.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("vault did not become healthy within 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	server.unsealKey, err = readUnsealKey(server.logPath)
	if err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// readUnsealKey finds the dev server's printed unseal key, for seal tests.
func readUnsealKey(logPath string) (string, error) {
	re := regexp.MustCompile(`Unseal Key: (\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(logPath)
		if err != nil {
			return "", err
		}
		if m := re.FindSubmatch(b); m != nil {
			return string(m[1]), nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", errors.New("dev server printed no unseal key")
}

// cleanEnv is the environment without VAULT_* settings of the developer.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

// freePortPair finds a loopback port p with p+1 also free: the dev server
// listens for cluster traffic on the port after the API port.
func freePortPair() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free pair of loopback ports")
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", pluginBinary)); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found above the working directory")
		}
		dir = parent
	}
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tailFile(path string, n int) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n"), sc.Err()
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
	path := filepath.Join(dir, "audit.log")
	device := "file-" + randomHex(4)
	if err := server.root.Sys().EnableAuditWithOptionsWithContext(t.Context(), device, &api.EnableAuditOptions{
		Type: "file", Options: map[string]string{"file_path": path},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.root.Sys().DisableAuditWithContext(context.Background(), device) })
	return path
}
