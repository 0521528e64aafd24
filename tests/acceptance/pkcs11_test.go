//go:build pkcs11

package acceptance

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testhsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testvault"
)

// The PKCS#11 build of the plugin (make plugin-pkcs11) in a real Vault,
// with CA keys in a SoftHSM2 token the test makes (internal/testhsm).
// Each test runs a persistent node (node_test.go) whose server does not
// see the test's SOFTHSM2_CONF: the plugin gets the token config and the
// module allow-list only from its registration's env, as in production.

// pkcs11Plugin is the PKCS#11 build in the shared plugin directory, built
// once per run (with -race when the tests run with it).
var pkcs11Plugin struct {
	once sync.Once
	sha  string
	err  error
}

func pkcs11PluginSHA(t *testing.T) string {
	t.Helper()
	pkcs11Plugin.once.Do(func() {
		root, err := repoRoot()
		if err != nil {
			pkcs11Plugin.err = err
			return
		}
		pkcs11Plugin.sha, pkcs11Plugin.err = testvault.BuildPlugin(root, filepath.Join(server.pluginDir, testvault.PluginBinaryPKCS11),
			testvault.Options{PluginVersion: pluginVersion, Race: raceEnabled, PKCS11: true})
	})
	if pkcs11Plugin.err != nil {
		t.Fatal(pkcs11Plugin.err)
	}
	return pkcs11Plugin.sha
}

// pkcs11Env is the registration env that lets the plugin use tok: the
// module on the allow-list, and SoftHSM2's config naming tok's directory.
func pkcs11Env(tok *testhsm.Token) []string {
	return append([]string{hsm.ModulesEnv + "=" + testhsm.Module}, tok.Env()...)
}

// newPKCS11Node starts a one-node Vault (extraConfig as newVaultNodeWith),
// registers the PKCS#11 build as mastio-ca with tok's env, mounts it at
// mastio-ca/ and writes config/pkcs11 for tok. It returns the unseal key.
func newPKCS11Node(t *testing.T, name string, tok *testhsm.Token, extraConfig string) (*vaultNode, string) {
	t.Helper()
	sha := pkcs11PluginSHA(t)
	n := newVaultNodeWith(t, name, nil, extraConfig)
	key, _ := n.initialize()
	n.enablePluginAs(pluginName, testvault.PluginBinaryPKCS11, sha, pkcs11Env(tok), "mastio-ca")
	s, err := n.client.Logical().WriteWithContext(t.Context(), "mastio-ca/config/pkcs11", map[string]any{
		"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN,
	})
	if err != nil {
		t.Fatalf("config/pkcs11: %v\n%s", err, nodeLogTail(n))
	}
	js, _ := json.Marshal(s.Data)
	allowed, _ := s.Data["allowed_modules"].([]any)
	if s.Data["status"] != "ok" || s.Data["built"] != true || s.Data["pin_set"] != true || strings.Contains(string(js), `"pin"`) ||
		strings.Contains(string(js), tok.PIN) || len(allowed) != 1 || allowed[0] != testhsm.Module {
		t.Fatalf("config/pkcs11 answered %s", js)
	}
	// The token config reached the plugin through its registration only:
	// the plugin process has tok's SOFTHSM2_CONF, the server none.
	pid, err := n.pluginPID()
	if err != nil {
		t.Fatal(err)
	}
	plugin, vault := processEnv(t, pid), processEnv(t, n.cmd.Process.Pid)
	if plugin["SOFTHSM2_CONF"] != tok.Conf || plugin[hsm.ModulesEnv] != testhsm.Module {
		t.Fatalf("the plugin process runs with SOFTHSM2_CONF=%q %s=%q; want %q and %q", plugin["SOFTHSM2_CONF"], hsm.ModulesEnv, plugin[hsm.ModulesEnv], tok.Conf, testhsm.Module)
	}
	for _, k := range []string{"SOFTHSM2_CONF", hsm.ModulesEnv} {
		if v, ok := vault[k]; ok {
			t.Fatalf("the Vault server runs with %s=%s: the plugin may have it from there, not from its registration", k, v)
		}
	}
	return n, key
}

// processEnv is the environment process pid started with.
func processEnv(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range strings.Split(string(b), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return env
}

func nodeLogTail(n *vaultNode) string {
	tail, _ := tailFile(n.logPath, 40)
	return tail
}

// nodeVault runs the vault CLI against n in dir.
func nodeVault(t *testing.T, n *vaultNode, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), server.vaultBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "VAULT_ADDR="+n.addr, "VAULT_TOKEN="+n.token, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustNodeVault(t *testing.T, n *vaultNode, dir string, args ...string) string {
	t.Helper()
	out, err := nodeVault(t, n, dir, args...)
	if err != nil {
		t.Fatalf("vault %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// signVerified signs an openssl CSR for agent name with the vault CLI and
// has openssl verify the leaf to org.pem through the intermediate file
// inter (in dir); the leaf must not verify through wrongInter, when given
// (it was signed by inter's key, not by that one's).
func signVerified(t *testing.T, n *vaultNode, dir, name, inter, wrongInter string) *x509.Certificate {
	t.Helper()
	agentCSR(t, dir, name)
	leaf := mustNodeVault(t, n, dir, "write", "-field=certificate", "mastio-ca/sign-csr", "csr=@"+name+".csr")
	writeFile(t, filepath.Join(dir, name+".pem"), leaf)
	if out := mustOpenSSL(t, dir, "verify", "-CAfile", "org.pem", "-untrusted", inter, name+".pem"); !strings.Contains(out, name+".pem: OK") {
		t.Fatalf("openssl verify %s: %s", name, out)
	}
	if wrongInter != "" {
		if out, _ := opensslMayFail(dir, "verify", "-CAfile", "org.pem", "-untrusted", wrongInter, name+".pem"); strings.Contains(out, ": OK") {
			t.Fatalf("%s verifies through %s too: it was not signed by %s's key", name, wrongInter, inter)
		}
	}
	return parsePEMCert(t, leaf)
}

// health reads mastio-ca/health on n.
func health(t *testing.T, n *vaultNode) map[string]any {
	t.Helper()
	s, err := n.client.Logical().ReadWithContext(t.Context(), "mastio-ca/health")
	if err != nil || s == nil {
		t.Fatalf("health: %v\n%s", err, nodeLogTail(n))
	}
	return s.Data
}

// rawCAEntry is a CA entry as the plugin stores it, read through sys/raw;
// KeyPKCS8 stays raw JSON so that null and absent can be told apart.
type rawCAEntry struct {
	KeyPKCS8  json.RawMessage `json:"key_pkcs8"`
	KeyPKCS11 *rawKeyRef      `json:"key_pkcs11"`
	CertDER   []byte          `json:"cert_der"`
	Previous  *struct {
		CertDER   []byte          `json:"cert_der"`
		KeyPKCS8  json.RawMessage `json:"key_pkcs8"`
		KeyPKCS11 *rawKeyRef      `json:"key_pkcs11"`
	} `json:"previous"`
}

type rawKeyRef struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

func (r *rawKeyRef) ref(t *testing.T) hsm.KeyRef {
	t.Helper()
	id, err := hex.DecodeString(r.ID)
	if err != nil || len(id) == 0 {
		t.Fatalf("stored key reference %+v: CKA_ID is not hex", r)
	}
	return hsm.KeyRef{ID: id, Label: r.Label}
}

// rawPost sends a POST to n's API with no retries (the api client retries
// a 503) and returns the status and body.
func rawPost(t *testing.T, n *vaultNode, path string, data map[string]any) (int, string) {
	t.Helper()
	body, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	code, _, b := httpDo(t, http.MethodPost, n.addr+"/v1/"+path, n.token, body, nil)
	return code, string(b)
}

// TestPKCS11_TokenCA: the Org CA and the intermediate made in the token
// (key_backend=pkcs11) on a real Vault with the PKCS#11 build registered:
// they sign, the chains verify with openssl, a rotation keeps the
// intermediate's key in the token; the token says the keys cannot be
// extracted; Vault's storage (sys/raw) holds references and no key bytes;
// a plugin reload and a Vault restart sign with the same keys; and the
// static build on the same Vault, with the same allow-list, refuses
// PKCS#11 with 422 and names the build that has it.
func TestPKCS11_TokenCA(t *testing.T) {
	ctx := t.Context()
	tok := testhsm.New(t, "mastio")
	n, unsealKey := newPKCS11Node(t, "pkcs11-ca", tok, rawStorageLine)
	dir := t.TempDir()

	gen := mustNodeVault(t, n, dir, "write", "mastio-ca/generate", "org_id=acme", "key_backend=pkcs11")
	interGen := mustNodeVault(t, n, dir, "write", "mastio-ca/intermediate/generate", "key_backend=pkcs11")
	for what, out := range map[string]string{"generate": gen, "intermediate/generate": interGen} {
		if strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, "fingerprint_sha256") {
			t.Fatalf("%s printed:\n%s", what, out)
		}
	}
	c := client.New(n.client, "mastio-ca")
	org, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inter, err := c.Intermediate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "org.pem"), org.CertificatePEM)
	writeFile(t, filepath.Join(dir, "inter.pem"), inter.CertificatePEM)
	if out := mustOpenSSL(t, dir, "verify", "-CAfile", "org.pem", "inter.pem"); !strings.Contains(out, "inter.pem: OK") {
		t.Fatalf("openssl verify of the intermediate under the Org CA: %s", out)
	}
	signVerified(t, n, dir, "agent-1", "inter.pem", "")
	h := health(t, n)
	if h["org-ca_key_backend"] != "pkcs11" || h["intermediate-ca_key_backend"] != "pkcs11" || h["pkcs11_status"] != "ok" || h["pkcs11_error"] != nil {
		t.Fatalf("health after generate: %v", h)
	}
	interKeyBefore, _ := h["intermediate-ca_pkcs11_key"].(string)

	// Rotation with no key_backend keeps the intermediate in the token,
	// with a new key.
	mustNodeVault(t, n, dir, "write", "mastio-ca/intermediate/rotate", "grace_period=1h")
	next, err := c.Intermediate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Previous == nil || !next.Previous.Equal(inter.Certificate) || next.FingerprintSHA256 == inter.FingerprintSHA256 {
		t.Fatalf("after the rotation: previous is the old intermediate %v, fingerprint changed %v", next.Previous != nil && next.Previous.Equal(inter.Certificate), next.FingerprintSHA256 != inter.FingerprintSHA256)
	}
	writeFile(t, filepath.Join(dir, "next.pem"), next.CertificatePEM)
	signVerified(t, n, dir, "agent-2", "next.pem", "inter.pem")
	h = health(t, n)
	if h["intermediate-ca_key_backend"] != "pkcs11" || h["intermediate-ca_pkcs11_key"] == interKeyBefore || h["pkcs11_status"] != "ok" {
		t.Fatalf("health after the rotation: %v (the intermediate's key was %s)", h, interKeyBefore)
	}

	// Vault's storage: references, no key bytes.
	entries := rawMountEntries(t, n.client, "mastio-ca")
	for key, value := range entries {
		if strings.Contains(value, "PRIVATE KEY") {
			t.Errorf("storage entry %s holds a PEM private key", key)
		}
		if strings.HasPrefix(key, "ca/") && strings.Contains(value, `"key_pkcs8":"`) {
			t.Errorf("storage entry %s holds key_pkcs8 bytes", key)
		}
	}
	type tokenKey struct {
		what string
		ref  hsm.KeyRef
		cert *x509.Certificate
	}
	var keys []tokenKey
	for _, ca := range []struct {
		key, health string
		cert        *x509.Certificate
	}{{"ca/org-ca", "org-ca_pkcs11_key", org.Certificate}, {"ca/intermediate-ca", "intermediate-ca_pkcs11_key", next.Certificate}} {
		value, ok := entries[ca.key]
		if !ok {
			t.Fatalf("no storage entry %s among %d", ca.key, len(entries))
		}
		var e rawCAEntry
		if err := json.Unmarshal([]byte(value), &e); err != nil {
			t.Fatalf("%s is not the plugin's JSON: %v", ca.key, err)
		}
		if string(e.KeyPKCS8) != "null" || e.KeyPKCS11 == nil || e.KeyPKCS11.ID == "" || !strings.HasPrefix(e.KeyPKCS11.Label, "mastio-ca/") {
			t.Fatalf("%s: key_pkcs8 %s, key_pkcs11 %+v; want null and a reference", ca.key, e.KeyPKCS8, e.KeyPKCS11)
		}
		if string(e.CertDER) != string(ca.cert.Raw) {
			t.Fatalf("%s holds another certificate than the API serves", ca.key)
		}
		ref := e.KeyPKCS11.ref(t)
		if got := h[ca.health]; got != ref.String() {
			t.Fatalf("health %s = %v; the stored reference is %s", ca.health, got, ref)
		}
		keys = append(keys, tokenKey{ca.key, ref, ca.cert})
		if ca.key == "ca/intermediate-ca" {
			p := e.Previous
			if p == nil || p.KeyPKCS11 == nil || len(p.KeyPKCS8) != 0 || string(p.CertDER) != string(inter.Certificate.Raw) {
				t.Fatalf("%s: the rotated-out intermediate is not kept as a token reference with no key bytes: %+v", ca.key, p)
			}
			if pr := p.KeyPKCS11.ref(t); pr.String() != interKeyBefore || string(pr.ID) == string(ref.ID) {
				t.Fatalf("%s: previous key %s, want the key before the rotation %s, not the current one", ca.key, pr, interKeyBefore)
			}
			keys = append(keys, tokenKey{ca.key + " (previous)", p.KeyPKCS11.ref(t), inter.Certificate})
		}
	}

	// The token itself, opened from this process as an auditor: each key
	// is the key of its certificate, and sensitive and non-extractable
	// since it was made.
	auditor := hsm.Open(hsm.Config{ModulePath: testhsm.Module, TokenLabel: tok.Label, PIN: tok.PIN})
	for _, k := range keys {
		attrs, err := auditor.KeyAttributes(k.ref)
		if err != nil {
			auditor.Close()
			t.Fatalf("%s: reading the attributes of %s: %v", k.what, k.ref, err)
		}
		if !attrs.Protected() {
			t.Errorf("%s: the token key %s may leave the token: %+v", k.what, k.ref, attrs)
		}
		if err := auditor.Probe(k.ref, k.cert.PublicKey); err != nil {
			t.Errorf("%s: the token key %s is not the certificate's: %v", k.what, k.ref, err)
		}
	}
	// The check above compares keys: the Org CA's reference does not
	// match the intermediate's certificate.
	if err := auditor.Probe(keys[0].ref, next.Certificate.PublicKey); err == nil {
		t.Error("Probe accepts the Org CA's token key for the intermediate's certificate")
	}
	auditor.Close()
	if t.Failed() {
		return
	}
	t.Logf("sys/raw: %d entries of the mount, none with key bytes; ca/org-ca and ca/intermediate-ca hold key_pkcs8 null and key_pkcs11 %s, %s (previous %s); the token reports all three sensitive, never extractable",
		len(entries), keys[0].ref, keys[1].ref, keys[2].ref)

	// A plugin reload: a new process re-opens the token, with the same
	// keys.
	pid, err := n.pluginPID()
	if err != nil {
		t.Fatal(err)
	}
	mustNodeVault(t, n, dir, "plugin", "reload", "-plugin", pluginName)
	sameCAs := func(when string) {
		t.Helper()
		o, err := c.CA(ctx)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		i, err := c.Intermediate(ctx)
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if o.FingerprintSHA256 != org.FingerprintSHA256 || i.FingerprintSHA256 != next.FingerprintSHA256 {
			t.Fatalf("%s the CAs changed: Org CA %s (was %s), intermediate %s (was %s)", when, o.FingerprintSHA256, org.FingerprintSHA256, i.FingerprintSHA256, next.FingerprintSHA256)
		}
	}
	sameCAs("after the plugin reload")
	signVerified(t, n, dir, "agent-3", "next.pem", "inter.pem")
	if after, err := n.pluginPID(); err != nil || after == pid {
		t.Fatalf("after the reload the plugin runs as pid %d (was %d): %v", after, pid, err)
	}
	if h := health(t, n); h["pkcs11_status"] != "ok" || h["org-ca_pkcs11_key"] != keys[0].ref.String() || h["intermediate-ca_pkcs11_key"] != keys[1].ref.String() {
		t.Fatalf("health after the reload: %v", h)
	}

	// A Vault restart: the node stopped, started and unsealed.
	n.stop()
	n.start()
	n.unseal(unsealKey)
	var restarted *client.CA
	poll(t, n, "the Org CA after the restart", 60*time.Second, func() error {
		restarted, err = c.CA(ctx)
		return err
	})
	sameCAs("after the Vault restart")
	signVerified(t, n, dir, "agent-4", "next.pem", "inter.pem")
	if h := health(t, n); h["pkcs11_status"] != "ok" || h["org-ca_pkcs11_key"] != keys[0].ref.String() || h["intermediate-ca_pkcs11_key"] != keys[1].ref.String() {
		t.Fatalf("health after the restart: %v", h)
	}
	t.Logf("plugin reload and Vault restart: the same Org CA (sha256 %s) and intermediate sign, leaves verify with openssl", restarted.FingerprintSHA256)

	// The static build on the same Vault, with the same allow-list:
	// config/pkcs11 and key_backend=pkcs11 are 422, naming the build.
	n.enablePluginAs("mastio-ca-static", pluginBinary, server.pluginSHA, pkcs11Env(tok), "static")
	for _, w := range []struct {
		path string
		data map[string]any
	}{
		{"static/config/pkcs11", map[string]any{"module_path": testhsm.Module, "token_label": tok.Label, "pin": tok.PIN}},
		{"static/generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}},
	} {
		code, body := rawPost(t, n, w.path, w.data)
		if code != http.StatusUnprocessableEntity || !strings.Contains(body, "no PKCS#11 support") || !strings.Contains(body, testvault.PluginBinaryPKCS11) {
			t.Fatalf("%s on the static build: %d %s; want 422 naming %s", w.path, code, body, testvault.PluginBinaryPKCS11)
		}
	}
	if code, body := getWithToken(t, n.addr, n.token, "static/cert"); code != http.StatusNotFound {
		t.Fatalf("static/cert after the refused generate: %d %s; want 404", code, body)
	}
	s, err := n.client.Logical().ReadWithContext(ctx, "static/config/pkcs11")
	if err != nil || s == nil || s.Data["built"] != false || s.Data["configured"] != false {
		t.Fatalf("static/config/pkcs11: %v %v", s, err)
	}
	assertNoDataRace(t, n.logPath)
}

// TestPKCS11_TokenTrouble: a token lost while the plugin runs (sessions
// gone), a PIN changed behind the plugin's back, and a token missing when
// the plugin starts. Each is a 503 on sign-csr naming PKCS#11, health says
// what is wrong, `mastio-ca verify` fails, and the plugin process keeps
// running; once fixed (token back, the PIN written), signing works with
// the same CA, without a reload for a token that comes back.
func TestPKCS11_TokenTrouble(t *testing.T) {
	ctx := t.Context()
	tok := testhsm.New(t, "trouble")
	n, _ := newPKCS11Node(t, "pkcs11-trouble", tok, "")
	if _, err := n.client.Logical().WriteWithContext(ctx, "mastio-ca/generate", map[string]any{"org_id": "acme", "key_backend": "pkcs11"}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.client.Logical().WriteWithContext(ctx, "mastio-ca/intermediate/generate", map[string]any{"key_backend": "pkcs11"}); err != nil {
		t.Fatal(err)
	}
	c := client.New(n.client, "mastio-ca")
	inter, err := c.Intermediate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	csr := readFile(t, agentCSR(t, t.TempDir(), "trouble"))
	sign := func() (int, string) {
		t.Helper()
		return rawPost(t, n, "mastio-ca/sign-csr", map[string]any{"csr": csr})
	}
	mustSign := func(when string) {
		t.Helper()
		code, body := sign()
		if code != http.StatusOK {
			t.Fatalf("sign-csr %s: %d %s", when, code, body)
		}
		var r struct {
			Data struct {
				Certificate string `json:"certificate"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		if err := parsePEMCert(t, r.Data.Certificate).CheckSignatureFrom(inter.Certificate); err != nil {
			t.Fatalf("sign-csr %s: not signed by the intermediate: %v", when, err)
		}
	}
	// signRecovers polls sign-csr until it succeeds, at most limit, with
	// no reload, and returns how long it took.
	signRecovers := func(when string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		var code int
		var body string
		for {
			if code, body = sign(); code == http.StatusOK {
				break
			}
			if time.Since(start) > limit {
				t.Fatalf("sign-csr %s: still %d %s after %s\n%s", when, code, body, limit, nodeLogTail(n))
			}
			time.Sleep(100 * time.Millisecond)
		}
		mustSign(when)
		return time.Since(start)
	}
	// refused checks that sign-csr, health and verify all report the
	// problem (health's pkcs11_error containing want), and that the
	// plugin process pid survived them.
	refused := func(what, want string, pid int) {
		t.Helper()
		code, body := sign()
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "PKCS#11") {
			t.Fatalf("sign-csr with %s: %d %s; want 503 naming PKCS#11", what, code, body)
		}
		h := health(t, n)
		problem, _ := h["pkcs11_error"].(string)
		if h["pkcs11_status"] != "unavailable" || !strings.Contains(problem, want) {
			t.Fatalf("health with %s: pkcs11_status %v, pkcs11_error %q; want unavailable and %q", what, h["pkcs11_status"], problem, want)
		}
		exit, out := verifyCLI(t, n.addr, n.token, "--mount", "mastio-ca")
		failed := false
		for _, line := range strings.Split(out, "\n") {
			failed = failed || strings.HasPrefix(line, "FAIL  PKCS#11") && strings.Contains(line, want)
		}
		if exit != 2 || !failed {
			t.Fatalf("mastio-ca verify with %s: exit %d, want 2 (critical) and a FAIL line naming PKCS#11 and %q\n%s", what, exit, want, out)
		}
		if now, err := n.pluginPID(); err != nil || now != pid {
			t.Fatalf("with %s the plugin process changed: pid %d, was %d (%v)\n%s", what, now, pid, err, nodeLogTail(n))
		}
		t.Logf("%s: sign-csr %d %s; health pkcs11_error %q; mastio-ca verify exit %d:\n%s", what, code, strings.TrimSpace(body), problem, exit, out)
	}
	reload := func() int {
		t.Helper()
		before, err := n.pluginPID()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.Sys().ReloadPluginWithContext(ctx, &api.ReloadPluginInput{Plugin: pluginName}); err != nil {
			t.Fatal(err)
		}
		var pid int
		n.waitFor("a new plugin process after the reload", 30*time.Second, func() bool {
			_, _ = n.client.Logical().ReadWithContext(ctx, "mastio-ca/cert")
			pid, err = n.pluginPID()
			return err == nil && pid != before
		})
		return pid
	}
	mustSign("with the token present")
	pid, err := n.pluginPID()
	if err != nil {
		t.Fatal(err)
	}

	// The token lost while the plugin runs: its open sessions are gone.
	tok.Hide(t)
	refused("the token gone while the plugin runs", `"trouble"`, pid)
	tok.Restore(t)
	took := signRecovers("after the token came back", 5*time.Second)
	t.Logf("token back: signing recovered within %s, no reload", took.Round(time.Millisecond))
	if now, err := n.pluginPID(); err != nil || now != pid {
		t.Fatalf("the plugin process changed while the token was away: pid %d, was %d (%v)", now, pid, err)
	}

	// The PIN changed behind the plugin's back (this process has no
	// PKCS#11 context open), then a fresh plugin process.
	tok.SetPIN(t, "4321")
	pid = reload()
	refused("a wrong PIN", "refused the PIN", pid)
	s, err := n.client.Logical().WriteWithContext(ctx, "mastio-ca/config/pkcs11", map[string]any{"pin": tok.PIN})
	if err != nil || s.Data["status"] != "ok" {
		t.Fatalf("config/pkcs11 with the new PIN: %v %v", s, err)
	}
	mustSign("with the new PIN written")
	if h := health(t, n); h["pkcs11_status"] != "ok" {
		t.Fatalf("health with the new PIN: %v", h)
	}
	if exit, out := verifyCLI(t, n.addr, n.token, "--mount", "mastio-ca"); exit != 0 {
		t.Fatalf("mastio-ca verify with the new PIN: exit %d\n%s", exit, out)
	}

	// The token missing when the plugin starts.
	tok.Hide(t)
	pid = reload()
	refused("the token missing at start", `no token "trouble"`, pid)
	tok.Restore(t)
	took = signRecovers("after the missing token came", 5*time.Second)
	if h := health(t, n); h["pkcs11_status"] != "ok" {
		t.Fatalf("health with the token back: %v", h)
	}
	if now, err := n.pluginPID(); err != nil || now != pid {
		t.Fatalf("the plugin process changed: pid %d, was %d (%v)", now, pid, err)
	}
	t.Logf("token missing at start, then put back: signing works within %s, no reload", took.Round(time.Millisecond))
	assertNoDataRace(t, n.logPath)
}

// TestPKCS11_Guide runs the `sh runnable` blocks of docs/hsm.md, in order,
// as one script against a fresh persistent Vault whose plugin directory
// holds the PKCS#11 build: the walk-through cannot drift from the product.
func TestPKCS11_Guide(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	pkcs11PluginSHA(t) // builds it into server.pluginDir
	script, blocks := runnableScript(t, filepath.Join(root, "docs", "hsm.md"), 5)
	n := newVaultNode(t, "hsm-guide", nil)
	n.initialize()
	work := t.TempDir()
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(cleanEnv(),
		"PATH="+filepath.Dir(server.cli)+":"+filepath.Dir(server.vaultBin)+":"+os.Getenv("PATH"),
		"VAULT_ADDR="+n.addr, "VAULT_TOKEN="+n.token, "HOME="+work, "PLUGIN_DIR="+server.pluginDir)
	out, err := cmd.CombinedOutput()
	t.Logf("docs/hsm.md, %d runnable blocks:\n%s", blocks, out)
	if err != nil {
		t.Fatalf("a runnable command of docs/hsm.md failed: %v\n%s", err, nodeLogTail(n))
	}
	// The walk-through's points: the PIN is reported set, never shown;
	// both keys are in the token; the leaf verifies; health says ok.
	for _, want := range []string{"true", "pkcs11pkcs11", "agent.pem: OK", "ok"} {
		if !strings.Contains(strings.ReplaceAll(string(out), "\n", ""), want) {
			t.Errorf("the guide's run lacks %q", want)
		}
	}
	if strings.Contains(string(out), "guide-user-pin") {
		t.Error("the guide's run printed the PIN")
	}
}

// TestPKCS11_CSRRound: an issuing mount of the two-tier setup makes its
// intermediate's pending key in the token (generate-csr key_backend=pkcs11),
// a root mount on the same Vault signs the CSR, and set-signed activates
// it: the leaves it signs verify with openssl, and sys/raw holds a
// reference and no key bytes for the intermediate.
func TestPKCS11_CSRRound(t *testing.T) {
	tok := testhsm.New(t, "csr-round")
	n, _ := newPKCS11Node(t, "hsm-csr", tok, "raw_storage_endpoint = true\n")
	dir := t.TempDir()
	if err := n.client.Sys().Mount("root-ca", &api.MountInput{Type: pluginName}); err != nil {
		t.Fatal(err)
	}
	mustNodeVault(t, n, dir, "write", "root-ca/generate", "org_id=acme")
	mustNodeVault(t, n, dir, "write", "mastio-ca/config", "org_id=acme")
	csr := mustNodeVault(t, n, dir, "write", "-field=csr", "mastio-ca/intermediate/generate-csr", "key_backend=pkcs11")
	writeFile(t, filepath.Join(dir, "issuing.csr"), csr)
	signed, err := n.client.Logical().WriteWithContext(t.Context(), "root-ca/root/sign-intermediate", map[string]any{"csr": csr, "ttl": "8760h"})
	if err != nil {
		t.Fatal(err)
	}
	chain := signed.Data["ca_chain"].([]any)
	if _, err := n.client.Logical().WriteWithContext(t.Context(), "mastio-ca/intermediate/set-signed", map[string]any{
		"certificate": signed.Data["certificate"], "ca_chain": chain[1:],
	}); err != nil {
		t.Fatalf("set-signed: %v\n%s", err, nodeLogTail(n))
	}
	writeFile(t, filepath.Join(dir, "org.pem"), mustNodeVault(t, n, dir, "read", "-field=certificate", "root-ca/cert"))
	writeFile(t, filepath.Join(dir, "inter.pem"), signed.Data["certificate"].(string))
	signVerified(t, n, dir, "agent-csr", "inter.pem", "")

	if h := health(t, n); h["intermediate-ca_key_backend"] != "pkcs11" || h["pkcs11_status"] != "ok" {
		t.Fatalf("health: %v", h)
	}
	entries := rawMountEntries(t, n.client, "mastio-ca")
	var inter struct {
		KeyPKCS8  json.RawMessage      `json:"key_pkcs8"`
		KeyPKCS11 *struct{ ID string } `json:"key_pkcs11"`
	}
	if err := json.Unmarshal([]byte(entries["ca/intermediate-ca"]), &inter); err != nil || inter.KeyPKCS11 == nil || string(inter.KeyPKCS8) != "null" {
		t.Fatalf("ca/intermediate-ca in sys/raw: key_pkcs8 %s, key_pkcs11 %v (%v)", inter.KeyPKCS8, inter.KeyPKCS11, err)
	}
	for k, v := range entries {
		if strings.Contains(v, "PRIVATE KEY") || (strings.HasPrefix(k, "ca/") && strings.Contains(v, `"key_pkcs8":"`)) {
			t.Fatalf("sys/raw entry %s holds key bytes", k)
		}
	}
}
