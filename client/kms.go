package client

import (
	"context"
	"crypto/x509"

	"github.com/hashicorp/vault/api"
)

// KMS is Mastio's sign-only backend: it can read the CA certificate and
// have CSRs signed inside Vault, and it has no way to ask for a private
// key. Give its token a policy with just these two paths:
//
//	path "mastio-ca/cert"                  { capabilities = ["read"] }
//	path "mastio-ca/sign-csr/agent"        { capabilities = ["update"] }
//	path "mastio-ca/sign-public-key/agent" { capabilities = ["update"] }
type KMS struct {
	c    *Client
	role string
}

// NewKMS returns a sign-only backend for the engine at mount that signs
// under role ("" for the mount's default_role).
func NewKMS(vault *api.Client, mount, role string) *KMS {
	return &KMS{c: New(vault, mount), role: role}
}

// CACertificate returns the Org CA certificate.
func (k *KMS) CACertificate(ctx context.Context) (*x509.Certificate, error) {
	ca, err := k.c.CA(ctx)
	if err != nil {
		return nil, err
	}
	return ca.Certificate, nil
}

// Sign has Vault sign a PEM CSR under the KMS's role. errors.Is(err,
// ErrPolicy) tells a refused CSR from an unreachable or sealed Vault.
func (k *KMS) Sign(ctx context.Context, csrPEM []byte) (*SignedCertificate, error) {
	return k.c.SignCSR(ctx, csrPEM, SignOptions{Role: k.role})
}

// SignPublicKey has Vault sign a bare public key for the agent name under
// the KMS's role (Mastio's enrollment: it has checked proof of possession).
func (k *KMS) SignPublicKey(ctx context.Context, publicKeyPEM []byte, name string) (*SignedCertificate, error) {
	return k.c.SignPublicKey(ctx, publicKeyPEM, PublicKeyOptions{Role: k.role, Name: name})
}
