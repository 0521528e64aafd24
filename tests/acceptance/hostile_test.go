package acceptance

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// bigCSR is a valid P-256 agent CSR padded to about 1 MB of PEM (as much
// as Vault's JSON limits let through) with an extension the plugin would
// otherwise ignore.
func bigCSR(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("spiffe://cullis.local/acme/big")
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		URIs:            []*url.URL{u},
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Value: make([]byte, 700<<10)}},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// oversized is a 34 MiB JSON body within Vault's JSON shape limits (34
// fields of 1 MiB), so that it is refused for its size.
func oversized(csr string) []byte {
	fields := map[string]any{"csr": csr}
	for i := 0; i < 34; i++ {
		fields[fmt.Sprintf("pad%d", i)] = strings.Repeat("a", 1<<20)
	}
	b, _ := json.Marshal(fields)
	return b
}

// rawWrite sends body as is to the mount path with the root token.
func rawWrite(t *testing.T, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, server.addr+"/v1/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", server.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mountState is every storage entry of the mount, read through
// sys/raw (the test server enables raw_storage_endpoint): what a refused
// request must leave exactly as it was.
func mountState(t *testing.T, mount string) map[string]string {
	t.Helper()
	state := rawMountEntries(t, server.root, mount)
	if len(state) < 4 {
		t.Fatalf("raw storage of the mount shows only %d entries", len(state))
	}
	return state
}

// rawMountEntries reads every storage entry of mount through sys/raw
// (raw_storage_endpoint on), with c a root token's client, by key under
// the mount.
func rawMountEntries(t *testing.T, c *api.Client, mount string) map[string]string {
	t.Helper()
	mounts, err := c.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts[mount+"/"]
	if !ok || m.UUID == "" {
		t.Fatalf("sys/mounts has no uuid for %s/", mount)
	}
	prefix := "sys/raw/logical/" + m.UUID + "/"
	entries := map[string]string{}
	var walk func(string)
	walk = func(dir string) {
		list, err := c.Logical().ListWithContext(t.Context(), prefix+dir)
		if err != nil {
			t.Fatalf("listing %s%s: %v", prefix, dir, err)
		}
		if list == nil {
			return
		}
		for _, k := range list.Data["keys"].([]any) {
			key := dir + k.(string)
			if strings.HasSuffix(key, "/") {
				walk(key)
				continue
			}
			s, err := c.Logical().ReadWithContext(t.Context(), prefix+key)
			if err != nil || s == nil {
				t.Fatalf("reading %s%s: %v", prefix, key, err)
			}
			entries[key] = fmt.Sprint(s.Data["value"])
		}
	}
	walk("")
	return entries
}

func opensslCSRWith(t *testing.T, dir, name string, genpkey ...string) string {
	t.Helper()
	mustOpenSSL(t, dir, append(append([]string{"genpkey"}, genpkey...), "-out", name+".key")...)
	mustOpenSSL(t, dir, "req", "-new", "-key", name+".key", "-out", name+".csr", "-subj", "/CN=acme::"+name,
		"-addext", "subjectAltName=URI:spiffe://cullis.local/acme/"+name)
	return readFile(t, filepath.Join(dir, name+".csr"))
}

// TestHostileInput sends hostile requests through the real HTTP API. Each
// must get a 4xx with a message, none a 5xx; the plugin must not panic;
// and nothing the API shows may change.
func TestHostileInput(t *testing.T) {
	ctx := t.Context()
	mount, c, org, _ := newCA(t, true)
	dir := t.TempDir()
	good := readFile(t, agentCSR(t, dir, "good"))
	csrWithSAN := func(name, san string) string {
		mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", name+".key", "-out", name+".csr", "-subj", "/CN=x", "-addext", "subjectAltName="+san)
		return readFile(t, filepath.Join(dir, name+".csr"))
	}
	csrWithExt := func(name string, ext ...string) string {
		args := []string{"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=x", "-addext", "subjectAltName=URI:spiffe://cullis.local/acme/" + name}
		for _, e := range ext {
			args = append(args, "-addext", e)
		}
		mustOpenSSL(t, dir, args...)
		return readFile(t, filepath.Join(dir, name+".csr"))
	}
	// A CSR whose signature no longer verifies: flip a byte of the signature.
	block, _ := pem.Decode([]byte(good))
	tampered := append([]byte(nil), block.Bytes...)
	tampered[len(tampered)-3] ^= 0xff
	tamperedPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: tampered}))
	// A public key point off the curve: flip a byte inside the point.
	offCurve := append([]byte(nil), block.Bytes...)
	if i := bytes.Index(offCurve, []byte{0x03, 0x42, 0x00, 0x04}); i > 0 {
		offCurve[i+10] ^= 0x01
	} else {
		t.Fatal("no uncompressed P-256 point in the CSR")
	}
	offCurvePEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: offCurve}))
	mustOpenSSL(t, dir, "genpkey", "-genparam", "-algorithm", "DSA", "-pkeyopt", "dsa_paramgen_bits:2048", "-out", "dsa.param")

	csr := func(v string) []byte { return jsonBody(t, map[string]any{"csr": v}) }
	cases := []struct {
		name, path string
		body       []byte
		want       string // in the answer; "" for any message
	}{
		// Past Vault's max_request_size (32 MiB): refused before the plugin.
		{"oversized body (34 MiB)", "sign-csr", oversized(good), "request body too large"},
		{"1 MiB of non-PEM", "sign-csr", csr(strings.Repeat("A", 1<<20)), "at most 65536 are accepted"},
		{"valid CSR of ~1 MB", "sign-csr", csr(bigCSR(t)), "at most 65536 are accepted"},
		{"50 PEM blocks", "sign-csr", csr(strings.Repeat(good, 50)), "exactly one CSR"},
		{"1000 PEM blocks", "sign-csr", csr(strings.Repeat(good, 1000)), "at most 65536 are accepted"},
		{"trailing garbage", "sign-csr", csr(good + "garbage"), "exactly one CSR"},
		{"NUL bytes", "sign-csr", csr(strings.Replace(good, "\n", "\x00\n", 3)), "csr is not PEM"},
		{"non-UTF-8", "sign-csr", []byte("{\"csr\":\"\xff\xfe\xfd-----BEGIN CERTIFICATE REQUEST-----\"}"), "csr is not PEM"},
		{"not JSON", "sign-csr", []byte("csr=<<<"), "failed to parse JSON"},
		{"empty body", "sign-csr", []byte("{}"), "csr is required"},
		{"tampered signature", "sign-csr", csr(tamperedPEM), "signature does not verify"},
		{"point not on the curve", "sign-csr", csr(offCurvePEM), "could not be parsed"},
		{"RSA e=3", "sign-csr", csr(opensslCSRWith(t, dir, "rsae3", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3")), "public exponent 3"},
		{"RSA 2056 bits", "sign-csr", csr(opensslCSRWith(t, dir, "rsa2052", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2052")), "not a whole number of bytes"},
		{"RSA-1024", "sign-csr", csr(opensslCSRWith(t, dir, "rsa1024", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")), "1024 bits is not allowed"},
		{"P-224", "sign-csr", csr(opensslCSRWith(t, dir, "p224", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-224")), "224-bit curve"},
		{"RSA-PSS key", "sign-csr", csr(opensslCSRWith(t, dir, "pss", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048")), "is not supported"},
		{"DSA key", "sign-csr", csr(opensslCSRWith(t, dir, "dsa", "-paramfile", "dsa.param")), "key type DSA is not supported"},
		{"CA:true", "sign-csr", csr(csrWithExt("catrue", "basicConstraints=critical,CA:TRUE")), "CA:true"},
		{"keyCertSign", "sign-csr", csr(csrWithExt("kcs", "keyUsage=critical,keyCertSign")), "keyCertSign"},
		{"two SPIFFE URIs", "sign-csr", csr(csrWithSAN("two", "URI:spiffe://cullis.local/acme/a,URI:spiffe://cullis.local/acme/b")), "requires exactly 1"},
		{"dot-dot segment", "sign-csr", csr(csrWithSAN("dotdot", "URI:spiffe://cullis.local/acme/..")), "not a valid SPIFFE ID"},
		{"percent-encoded slash", "sign-csr", csr(csrWithSAN("pct", "URI:spiffe://cullis.local/acme/a%2fb")), "not a valid SPIFFE ID"},
		{"unicode look-alike org", "sign-csr", jsonBody(t, map[string]any{"csr": csrWithSAN("cyr", "URI:spiffe://cullis.local/\u0430cme/x")}), "could not be parsed"},
		{"ASCII look-alike org", "sign-csr", csr(csrWithSAN("acne", "URI:spiffe://cullis.local/acne/x")), "does not match the role's pattern"},
		{"wildcard SPIFFE name", "sign-csr", csr(csrWithSAN("wild", "URI:spiffe://cullis.local/acme/*")), "not a valid SPIFFE ID"},
		{"wildcard DNS name", "sign-csr", csr(csrWithSAN("wilddns", "URI:spiffe://cullis.local/acme/w,DNS:*.acme.example")), "DNS SANs"},
		{"uppercase trust domain", "sign-csr", csr(csrWithSAN("upper", "URI:spiffe://CULLIS.local/acme/x")), "not a valid SPIFFE ID"},
		{"TTL 0", "sign-csr", jsonBody(t, map[string]any{"csr": good, "ttl": 0}), "not a validity"},
		{"TTL negative", "sign-csr", jsonBody(t, map[string]any{"csr": good, "ttl": -5}), "negative"},
		{"TTL overflow", "sign-csr", jsonBody(t, map[string]any{"csr": good, "ttl": "99999999999999999999h"}), "ttl must be a duration"},
		{"csr as a number", "sign-csr", jsonBody(t, map[string]any{"csr": 42}), "not PEM"},
		{"csr as an object", "sign-csr", jsonBody(t, map[string]any{"csr": map[string]any{"pem": good}}), "csr must be a string"},
		{"cas holding a key (cas=@key.pem)", "generate", jsonBody(t, map[string]any{"org_id": "acme", "cas": "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"}), "cas must be a whole number"},
		{"unknown field on sign-csr", "sign-csr", jsonBody(t, map[string]any{"csr": good, "issuer": "org-ca"}), "unknown field(s) issuer"},
		{"unknown field on roles", "roles/agent", jsonBody(t, map[string]any{"allow_any_name": true}), "unknown field(s) allow_any_name"},
		{"unknown field on config", "config", jsonBody(t, map[string]any{"trust_domains": "evil.example"}), "unknown field(s) trust_domains"},
		{"key_pem as an array", "import", jsonBody(t, map[string]any{"key_pem": []string{"-----BEGIN PRIVATE KEY-----"}, "cert_pem": "x"}), "key_pem must be a string"},
		{"mirror data as a string", "data/org-ca", jsonBody(t, map[string]any{"data": "key"}), "data must be an object"},
		{"role widened to CertSign", "roles/agent", jsonBody(t, map[string]any{"key_usage": "DigitalSignature,CertSign"}), "not allowed for leaf certificates"},
		{"generate over the CA", "generate", jsonBody(t, map[string]any{"org_id": "acme"}), "already exists"},
		{"sign-public-key given a certificate", "sign-public-key", jsonBody(t, map[string]any{"public_key": org.CertificatePEM, "name": "x"}), "expected PUBLIC KEY"},
	}
	if len(cases) < 30 {
		t.Fatalf("only %d hostile inputs", len(cases))
	}
	before := mountState(t, mount)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "" {
				t.Fatal("every hostile input must name the refusal it expects")
			}
			status, body := rawWrite(t, mount+"/"+tc.path, tc.body)
			if status < 400 || status > 499 {
				t.Fatalf("HTTP %d, want 4xx: %.300s", status, body)
			}
			if !strings.Contains(body, `"errors"`) {
				t.Fatalf("HTTP %d with no error message: %.300s", status, body)
			}
			t.Logf("HTTP %d %.200s", status, body)
			if !strings.Contains(body, tc.want) {
				t.Fatalf("HTTP %d: %.300s; want %q", status, body, tc.want)
			}
			if strings.Contains(body, "MIGHAgEAMBMG") {
				t.Fatalf("HTTP %d: the answer quotes the key sent in a field: %.300s", status, body)
			}
		})
	}
	if after := mountState(t, mount); !reflect.DeepEqual(before, after) {
		t.Fatal("a refused hostile request changed what the mount shows")
	}
	if log := readFile(t, server.logPath); strings.Contains(log, "panic") {
		t.Fatal("the server log mentions a panic")
	}
	// And the mount still signs.
	if _, err := c.SignCSR(ctx, []byte(good), client.SignOptions{}); err != nil {
		t.Fatalf("signing after the hostile inputs: %v", err)
	}
	t.Logf("%d hostile inputs, each answered 4xx", len(cases))
}
