package acceptance

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// rawStorageLine turns Vault's sys/raw endpoint on; it is off by default.
const rawStorageLine = "raw_storage_endpoint = true\n"

// TestCustody_RawStorageShowsKeyOnOSS documents what protects the CA key on
// open-source Vault: the barrier, and nothing else. SealWrapStorage is a
// Vault Enterprise feature, so with raw_storage_endpoint on a root token
// reads ca/org-ca through sys/raw as the plugin stored it: JSON with the
// PKCS#8 key of the CA certificate. It fails if the key were ever not there
// or were wrapped. With raw_storage_endpoint off, sys/raw is not served.
func TestCustody_RawStorageShowsKeyOnOSS(t *testing.T) {
	ctx := t.Context()
	n := newVaultNodeWith(t, "custody", nil, rawStorageLine)
	unsealKey, _ := n.initialize()
	n.enablePlugin()
	c := client.New(n.client, "mastio-ca")
	ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}

	mounts, err := n.client.Sys().ListMountsWithContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts["mastio-ca/"]
	if !ok || m.UUID == "" {
		t.Fatalf("sys/mounts has no uuid for mastio-ca/: %+v", m)
	}
	rawPath := "sys/raw/logical/" + m.UUID + "/ca/org-ca"

	s, err := n.client.Logical().ReadWithContext(ctx, rawPath)
	if err != nil || s == nil {
		t.Fatalf("reading %s with the root token: %v", rawPath, err)
	}
	value, _ := s.Data["value"].(string)
	if !strings.Contains(value, `"key_pkcs8":"`) {
		t.Fatalf("the raw entry has no key_pkcs8 field (%d bytes): wrapped, or the key moved", len(value))
	}
	var entry struct {
		Version  int    `json:"version"`
		Source   string `json:"source"`
		OrgID    string `json:"org_id"`
		KeyPKCS8 []byte `json:"key_pkcs8"` // base64 in the JSON
		CertDER  []byte `json:"cert_der"`
	}
	if err := json.Unmarshal([]byte(value), &entry); err != nil {
		t.Fatalf("the raw entry is not the plugin's JSON (%d bytes): %v", len(value), err)
	}
	if entry.Version != 1 || entry.Source != "generated" || entry.OrgID != "acme" || string(entry.CertDER) != string(ca.Certificate.Raw) {
		t.Fatalf("raw entry: version %d, source %q, org_id %q, certificate same as the API's: %v",
			entry.Version, entry.Source, entry.OrgID, string(entry.CertDER) == string(ca.Certificate.Raw))
	}
	key, err := x509.ParsePKCS8PrivateKey(entry.KeyPKCS8)
	if err != nil {
		t.Fatalf("key_pkcs8 is not a PKCS#8 private key: %v", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("key_pkcs8 holds a %T, not a signing key", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(ca.Certificate.PublicKey) {
		t.Fatal("the key in raw storage is not the CA certificate's key")
	}

	// The plugin's own API does not return that key.
	b64 := base64.StdEncoding.EncodeToString(entry.KeyPKCS8)
	for _, path := range []string{"mastio-ca/cert", "mastio-ca/data/org-ca"} {
		r, err := n.client.Logical().ReadWithContext(ctx, path)
		if err != nil || r == nil {
			t.Fatalf("reading %s: %v", path, err)
		}
		js, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		body := string(js)
		if strings.Contains(body, "PRIVATE KEY") || strings.Contains(body, b64) || strings.Contains(body, strings.ReplaceAll(b64, "/", `\/`)) {
			t.Fatalf("%s returned the generated key", path)
		}
	}
	t.Logf("sys/raw (raw_storage_endpoint on): %s holds key_pkcs8, %d bytes of PKCS#8, the CA certificate's key", rawPath, len(entry.KeyPKCS8))

	// The same server and storage with raw_storage_endpoint off (Vault's
	// default): sys/raw is refused, and the CA still signs. Checked here, not
	// on the shared dev server, which turns the endpoint on for
	// TestHostileInput's storage comparisons (internal/testvault).
	n.stop()
	conf, err := os.ReadFile(n.configPath)
	if err != nil {
		t.Fatal(err)
	}
	off := strings.Replace(string(conf), rawStorageLine, "", 1)
	if off == string(conf) {
		t.Fatal("the node's config has no raw_storage_endpoint line")
	}
	if err := os.WriteFile(n.configPath, []byte(off), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start()
	n.unseal(unsealKey)
	code, body := getWithToken(t, n.addr, n.token, rawPath)
	if code != http.StatusNotFound || !strings.Contains(body, "unsupported path") {
		t.Fatalf("sys/raw with raw_storage_endpoint off: %d %s, want 404 unsupported path", code, body)
	}
	c = client.New(n.client, "mastio-ca")
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "custody")))
	var signed *client.SignedCertificate
	n.waitFor("signing after the restart", 60*time.Second, func() bool {
		signed, err = c.SignCSR(ctx, csr, client.SignOptions{})
		return err == nil
	})
	if err := signed.Certificate.CheckSignatureFrom(ca.Certificate); err != nil {
		t.Fatalf("after the restart the CA does not sign: %v", err)
	}
	t.Logf("sys/raw (raw_storage_endpoint off): %d %s", code, strings.TrimSpace(body))
}

// getWithToken sends a GET to a Vault server's API with token and returns
// the status and body as they came, a 404 included.
func getWithToken(t *testing.T, addr, token, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, addr+"/v1/"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
