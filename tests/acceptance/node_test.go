package acceptance

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
)

// vaultNode is a non-dev Vault server with raft storage, started,
// initialised and unsealed by the tests, for restart, seal, crash and
// cluster tests. It is stopped when the test ends. Raft, not file storage:
// the minimal Vault build we test against has only inmem and raft.
type vaultNode struct {
	t          *testing.T
	name       string
	dir        string
	addr       string
	port       int
	configPath string
	logPath    string
	cmd        *exec.Cmd
	exited     chan struct{}
	client     *api.Client
	token      string
	single     bool // a one-node cluster: becomes active on its own after unseal
}

// newVaultNode starts a server with raft storage that joins the given API
// addresses; with none it is a cluster of its own.
func newVaultNode(t *testing.T, name string, raftPeers []string) *vaultNode {
	t.Helper()
	return newVaultNodeWith(t, name, raftPeers, "")
}

// newVaultNodeWith is newVaultNode with extra lines of server configuration
// (HCL) appended to the config file, such as raw_storage_endpoint = true.
func newVaultNodeWith(t *testing.T, name string, raftPeers []string, extraConfig string) *vaultNode {
	t.Helper()
	return newVaultNodeRaft(t, name, raftPeers, extraConfig, "")
}

// newVaultNodeRaft is newVaultNodeWith with extra lines inside the raft
// storage stanza too, such as performance_multiplier = 1.
func newVaultNodeRaft(t *testing.T, name string, raftPeers []string, extraConfig, raftConfig string) *vaultNode {
	t.Helper()
	dir := t.TempDir()
	port, err := freePortPair()
	if err != nil {
		t.Fatal(err)
	}
	n := &vaultNode{t: t, name: name, dir: dir, port: port, addr: fmt.Sprintf("http://127.0.0.1:%d", port),
		configPath: filepath.Join(dir, "vault.hcl"), logPath: filepath.Join(dir, "vault.log"), single: len(raftPeers) == 0}
	joins := ""
	for _, p := range raftPeers {
		joins += fmt.Sprintf("  retry_join {\n    leader_api_addr = %q\n  }\n", p)
	}
	storage := fmt.Sprintf("storage \"raft\" {\n  path = %q\n  node_id = %q\n%s%s}\n", filepath.Join(dir, "data"), name, raftConfig, joins)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := storage + fmt.Sprintf(`listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = %q
cluster_addr     = "https://127.0.0.1:%d"
plugin_directory = %q
disable_mlock    = true
log_level        = "debug"
`, port, port+1, n.addr, port+1, server.pluginDir) + extraConfig
	if err := os.WriteFile(n.configPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	t.Cleanup(n.stop)
	return n
}

// start launches the server process and waits for its API to answer.
func (n *vaultNode) start() {
	n.t.Helper()
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.t.Fatal(err)
	}
	n.cmd = exec.Command(server.vaultBin, "server", "-config="+n.configPath)
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	n.cmd.Env = append(nodeEnv(), "HOME="+n.dir)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}, f *os.File) { _ = cmd.Wait(); f.Close(); close(done) }(n.cmd, n.exited, logFile)
	conf := api.DefaultConfig()
	conf.Address = n.addr
	if n.client, err = api.NewClient(conf); err != nil {
		n.t.Fatal(err)
	}
	n.client.SetToken(n.token)
	n.waitFor("the API to answer", 30*time.Second, func() bool {
		_, err := n.client.Sys().SealStatus()
		return err == nil
	})
}

// stop ends the server with SIGTERM (SIGKILL after 15 s).
func (n *vaultNode) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(15 * time.Second):
		n.kill()
	}
}

// kill ends the server with SIGKILL, as a crash would, then the plugin
// process it started: a killed Vault cannot stop its plugins, and they
// would outlive the tests.
func (n *vaultNode) kill() {
	plugin, pluginErr := n.pluginPID() // before the kill: then its parent is gone
	_ = n.cmd.Process.Kill()
	<-n.exited
	if pluginErr == nil {
		_ = syscall.Kill(plugin, syscall.SIGKILL)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func (n *vaultNode) waitFor(what string, limit time.Duration, cond func() bool) time.Duration {
	n.t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			tail, _ := tailFile(n.logPath, 30)
			n.t.Fatalf("%s: waited %s for %s\n%s", n.name, limit, what, tail)
		}
		select {
		case <-n.exited:
			tail, _ := tailFile(n.logPath, 30)
			n.t.Fatalf("%s exited while waiting for %s\n%s", n.name, what, tail)
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// initialize initialises the node with one key share and returns the
// unseal key and root token; it unseals the node.
func (n *vaultNode) initialize() (string, string) {
	n.t.Helper()
	resp, err := n.client.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		n.t.Fatal(err)
	}
	n.token = resp.RootToken
	n.client.SetToken(n.token)
	n.unseal(resp.Keys[0])
	return resp.Keys[0], resp.RootToken
}

func (n *vaultNode) unseal(key string) {
	n.t.Helper()
	if _, err := n.client.Sys().Unseal(key); err != nil {
		n.t.Fatal(err)
	}
	n.waitFor("unseal and an active or standby state", 60*time.Second, func() bool {
		h, err := n.client.Sys().Health()
		return err == nil && !h.Sealed && h.Initialized
	})
	if n.single {
		n.waitActive()
	}
}

// waitActive waits until this node is the active one.
func (n *vaultNode) waitActive() {
	n.t.Helper()
	n.waitFor("active", 60*time.Second, func() bool {
		l, err := n.client.Sys().Leader()
		return err == nil && l.IsSelf
	})
}

// nodeEnv is the environment of a node's server: cleanEnv without the
// PKCS#11 settings a test may have set in its own (SOFTHSM2_CONF,
// MASTIO_CA_PKCS11_MODULES). Vault passes its environment on to the
// plugins it starts, under what they were registered with; a node's
// plugins get those settings only from their registration (-env), as in
// production.
func nodeEnv() []string {
	var env []string
	for _, kv := range cleanEnv() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") && !strings.HasPrefix(kv, hsm.ModulesEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// enablePlugin registers the test plugin in this cluster's catalog and
// mounts it at mastio-ca/.
func (n *vaultNode) enablePlugin() {
	n.t.Helper()
	n.enablePluginAs(pluginName, pluginBinary, server.pluginSHA, nil, "mastio-ca")
}

// enablePluginAs registers command, a binary in the plugin directory whose
// SHA-256 is sum, as the secrets plugin name with env added to its
// environment (vault plugin register -env), and mounts it at mount.
func (n *vaultNode) enablePluginAs(name, command, sum string, env []string, mount string) {
	n.t.Helper()
	if err := n.client.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: name, Type: api.PluginTypeSecrets, Command: command, SHA256: sum, Version: pluginVersion, Env: env,
	}); err != nil {
		n.t.Fatal(err)
	}
	if err := n.client.Sys().Mount(mount, &api.MountInput{Type: name}); err != nil {
		n.t.Fatal(err)
	}
}

// pluginPID is the pid of this server's running mastio-ca plugin process.
func (n *vaultNode) pluginPID() (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		close := strings.LastIndexByte(s, ')')
		if close < 0 || !strings.Contains(s[:close], "vault-plugin-ma") {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(n.cmd.Process.Pid) {
			return pid, nil
		}
	}
	return 0, errors.New("no mastio-ca plugin process under this server")
}

// waitForVoters waits until n's raft configuration has want voters;
// autopilot promotes a joined server to voter once it is stable.
func (n *vaultNode) waitForVoters(want int) {
	n.waitFor(fmt.Sprintf("%d raft voters", want), 60*time.Second, func() bool {
		s, err := n.client.Logical().Read("sys/storage/raft/configuration")
		if err != nil || s == nil {
			return false
		}
		servers, _ := s.Data["config"].(map[string]any)["servers"].([]any)
		voters := 0
		for _, sv := range servers {
			if m, ok := sv.(map[string]any); ok && m["voter"] == true {
				voters++
			}
		}
		return voters == want
	})
}
