// Package testvault starts a real Vault dev server with the mastio-ca
// plugin built from this tree and registered by SHA-256 and version, for
// the acceptance tests and the client's runnable examples. It binds only
// loopback ports and the server dies with the test process.
package testvault

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"
)

// Names under which the plugin is built and registered.
const (
	PluginName   = "mastio-ca"
	PluginBinary = "vault-plugin-mastio-ca"
	// PluginBinaryPKCS11 is the PKCS#11 build's name (make plugin-pkcs11).
	PluginBinaryPKCS11 = "vault-plugin-mastio-ca-pkcs11"
)

// Options say how to build the plugin.
type Options struct {
	// PluginVersion is stamped into the binary and registered ("v1.2.3").
	PluginVersion string
	// Race builds the plugin with -race.
	Race bool
	// PKCS11 builds the PKCS#11 plugin instead of the static one: cgo
	// (CGO_ENABLED=1) and -tags pkcs11, as make plugin-pkcs11 does.
	PKCS11 bool
}

// Server is a running dev server with the plugin registered.
type Server struct {
	Addr      string // http://127.0.0.1:<port>
	Token     string // root token
	UnsealKey string
	VaultBin  string
	LogPath   string
	Dir       string // temporary folder of this server, removed by Stop
	PluginDir string
	PluginSHA string
	Root      *api.Client
	RepoDir   string // the repository root

	stop func()
}

// Start builds the plugin, starts `vault server -dev` from bin/vault (or
// $VAULT_BIN) on a free loopback port and registers the plugin.
func Start(opts Options) (*Server, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	s := &Server{RepoDir: root, VaultBin: os.Getenv("VAULT_BIN")}
	if s.VaultBin == "" {
		s.VaultBin = filepath.Join(root, "bin", "vault")
	}
	if _, err := os.Stat(s.VaultBin); err != nil {
		return nil, fmt.Errorf("no Vault server binary at %s: run `make bin/vault` (or set VAULT_BIN)", s.VaultBin)
	}
	if s.Dir, err = os.MkdirTemp("", "mastio-ca-vault-"); err != nil {
		return nil, err
	}
	s.PluginDir = filepath.Join(s.Dir, "plugins")
	if err := os.Mkdir(s.PluginDir, 0o755); err != nil {
		return nil, err
	}
	if s.PluginSHA, err = BuildPlugin(root, filepath.Join(s.PluginDir, PluginBinary), opts); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	if err := s.startVault(); err != nil {
		os.RemoveAll(s.Dir)
		return nil, err
	}
	if err := s.Root.Sys().RegisterPluginWithContext(context.Background(), &api.RegisterPluginInput{
		Name: PluginName, Type: api.PluginTypeSecrets, Command: PluginBinary, SHA256: s.PluginSHA, Version: opts.PluginVersion,
	}); err != nil {
		s.Stop()
		return nil, fmt.Errorf("registering the plugin: %w", err)
	}
	return s, nil
}

// BuildPlugin builds the plugin of the repository at root into out, as
// opts say, and returns the binary's SHA-256 for its registration.
func BuildPlugin(root, out string, opts Options) (string, error) {
	args := []string{"build", "-o", out,
		"-ldflags", "-X github.com/mastio/vault-plugin-mastio-ca/backend.Version=" + strings.TrimPrefix(opts.PluginVersion, "v")}
	if opts.Race {
		args = append(args, "-race")
	}
	if opts.PKCS11 {
		args = append(args, "-tags", "pkcs11")
	}
	build := exec.Command("go", append(args, "./cmd/vault-plugin-mastio-ca")...)
	build.Dir = root
	if opts.PKCS11 {
		build.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the plugin (%s): %v\n%s", filepath.Base(out), err, b)
	}
	return FileSHA256(out)
}

// Stop ends the server and removes its folder.
func (s *Server) Stop() {
	if s.stop != nil {
		s.stop()
	}
	os.RemoveAll(s.Dir)
}

// startVault starts a dev server on a free loopback port and waits until
// it answers. The child also dies with this process.
func (s *Server) startVault() error {
	port, err := FreePortPair()
	if err != nil {
		return err
	}
	s.Addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	s.Token = "root-" + hex.EncodeToString(token)
	cfg := filepath.Join(s.Dir, "vault.hcl")
	conf := fmt.Sprintf("plugin_directory = %q\ndisable_mlock = true\nraw_storage_endpoint = true\n", s.PluginDir)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return err
	}
	s.LogPath = filepath.Join(s.Dir, "vault.log")
	logFile, err := os.Create(s.LogPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.VaultBin, "server", "-dev",
		"-dev-root-token-id="+s.Token,
		fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port),
		"-dev-no-store-token",
		"-config="+cfg,
		"-log-level=debug")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(CleanEnv(), "HOME="+s.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting vault: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	}
	c := api.DefaultConfig()
	c.Address = s.Addr
	client, err := api.NewClient(c)
	if err != nil {
		s.stop()
		return err
	}
	client.SetToken(s.Token)
	s.Root = client
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("vault exited during start-up")
		default:
		}
		if h, err := client.Sys().Health(); err == nil && h.Initialized && !h.Sealed {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return errors.New("vault did not become healthy within 90s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s.UnsealKey, err = readUnsealKey(s.LogPath); err != nil {
		s.stop()
		return err
	}
	return nil
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

// CleanEnv is the environment without VAULT_* settings of the developer.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

// FreePortPair finds a loopback port p with p+1 also free: the dev server
// listens for cluster traffic on the port after the API port.
func FreePortPair() (int, error) {
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

// RepoRoot finds the repository root above the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "cmd", PluginBinary)); err == nil {
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

// FileSHA256 is the hex SHA-256 of a file, as Vault's catalog wants it.
func FileSHA256(path string) (string, error) {
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

// TailFile returns the last n lines of a file, for failure messages.
func TailFile(path string, n int) (string, error) {
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
