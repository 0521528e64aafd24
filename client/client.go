// Package client is a Go client for the mastio-ca Vault secrets engine,
// built on github.com/hashicorp/vault/api. Every method takes a context
// first, returns parsed certificates beside their PEM, and reports Vault's
// refusals as *Error values that match the package's sentinel errors.
//
//	vc, _ := api.NewClient(api.DefaultConfig())
//	ca := client.New(vc, "mastio-ca")
//	cert, err := ca.SignCSR(ctx, csrPEM, client.SignOptions{Role: "agent"})
//	if errors.Is(err, client.ErrPolicy) { ... }
package client

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Operation names used in errors.
const (
	opConfig               = "config"
	opWriteConfig          = "write config"
	opGenerate             = "generate"
	opImport               = "import"
	opImportIntermediate   = "intermediate/import"
	opIntermediateCA       = "intermediate/cert"
	opKVExport             = "kv-export"
	opCA                   = "cert"
	opCAPEM                = "cert/pem"
	opRole                 = "read role"
	opWriteRole            = "write role"
	opDeleteRole           = "delete role"
	opListRoles            = "list roles"
	opSignCSR              = "sign-csr"
	opSignPublicKey        = "sign-public-key"
	opGenerateIntermediate = "intermediate/generate"
	opRotateIntermediate   = "intermediate/rotate"
)

// Client talks to one mastio-ca mount.
type Client struct {
	vault *api.Client
	mount string
}

// New returns a client for the engine mounted at mount (e.g. "mastio-ca").
func New(vault *api.Client, mount string) *Client {
	return &Client{vault: vault, mount: strings.Trim(mount, "/")}
}

func (c *Client) path(p string) string { return c.mount + "/" + p }

// Config is the mount configuration.
type Config struct {
	OrgID        string `json:"org_id"`
	TrustDomain  string `json:"trust_domain"`
	DefaultRole  string `json:"default_role"`
	LeafNotAfter string `json:"leaf_not_after"`
}

// Config reads the mount configuration.
func (c *Client) Config(ctx context.Context) (*Config, error) {
	s, err := c.vault.Logical().ReadWithContext(ctx, c.path("config"))
	if err != nil {
		return nil, wrapErr(opConfig, err)
	}
	if s == nil {
		return nil, notFound(opConfig)
	}
	var cfg Config
	if err := decode(s.Data, &cfg); err != nil {
		return nil, &Error{Op: opConfig, err: err}
	}
	return &cfg, nil
}

// WriteConfig updates the fields of cfg that are not empty.
func (c *Client) WriteConfig(ctx context.Context, cfg Config) (*Config, error) {
	data := map[string]any{}
	for k, v := range map[string]string{"org_id": cfg.OrgID, "trust_domain": cfg.TrustDomain, "default_role": cfg.DefaultRole, "leaf_not_after": cfg.LeafNotAfter} {
		if v != "" {
			data[k] = v
		}
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("config"), data)
	if err != nil {
		return nil, wrapErr(opWriteConfig, err)
	}
	var out Config
	if s != nil {
		if err := decode(s.Data, &out); err != nil {
			return nil, &Error{Op: opWriteConfig, err: err}
		}
	}
	return &out, nil
}

// CA is the Org CA as the cert path (and generate) describe it.
type CA struct {
	Certificate       *x509.Certificate
	CertificatePEM    string
	Chain             []*x509.Certificate // the CA certificate first
	ChainPEM          []string
	FingerprintSHA256 string
	SerialNumber      string
	NotBefore         time.Time
	NotAfter          time.Time
	KeyType           string
	KeyBits           int
	Source            string // "generated", "imported", or "anchor" (the certificate only; the key is on a root mount)
	Version           int    // the value cas must carry to replace it
	KVExport          bool   // whether the KV mirror serves the key
}

type caWire struct {
	Certificate       string    `json:"certificate"`
	CAChain           []string  `json:"ca_chain"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	SerialNumber      string    `json:"serial_number"`
	NotBefore         time.Time `json:"not_before"`
	NotAfter          time.Time `json:"not_after"`
	KeyType           string    `json:"key_type"`
	KeyBits           int       `json:"key_bits"`
	Source            string    `json:"source"`
	Version           int       `json:"version"`
	KVExport          bool      `json:"kv_export"`
}

func parseCA(op string, data map[string]any) (*CA, error) {
	var w caWire
	if err := decode(data, &w); err != nil {
		return nil, &Error{Op: op, err: err}
	}
	cert, err := parseCertPEM(w.Certificate)
	if err != nil {
		return nil, &Error{Op: op, err: err}
	}
	ca := &CA{
		Certificate: cert, CertificatePEM: w.Certificate, ChainPEM: w.CAChain,
		FingerprintSHA256: w.FingerprintSHA256, SerialNumber: w.SerialNumber,
		NotBefore: w.NotBefore, NotAfter: w.NotAfter, KeyType: w.KeyType, KeyBits: w.KeyBits,
		Source: w.Source, Version: w.Version, KVExport: w.KVExport,
	}
	for _, p := range w.CAChain {
		c, err := parseCertPEM(p)
		if err != nil {
			return nil, &Error{Op: op, err: err}
		}
		ca.Chain = append(ca.Chain, c)
	}
	return ca, nil
}

// GenerateRequest are the options of generate. Zero values take the
// engine's defaults (EC P-256, "<org_id> CA", 15 years, pathLen 1).
type GenerateRequest struct {
	OrgID      string
	CommonName string
	KeyType    string // "ec", "rsa" or "ed25519"
	KeyBits    int
	TTL        time.Duration
	PathLen    *int
	// CAS, when set, replaces an existing CA of exactly this version.
	CAS *int
}

// Generate mints the Org CA inside Vault. It fails with ErrExists when a CA
// exists and CAS does not name its version.
func (c *Client) Generate(ctx context.Context, r GenerateRequest) (*CA, error) {
	data := map[string]any{}
	setIf(data, "org_id", r.OrgID)
	setIf(data, "common_name", r.CommonName)
	setIf(data, "key_type", r.KeyType)
	if r.KeyBits != 0 {
		data["key_bits"] = r.KeyBits
	}
	if r.TTL != 0 {
		data["ttl"] = int64(r.TTL / time.Second)
	}
	if r.PathLen != nil {
		data["path_len"] = *r.PathLen
	}
	if r.CAS != nil {
		data["cas"] = *r.CAS
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path("generate"), data)
	if err != nil {
		return nil, wrapErr(opGenerate, err)
	}
	if s == nil {
		return nil, &Error{Op: opGenerate, err: fmt.Errorf("empty response")}
	}
	return parseCA(opGenerate, s.Data)
}

// ImportRequest is an existing CA to move into Vault.
type ImportRequest struct {
	KeyPEM   string // PKCS#8, SEC1 or PKCS#1, unencrypted
	CertPEM  string
	ChainPEM string // Org CA only
	OrgID    string // Org CA only
	// KVExport lets the KV mirror serve the key, for a cut-over from a
	// Mastio that still loads it. It can later be turned off, never on.
	KVExport bool
	CAS      *int
}

// ImportResult identifies the imported CA; the key is never echoed.
type ImportResult struct {
	FingerprintSHA256          string `json:"fingerprint_sha256"`
	PublicKeyFingerprintSHA256 string `json:"public_key_fingerprint_sha256"`
	SerialNumber               string `json:"serial_number"`
	KeyType                    string `json:"key_type"`
	KeyBits                    int    `json:"key_bits"`
	Version                    int    `json:"version"`
	Source                     string `json:"source"`
	KVExport                   bool   `json:"kv_export"`
	// Unchanged is true when the same key and certificate were already stored.
	Unchanged bool      `json:"unchanged"`
	NotAfter  time.Time `json:"not_after"`
}

// Import moves an existing Org CA key and certificate into Vault. Importing
// the stored CA again succeeds with Unchanged set.
func (c *Client) Import(ctx context.Context, r ImportRequest) (*ImportResult, error) {
	return c.importCA(ctx, opImport, "import", r)
}

// ImportIntermediate moves an existing Mastio Intermediate CA into Vault; it
// must be signed by the stored Org CA.
func (c *Client) ImportIntermediate(ctx context.Context, r ImportRequest) (*ImportResult, error) {
	return c.importCA(ctx, opImportIntermediate, "intermediate/import", r)
}

func (c *Client) importCA(ctx context.Context, op, path string, r ImportRequest) (*ImportResult, error) {
	data := map[string]any{"key_pem": r.KeyPEM, "cert_pem": r.CertPEM}
	setIf(data, "chain_pem", r.ChainPEM)
	setIf(data, "org_id", r.OrgID)
	if r.KVExport {
		data["kv_export"] = true
	}
	if r.CAS != nil {
		data["cas"] = *r.CAS
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path(path), data)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	if s == nil {
		return nil, &Error{Op: op, err: fmt.Errorf("empty response")}
	}
	var out ImportResult
	if err := decode(s.Data, &out); err != nil {
		return nil, &Error{Op: op, err: err}
	}
	return &out, nil
}

// DisableKVExport stops the KV mirror from serving the key of CA name
// ("org-ca" or "intermediate-ca"), for good.
func (c *Client) DisableKVExport(ctx context.Context, name string) error {
	_, err := c.vault.Logical().WriteWithContext(ctx, c.path("kv-export/"+name), map[string]any{"kv_export": false})
	return wrapErr(opKVExport, err)
}

// CA reads the Org CA certificate and metadata. ErrNotFound when none exists.
func (c *Client) CA(ctx context.Context) (*CA, error) {
	s, err := c.vault.Logical().ReadWithContext(ctx, c.path("cert"))
	if err != nil {
		return nil, wrapErr(opCA, err)
	}
	if s == nil {
		return nil, notFound(opCA)
	}
	return parseCA(opCA, s.Data)
}

// CAPEM reads the raw PEM chain from cert/pem (no token needed).
func (c *Client) CAPEM(ctx context.Context) ([]byte, error) {
	resp, err := c.vault.Logical().ReadRawWithContext(ctx, c.path("cert/pem"))
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, wrapErr(opCAPEM, err)
	}
	return io.ReadAll(resp.Body)
}

// SignOptions select the role and validity of a signing.
type SignOptions struct {
	Role string        // empty: the mount's default_role
	TTL  time.Duration // zero: the role's ttl
}

// SignedCertificate is the answer of sign-csr.
type SignedCertificate struct {
	Certificate    *x509.Certificate
	CertificatePEM string
	IssuingCA      *x509.Certificate
	IssuingCAPEM   string
	CAChainPEM     []string
	SerialNumber   string
	NotAfter       time.Time
	SPIFFEID       string
}

// SignCSR signs a PEM CSR. A CSR the role refuses fails with ErrPolicy and
// Vault's message saying which rule it broke.
func (c *Client) SignCSR(ctx context.Context, csrPEM []byte, opts SignOptions) (*SignedCertificate, error) {
	p := "sign-csr"
	if opts.Role != "" {
		p += "/" + opts.Role
	}
	data := map[string]any{"csr": string(csrPEM)}
	if opts.TTL != 0 {
		data["ttl"] = int64(opts.TTL / time.Second)
	}
	return c.sign(ctx, opSignCSR, p, data)
}

// sign writes a signing request and parses the issued certificate.
func (c *Client) sign(ctx context.Context, op, path string, data map[string]any) (*SignedCertificate, error) {
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path(path), data)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	if s == nil {
		return nil, &Error{Op: op, err: fmt.Errorf("empty response")}
	}
	var w struct {
		Certificate  string    `json:"certificate"`
		IssuingCA    string    `json:"issuing_ca"`
		CAChain      []string  `json:"ca_chain"`
		SerialNumber string    `json:"serial_number"`
		NotAfter     time.Time `json:"not_after"`
		SPIFFEID     string    `json:"spiffe_id"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: op, err: err}
	}
	cert, err := parseCertPEM(w.Certificate)
	if err != nil {
		return nil, &Error{Op: op, err: err}
	}
	issuer, err := parseCertPEM(w.IssuingCA)
	if err != nil {
		return nil, &Error{Op: op, err: err}
	}
	return &SignedCertificate{
		Certificate: cert, CertificatePEM: w.Certificate,
		IssuingCA: issuer, IssuingCAPEM: w.IssuingCA, CAChainPEM: w.CAChain,
		SerialNumber: w.SerialNumber, NotAfter: w.NotAfter, SPIFFEID: w.SPIFFEID,
	}, nil
}

// Role is a signing profile; see `vault path-help <mount>/roles/x`.
// WriteRole sends only the fields that are set: nil pointers, empty lists
// and zero durations keep the role's current values, so use Bool and
// String to set false or "". Role returns every field set.
type Role struct {
	Issuer              string        `json:"issuer,omitempty"`
	AllowedKeyTypes     []string      `json:"allowed_key_types,omitempty"`
	AllowedECCurves     []string      `json:"allowed_ec_curves,omitempty"`
	RSAMinBits          int           `json:"rsa_min_bits,omitempty"`
	RSAMaxBits          int           `json:"rsa_max_bits,omitempty"`
	URISANPattern       string        `json:"uri_san_pattern,omitempty"`
	URISANCount         *int          `json:"uri_san_count,omitempty"`
	AllowDNSSANs        *bool         `json:"allow_dns_sans,omitempty"`
	AllowIPSANs         *bool         `json:"allow_ip_sans,omitempty"`
	AllowEmailSANs      *bool         `json:"allow_email_sans,omitempty"`
	SubjectCommonName   *string       `json:"subject_common_name,omitempty"`
	SubjectOrganization *string       `json:"subject_organization,omitempty"`
	KeyUsage            []string      `json:"key_usage,omitempty"`
	ExtKeyUsage         []string      `json:"ext_key_usage,omitempty"`
	TTL                 time.Duration `json:"-"`
	MaxTTL              time.Duration `json:"-"`
	NotBeforeSkew       time.Duration `json:"-"`
}

// Bool returns a pointer to b, for Role fields.
func Bool(b bool) *bool { return &b }

// String returns a pointer to s, for Role fields.
func String(s string) *string { return &s }

type roleWire struct {
	Role
	TTL           int64 `json:"ttl,omitempty"`
	MaxTTL        int64 `json:"max_ttl,omitempty"`
	NotBeforeSkew int64 `json:"not_before_skew,omitempty"`
}

// Role reads a role. ErrNotFound when it does not exist.
func (c *Client) Role(ctx context.Context, name string) (*Role, error) {
	s, err := c.vault.Logical().ReadWithContext(ctx, c.path("roles/"+name))
	if err != nil {
		return nil, wrapErr(opRole, err)
	}
	if s == nil {
		return nil, notFound(opRole)
	}
	var w roleWire
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opRole, err: err}
	}
	r := w.Role
	r.TTL = time.Duration(w.TTL) * time.Second
	r.MaxTTL = time.Duration(w.MaxTTL) * time.Second
	r.NotBeforeSkew = time.Duration(w.NotBeforeSkew) * time.Second
	return &r, nil
}

// WriteRole creates a role or updates the fields of r that are set.
func (c *Client) WriteRole(ctx context.Context, name string, r Role) error {
	w := roleWire{Role: r, TTL: int64(r.TTL / time.Second), MaxTTL: int64(r.MaxTTL / time.Second), NotBeforeSkew: int64(r.NotBeforeSkew / time.Second)}
	raw, err := json.Marshal(w)
	if err != nil {
		return &Error{Op: opWriteRole, err: err}
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		return &Error{Op: opWriteRole, err: err}
	}
	_, err = c.vault.Logical().WriteWithContext(ctx, c.path("roles/"+name), data)
	return wrapErr(opWriteRole, err)
}

// DeleteRole removes a role.
func (c *Client) DeleteRole(ctx context.Context, name string) error {
	_, err := c.vault.Logical().DeleteWithContext(ctx, c.path("roles/"+name))
	return wrapErr(opDeleteRole, err)
}

// ListRoles returns the role names.
func (c *Client) ListRoles(ctx context.Context) ([]string, error) {
	s, err := c.vault.Logical().ListWithContext(ctx, c.path("roles"))
	if err != nil {
		return nil, wrapErr(opListRoles, err)
	}
	if s == nil {
		return nil, nil
	}
	var w struct {
		Keys []string `json:"keys"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opListRoles, err: err}
	}
	return w.Keys, nil
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// decode converts a response's data map into a typed struct.
func decode(data map[string]any, out any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func parseCertPEM(s string) (*x509.Certificate, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("response holds no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// IntermediateRequest are the options of intermediate/generate and
// intermediate/rotate. Zero values take the engine's defaults (EC P-256,
// "<org_id> Mastio CA", 5 years capped at the Org CA, 14 days of grace).
type IntermediateRequest struct {
	KeyType    string
	KeyBits    int
	TTL        time.Duration
	CommonName string // generate only
	// GracePeriod is how long rotate keeps the previous one published.
	GracePeriod time.Duration // rotate only
	// CAS: for generate, 0 creates only on an empty mount; for rotate,
	// optional, rotate only if the current intermediate's version is this,
	// so that a retried request does not rotate twice.
	CAS *int
}

// Intermediate is the intermediate as intermediate/cert describes it.
type Intermediate struct {
	*CA
	// Previous is the rotated-out intermediate while its grace lasts.
	Previous           *x509.Certificate
	PreviousGraceUntil time.Time
	// Bundle is every intermediate relying parties should accept now.
	Bundle []*x509.Certificate
	// ContinuityProof is set by RotateIntermediate: the previous key's
	// signature over the new certificate; check it with VerifyContinuity.
	ContinuityProof string
}

func parseIntermediate(op string, data map[string]any) (*Intermediate, error) {
	ca, err := parseCA(op, data)
	if err != nil {
		return nil, err
	}
	var w struct {
		Previous           string    `json:"previous"`
		PreviousGraceUntil time.Time `json:"previous_grace_until"`
		Bundle             []string  `json:"bundle"`
		ContinuityProof    string    `json:"continuity_proof"`
	}
	if err := decode(data, &w); err != nil {
		return nil, &Error{Op: op, err: err}
	}
	in := &Intermediate{CA: ca, PreviousGraceUntil: w.PreviousGraceUntil, ContinuityProof: w.ContinuityProof}
	if w.Previous != "" {
		if in.Previous, err = parseCertPEM(w.Previous); err != nil {
			return nil, &Error{Op: op, err: err}
		}
	}
	for _, p := range w.Bundle {
		c, err := parseCertPEM(p)
		if err != nil {
			return nil, &Error{Op: op, err: err}
		}
		in.Bundle = append(in.Bundle, c)
	}
	return in, nil
}

func (r IntermediateRequest) data(rotate bool) map[string]any {
	data := map[string]any{}
	setIf(data, "key_type", r.KeyType)
	if r.KeyBits != 0 {
		data["key_bits"] = r.KeyBits
	}
	if r.TTL != 0 {
		data["ttl"] = int64(r.TTL / time.Second)
	}
	if r.CAS != nil {
		data["cas"] = *r.CAS
	}
	if rotate {
		if r.GracePeriod != 0 {
			data["grace_period"] = int64(r.GracePeriod / time.Second)
		}
		return data
	}
	setIf(data, "common_name", r.CommonName)
	return data
}

// GenerateIntermediate mints the Mastio Intermediate CA inside Vault,
// signed by the Org CA there. ErrExists when one exists and CAS does not
// name its version.
func (c *Client) GenerateIntermediate(ctx context.Context, r IntermediateRequest) (*Intermediate, error) {
	return c.writeIntermediate(ctx, opGenerateIntermediate, "intermediate/generate", r.data(false))
}

// RotateIntermediate mints the next intermediate and makes it the signer;
// the result carries the previous certificate and the continuity proof.
func (c *Client) RotateIntermediate(ctx context.Context, r IntermediateRequest) (*Intermediate, error) {
	return c.writeIntermediate(ctx, opRotateIntermediate, "intermediate/rotate", r.data(true))
}

func (c *Client) writeIntermediate(ctx context.Context, op, path string, data map[string]any) (*Intermediate, error) {
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path(path), data)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	if s == nil {
		return nil, &Error{Op: op, err: fmt.Errorf("empty response")}
	}
	return parseIntermediate(op, s.Data)
}

// Intermediate reads the intermediate with its previous one and bundle.
// ErrNotFound when none exists.
func (c *Client) Intermediate(ctx context.Context) (*Intermediate, error) {
	s, err := c.vault.Logical().ReadWithContext(ctx, c.path("intermediate/cert"))
	if err != nil {
		return nil, wrapErr(opIntermediateCA, err)
	}
	if s == nil {
		return nil, notFound(opIntermediateCA)
	}
	return parseIntermediate(opIntermediateCA, s.Data)
}

// PublicKeyOptions select what sign-public-key issues: the role, and whom
// for — Name fills the single * of the role's pattern (agent), SPIFFEID
// names the identity in full (principal).
type PublicKeyOptions struct {
	Role     string
	Name     string
	SPIFFEID string
	TTL      time.Duration
}

// SignPublicKey signs a bare PEM public key (SubjectPublicKeyInfo) with no
// CSR, as Mastio's enrollment does. Proof of possession of the private key
// is the caller's job. A refusal is ErrPolicy.
func (c *Client) SignPublicKey(ctx context.Context, publicKeyPEM []byte, opts PublicKeyOptions) (*SignedCertificate, error) {
	p := "sign-public-key"
	if opts.Role != "" {
		p += "/" + opts.Role
	}
	data := map[string]any{"public_key": string(publicKeyPEM)}
	setIf(data, "name", opts.Name)
	setIf(data, "spiffe_id", opts.SPIFFEID)
	if opts.TTL != 0 {
		data["ttl"] = int64(opts.TTL / time.Second)
	}
	return c.sign(ctx, opSignPublicKey, p, data)
}

// BatchResult is one CSR's outcome in SignCSRBatch: Certificate, or Err
// (an *Error matching ErrPolicy) naming why that CSR was refused.
type BatchResult struct {
	Index       int
	Certificate *SignedCertificate
	Err         error
}

// SignCSRBatch signs up to 100 CSRs in one request under one role. Each is
// checked on its own: a refused CSR fails only itself. The error is set
// only when the whole request failed.
func (c *Client) SignCSRBatch(ctx context.Context, csrPEMs [][]byte, opts SignOptions) ([]BatchResult, error) {
	p := "sign-csr"
	if opts.Role != "" {
		p += "/" + opts.Role
	}
	list := make([]string, len(csrPEMs))
	for i, b := range csrPEMs {
		list[i] = string(b)
	}
	data := map[string]any{"csrs": list}
	if opts.TTL != 0 {
		data["ttl"] = int64(opts.TTL / time.Second)
	}
	s, err := c.vault.Logical().WriteWithContext(ctx, c.path(p), data)
	if err != nil {
		return nil, wrapErr(opSignCSR, err)
	}
	if s == nil {
		return nil, &Error{Op: opSignCSR, err: fmt.Errorf("empty response")}
	}
	var w struct {
		Certificates []struct {
			Index        int       `json:"index"`
			Error        string    `json:"error"`
			Certificate  string    `json:"certificate"`
			SerialNumber string    `json:"serial_number"`
			NotAfter     time.Time `json:"not_after"`
			SPIFFEID     string    `json:"spiffe_id"`
		} `json:"certificates"`
		IssuingCA string   `json:"issuing_ca"`
		CAChain   []string `json:"ca_chain"`
	}
	if err := decode(s.Data, &w); err != nil {
		return nil, &Error{Op: opSignCSR, err: err}
	}
	issuer, err := parseCertPEM(w.IssuingCA)
	if err != nil {
		return nil, &Error{Op: opSignCSR, err: err}
	}
	out := make([]BatchResult, len(w.Certificates))
	for i, r := range w.Certificates {
		out[i].Index = r.Index
		if r.Error != "" {
			out[i].Err = &Error{Op: opSignCSR, StatusCode: 400, Messages: []string{r.Error}, kind: ErrPolicy}
			continue
		}
		cert, err := parseCertPEM(r.Certificate)
		if err != nil {
			return nil, &Error{Op: opSignCSR, err: err}
		}
		out[i].Certificate = &SignedCertificate{
			Certificate: cert, CertificatePEM: r.Certificate, IssuingCA: issuer, IssuingCAPEM: w.IssuingCA,
			CAChainPEM: w.CAChain, SerialNumber: r.SerialNumber, NotAfter: r.NotAfter, SPIFFEID: r.SPIFFEID,
		}
	}
	return out, nil
}
