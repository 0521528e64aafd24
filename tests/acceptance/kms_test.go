package acceptance

import (
	"errors"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

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
