package acceptance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// agentCSR makes an EC P-256 CSR with openssl for agent name under org acme.
func agentCSR(t *testing.T, dir, name string) string {
	t.Helper()
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".csr",
		"-subj", "/CN=acme::"+name+"/O=acme",
		"-addext", "subjectAltName=URI:spiffe://cullis.local/acme/"+name)
	return filepath.Join(dir, name+".csr")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parsePEMCert(t *testing.T, s string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("not a PEM certificate: %q", s)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCLI_EnableGenerateSignVerify is the operator's path, word for word:
// the vault CLI enables the plugin by its catalog name, mints a CA and signs
// an openssl CSR, and openssl verifies the result.
func TestCLI_EnableGenerateSignVerify(t *testing.T) {
	dir := t.TempDir()
	mustVault(t, dir, "secrets", "enable", "mastio-ca")
	t.Cleanup(func() { _, _ = vaultCLI(t, t.TempDir(), "secrets", "disable", "mastio-ca") })

	// The mount runs the version it was registered with.
	mounts, err := server.root.Sys().ListMountsWithContext(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := mounts["mastio-ca/"].RunningVersion; got != pluginVersion {
		t.Fatalf("running_plugin_version = %q, want %q", got, pluginVersion)
	}

	gen := mustVault(t, dir, "write", "mastio-ca/generate", "org_id=acme")
	for _, want := range []string{"fingerprint_sha256", "version", "certificate"} {
		if !strings.Contains(gen, want) {
			t.Fatalf("generate output lacks %q:\n%s", want, gen)
		}
	}
	if strings.Contains(gen, "PRIVATE KEY") {
		t.Fatal("generate printed a private key")
	}

	agentCSR(t, dir, "agent")
	leaf := mustVault(t, dir, "write", "-field=certificate", "mastio-ca/sign-csr", "csr=@agent.csr")
	if err := os.WriteFile(filepath.Join(dir, "leaf.pem"), []byte(leaf), 0o600); err != nil {
		t.Fatal(err)
	}
	caPEM := mustVault(t, dir, "read", "-field=certificate", "mastio-ca/cert")
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte(caPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustOpenSSL(t, dir, "verify", "-CAfile", "ca.pem", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	assertLints(t, caPEM, leaf)
	text := mustOpenSSL(t, dir, "x509", "-in", "leaf.pem", "-noout", "-text")
	for _, want := range []string{"CA:FALSE", "URI:spiffe://cullis.local/acme/agent", "CN = acme::agent", "O = acme"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q", want)
		}
	}

	// A second generate is refused with the current version; the CA stays.
	out, err := vaultCLI(t, dir, "write", "mastio-ca/generate", "org_id=acme")
	if err == nil || !strings.Contains(out, "409") || !strings.Contains(out, "version 1") {
		t.Fatalf("second generate: err=%v, output:\n%s", err, out)
	}
	if again := mustVault(t, dir, "read", "-field=certificate", "mastio-ca/cert"); again != caPEM {
		t.Fatal("the refused generate changed the CA certificate")
	}

	// cert/pem needs no token.
	code, body := unauthenticatedGet(t, "mastio-ca/cert/pem")
	if code != 200 || strings.TrimSpace(body) != strings.TrimSpace(caPEM) {
		t.Fatalf("GET cert/pem without token: %d %q", code, body)
	}
	// ...but sign-csr does.
	if code, _ := unauthenticatedGet(t, "mastio-ca/roles/agent"); code != 403 {
		t.Fatalf("roles/agent without token: %d, want 403", code)
	}

	help := mustVault(t, dir, "path-help", "mastio-ca/sign-csr")
	for _, want := range []string{"Sign a CSR", "csr", "ttl", "vault write mastio-ca/sign-csr"} {
		if !strings.Contains(help, want) {
			t.Errorf("path-help lacks %q:\n%s", want, help)
		}
	}
}

// TestClient_AgentProfileFieldByField signs an openssl CSR through the Go
// client and checks every field the agent profile promises.
func TestClient_AgentProfileFieldByField(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)

	if _, err := c.CA(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("CA on an empty mount: %v, want ErrNotFound", err)
	}
	ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if ca.Version != 1 || ca.Source != "generated" || ca.KeyType != "ec" || ca.KeyBits != 256 || ca.Certificate.Subject.CommonName != "acme CA" {
		t.Fatalf("generated CA: %+v", ca)
	}

	dir := t.TempDir()
	csr := readFile(t, agentCSR(t, dir, "agent-42"))
	before := time.Now()
	signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := signed.Certificate

	if got := leaf.Subject.String(); got != "CN=acme::agent-42,O=acme" {
		t.Errorf("subject = %q", got)
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://cullis.local/acme/agent-42" || signed.SPIFFEID != leaf.URIs[0].String() {
		t.Errorf("URIs = %v, spiffe_id = %q", leaf.URIs, signed.SPIFFEID)
	}
	if len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0 {
		t.Errorf("unexpected SANs")
	}
	bcCritical := false
	for _, e := range leaf.Extensions {
		if e.Id.String() == "2.5.29.19" {
			bcCritical = e.Critical
		}
	}
	if !leaf.BasicConstraintsValid || leaf.IsCA || !bcCritical {
		t.Errorf("basicConstraints: valid=%v CA=%v critical=%v", leaf.BasicConstraintsValid, leaf.IsCA, bcCritical)
	}
	if string(leaf.AuthorityKeyId) != string(ca.Certificate.SubjectKeyId) || len(leaf.AuthorityKeyId) == 0 {
		t.Errorf("AKI %x, CA SKI %x", leaf.AuthorityKeyId, ca.Certificate.SubjectKeyId)
	}
	if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 || leaf.SerialNumber.BitLen() < 100 {
		t.Errorf("serial: %d bits", leaf.SerialNumber.BitLen())
	}
	if d := leaf.NotAfter.Sub(before); d < 365*24*time.Hour-time.Minute || d > 365*24*time.Hour+time.Minute {
		t.Errorf("validity from now: %s, want 365 days", d)
	}
	if d := before.Sub(leaf.NotBefore); d < 4*time.Minute || d > 6*time.Minute {
		t.Errorf("notBefore %s before now, want 5m", d)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 1 || leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("KU %b EKU %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if err := leaf.CheckSignatureFrom(ca.Certificate); err != nil {
		t.Errorf("signature: %v", err)
	}
	if signed.IssuingCA.Equal(ca.Certificate) == false || len(signed.CAChainPEM) != 1 {
		t.Errorf("issuing_ca / ca_chain do not name the Org CA")
	}
	assertLints(t, ca.CertificatePEM, signed.CertificatePEM)

	// Refusals map to the sentinel errors.
	if _, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); !errors.Is(err, client.ErrExists) {
		t.Errorf("second Generate: %v, want ErrExists", err)
	} else if !strings.Contains(err.Error(), "version 1") {
		t.Errorf("ErrExists message lacks the version: %v", err)
	}
	bad := readFile(t, func() string {
		mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", "bad.key", "-out", "bad.csr", "-subj", "/CN=x",
			"-addext", "subjectAltName=URI:spiffe://evil.example/acme/x")
		return filepath.Join(dir, "bad.csr")
	}())
	if _, err := c.SignCSR(ctx, []byte(bad), client.SignOptions{}); !errors.Is(err, client.ErrPolicy) || !strings.Contains(err.Error(), "evil.example") {
		t.Errorf("SignCSR with a foreign trust domain: %v, want ErrPolicy naming it", err)
	}
	if _, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{TTL: 9000 * time.Hour}); !errors.Is(err, client.ErrPolicy) {
		t.Errorf("SignCSR above max_ttl: %v, want ErrPolicy", err)
	}
	if _, err := c.Role(ctx, "ghost"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Role(ghost): %v, want ErrNotFound", err)
	}
	pemBytes, err := c.CAPEM(ctx)
	if err != nil || strings.TrimSpace(string(pemBytes)) != strings.TrimSpace(ca.CertificatePEM) {
		t.Errorf("CAPEM: %v", err)
	}
}

// TestClient_ImportOpenSSLCAs imports CAs that openssl made (EC P-256 as
// SEC1 with parameters, RSA-4096 as PKCS#8) and signs under each; openssl
// verifies the chain.
func TestClient_ImportOpenSSLCAs(t *testing.T) {
	cases := []struct {
		name    string
		keyCmd  []string
		keyType string
		keyBits int
	}{
		{"ec-p256-sec1", []string{"ecparam", "-name", "prime256v1", "-genkey", "-out", "ca.key"}, "ec", 256},
		{"rsa-4096-pkcs8", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", "ca.key"}, "rsa", 4096},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			mount := newMount(t)
			c := client.New(server.root, mount)
			dir := t.TempDir()
			mustOpenSSL(t, dir, tc.keyCmd...)
			mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", "ca.key", "-days", "3650", "-out", "ca.pem",
				"-subj", "/CN=acme CA/O=acme",
				"-addext", "basicConstraints=critical,CA:TRUE,pathlen:1",
				"-addext", "keyUsage=critical,keyCertSign,cRLSign")
			keyPEM, caPEM := readFile(t, filepath.Join(dir, "ca.key")), readFile(t, filepath.Join(dir, "ca.pem"))

			res, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: caPEM})
			if err != nil {
				t.Fatal(err)
			}
			caCert := parsePEMCert(t, caPEM)
			if res.Version != 1 || res.Source != "imported" || res.KeyType != tc.keyType || res.KeyBits != tc.keyBits || res.Unchanged {
				t.Fatalf("import result: %+v", res)
			}
			if got := mustOpenSSL(t, dir, "x509", "-in", "ca.pem", "-noout", "-fingerprint", "-sha256"); !strings.Contains(strings.ToLower(strings.ReplaceAll(got, ":", "")), res.FingerprintSHA256) {
				t.Fatalf("fingerprint %s differs from openssl's %s", res.FingerprintSHA256, got)
			}
			again, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: caPEM})
			if err != nil || !again.Unchanged || again.Version != 1 {
				t.Fatalf("idempotent import: %+v, %v", again, err)
			}
			got, err := c.CA(ctx)
			if err != nil || !got.Certificate.Equal(caCert) {
				t.Fatalf("CA after import: %v", err)
			}

			csr := readFile(t, agentCSR(t, dir, "agent-1"))
			signed, err := c.SignCSR(ctx, []byte(csr), client.SignOptions{Role: "agent"})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "leaf.pem"), []byte(signed.CertificatePEM), 0o600); err != nil {
				t.Fatal(err)
			}
			if out := mustOpenSSL(t, dir, "verify", "-CAfile", "ca.pem", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
				t.Fatalf("openssl verify: %s", out)
			}
			assertLints(t, signed.CertificatePEM)
			switch tc.keyType {
			case "ec":
				if _, ok := caCert.PublicKey.(*ecdsa.PublicKey); !ok || caCert.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
					t.Fatal("openssl CA is not P-256")
				}
			case "rsa":
				if k, ok := caCert.PublicKey.(*rsa.PublicKey); !ok || k.N.BitLen() != 4096 {
					t.Fatal("openssl CA is not RSA-4096")
				}
			}
		})
	}
}

// TestKMS_SignOnlyToken gives the KMS a token whose policy allows reading
// the CA and signing, and shows that it can do that and nothing more.
func TestKMS_SignOnlyToken(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	if _, err := client.New(server.root, mount).Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	policy := `path "` + mount + `/cert" { capabilities = ["read"] }
path "` + mount + `/sign-csr/agent" { capabilities = ["update"] }`
	if err := server.root.Sys().PutPolicyWithContext(ctx, mount+"-signer", policy); err != nil {
		t.Fatal(err)
	}
	tok, err := server.root.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{mount + "-signer"}, NoDefaultPolicy: true, TTL: "10m"})
	if err != nil {
		t.Fatal(err)
	}
	signer := clientWithToken(t, tok.Auth.ClientToken)

	kms := client.NewKMS(signer, mount, "agent")
	caCert, err := kms.CACertificate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	signed, err := kms.Sign(ctx, []byte(readFile(t, agentCSR(t, dir, "kms-agent"))))
	if err != nil {
		t.Fatal(err)
	}
	if err := signed.Certificate.CheckSignatureFrom(caCert); err != nil {
		t.Fatal(err)
	}
	assertLints(t, signed.CertificatePEM)

	limited := client.New(signer, mount)
	if _, err := limited.Generate(ctx, client.GenerateRequest{OrgID: "acme", CAS: new(1)}); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("Generate with the signer token: %v, want ErrPermissionDenied", err)
	}
	if _, err := limited.SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "other"))), client.SignOptions{Role: "principal"}); !errors.Is(err, client.ErrPermissionDenied) {
		t.Fatalf("SignCSR under another role: %v, want ErrPermissionDenied", err)
	}
}

// TestClient_Sealed seals the shared server, checks that calls fail with
// ErrSealed, and unseals it again (also on failure) for the tests after it.
func TestClient_Sealed(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)
	if _, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := server.root.Sys().SealWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	unsealed := false
	t.Cleanup(func() {
		if !unsealed {
			_, _ = server.root.Sys().UnsealWithContext(ctx, server.unsealKey)
		}
	})
	if _, err := c.CA(ctx); !errors.Is(err, client.ErrSealed) {
		t.Fatalf("CA on a sealed Vault: %v, want ErrSealed", err)
	}
	st, err := server.root.Sys().UnsealWithContext(ctx, server.unsealKey)
	if err != nil || st.Sealed {
		t.Fatalf("unseal: %+v, %v", st, err)
	}
	unsealed = true
	// After unseal the same CA signs again (the key survived, sealed at rest).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ca, err := c.CA(ctx)
		if err == nil {
			if ca.Version != 1 {
				t.Fatalf("CA version after unseal = %d", ca.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CA after unseal: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAudit_KeyNeverInClear imports an openssl key with a file audit device
// on, signs under it, and searches the audit log and the server log (debug
// level, plugin logs included) for any line of the key's base64 body.
func TestAudit_KeyNeverInClear(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	auditPath := enableFileAudit(t, dir)

	mount := newMount(t)
	c := client.New(server.root, mount)
	mustOpenSSL(t, dir, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key")
	mustOpenSSL(t, dir, "req", "-x509", "-new", "-key", "ca.key", "-days", "30", "-out", "ca.pem", "-subj", "/CN=acme CA/O=acme",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
	keyPEM := readFile(t, filepath.Join(dir, "ca.key"))
	if _, err := c.Import(ctx, client.ImportRequest{KeyPEM: keyPEM, CertPEM: readFile(t, filepath.Join(dir, "ca.pem"))}); err != nil {
		t.Fatal(err)
	}
	audited, err := c.SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "audited"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	assertLints(t, audited.CertificatePEM)
	if _, err := c.CA(ctx); err != nil {
		t.Fatal(err)
	}

	audit := readFile(t, auditPath)
	if !strings.Contains(audit, mount+"/import") || !strings.Contains(audit, mount+"/sign-csr") {
		t.Fatalf("the audit log did not record the calls (%d bytes)", len(audit))
	}
	if !strings.Contains(audit, `"key_pem":"hmac-sha256:`) {
		t.Fatal("the audit log does not show key_pem as an HMAC")
	}
	serverLog := readFile(t, server.logPath)
	for _, line := range strings.Split(keyPEM, "\n") {
		if len(line) < 16 || strings.HasPrefix(line, "-----") {
			continue
		}
		// JSON escapes "/" and "+" differently; compare on a stretch of
		// plain alphanumerics from each key line.
		needle := longestAlnumRun(line)
		if len(needle) < 12 {
			continue
		}
		if strings.Contains(audit, needle) {
			t.Fatalf("the audit log holds key material in clear")
		}
		if strings.Contains(serverLog, needle) {
			t.Fatalf("the server log holds key material in clear")
		}
	}
}

func longestAlnumRun(s string) string {
	best, cur := "", ""
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			cur += string(r)
			if len(cur) > len(best) {
				best = cur
			}
		} else {
			cur = ""
		}
	}
	return best
}

// TestClient_ReplicasRaceOnFirstBoot: 16 Mastio replicas call Generate at
// once against the real server; exactly one CA is created, 15 get a
// conflict, and every certificate signed afterwards chains to that CA.
func TestClient_ReplicasRaceOnFirstBoot(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)
	const replicas = 16
	errs := make(chan error, replicas)
	fps := make(chan string, replicas)
	for i := 0; i < replicas; i++ {
		go func() {
			ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
			if err == nil {
				fps <- ca.FingerprintSHA256
			}
			errs <- err
		}()
	}
	wins, conflicts := 0, 0
	for i := 0; i < replicas; i++ {
		switch err := <-errs; {
		case err == nil:
			wins++
		case errors.Is(err, client.ErrExists):
			conflicts++
		default:
			t.Errorf("replica failed otherwise: %v", err)
		}
	}
	if wins != 1 || conflicts != replicas-1 {
		t.Fatalf("%d winners, %d conflicts; want 1 and %d", wins, conflicts, replicas-1)
	}
	ca, err := c.CA(ctx)
	if err != nil || ca.FingerprintSHA256 != <-fps || ca.Version != 1 {
		t.Fatalf("stored CA is not the winner's: %v", err)
	}
	assertLints(t, ca.CertificatePEM)

	// Every replica signs now, concurrently, and every leaf chains to it.
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "replica")))
	leaves := make(chan *client.SignedCertificate, replicas)
	for i := 0; i < replicas; i++ {
		go func() {
			s, err := c.SignCSR(ctx, csr, client.SignOptions{})
			if err != nil {
				t.Error(err)
			}
			leaves <- s
		}()
	}
	for i := 0; i < replicas; i++ {
		if s := <-leaves; s != nil {
			if err := s.Certificate.CheckSignatureFrom(ca.Certificate); err != nil {
				t.Errorf("a replica's certificate does not chain to the one CA: %v", err)
			}
		}
	}
}

// opensslMayFail runs openssl and returns its output and error, for checks
// that expect a refusal.
func opensslMayFail(dir string, args ...string) (string, error) {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestClient_BatchSigning: 10 CSRs in one request, one of them refused.
func TestClient_BatchSigning(t *testing.T) {
	ctx := t.Context()
	_, c, ca, _ := newCA(t, false)
	dir := t.TempDir()
	csrs := make([][]byte, 10)
	for i := range csrs {
		csrs[i] = []byte(readFile(t, agentCSR(t, dir, fmt.Sprintf("batch-%d", i))))
	}
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "bad.key", "-out", "bad.csr", "-subj", "/CN=x", "-addext", "subjectAltName=DNS:evil.example")
	csrs[4] = []byte(readFile(t, filepath.Join(dir, "bad.csr")))
	results, err := c.SignCSRBatch(ctx, csrs, client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 10 {
		t.Fatalf("%d results", len(results))
	}
	for i, r := range results {
		switch {
		case i == 4:
			if !errors.Is(r.Err, client.ErrPolicy) || !strings.Contains(r.Err.Error(), "csrs[4]") {
				t.Fatalf("the bad CSR: %v", r.Err)
			}
		case r.Err != nil || r.Certificate.Certificate.CheckSignatureFrom(ca.Certificate) != nil:
			t.Fatalf("CSR %d: %v", i, r.Err)
		case r.Certificate.SPIFFEID != fmt.Sprintf("spiffe://cullis.local/acme/batch-%d", i):
			t.Fatalf("CSR %d signed as %s", i, r.Certificate.SPIFFEID)
		default:
			assertLints(t, r.Certificate.CertificatePEM)
		}
	}
}
