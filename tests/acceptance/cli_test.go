package acceptance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
