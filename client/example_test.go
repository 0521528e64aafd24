package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net/url"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// Mastio's sign-only flow: load the CA certificate, have an agent's CSR
// signed inside Vault, and verify the chain. The token needs only
// policies/mastio-signer.hcl; no call can return a key.
func ExampleKMS() {
	ctx := context.Background()
	vault, err := api.NewClient(api.DefaultConfig()) // VAULT_ADDR, VAULT_TOKEN
	if err != nil {
		log.Fatal(err)
	}
	kms := client.NewKMS(vault, "mastio-ca", "agent")

	orgCA, err := kms.CACertificate(ctx)
	if err != nil {
		log.Fatal(err)
	}

	// The agent's key stays with the agent; only its CSR travels.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://cullis.local/acme/agent-1")
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id}}, key)
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})

	signed, err := kms.Sign(ctx, csr)
	if err != nil {
		log.Fatal(err) // errors.Is(err, client.ErrPolicy) when the role refuses the CSR
	}

	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(orgCA)
	intermediates.AddCert(signed.IssuingCA) // the intermediate, when one is active
	if _, err := signed.Certificate.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		log.Fatal(err)
	}
	fmt.Println(signed.SPIFFEID)
	// Output: spiffe://cullis.local/acme/agent-1
}

// Checking a rotation: the new intermediate was introduced by the holder of
// the previous one.
func ExampleVerifyContinuity() {
	ctx := context.Background()
	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	ca := client.New(vault, "mastio-ca")
	rotated, err := ca.RotateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.VerifyContinuity(rotated.Previous, rotated.Certificate, rotated.ContinuityProof); err != nil {
		log.Fatal(err)
	}
	fmt.Println("continuity proven")
	// Output: continuity proven
}

// The two-tier setup: the root mount (mastio-ca/, which holds the Org CA
// key; in production another, locked-down Vault) signs the intermediate of
// an issuing mount, whose key never leaves it. The issuing mount then
// holds the Org CA's certificate only, and signs agents on its own.
func ExampleClient_SetSignedIntermediate() {
	ctx := context.Background()
	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	if err := vault.Sys().Mount("mastio-issuing", &api.MountInput{Type: "mastio-ca"}); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = vault.Sys().Unmount("mastio-issuing") }()
	root, issuing := client.New(vault, "mastio-ca"), client.New(vault, "mastio-issuing")
	if _, err := issuing.WriteConfig(ctx, client.Config{OrgID: "acme"}); err != nil {
		log.Fatal(err)
	}

	pending, err := issuing.GenerateIntermediateCSR(ctx, client.IntermediateCSRRequest{})
	if err != nil {
		log.Fatal(err)
	}
	signed, err := root.SignIntermediate(ctx, []byte(pending.CSRPEM), 365*24*time.Hour)
	if err != nil {
		log.Fatal(err)
	}
	inter, err := issuing.SetSignedIntermediate(ctx, signed.CertificatePEM, signed.ChainPEM[1:], client.SetSignedOptions{})
	if err != nil {
		log.Fatal(err)
	}
	org, err := issuing.CA(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(org.Source, inter.Certificate.MaxPathLen, inter.Certificate.URIs[0])
	// Output: anchor 0 spiffe://cullis.local
}

// Revoking an agent's certificate: it enters its issuer's CRL at once, and
// the mount's OCSP responder answers revoked. The CRL and OCSP need no
// token; revoke needs policies/mastio-revoker.hcl.
func ExampleClient_Revoke() {
	ctx := context.Background()
	vault, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		log.Fatal(err)
	}
	ca := client.New(vault, "mastio-ca")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	id, _ := url.Parse("spiffe://cullis.local/acme/agent-2")
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{id}}, key)
	signed, err := ca.SignCSR(ctx, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), client.SignOptions{Role: "agent"})
	if err != nil {
		log.Fatal(err)
	}

	rev, err := ca.Revoke(ctx, client.RevokeRequest{Certificate: signed.CertificatePEM, Reason: "keyCompromise"})
	if err != nil {
		log.Fatal(err)
	}

	// The issuer's CRL, by the key id revoke answered (the CRL URL that
	// config crl_distribution_points puts in certificates names it too).
	crl, _, err := ca.CRL(ctx, rev.IssuerID, false)
	if err != nil {
		log.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(signed.IssuingCA); err != nil {
		log.Fatal(err)
	}
	listed := false
	for _, e := range crl.RevokedCertificateEntries {
		listed = listed || e.SerialNumber.Cmp(signed.Certificate.SerialNumber) == 0
	}

	status, err := ca.OCSPStatus(ctx, signed.Certificate, signed.IssuingCA)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rev.Reason, listed, status.Status == ocsp.Revoked, status.RevocationReason == ocsp.KeyCompromise)
	// Output: keyCompromise true true true
}
