package acceptance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// opensslCA makes an EC P-256 CA key and certificate with openssl in dir.
func opensslCA(t *testing.T, dir, prefix string) (keyPEM, certPEM string) {
	t.Helper()
	mustOpenSSL(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", prefix+".key")
	mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", prefix+".key", "-days", "3650", "-out", prefix+".pem",
		"-subj", "/CN=acme CA/O=acme", "-addext", "basicConstraints=critical,CA:TRUE,pathlen:1",
		"-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return readFile(t, filepath.Join(dir, prefix+".key")), readFile(t, filepath.Join(dir, prefix+".pem"))
}

// TestKV_OfficialClient drives the mirror with api.KVv2 from the official
// Go client, as any KV v2 consumer would.
func TestKV_OfficialClient(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	kv := server.root.KVv2(mount)
	if _, err := kv.Get(ctx, "org-ca"); !errors.Is(err, api.ErrSecretNotFound) {
		t.Fatalf("Get on an empty mount: %v, want ErrSecretNotFound", err)
	}
	dir := t.TempDir()
	keyPEM, certPEM := opensslCA(t, dir, "ca")
	put, err := kv.Put(ctx, "org-ca", map[string]any{"key_pem": keyPEM, "cert_pem": certPEM})
	if err != nil {
		t.Fatal(err)
	}
	if put.VersionMetadata == nil || put.VersionMetadata.Version != 1 || put.VersionMetadata.CreatedTime.IsZero() {
		t.Fatalf("Put metadata: %+v", put.VersionMetadata)
	}
	got, err := kv.Get(ctx, "org-ca")
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["cert_pem"] != certPEM || got.VersionMetadata.Version != 1 || got.Data["key_pem"] == nil {
		t.Fatalf("Get: version %d, cert equal %v, key present %v", got.VersionMetadata.Version, got.Data["cert_pem"] == certPEM, got.Data["key_pem"] != nil)
	}
	// Check-and-set through the client: a stale cas is refused, the right one replaces.
	key2, cert2 := opensslCA(t, dir, "ca2")
	if _, err := kv.Put(ctx, "org-ca", map[string]any{"key_pem": key2, "cert_pem": cert2}, api.WithCheckAndSet(0)); err == nil || !strings.Contains(err.Error(), "409") {
		t.Fatalf("Put with cas=0 over an existing CA: %v, want a 409", err)
	}
	put, err = kv.Put(ctx, "org-ca", map[string]any{"key_pem": key2, "cert_pem": cert2}, api.WithCheckAndSet(1))
	if err != nil || put.VersionMetadata.Version != 2 {
		t.Fatalf("Put with cas=1: %+v, %v", put, err)
	}
	// The replaced CA signs.
	signed, err := client.New(server.root, mount).SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "kv-agent"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if signed.IssuingCAPEM != cert2 {
		t.Fatal("the CA written with cas=1 is not the signer")
	}
	assertLints(t, signed.CertificatePEM)
}

// mastioProvider replays Mastio's VaultKMSProvider over plain HTTP, as
// reference/mastio-facts.md describes it: X-Vault-Token, a 10 s timeout,
// GET then POST, with options.cas = metadata.version on 200.
type mastioProvider struct {
	addr, token, path string
	http              *http.Client
}

func (p *mastioProvider) do(t *testing.T, method string, body any) (int, map[string]any) {
	t.Helper()
	var rdr *bytes.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rdr = bytes.NewReader(raw)
	} else {
		rdr = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, p.addr+"/v1/"+p.path, rdr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", p.token)
	resp, err := p.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// load is load_org_ca: 404 -> none; 200 -> key_pem and cert_pem.
func (p *mastioProvider) load(t *testing.T) (key, cert string, ok bool) {
	t.Helper()
	status, body := p.do(t, http.MethodGet, nil)
	switch status {
	case http.StatusNotFound:
		return "", "", false
	case http.StatusOK:
		data := body["data"].(map[string]any)["data"].(map[string]any)
		key, _ = data["key_pem"].(string)
		cert, _ = data["cert_pem"].(string)
		return key, cert, key != "" && cert != ""
	}
	t.Fatalf("load: HTTP %d %v (Mastio refuses to boot)", status, body)
	return "", "", false
}

// store is store_org_ca: GET; on 200 merge and POST with cas; on 404 POST
// without cas. It returns the POST's status.
func (p *mastioProvider) store(t *testing.T, key, cert string) (int, map[string]any) {
	t.Helper()
	status, body := p.do(t, http.MethodGet, nil)
	fields := map[string]any{}
	payload := map[string]any{}
	switch status {
	case http.StatusOK:
		d := body["data"].(map[string]any)
		for k, v := range d["data"].(map[string]any) {
			fields[k] = v
		}
		payload["options"] = map[string]any{"cas": d["metadata"].(map[string]any)["version"]}
	case http.StatusNotFound:
	default:
		t.Fatalf("store: GET HTTP %d", status)
	}
	fields["key_pem"], fields["cert_pem"] = key, cert
	payload["data"] = fields
	return p.do(t, http.MethodPost, payload)
}

// TestKV_MastioProviderSequence: Mastio, pointed at the mirror with
// MCP_PROXY_VAULT_ORG_CA_PATH=<mount>/data/org-ca, boots twice, and a second
// replica racing on first boot is refused; then export is sealed.
func TestKV_MastioProviderSequence(t *testing.T) {
	mount := newMount(t)
	dir := t.TempDir()
	p := &mastioProvider{addr: server.addr, token: server.token, path: mount + "/data/org-ca", http: &http.Client{Timeout: 10 * time.Second}}

	// First boot: nothing stored, Mastio mints a CA and stores it.
	if _, _, ok := p.load(t); ok {
		t.Fatal("load on an empty mount found a CA")
	}
	keyA, certA := opensslCA(t, dir, "a")
	if status, body := p.store(t, keyA, certA); status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("first store: HTTP %d %v", status, body)
	}
	// A second replica that also saw 404 posts its own CA without cas: refused.
	keyB, certB := opensslCA(t, dir, "b")
	if status, _ := p.do(t, http.MethodPost, map[string]any{"data": map[string]any{"key_pem": keyB, "cert_pem": certB}}); status != http.StatusConflict {
		t.Fatalf("racing replica: HTTP %d, want 409", status)
	}
	// Second boot: load returns the stored CA; storing it again is idempotent.
	key, cert, ok := p.load(t)
	if !ok || cert != certA {
		t.Fatal("second boot did not load the first CA")
	}
	if status, body := p.store(t, key, cert); status != http.StatusOK {
		t.Fatalf("idempotent store: HTTP %d %v", status, body)
	}
	mirror := client.New(server.root, mount)
	if ca, err := mirror.CA(t.Context()); err != nil || ca.Version != 1 || !ca.Certificate.Equal(testpki.ParseCertPEM(t, certA)) {
		t.Fatalf("after the idempotent store: %+v, %v", ca, err)
	}

	// Cut-over done: seal export. Mastio's legacy provider now gets no key
	// (and would refuse to boot), and can no longer replace the CA.
	if _, err := server.root.Logical().WriteWithContext(t.Context(), mount+"/kv-export/org-ca", map[string]any{"kv_export": false}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := p.load(t); ok {
		t.Fatal("load still returns the key after kv_export=false")
	}
	status, body := p.store(t, keyB, certB)
	if status != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["errors"]), "sign-only") {
		t.Fatalf("store of a new key on a sign-only CA: HTTP %d %v", status, body)
	}
	if _, err := server.root.Logical().WriteWithContext(t.Context(), mount+"/kv-export/org-ca", map[string]any{"kv_export": true}); err == nil || !strings.Contains(err.Error(), "never be turned on again") {
		t.Fatalf("turning export back on: %v", err)
	}
}
