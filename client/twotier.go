package client

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"
)

// The two-tier setup (docs/spiffe.md): an issuing mount makes its
// intermediate's key and a CSR (GenerateIntermediateCSR), the root mount
// signs it (SignIntermediate), the issuing mount activates the certificate
// (SetSignedIntermediate).

const (
	opGenerateIntermediateCSR = "intermediate/generate-csr"
	opSetSignedIntermediate   = "intermediate/set-signed"
	opSignIntermediate        = "root/sign-intermediate"
	opBundle                  = "bundle"
)

// IntermediateCSRRequest are the options of intermediate/generate-csr.
// Zero values take the engine's defaults (EC P-256, "<org_id> Mastio CA").
type IntermediateCSRRequest struct {
	KeyType    string
	KeyBits    int
	CommonName string
	// CAS replaces a pending key whose version is this; nil creates one
	// only when none is pending.
	CAS *int
}

// PendingIntermediate is a key waiting on the issuing mount for its
// certificate: only its CSR leaves.
type PendingIntermediate struct {
	CSRPEM          string
	CSR             *x509.CertificateRequest
	PublicKeySHA256 string
	Version         int
	CreatedAt       time.Time
}

// GenerateIntermediateCSR makes the intermediate's key on this (issuing)
// mount and returns its CSR for the root mount to sign. ErrExists when a
// key is pending and CAS does not name its version.
func (c *Client) GenerateIntermediateCSR(ctx context.Context, r IntermediateCSRRequest) (*PendingIntermediate, error) {
	data := map[string]any{}
	setIf(data, "key_type", r.KeyType)
	setIf(data, "common_name", r.CommonName)
	if r.KeyBits != 0 {
		data["key_bits"] = r.KeyBits
	}
	if r.CAS != nil {
		data["cas"] = *r.CAS
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("intermediate/generate-csr"), data)
	if err != nil {
		return nil, wrapErr(opGenerateIntermediateCSR, err)
	}
	if s == nil {
		return nil, &Error{Op: opGenerateIntermediateCSR, err: fmt.Errorf("empty response")}
	}
	var w struct {
		CSR             string    `json:"csr"`
		PublicKeySHA256 string    `json:"public_key_sha256"`
		Version         int       `json:"version"`
		CreatedAt       time.Time `json:"created_at"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opGenerateIntermediateCSR, err: err}
	}
	block, _ := pem.Decode([]byte(w.CSR))
	if block == nil {
		return nil, &Error{Op: opGenerateIntermediateCSR, err: fmt.Errorf("response holds no PEM CSR")}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, &Error{Op: opGenerateIntermediateCSR, err: err}
	}
	return &PendingIntermediate{CSRPEM: w.CSR, CSR: csr, PublicKeySHA256: w.PublicKeySHA256, Version: w.Version, CreatedAt: w.CreatedAt}, nil
}

// SignedCA is root/sign-intermediate's answer.
type SignedCA struct {
	Certificate    *x509.Certificate
	CertificatePEM string
	// ChainPEM is ca_chain: the new certificate first, the Org CA last.
	ChainPEM []string
	Warnings []string
}

// SignIntermediate has this (root) mount's Org CA sign another CA's CSR
// under root/profile; ttl 0 takes the profile's. A refusal is ErrPolicy.
func (c *Client) SignIntermediate(ctx context.Context, csrPEM []byte, ttl time.Duration) (*SignedCA, error) {
	data := map[string]any{"csr": string(csrPEM)}
	if ttl != 0 {
		data["ttl"] = int64(ttl / time.Second)
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("root/sign-intermediate"), data)
	if err != nil {
		return nil, wrapErr(opSignIntermediate, err)
	}
	if s == nil {
		return nil, &Error{Op: opSignIntermediate, err: fmt.Errorf("empty response")}
	}
	var w struct {
		Certificate string   `json:"certificate"`
		CAChain     []string `json:"ca_chain"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opSignIntermediate, err: err}
	}
	cert, err := parseCertPEM(w.Certificate)
	if err != nil {
		return nil, &Error{Op: opSignIntermediate, err: err}
	}
	return &SignedCA{Certificate: cert, CertificatePEM: w.Certificate, ChainPEM: w.CAChain, Warnings: s.Warnings}, nil
}

// SetSignedOptions are the options of intermediate/set-signed.
type SetSignedOptions struct {
	// CAS is the create-only rule: nil activates the first intermediate;
	// a rotation (an intermediate is active) takes its version.
	CAS *int
	// Grace is how long a rotated-out intermediate stays published; nil
	// is the engine's 14 days, 0 ends it now (after a compromise).
	Grace *time.Duration
	// DropEarlier ends the grace of every earlier rotated-out one too.
	DropEarlier bool
	// OrgCACAS replaces this mount's Org CA certificate (an anchor) of
	// that version by the one in chainPEM, after the root replaced its
	// Org CA.
	OrgCACAS *int
}

// SetSignedIntermediate activates, on this (issuing) mount, the
// certificate the root mount signed for the pending key. chainPEM holds
// the Org CA certificate (root/sign-intermediate's ca_chain after the
// first entry); it may be empty once the mount has an Org CA. The result
// carries ContinuityProof when it replaced an active intermediate.
func (c *Client) SetSignedIntermediate(ctx context.Context, certPEM string, chainPEM []string, opts SetSignedOptions) (*Intermediate, error) {
	data := map[string]any{"certificate": certPEM}
	if len(chainPEM) > 0 {
		data["ca_chain"] = strings.Join(chainPEM, "\n")
	}
	if opts.Grace != nil {
		data["grace_period"] = int64(*opts.Grace / time.Second)
	}
	if opts.DropEarlier {
		data["drop_earlier"] = true
	}
	if opts.CAS != nil {
		data["cas"] = *opts.CAS
	}
	if opts.OrgCACAS != nil {
		data["org_ca_cas"] = *opts.OrgCACAS
	}
	return c.writeIntermediate(ctx, opSetSignedIntermediate, "intermediate/set-signed", data)
}

// BundleJSON reads the trust domain's SPIFFE bundle (JWKS) from the
// bundle endpoint, for go-spiffe's spiffebundle.Parse. No token is needed.
func (c *Client) BundleJSON(ctx context.Context) ([]byte, error) {
	resp, err := c.vault.Logical().ReadRawWithContext(ctx, c.path("bundle"))
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, wrapErr(opBundle, err)
	}
	return io.ReadAll(resp.Body)
}
