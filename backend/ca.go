package backend

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// CA sources, as reported by the cert path.
const (
	sourceGenerated = "generated"
	sourceImported  = "imported"
)

// caName names one of the CAs the engine keeps; it is also the last
// segment of its storage key, of its KV mirror path and of kv-export/.
type caName string

const (
	orgCA          caName = "org-ca"
	intermediateCA caName = "intermediate-ca"
)

// caNames lists every CA the engine keeps.
var caNames = []caName{orgCA, intermediateCA}

func (n caName) storageKey() string { return caPrefix + string(n) }

// label is the CA's name in messages.
func (n caName) label() string {
	if n == intermediateCA {
		return "Mastio Intermediate CA"
	}
	return "Org CA"
}

// caBackdate is how far before "now" a generated CA's validity starts, to
// absorb clock skew between Vault and relying parties (Mastio uses 5 min).
const caBackdate = 5 * time.Minute

// caEntry is the stored CA: key and certificate in one entry, so that a
// write replaces both atomically. Stored under caPrefix (seal-wrapped).
type caEntry struct {
	Version int    `json:"version"`
	Source  string `json:"source"`
	// KVExport lets the KV mirror serve this (imported) key. It can only
	// ever go from true to false.
	KVExport bool `json:"kv_export,omitempty"`
	// KVExportSealed records that kv_export was turned off on this mount.
	// Every later entry of the same CA inherits it and may not export, so
	// a sealed key cannot come back through a re-import.
	KVExportSealed bool `json:"kv_export_sealed,omitempty"`
	// Previous is the intermediate this one replaced by rotation: its
	// certificate only (the key is dropped), published until GraceUntil.
	Previous  *publishedCert `json:"previous,omitempty"`
	OrgID     string         `json:"org_id,omitempty"`
	KeyPKCS8  []byte         `json:"key_pkcs8"`
	CertDER   []byte         `json:"cert_der"`
	ChainDER  [][]byte       `json:"chain_der,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
}

// publishedCert is a retired CA certificate still published for a while.
type publishedCert struct {
	CertDER    []byte    `json:"cert_der"`
	GraceUntil time.Time `json:"grace_until"`
	// ContinuityProof is this (retired) key's signature over the current
	// certificate, kept so it can be fetched again during the grace.
	ContinuityProof string `json:"continuity_proof"`
}

// issuerSlot holds the cached issuer. known says the slot was filled from
// storage; known with a nil is caches "this CA does not exist".
type issuerSlot struct {
	is    *issuer
	known bool
}

// issuer is a parsed caEntry, ready to sign. It is immutable once built.
type issuer struct {
	name      caName
	version   int
	source    string
	kvExport  bool
	orgID     string
	cert      *x509.Certificate
	chain     []*x509.Certificate
	signer    crypto.Signer
	certPEM   string
	chainPEMs []string // the issuer certificate first, then its chain
	// previous is the rotated-out intermediate, nil when there is none.
	previous      *x509.Certificate
	previousUntil time.Time
	proof         string // continuity proof from previous to this one
}

// newIssuer parses a stored entry.
func newIssuer(name caName, e *caEntry) (*issuer, error) {
	key, err := x509.ParsePKCS8PrivateKey(e.KeyPKCS8)
	if err != nil {
		return nil, fmt.Errorf("stored CA key does not parse")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("stored CA key of type %T cannot sign", key)
	}
	cert, err := x509.ParseCertificate(e.CertDER)
	if err != nil {
		return nil, fmt.Errorf("stored CA certificate does not parse: %w", err)
	}
	is := &issuer{
		name:     name,
		version:  e.Version,
		source:   e.Source,
		kvExport: e.KVExport,
		orgID:    e.OrgID,
		cert:     cert,
		signer:   signer,
		certPEM:  encodeCertPEM(e.CertDER),
	}
	is.chainPEMs = append(is.chainPEMs, is.certPEM)
	if e.Previous != nil {
		prev, err := x509.ParseCertificate(e.Previous.CertDER)
		if err != nil {
			return nil, fmt.Errorf("stored previous certificate does not parse: %w", err)
		}
		is.previous, is.previousUntil, is.proof = prev, e.Previous.GraceUntil, e.Previous.ContinuityProof
	}
	for i, der := range e.ChainDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("stored CA chain certificate %d does not parse: %w", i+1, err)
		}
		is.chain = append(is.chain, c)
		is.chainPEMs = append(is.chainPEMs, encodeCertPEM(der))
	}
	return is, nil
}

// caParams are the choices an operator makes for a generated CA.
type caParams struct {
	CommonName   string
	Organization string
	NotAfter     time.Time
	PathLen      int // -1: no limit
	Now          time.Time
}

// newCACertificate creates a CA certificate for key: CA:true (critical,
// pathLen), KU keyCertSign+cRLSign (critical), SKI, and a random 128-bit
// serial. parent nil makes it self-signed; otherwise parent signs it (AKI =
// parent SKI) and its validity starts no earlier than the parent's.
func newCACertificate(p caParams, key crypto.Signer, parent *issuer) ([]byte, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, err
	}
	subject := pkix.Name{CommonName: p.CommonName}
	if p.Organization != "" {
		subject.Organization = []string{p.Organization}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             p.Now.Add(-caBackdate).UTC(),
		NotAfter:              p.NotAfter.UTC(),
		BasicConstraintsValid: true,
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		SubjectKeyId:          ski,
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
		return x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	}
	if tmpl.NotBefore.Before(parent.cert.NotBefore) {
		tmpl.NotBefore = parent.cert.NotBefore
	}
	tmpl.AuthorityKeyId = parent.cert.SubjectKeyId
	return x509.CreateCertificate(rand.Reader, tmpl, parent.cert, key.Public(), parent.signer)
}

// importedCA is a validated import request, ready to store.
type importedCA struct {
	keyPKCS8 []byte
	cert     *x509.Certificate
	chainDER [][]byte
}

// validateImport checks an import request: the key parses and is strong
// enough, the certificate is a CA (CA:true, keyCertSign) that is valid now
// and whose public key is the key's, and the optional chain signs it.
func validateImport(keyPEM, certPEM, chainPEM string, now time.Time) (*importedCA, error) {
	if keyPEM == "" {
		return nil, inputErrorf("key_pem is required")
	}
	if certPEM == "" {
		return nil, inputErrorf("cert_pem is required")
	}
	key, err := parsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	if err := checkKeyStrength(key.Public()); err != nil {
		return nil, err
	}
	certs, err := parseCertificatesPEM("cert_pem", certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, inputErrorf("cert_pem holds %d certificates; put the CA certificate in cert_pem and its issuers in chain_pem", len(certs))
	}
	cert := certs[0]
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, inputErrorf("key_pem does not match cert_pem: the certificate's public key is not the key's")
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, inputErrorf("cert_pem is not a CA certificate: basicConstraints CA:true is required")
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, inputErrorf("cert_pem is not allowed to sign certificates: keyUsage keyCertSign is required")
	}
	if len(cert.SubjectKeyId) == 0 {
		return nil, inputErrorf("cert_pem has no subjectKeyIdentifier; every leaf carries AKI = issuer SKI, so the CA certificate must have one")
	}
	if !now.Before(cert.NotAfter) {
		return nil, inputErrorf("cert_pem expired at %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Add(caBackdate).Before(cert.NotBefore) {
		return nil, inputErrorf("cert_pem is not valid until %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}

	var chainDER [][]byte
	if chainPEM != "" {
		chain, err := parseCertificatesPEM("chain_pem", chainPEM)
		if err != nil {
			return nil, err
		}
		child := cert
		for i, c := range chain {
			if err := child.CheckSignatureFrom(c); err != nil {
				return nil, inputErrorf("chain_pem certificate %d did not sign the certificate before it: %v", i+1, err)
			}
			chainDER = append(chainDER, c.Raw)
			child = c
		}
	}

	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return &importedCA{keyPKCS8: der, cert: cert, chainDER: chainDER}, nil
}

// CheckImport applies import's checks to a CA key and certificate outside
// Vault (parsing, key strength, key/certificate match, CA:true with
// keyCertSign and a SKI, validity now, and the chain), so that a dry run of
// a migration refuses what the plugin would refuse.
func CheckImport(keyPEM, certPEM, chainPEM string, now time.Time) error {
	_, err := validateImport(keyPEM, certPEM, chainPEM, now)
	return err
}

// sameAs reports whether a stored entry already holds exactly this import.
func (ic *importedCA) sameAs(e *caEntry) bool {
	if e == nil || !bytes.Equal(e.KeyPKCS8, ic.keyPKCS8) || !bytes.Equal(e.CertDER, ic.cert.Raw) {
		return false
	}
	if len(e.ChainDER) != len(ic.chainDER) {
		return false
	}
	for i := range e.ChainDER {
		if !bytes.Equal(e.ChainDER[i], ic.chainDER[i]) {
			return false
		}
	}
	return true
}

// conflictError is a create-only or check-and-set refusal; handlers answer
// it with a 409 carrying its message (which names the current version).
type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

// checkCAS applies the create-only rule: with no CA, cas must be absent or
// 0; with a CA, cas must equal its version. It returns a conflictError
// otherwise.
func checkCAS(name caName, existing *caEntry, cas int, casSet bool) error {
	current := 0
	if existing != nil {
		current = existing.Version
	}
	switch {
	case existing == nil && (!casSet || cas == 0):
		return nil
	case existing == nil:
		return &conflictError{msg: fmt.Sprintf("check-and-set failed: no %s exists (version 0) but cas=%d was given; omit cas or pass cas=0 to create one", name.label(), cas)}
	case !casSet:
		return &conflictError{msg: fmt.Sprintf("an %s already exists (version %d, sha256 fingerprint %s); this path is create-only: pass cas=%d to replace it", name.label(), current, fingerprintSHA256(existing.CertDER), current)}
	case cas != current:
		return &conflictError{msg: fmt.Sprintf("check-and-set failed: cas=%d but the current %s version is %d", cas, name.label(), current)}
	}
	return nil
}

// succeed makes next the successor of existing (nil on an empty mount):
// the next version, and the kv_export seal carried over, so that no
// replacement can export a key once export was turned off on this mount.
func succeed(name caName, existing, next *caEntry) error {
	next.Version = 1
	if existing == nil {
		return nil
	}
	next.Version = existing.Version + 1
	next.KVExportSealed = existing.KVExportSealed
	if next.KVExportSealed && next.KVExport {
		return inputErrorf("kv_export of the %s was turned off for good on this mount: a replacement cannot turn it on again", name.label())
	}
	return nil
}

// readCA returns the stored entry of CA name, or nil when none exists.
func (b *mastioBackend) readCA(ctx context.Context, s logical.Storage, name caName) (*caEntry, error) {
	raw, err := s.Get(ctx, name.storageKey())
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name.label(), err)
	}
	if raw == nil {
		return nil, nil
	}
	var e caEntry
	if err := raw.DecodeJSON(&e); err != nil {
		return nil, fmt.Errorf("decoding %s entry: %w", name.label(), err)
	}
	return &e, nil
}

// writeCA stores e as CA name and refreshes its cache. Callers hold caLock.
func (b *mastioBackend) writeCA(ctx context.Context, s logical.Storage, name caName, e *caEntry) (*issuer, error) {
	is, err := newIssuer(name, e)
	if err != nil {
		return nil, err
	}
	entry, err := logical.StorageEntryJSON(name.storageKey(), e)
	if err != nil {
		return nil, fmt.Errorf("encoding %s entry: %w", name.label(), err)
	}
	if err := s.Put(ctx, entry); err != nil {
		// The write may have landed all the same (a timeout): drop the
		// cache so this node reads storage again rather than keep signing
		// with what may no longer be the stored CA.
		b.resetIssuer(name)
		return nil, fmt.Errorf("storing %s: %w", name.label(), err)
	}
	b.issuers[name].Store(&issuerSlot{is: is, known: true})
	return is, nil
}

// loadIssuer returns CA name parsed, from the cache, filling it from
// storage on a miss. It returns nil when that CA does not exist.
func (b *mastioBackend) loadIssuer(ctx context.Context, s logical.Storage, name caName) (*issuer, error) {
	cache := b.issuers[name]
	if slot := cache.Load(); slot.known {
		return slot.is, nil
	}
	b.caLock.Lock()
	defer b.caLock.Unlock()
	slot := cache.Load()
	if slot.known {
		return slot.is, nil
	}
	e, err := b.readCA(ctx, s, name)
	if err != nil {
		return nil, err
	}
	var is *issuer
	if e != nil {
		if is, err = newIssuer(name, e); err != nil {
			return nil, err
		}
	}
	// Fails, harmlessly, when an Invalidate came in since slot was read.
	cache.CompareAndSwap(slot, &issuerSlot{is: is, known: true})
	return is, nil
}

// resetIssuer drops the cached CA name.
func (b *mastioBackend) resetIssuer(name caName) {
	b.issuers[name].Store(&issuerSlot{})
}

// publicKeyFingerprint is the hex SHA-256 of the certificate's SPKI DER;
// its first 16 hex digits are Mastio's key_id.
func publicKeyFingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// importRequest is a create-only write of a CA from outside: import,
// intermediate/import and the KV mirror.
type importRequest struct {
	name                      caName
	keyPEM, certPEM, chainPEM string
	orgID                     string // requested; Org CA only
	cas                       int
	casSet                    bool
	kvExport                  bool
	// viaMirror refuses to replace a CA whose kv_export is off.
	viaMirror bool
}

// storeImport validates and stores an import under the create-only rule.
// Identical input is a success that writes nothing (unchanged=true).
func (b *mastioBackend) storeImport(ctx context.Context, s logical.Storage, r importRequest) (*issuer, bool, error) {
	now := time.Now()
	ic, err := validateImport(r.keyPEM, r.certPEM, r.chainPEM, now)
	if err != nil {
		return nil, false, err
	}
	cfg, err := b.readConfig(ctx, s)
	if err != nil {
		return nil, false, err
	}

	b.caLock.Lock()
	defer b.caLock.Unlock()
	var orgID string
	switch r.name {
	case orgCA:
		if orgID, err = importOrgID(r.orgID, cfg.OrgID, ic.cert); err != nil {
			return nil, false, err
		}
	case intermediateCA:
		if r.chainPEM != "" {
			return nil, false, inputErrorf("chain_pem is not accepted for the intermediate: its chain is the stored Org CA")
		}
		org, err := b.readCA(ctx, s, orgCA)
		if err != nil {
			return nil, false, err
		}
		if org == nil {
			return nil, false, inputErrorf("no Org CA exists yet: import or generate the Org CA before its intermediate")
		}
		orgCert, err := x509.ParseCertificate(org.CertDER)
		if err != nil {
			return nil, false, fmt.Errorf("stored Org CA certificate does not parse: %w", err)
		}
		if ic.cert.Equal(orgCert) || bytes.Equal(ic.cert.RawSubject, ic.cert.RawIssuer) && ic.cert.CheckSignatureFrom(ic.cert) == nil {
			return nil, false, inputErrorf("cert_pem is self-signed (or is the Org CA itself): an intermediate must be issued by the Org CA")
		}
		if err := ic.cert.CheckSignatureFrom(orgCert); err != nil {
			return nil, false, inputErrorf("cert_pem does not chain to the stored Org CA (sha256 fingerprint %s): %v", fingerprintSHA256(org.CertDER), err)
		}
		ic.chainDER = append([][]byte{org.CertDER}, org.ChainDER...)
		orgID = org.OrgID
	}

	existing, err := b.readCA(ctx, s, r.name)
	if err != nil {
		return nil, false, err
	}
	if ic.sameAs(existing) {
		is, err := newIssuer(r.name, existing)
		return is, true, err
	}
	if r.viaMirror && existing != nil && !existing.KVExport {
		return nil, false, inputErrorf("the %s is sign-only (kv_export is off): the KV mirror can never replace it; use %s with cas=%d", r.name.label(), importPath(r.name), existing.Version)
	}
	if err := checkCAS(r.name, existing, r.cas, r.casSet); err != nil {
		return nil, false, err
	}
	entry := &caEntry{Source: sourceImported, KVExport: r.kvExport, OrgID: orgID, KeyPKCS8: ic.keyPKCS8, CertDER: ic.cert.Raw, ChainDER: ic.chainDER, CreatedAt: now.UTC()}
	if err := succeed(r.name, existing, entry); err != nil {
		return nil, false, err
	}
	is, err := b.writeCA(ctx, s, r.name, entry)
	if err != nil {
		return nil, false, err
	}
	b.Logger().Info("imported CA", "ca", string(r.name), "version", is.version, "kv_export", is.kvExport, "via_mirror", r.viaMirror, "serial", formatSerial(is.cert.SerialNumber), "sha256", fingerprintSHA256(is.cert.Raw))
	return is, false, nil
}

// importOrgID picks the org of an imported Org CA: the request's, else the
// configured one, else the certificate's single O.
func importOrgID(requested, configured string, cert *x509.Certificate) (string, error) {
	orgID := requested
	switch {
	case requested != "" && configured != "" && requested != configured:
		return "", inputErrorf("org_id %q differs from config org_id %q; change config first or omit org_id", requested, configured)
	case requested == "" && configured != "":
		orgID = configured
	case requested == "" && len(cert.Subject.Organization) == 1:
		orgID = cert.Subject.Organization[0]
	}
	if orgID == "" {
		return "", inputErrorf("org_id is required: cert_pem has no single O to take it from and config has none")
	}
	if err := validateOrgID(orgID); err != nil {
		return "", inputErrorf("%s; pass org_id explicitly", err)
	}
	return orgID, nil
}

// importPath is the native path that imports CA name.
func importPath(name caName) string {
	if name == intermediateCA {
		return "intermediate/import"
	}
	return "import"
}

// intermediateStagingKey holds a freshly rotated intermediate before the
// switch; see rotateIntermediate.
const intermediateStagingKey = caPrefix + "intermediate-ca-next"

// rotateIntermediate writes the new intermediate first (staging) and then
// switches to it with one write of the intermediate entry, which also
// publishes the previous certificate. A failure before the switch leaves
// the old intermediate the signer; the staging entry is then just
// overwritten by the next rotation. Callers hold caLock.
func (b *mastioBackend) rotateIntermediate(ctx context.Context, s logical.Storage, next *caEntry) (*issuer, error) {
	staged, err := logical.StorageEntryJSON(intermediateStagingKey, next)
	if err != nil {
		return nil, err
	}
	if err := s.Put(ctx, staged); err != nil {
		return nil, fmt.Errorf("staging the next intermediate: %w", err)
	}
	is, err := b.writeCA(ctx, s, intermediateCA, next)
	if err != nil {
		// Leave no unused CA key behind; the next rotation overwrites it
		// anyway should this delete fail too.
		if derr := s.Delete(ctx, intermediateStagingKey); derr != nil {
			b.Logger().Warn("could not delete the staged intermediate after a failed switch", "error", derr)
		}
		return nil, fmt.Errorf("switching to the next intermediate (the previous one still signs): %w", err)
	}
	if err := s.Delete(ctx, intermediateStagingKey); err != nil {
		b.Logger().Warn("could not delete the staged intermediate; the next rotation overwrites it", "error", err)
	}
	return is, nil
}
