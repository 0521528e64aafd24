package issuing

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"
)

// Limits and defaults of the CAs this engine makes.
const (
	// CABackdate is how far before "now" a generated CA's validity
	// starts, to absorb clock skew between Vault and relying parties
	// (Mastio uses 5 min).
	CABackdate = 5 * time.Minute

	DefaultCATTL = 15 * 365 * 24 * time.Hour
	MaxCATTL     = 30 * 365 * 24 * time.Hour
	MinCATTL     = 24 * time.Hour

	// Mastio's: 5 years, 14 days of grace.
	DefaultIntermediateTTL   = 5 * 365 * 24 * time.Hour
	DefaultIntermediateGrace = 14 * 24 * time.Hour
	MaxIntermediateGrace     = 90 * 24 * time.Hour

	// MaxPathLen bounds a generated Org CA's basicConstraints pathLen.
	MaxPathLen = 8
	// MaxChain bounds the CAs above an imported Org CA (chain_pem).
	MaxChain = 8
)

// MaxNameLen is RFC 5280's upper bound on a common name and an
// organization name (ub-common-name, ub-organization-name).
const MaxNameLen = 64

// CheckName refuses a subject attribute longer than RFC 5280 allows.
// field names it in the message.
func CheckName(field, value string) error {
	if n := utf8.RuneCountInString(value); n > MaxNameLen {
		return Inputf("%s is %d characters; X.509 allows at most %d", field, n, MaxNameLen)
	}
	return nil
}

// CheckCATTL refuses a CA validity outside 24h to 30 years. what names
// the CA in the message ("a CA", "an intermediate").
func CheckCATTL(what string, ttl time.Duration) error {
	if ttl < MinCATTL || ttl > MaxCATTL {
		return Inputf("ttl %s is out of range: %s must be valid for 24h to 30 years (262800h)", ttl, what)
	}
	return nil
}

// CAParams are the choices an operator makes for a generated CA.
type CAParams struct {
	CommonName   string
	Organization string
	NotAfter     time.Time
	PathLen      int // -1: no limit
	Now          time.Time
	// URIs are the certificate's URI SANs (a signed CA's spiffe://<td>).
	URIs []*url.URL
	// PermittedURIDomains, when set, is a critical nameConstraints
	// extension permitting URI SANs with these hosts only.
	PermittedURIDomains []string
	// DigitalSignature adds that key usage to keyCertSign+cRLSign.
	DigitalSignature bool
	// URLs are the parent's CRL, OCSP and issuer URLs, filled in.
	URLs URLs
}

// Parent is the CA that signs a new CA certificate.
type Parent struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// NewCACertificate creates a CA certificate for key: CA:true (critical,
// pathLen), KU keyCertSign+cRLSign (critical), SKI, and a random 128-bit
// serial. parent nil makes it self-signed; otherwise parent signs it (AKI =
// parent SKI) and its validity starts no earlier than the parent's.
func NewCACertificate(p CAParams, key crypto.Signer, parent *Parent) ([]byte, error) {
	return newCACertificate(p, key.Public(), parent, key)
}

// newCACertificate certifies pub as NewCACertificate does; parent nil
// makes it self-signed by key (pub's private half).
func newCACertificate(p CAParams, pub crypto.PublicKey, parent *Parent, key crypto.Signer) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	subject, err := rawSubject(p.CommonName, p.Organization)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             p.Now.Add(-CABackdate).UTC(),
		NotAfter:              p.NotAfter.UTC(),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
		URIs:                  p.URIs,
	}
	p.URLs.apply(tmpl)
	if p.DigitalSignature {
		tmpl.KeyUsage |= x509.KeyUsageDigitalSignature
	}
	if len(p.PermittedURIDomains) > 0 {
		tmpl.PermittedURIDomains = p.PermittedURIDomains
		tmpl.PermittedDNSDomainsCritical = true // marks the whole extension critical
	}
	switch {
	case p.PathLen < 0:
		tmpl.MaxPathLen = -1
	case p.PathLen == 0:
		tmpl.MaxPathLenZero = true
	default:
		tmpl.MaxPathLen = p.PathLen
	}
	if parent == nil {
		return x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	}
	if tmpl.NotBefore.Before(parent.Cert.NotBefore) {
		tmpl.NotBefore = parent.Cert.NotBefore
	}
	tmpl.AuthorityKeyId = parent.Cert.SubjectKeyId
	return x509.CreateCertificate(rand.Reader, tmpl, parent.Cert, pub, parent.Signer)
}

// OrgCARequest is a generate request, before defaults.
type OrgCARequest struct {
	OrgID      string // requested; "" takes the configured one
	CommonName string // "" is "<org_id> CA"
	KeyType    string
	KeyBits    int
	TTL        time.Duration
	PathLen    int
	// NewKey makes the key where it is to live (nil: in memory).
	NewKey KeyGen
}

// GeneratedCA is a new CA key and certificate, ready to store.
type GeneratedCA struct {
	OrgID string
	// KeyPKCS8 is the key, when it was made in memory; nil when a KeyGen
	// made it elsewhere (the KeyGen's caller knows where).
	KeyPKCS8 []byte
	CertDER  []byte
}

// GenerateOrgCA checks a generate request against the configured org_id
// and makes the self-signed Org CA: key and certificate, in memory.
func GenerateOrgCA(r OrgCARequest, configuredOrgID string, now time.Time) (*GeneratedCA, error) {
	orgID, err := ResolveOrgID(r.OrgID, configuredOrgID)
	if err != nil {
		return nil, err
	}
	cn := r.CommonName
	if cn == "" {
		cn = orgID + " CA"
	}
	if err := CheckName("common_name", cn); err != nil {
		if r.CommonName == "" {
			return nil, Inputf("the default common_name (<org_id> CA) is %d characters, over X.509's 64: pass common_name", len(cn))
		}
		return nil, err
	}
	ttl := r.TTL
	if err := CheckCATTL("a CA", ttl); err != nil {
		return nil, err
	}
	if r.PathLen < -1 || r.PathLen > MaxPathLen {
		return nil, Inputf("path_len %d is out of range -1..%d", r.PathLen, MaxPathLen)
	}
	return makeCA(r.NewKey, r.KeyType, r.KeyBits, CAParams{CommonName: cn, Organization: orgID, NotAfter: now.Add(ttl), PathLen: r.PathLen, Now: now}, nil)
}

// makeCA makes a key of keyType and keyBits with gen (nil: in memory) and
// its CA certificate, signed by parent (nil: self-signed).
func makeCA(gen KeyGen, keyType string, keyBits int, p CAParams, parent *Parent) (*GeneratedCA, error) {
	key, pkcs8, err := newKey(gen, keyType, keyBits)
	if err != nil {
		return nil, err
	}
	der, err := NewCACertificate(p, key, parent)
	if err != nil {
		return nil, err
	}
	return &GeneratedCA{OrgID: p.Organization, KeyPKCS8: pkcs8, CertDER: der}, nil
}

// ImportedCA is a validated import request, ready to store.
type ImportedCA struct {
	KeyPKCS8 []byte
	Cert     *x509.Certificate
	ChainDER [][]byte
	// Field names the certificate in messages ("" is cert_pem).
	Field string
}

func (ic *ImportedCA) field() string {
	if ic.Field == "" {
		return "cert_pem"
	}
	return ic.Field
}

// ValidateImport checks an import request: the key parses and is strong
// enough, the certificate is a CA (CA:true, keyCertSign) that is valid now
// and whose public key is the key's, and the optional chain signs it.
func ValidateImport(keyPEM, certPEM, chainPEM string, now time.Time) (*ImportedCA, error) {
	if keyPEM == "" {
		return nil, Inputf("key_pem is required")
	}
	if certPEM == "" {
		return nil, Inputf("cert_pem is required")
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := CheckKeyStrength(key.Public()); err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM("cert_pem", certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, Inputf("cert_pem holds %d certificates; put the CA certificate in cert_pem and its issuers in chain_pem", len(certs))
	}
	cert := certs[0]
	if !PublicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, Inputf("key_pem does not match cert_pem: the certificate's public key is not the key's")
	}
	if err := checkCACert("cert_pem", cert, now); err != nil {
		return nil, err
	}

	var chainDER [][]byte
	if chainPEM != "" {
		chain, err := ParseCertificatesPEM("chain_pem", chainPEM)
		if err != nil {
			return nil, err
		}
		if len(chain) > MaxChain {
			return nil, Inputf("chain_pem holds %d certificates; at most %d are accepted", len(chain), MaxChain)
		}
		if err := checkIssuers("chain_pem certificate", cert, chain); err != nil {
			return nil, err
		}
		for _, c := range chain {
			chainDER = append(chainDER, c.Raw)
		}
		if err := checkPathLen(chain, 1); err != nil {
			return nil, Inputf("chain_pem: %v", err)
		}
	}

	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &ImportedCA{KeyPKCS8: der, Cert: cert, ChainDER: chainDER}, nil
}

// checkCACert refuses a certificate that cannot be a CA of this engine:
// not CA:true, no keyCertSign, no SKI, or not valid at now. field names
// it in messages.
func checkCACert(field string, cert *x509.Certificate, now time.Time) error {
	switch {
	case !cert.BasicConstraintsValid || !cert.IsCA:
		return Inputf("%s is not a CA certificate: basicConstraints CA:true is required", field)
	case cert.KeyUsage&x509.KeyUsageCertSign == 0:
		return Inputf("%s is not allowed to sign certificates: keyUsage keyCertSign is required", field)
	case len(cert.SubjectKeyId) == 0:
		return Inputf("%s has no subjectKeyIdentifier; every leaf carries AKI = issuer SKI, so the CA certificate must have one", field)
	case !now.Before(cert.NotAfter):
		return Inputf("%s expired at %s", field, cert.NotAfter.UTC().Format(time.RFC3339))
	case now.Add(CABackdate).Before(cert.NotBefore):
		return Inputf("%s is not valid until %s", field, cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkIssuers checks that each certificate of chain signed the one
// before it, cert first; what names chain's entries in messages
// ("chain_pem certificate" 1, 2, ...).
func checkIssuers(what string, cert *x509.Certificate, chain []*x509.Certificate) error {
	child := cert
	for i, c := range chain {
		// Bound the key before the signature check, whose cost grows with
		// it (as for a CSR).
		if err := checkKeyBounds(fmt.Sprintf("%s %d's", what, i+1), c.PublicKey); err != nil {
			return err
		}
		if err := child.CheckSignatureFrom(c); err != nil {
			return Inputf("%s %d did not sign the certificate before it: %v", what, i+1, err)
		}
		child = c
	}
	return nil
}

// IsSelfSigned reports whether c is signed by its own key under its own
// name.
func IsSelfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(c) == nil
}

// Equal reports whether ic is exactly this key, certificate and chain.
func (ic *ImportedCA) Equal(keyPKCS8, certDER []byte, chainDER [][]byte) bool {
	if !bytes.Equal(keyPKCS8, ic.KeyPKCS8) || !bytes.Equal(certDER, ic.Cert.Raw) || len(chainDER) != len(ic.ChainDER) {
		return false
	}
	for i := range chainDER {
		if !bytes.Equal(chainDER[i], ic.ChainDER[i]) {
			return false
		}
	}
	return true
}

// CheckIntermediateOf checks that ic can be the intermediate under org,
// whose chain upwards is orgChain: org signed it, org may sign a CA
// (pathLen not 0), and it expires no later than any CA above it, so no leaf
// it signs can outlive the trust root. It then sets ic's chain to org's.
func (ic *ImportedCA) CheckIntermediateOf(org *x509.Certificate, orgChain []*x509.Certificate) error {
	if ic.Cert.Equal(org) || IsSelfSigned(ic.Cert) {
		return Inputf("%s is self-signed (or is the Org CA itself): an intermediate must be issued by the Org CA", ic.field())
	}
	if err := ic.Cert.CheckSignatureFrom(org); err != nil {
		return Inputf("%s does not chain to the stored Org CA (sha256 fingerprint %s): %v", ic.field(), FingerprintSHA256(org.Raw), err)
	}
	if err := checkPathLen(append([]*x509.Certificate{org}, orgChain...), 1); err != nil {
		return Statef("the stored Org CA's chain may not have an intermediate below it (%v): every leaf it signed would fail verification", err)
	}
	for _, above := range append([]*x509.Certificate{org}, orgChain...) {
		if ic.Cert.NotAfter.After(above.NotAfter) {
			return Inputf("%s expires at %s, after the CA above it (%s) at %s: its leaves could outlive their trust root; re-issue the intermediate to end by then",
				ic.field(), ic.Cert.NotAfter.UTC().Format(time.RFC3339), Quote(above.Subject.CommonName), above.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	ic.ChainDER = [][]byte{org.Raw}
	for _, c := range orgChain {
		ic.ChainDER = append(ic.ChainDER, c.Raw)
	}
	return nil
}

// IntermediateSpec is a request for a new intermediate.
type IntermediateSpec struct {
	KeyType    string
	KeyBits    int
	TTL        time.Duration
	CommonName string // "" is "<org_id> Mastio CA"
	// URLs are the Org CA's CRL, OCSP and issuer URLs, filled in.
	URLs URLs
	// NewKey makes the key where it is to live (nil: in memory).
	NewKey KeyGen
}

// NewIntermediateSpec is the default of intermediate/generate.
func NewIntermediateSpec() IntermediateSpec {
	return IntermediateSpec{KeyType: KeyTypeEC, TTL: DefaultIntermediateTTL}
}

// RotationSpec is the default of intermediate/rotate: the current
// intermediate's key type and common name. A size generate cannot make (an
// imported P-521 or RSA-8192 key) falls back to the type's default.
func RotationSpec(current *x509.Certificate) IntermediateSpec {
	spec := NewIntermediateSpec()
	spec.KeyType, spec.KeyBits, _ = KeyInfo(current.PublicKey)
	switch {
	case spec.KeyType == KeyTypeEd25519,
		spec.KeyType == KeyTypeEC && spec.KeyBits != 256 && spec.KeyBits != 384,
		spec.KeyType == KeyTypeRSA && spec.KeyBits != 2048 && spec.KeyBits != 3072 && spec.KeyBits != 4096:
		spec.KeyBits = 0
	}
	spec.CommonName = current.Subject.CommonName
	return spec
}

// Check refuses a spec no intermediate may have.
func (s IntermediateSpec) Check() error {
	if err := CheckCATTL("an intermediate", s.TTL); err != nil {
		return err
	}
	return CheckName("common_name", s.CommonName)
}

// MintIntermediate makes a new intermediate key and has the Org CA sign it
// (pathLen 0, never past the NotAfter of any CA above it): PKCS#8 key and
// certificate DER, in memory.
func MintIntermediate(spec IntermediateSpec, org Parent, orgChain []*x509.Certificate, orgID string, now time.Time) (*GeneratedCA, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	if err := CheckChainValid("the Org CA", org.Cert, orgChain, now); err != nil {
		return nil, err
	}
	if err := checkPathLen(append([]*x509.Certificate{org.Cert}, orgChain...), 1); err != nil {
		return nil, Statef("the Org CA may not sign an intermediate CA: %v", err)
	}
	notAfter := now.Add(spec.TTL)
	if end := ChainNotAfter(org.Cert, orgChain); notAfter.After(end) {
		notAfter = end
	}
	if notAfter.Sub(now) < MinCATTL {
		return nil, Statef("the Org CA (or a CA above it) expires at %s, under 24h from now: renew it before minting an intermediate", notAfter.UTC().Format(time.RFC3339))
	}
	cn := spec.CommonName
	if cn == "" {
		cn = orgID + " Mastio CA"
		if CheckName("common_name", cn) != nil {
			return nil, Inputf("the default common_name (<org_id> Mastio CA) is %d characters, over X.509's 64: pass common_name", len(cn))
		}
	}
	return makeCA(spec.NewKey, spec.KeyType, spec.KeyBits, CAParams{CommonName: cn, Organization: orgID, NotAfter: notAfter, PathLen: 0, Now: now, URLs: spec.URLs}, &org)
}

// checkPathLen refuses when a CA in above (nearest first) does not allow
// the CAs below it: above[i] has below+i CA certificates under it.
func checkPathLen(above []*x509.Certificate, below int) error {
	for i, c := range above {
		if need := below + i; c.MaxPathLen >= 0 && c.MaxPathLen < need {
			return fmt.Errorf("%q has basicConstraints pathLen %d but %d CA certificates would sit below it", c.Subject.CommonName, c.MaxPathLen, need)
		}
	}
	return nil
}

// CheckGracePeriod refuses a rotated-out intermediate's grace outside
// 0-90 days.
func CheckGracePeriod(grace time.Duration) error {
	if grace < 0 || grace > MaxIntermediateGrace {
		return Inputf("grace_period %s is out of range 0-90 days (2160h)", grace)
	}
	return nil
}

// ChainNotAfter is the earliest NotAfter of ca and every CA above it: no
// certificate ca signs may outlive it.
func ChainNotAfter(ca *x509.Certificate, above []*x509.Certificate) time.Time {
	end := ca.NotAfter
	for _, c := range above {
		if c.NotAfter.Before(end) {
			end = c.NotAfter
		}
	}
	return end
}

// CheckChainValid refuses when ca or any CA above it has expired at now.
// who names ca in the message ("the issuing CA").
func CheckChainValid(who string, ca *x509.Certificate, above []*x509.Certificate, now time.Time) error {
	expired := func(c *x509.Certificate, who string) error {
		return Statef("%s expired at %s; it signs nothing more: generate or import a new one (with cas)", who, c.NotAfter.UTC().Format(time.RFC3339))
	}
	if !now.Before(ca.NotAfter) {
		return expired(ca, who)
	}
	for _, c := range above {
		if !now.Before(c.NotAfter) {
			return expired(c, fmt.Sprintf("%q, a CA above %s,", c.Subject.CommonName, who))
		}
	}
	return nil
}

// ContinuityProof is the retiring intermediate key's signature over the
// new certificate's DER (ECDSA or RSA PKCS#1 v1.5 over SHA-256, or
// Ed25519), base64url without padding, as Mastio computes it.
func ContinuityProof(oldKey crypto.Signer, newCertDER []byte) (string, error) {
	var (
		sig []byte
		err error
	)
	switch oldKey.(type) {
	case ed25519.PrivateKey:
		sig, err = oldKey.Sign(rand.Reader, newCertDER, crypto.Hash(0))
	default:
		digest := sha256.Sum256(newCertDER)
		sig, err = oldKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("signing the continuity proof: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}
