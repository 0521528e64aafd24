package backend

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestGenerate_DefaultProfile(t *testing.T) {
	b, s := getTestBackend(t)
	before := time.Now()
	resp := generateCA(t, b, s)

	cert := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
	if cert.Subject.CommonName != "acme CA" || len(cert.Subject.Organization) != 1 || cert.Subject.Organization[0] != "acme" {
		t.Errorf("subject = %q, want CN=acme CA, O=acme", cert.Subject)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Errorf("key = %T, want EC P-256", cert.PublicKey)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.MaxPathLen != 1 {
		t.Errorf("basicConstraints: valid=%v CA=%v pathLen=%d, want CA pathLen 1", cert.BasicConstraintsValid, cert.IsCA, cert.MaxPathLen)
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage = %b, want keyCertSign|cRLSign", cert.KeyUsage)
	}
	for _, ext := range cert.Extensions {
		if (ext.Id.Equal(issuing.OIDExtBasicConstraints) || ext.Id.Equal(issuing.OIDExtKeyUsage)) && !ext.Critical {
			t.Errorf("extension %v is not critical", ext.Id)
		}
	}
	if len(cert.SubjectKeyId) != 20 {
		t.Errorf("SKI length = %d, want 20", len(cert.SubjectKeyId))
	}
	if bits := cert.SerialNumber.BitLen(); bits < 100 || bits > 128 || cert.SerialNumber.Sign() <= 0 {
		t.Errorf("serial has %d bits (sign %d), want positive and at most 128", bits, cert.SerialNumber.Sign())
	}
	if d := before.Add(-issuing.CABackdate).Sub(cert.NotBefore); d > 2*time.Second || d < -2*time.Second {
		t.Errorf("notBefore = %s, want about now-5m", cert.NotBefore)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got < issuing.DefaultCATTL || got > issuing.DefaultCATTL+issuing.CABackdate+time.Minute {
		t.Errorf("validity = %s, want 15 years", got)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if resp.Data["version"] != 1 || resp.Data["source"] != sourceGenerated || resp.Data["key_type"] != "ec" || resp.Data["key_bits"] != 256 {
		t.Errorf("metadata = %v", resp.Data)
	}
	assertNoKeyMaterial(t, b, s, resp)
}

// assertNoKeyMaterial checks that neither the response nor anything but the
// seal-wrapped CA entry holds the private key bytes.
func assertNoKeyMaterial(t *testing.T, b *mastioBackend, s logical.Storage, resp *logical.Response) {
	t.Helper()
	e, err := readCA(t.Context(), s, orgCA)
	if err != nil || e == nil {
		t.Fatalf("read CA: %v", err)
	}
	raw, _ := json.Marshal(resp.Data)
	keyB64, _ := json.Marshal(e.KeyPKCS8)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: e.KeyPKCS8}))
	for _, needle := range []string{strings.Trim(string(keyB64), `"`), keyPEM, "PRIVATE KEY"} {
		if bytes.Contains(raw, []byte(needle)) {
			t.Fatal("response carries key material")
		}
	}
	for k, v := range snapshot(t, s) {
		if k != orgCA.storageKey() && strings.Contains(v, strings.Trim(string(keyB64), `"`)) {
			t.Fatalf("storage entry %q outside the seal-wrapped prefix holds the key", k)
		}
	}
}

func TestGenerate_KeyTypes(t *testing.T) {
	cases := []struct {
		keyType string
		bits    int
		want    func(any) bool
		report  int
	}{
		{"ec", 0, func(k any) bool { p, ok := k.(*ecdsa.PublicKey); return ok && p.Curve == elliptic.P256() }, 256},
		{"ec", 384, func(k any) bool { p, ok := k.(*ecdsa.PublicKey); return ok && p.Curve == elliptic.P384() }, 384},
		{"rsa", 2048, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 2048 }, 2048},
		{"rsa", 3072, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 3072 }, 3072},
		{"ed25519", 0, func(k any) bool { _, ok := k.(ed25519.PublicKey); return ok }, 256},
	}
	if !testing.Short() {
		cases = append(cases, struct {
			keyType string
			bits    int
			want    func(any) bool
			report  int
		}{"rsa", 4096, func(k any) bool { p, ok := k.(*rsa.PublicKey); return ok && p.N.BitLen() == 4096 }, 4096})
	}
	for _, tc := range cases {
		t.Run(tc.keyType+"-"+itoa(tc.bits), func(t *testing.T) {
			b, s := getTestBackend(t)
			data := map[string]any{"org_id": "acme", "key_type": tc.keyType}
			if tc.bits != 0 {
				data["key_bits"] = tc.bits
			}
			resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", data))
			cert := testpki.ParseCertPEM(t, resp.Data["certificate"].(string))
			if !tc.want(cert.PublicKey) {
				t.Fatalf("public key %T is not %s/%d", cert.PublicKey, tc.keyType, tc.bits)
			}
			if resp.Data["key_type"] != tc.keyType || resp.Data["key_bits"] != tc.report {
				t.Fatalf("reported %v/%v", resp.Data["key_type"], resp.Data["key_bits"])
			}
			// The CA signs an agent certificate that verifies under it.
			sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
			leaf := testpki.ParseCertPEM(t, sig.Data["certificate"].(string))
			if err := leaf.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("leaf does not verify under the %s CA: %v", tc.keyType, err)
			}
		})
	}
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestGenerate_CreateOnlyAndCAS(t *testing.T) {
	b, s := getTestBackend(t)
	first := generateCA(t, b, s)

	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme"}, http.StatusConflict, "version 1", "pass cas=1")
	cur := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	if cur.Data["fingerprint_sha256"] != first.Data["fingerprint_sha256"] {
		t.Fatal("a refused generate changed the CA")
	}

	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "cas": 7}, http.StatusConflict, "cas=7 but the current Org CA version is 1")

	second := mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "cas": 1}))
	if second.Data["version"] != 2 || second.Data["fingerprint_sha256"] == first.Data["fingerprint_sha256"] {
		t.Fatalf("replace with cas=1: version %v, same fingerprint %v", second.Data["version"], second.Data["fingerprint_sha256"] == first.Data["fingerprint_sha256"])
	}
}

func TestGenerate_CASOnEmptyMount(t *testing.T) {
	b, s := getTestBackend(t)
	assertRefused(t, b, s, "generate", map[string]any{"org_id": "acme", "cas": 3}, http.StatusConflict, "no Org CA exists (version 0)")
	mustOK(t, request(t, b, s, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme", "cas": 0}))
}

func TestImport_Formats(t *testing.T) {
	ecKey := testpki.NewECKey(t, elliptic.P256()).(*ecdsa.PrivateKey)
	rsaKey := testpki.NewRSAKey(t, 2048).(*rsa.PrivateKey)
	edKey := testpki.NewEd25519Key(t)
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		key    crypto.Signer
		keyPEM string
	}{
		{"pkcs8-ec", ecKey, testpki.PKCS8PEM(t, ecKey)},
		// As `openssl ecparam -genkey` writes it: parameters, then SEC1.
		{"sec1-ec-with-params", ecKey, "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" + string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}))},
		{"pkcs1-rsa", rsaKey, string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))},
		{"pkcs8-ed25519", edKey, testpki.PKCS8PEM(t, edKey)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, s := getTestBackend(t)
			_, certText := testpki.ValidCA(t, tc.key)
			resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": tc.keyPEM, "cert_pem": certText}))
			cert := testpki.ParseCertPEM(t, certText)
			if resp.Data["fingerprint_sha256"] != issuing.FingerprintSHA256(cert.Raw) || resp.Data["version"] != 1 || resp.Data["source"] != sourceImported || resp.Data["unchanged"] != false {
				t.Fatalf("import response = %v", resp.Data)
			}
			if _, ok := resp.Data["certificate"]; ok {
				t.Fatal("import returned more than fingerprints")
			}
			assertNoKeyMaterial(t, b, s, resp)

			// The org_id came from the certificate's O; signing works under it.
			sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
			leaf := testpki.ParseCertPEM(t, sig.Data["certificate"].(string))
			if err := leaf.CheckSignatureFrom(cert); err != nil {
				t.Fatalf("leaf does not verify under the imported CA: %v", err)
			}

			// Identical input again: success, no new version, no write.
			before := snapshot(t, s)
			again := mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": tc.keyPEM, "cert_pem": certText}))
			if again.Data["unchanged"] != true || again.Data["version"] != 1 {
				t.Fatalf("idempotent import response = %v", again.Data)
			}
			assertUnchanged(t, before, s)
		})
	}
}

func TestImport_CreateOnly(t *testing.T) {
	b, s := getTestBackend(t)
	keyA, certA := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	keyB, certB := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P384()))
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": keyA, "cert_pem": certA}))

	before := snapshot(t, s)
	assertRefused(t, b, s, "import", map[string]any{"key_pem": keyB, "cert_pem": certB}, http.StatusConflict, "version 1", "pass cas=1")
	assertUnchanged(t, before, s)

	resp := mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": keyB, "cert_pem": certB, "cas": 1}))
	if resp.Data["version"] != 2 || resp.Data["fingerprint_sha256"] != issuing.FingerprintSHA256(testpki.ParseCertPEM(t, certB).Raw) {
		t.Fatalf("import with cas=1: %v", resp.Data)
	}
	cur := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	if cur.Data["version"] != 2 || cur.Data["key_type"] != "ec" || cur.Data["key_bits"] != 384 {
		t.Fatalf("cert after replace: %v", cur.Data)
	}
}

func TestImport_WithChain(t *testing.T) {
	b, s := getTestBackend(t)
	rootKey := testpki.NewECKey(t, elliptic.P384())
	root := testpki.MakeCert(t, testpki.CACert{Key: rootKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign})
	subKey := testpki.NewECKey(t, elliptic.P256())
	sub := testpki.MakeCert(t, testpki.CACert{Key: subKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign, Org: "acme", Parent: root, ParentKey: rootKey})
	mustOK(t, request(t, b, s, logical.UpdateOperation, "import", map[string]any{"key_pem": testpki.PKCS8PEM(t, subKey), "cert_pem": testpki.CertPEM(sub), "chain_pem": testpki.CertPEM(root)}))

	resp := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	chain := resp.Data["ca_chain"].([]string)
	if len(chain) != 2 || chain[0] != testpki.CertPEM(sub) || chain[1] != testpki.CertPEM(root) {
		t.Fatalf("ca_chain has %d entries, want [sub, root]", len(chain))
	}
	sig := mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))
	if got := sig.Data["ca_chain"].([]string); len(got) != 2 {
		t.Fatalf("sign ca_chain has %d entries, want 2", len(got))
	}
}

func TestGenerate_BadInput(t *testing.T) {
	runBadInputs(t, false, []badInput{
		{name: "missing org_id", path: "generate", data: map[string]any{}, want: "org_id is required"},
		{name: "org_id with slash", path: "generate", data: map[string]any{"org_id": "a/b"}, want: `org_id "a/b" is not valid`},
		{name: "unknown key_type", path: "generate", data: map[string]any{"org_id": "acme", "key_type": "dsa"}, want: `unknown key_type "dsa"`},
		{name: "rsa 1024", path: "generate", data: map[string]any{"org_id": "acme", "key_type": "rsa", "key_bits": 1024}, want: "key_bits 1024 is not valid for key_type rsa"},
		{name: "ec 521", path: "generate", data: map[string]any{"org_id": "acme", "key_bits": 521}, want: "key_bits 521 is not valid for key_type ec"},
		{name: "ed25519 with bits", path: "generate", data: map[string]any{"org_id": "acme", "key_type": "ed25519", "key_bits": 4096}, want: "not valid for key_type ed25519"},
		{name: "ttl too short", path: "generate", data: map[string]any{"org_id": "acme", "ttl": "1h"}, want: "ttl 1h0m0s is out of range"},
		{name: "path_len out of range", path: "generate", data: map[string]any{"org_id": "acme", "path_len": 99}, want: "path_len 99 is out of range"},
		{name: "common_name too long", path: "generate", data: map[string]any{"org_id": "acme", "common_name": strings.Repeat("x", 65)}, want: "at most 64"},
		{name: "unknown field", path: "generate", data: map[string]any{"org_id": "acme", "keytype": "rsa"}, want: "unknown field(s) keytype"},
		{name: "org_id differs from config", path: "generate", data: map[string]any{"org_id": "other"}, want: `differs from config org_id "acme"`,
			setup: func(t *testing.T, b *mastioBackend, s logical.Storage) {
				mustOK(t, request(t, b, s, logical.UpdateOperation, "config", map[string]any{"org_id": "acme"}))
			}},
	})
}

func TestImport_BadInput(t *testing.T) {
	ecKey := testpki.NewECKey(t, elliptic.P256())
	goodKey, goodCert := testpki.ValidCA(t, ecKey)
	_, otherCert := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	rsa1024 := testpki.NewRSAKey(t, 1024)
	p224 := testpki.NewECKey(t, elliptic.P224())
	p224DER, err := x509.MarshalECPrivateKey(p224.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	leafCert := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: ecKey, IsCA: false, KeyUsage: x509.KeyUsageDigitalSignature}))
	noCertSign := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: ecKey, IsCA: true, KeyUsage: x509.KeyUsageCRLSign}))
	expired := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: ecKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
	future := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: ecKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(48 * time.Hour)}))
	encrypted := string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}}))
	legacyEncrypted := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte{1, 2, 3}}))
	_, unrelatedRoot := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	noOrgCert := testpki.CertPEM(testpki.MakeCert(t, testpki.CACert{Key: ecKey, IsCA: true, KeyUsage: x509.KeyUsageCertSign}))
	noSKI := opensslCANoSKI(t, goodKey)

	runBadInputs(t, false, []badInput{
		{name: "missing key_pem", path: "import", data: map[string]any{"cert_pem": goodCert}, want: "key_pem is required"},
		{name: "missing cert_pem", path: "import", data: map[string]any{"key_pem": goodKey}, want: "cert_pem is required"},
		{name: "garbage key", path: "import", data: map[string]any{"key_pem": "hello", "cert_pem": goodCert}, want: "key_pem is not PEM"},
		{name: "corrupt key DER", path: "import", data: map[string]any{"key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x01}})), "cert_pem": goodCert}, want: "could not be parsed"},
		{name: "certificate as key", path: "import", data: map[string]any{"key_pem": goodCert, "cert_pem": goodCert}, want: "is not a private key"},
		{name: "two keys", path: "import", data: map[string]any{"key_pem": goodKey + goodKey, "cert_pem": goodCert}, want: "more than one PEM block"},
		{name: "encrypted PKCS#8", path: "import", data: map[string]any{"key_pem": encrypted, "cert_pem": goodCert}, want: "key_pem is encrypted"},
		{name: "encrypted legacy PEM", path: "import", data: map[string]any{"key_pem": legacyEncrypted, "cert_pem": goodCert}, want: "key_pem is encrypted"},
		{name: "RSA-1024 key", path: "import", data: map[string]any{"key_pem": testpki.PKCS8PEM(t, rsa1024), "cert_pem": goodCert}, want: "RSA key of 1024 bits is too weak"},
		{name: "P-224 key", path: "import", data: map[string]any{"key_pem": string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: p224DER})), "cert_pem": goodCert}, want: "EC curve with 224 bits is not accepted"},
		{name: "garbage cert", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": "nope"}, want: "cert_pem is not PEM"},
		{name: "key/cert mismatch", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": otherCert}, want: "key_pem does not match cert_pem"},
		{name: "two certs", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": goodCert + otherCert}, want: "cert_pem holds 2 certificates"},
		{name: "not a CA", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": leafCert}, want: "not a CA certificate"},
		{name: "no keyCertSign", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": noCertSign}, want: "keyCertSign is required"},
		{name: "expired CA", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": expired}, want: "cert_pem expired at"},
		{name: "not yet valid", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": future}, want: "is not valid until"},
		{name: "chain does not sign", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": goodCert, "chain_pem": unrelatedRoot}, want: "did not sign"},
		{name: "bad org_id", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": goodCert, "org_id": "a b"}, want: "is not valid"},
		{name: "unknown field", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": goodCert, "chain": "x"}, want: "unknown field(s) chain"},
		{name: "no org_id anywhere", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": noOrgCert}, want: "org_id is required"},
		{name: "no SKI", path: "import", data: map[string]any{"key_pem": goodKey, "cert_pem": noSKI}, want: "has no subjectKeyIdentifier"},
		{name: "key_pem not a string", path: "import", data: map[string]any{"key_pem": []any{goodKey}, "cert_pem": goodCert}, want: "key_pem must be a string"},
		{name: "key_pem an object", path: "import", data: map[string]any{"key_pem": map[string]any{"k": goodKey}, "cert_pem": goodCert}, want: "key_pem must be a string"},
	})
}

// Replicas racing on first boot: of many concurrent generates and imports
// exactly one wins; the rest get a 409 and the winner's CA stays.
func TestGenerate_ConcurrentFirstBoot(t *testing.T) {
	b, s := getTestBackend(t)
	const n = 16
	keyPEM, certText := testpki.ValidCA(t, testpki.NewECKey(t, elliptic.P256()))
	type result struct {
		status int
		fp     any
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, data := "generate", map[string]any{"org_id": "acme"}
			if i%2 == 1 {
				path, data = "import", map[string]any{"key_pem": keyPEM, "cert_pem": certText}
			}
			resp, err := requestErr(b, s, logical.UpdateOperation, path, data)
			switch {
			case err != nil:
				results <- result{status: 500}
			case resp.Data[logical.HTTPStatusCode] == http.StatusConflict:
				results <- result{status: 409}
			case resp.IsError():
				results <- result{status: 400}
			default:
				results <- result{status: 200, fp: resp.Data["fingerprint_sha256"]}
			}
		}()
	}
	wg.Wait()
	close(results)
	var winners []any
	conflicts := 0
	for r := range results {
		switch r.status {
		case 200:
			winners = append(winners, r.fp)
		case 409:
			conflicts++
		default:
			t.Errorf("unexpected status %d", r.status)
		}
	}
	// Identical imports after an import won are idempotent successes, so
	// count distinct winning CAs, not successes.
	distinct := map[any]bool{}
	for _, fp := range winners {
		distinct[fp] = true
	}
	if len(distinct) != 1 || len(winners)+conflicts != n {
		t.Fatalf("%d distinct winners (%d successes), %d conflicts; want one CA", len(distinct), len(winners), conflicts)
	}
	cur := mustOK(t, request(t, b, s, logical.ReadOperation, "cert", nil))
	if !distinct[cur.Data["fingerprint_sha256"]] || cur.Data["version"] != 1 {
		t.Fatalf("stored CA %v is not the winner", cur.Data["fingerprint_sha256"])
	}
}

// opensslCANoSKI has openssl make a CA certificate without a subject key
// identifier (Go always adds one to CA certificates).
func opensslCANoSKI(t *testing.T, keyPEM string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("openssl", "req", "-x509", "-new", "-key", "ca.key", "-days", "30", "-out", "ca.pem",
		"-subj", "/CN=no ski/O=acme", "-addext", "basicConstraints=critical,CA:TRUE",
		"-addext", "keyUsage=critical,keyCertSign", "-addext", "subjectKeyIdentifier=none")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl (installed by `make deps`): %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if c := testpki.ParseCertPEM(t, string(b)); len(c.SubjectKeyId) != 0 {
		t.Fatal("openssl added a SKI after all")
	}
	return string(b)
}
