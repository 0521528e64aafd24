package backend

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Storage layout. Everything under caPrefix holds private keys and is
// listed in PathsSpecial.SealWrapStorage, which Vault Enterprise honours;
// on open-source Vault the barrier alone protects it (DECISIONS.md).
const (
	caPrefix          = "ca/"
	configStorageKey  = "config"
	rolePrefix        = "roles/"
	defaultsSeededKey = "meta/default-roles-seeded"
	// schemaStorageKey records the schema version the mount's storage has.
	schemaStorageKey = "meta/schema-version"
)

// schemaVersion is the layout of this plugin's storage. Raise it when an
// entry changes in a way an older plugin would misread, and teach
// checkSchema to migrate from the old one.
const schemaVersion = 1

// CA sources, as reported by the cert path.
const (
	sourceGenerated = "generated"
	sourceImported  = "imported"
	// sourceAnchor is an Org CA of which this mount holds the certificate
	// only: an issuing mount whose intermediate the root mount signed
	// (intermediate/set-signed). It signs nothing here.
	sourceAnchor = "anchor"
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

// pendingStorageKey holds the intermediate key intermediate/generate-csr
// made, with its CSR, until intermediate/set-signed activates it. Under
// caPrefix: it is a private key.
const pendingStorageKey = caPrefix + "intermediate-ca-pending"

// pendingEntry is a key waiting for its certificate. Once activated or
// dropped, the entry stays without key or CSR, keeping its version, so
// that versions only rise and a stale cas never matches a newer key.
type pendingEntry struct {
	Version  int    `json:"version"`
	KeyPKCS8 []byte `json:"key_pkcs8,omitempty"`
	// KeyPKCS11 refers to the key instead when it was made in the mount's
	// PKCS#11 token (key_backend=pkcs11).
	KeyPKCS11 *hsmKeyRef `json:"key_pkcs11,omitempty"`
	CSRDER    []byte     `json:"csr_der,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// live reports whether p holds a pending key (p may be nil).
func (p *pendingEntry) live() bool { return p != nil && (len(p.KeyPKCS8) > 0 || p.KeyPKCS11 != nil) }

// sameKey reports whether p and q hold the same pending key.
func (p *pendingEntry) sameKey(q *pendingEntry) bool {
	return p.live() && q.live() && bytes.Equal(p.KeyPKCS8, q.KeyPKCS8) && (p.KeyPKCS11 == nil) == (q.KeyPKCS11 == nil) &&
		(p.KeyPKCS11 == nil || p.KeyPKCS11.ID == q.KeyPKCS11.ID)
}

// publicKeySHA256 is the fingerprint of the pending key's public half,
// read from its CSR ("" when there is none).
func (p *pendingEntry) publicKeySHA256() string {
	pub, err := issuing.CSRPublicKey(p.CSRDER)
	if err != nil {
		return ""
	}
	return issuing.PublicKeySHA256(pub)
}

func readPending(ctx context.Context, s logical.Storage) (*pendingEntry, error) {
	return readEntry[pendingEntry](ctx, s, pendingStorageKey, "the pending intermediate")
}

// profileStorageKey holds root/profile, how this mount's Org CA signs
// other CAs (root/sign-intermediate).
const profileStorageKey = "intermediate-profile"

// readProfile returns the stored intermediate profile, or the default.
func readProfile(ctx context.Context, s logical.Storage) (*issuing.IntermediateProfile, error) {
	p, err := readEntry[issuing.IntermediateProfile](ctx, s, profileStorageKey, "root/profile")
	if err != nil || p != nil {
		return p, err
	}
	return issuing.DefaultIntermediateProfile(), nil
}

// stagingKey holds a CA's next entry before a staged switch (rotation;
// see replaceCA): ca/intermediate-ca-next.
func (n caName) stagingKey() string { return n.storageKey() + "-next" }

// label is the CA's name in messages.
func (n caName) label() string {
	if n == intermediateCA {
		return "Mastio Intermediate CA"
	}
	return "Org CA"
}

// importPath is the native path that imports CA name.
func (n caName) importPath() string {
	if n == intermediateCA {
		return "intermediate/import"
	}
	return "import"
}

// caEntry is the stored CA: key and certificate in one entry, so that a
// write replaces both atomically. Stored under caPrefix.
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
	Previous *publishedCert `json:"previous,omitempty"`
	// Retired are the intermediates before Previous whose grace has not
	// ended yet, newest first. A plugin that predates the field ignores
	// it and publishes Previous only.
	Retired []publishedCert `json:"retired,omitempty"`
	OrgID   string          `json:"org_id,omitempty"`
	// KeyPKCS8 is the key, when it lives in Vault (key_backend vault);
	// KeyPKCS11 instead refers to a key in the mount's PKCS#11 token
	// (key_backend pkcs11), of which Vault holds no bytes.
	KeyPKCS8  []byte     `json:"key_pkcs8"`
	KeyPKCS11 *hsmKeyRef `json:"key_pkcs11,omitempty"`
	CertDER   []byte     `json:"cert_der"`
	ChainDER  [][]byte   `json:"chain_der,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
}

// publishedCert is a retired CA certificate still published for a while.
type publishedCert struct {
	CertDER    []byte    `json:"cert_der"`
	GraceUntil time.Time `json:"grace_until"`
	// ContinuityProof is this (retired) key's signature over the
	// certificate that replaced it, kept so it can be fetched again during
	// the grace.
	ContinuityProof string `json:"continuity_proof"`
	// KeyPKCS8 is the retired key, kept only until GraceUntil to sign this
	// CA's CRL and OCSP answers; tidy drops it then. Entries written
	// before revocation existed have none.
	KeyPKCS8 []byte `json:"key_pkcs8,omitempty"`
	// KeyPKCS11 is the retired key in the token, kept as long.
	KeyPKCS11 *hsmKeyRef `json:"key_pkcs11,omitempty"`
}

// hasKey reports whether p still keeps its key, in Vault or the token.
func (p publishedCert) hasKey() bool { return len(p.KeyPKCS8) > 0 || p.KeyPKCS11 != nil }

// currentOf is current for a parsed CA (nil: none).
func (n caName) currentOf(is *issuer) issuing.Current {
	cur := issuing.Current{Label: n.label()}
	if is != nil {
		cur.Exists, cur.Version, cur.Fingerprint = true, is.version, issuing.FingerprintSHA256(is.cert.Raw)
	}
	return cur
}

// current is what the check-and-set rules need to know of e (nil: none).
func (n caName) current(e *caEntry) issuing.Current {
	cur := issuing.Current{Label: n.label()}
	if e != nil {
		cur.Exists, cur.Version, cur.Fingerprint = true, e.Version, issuing.FingerprintSHA256(e.CertDER)
	}
	return cur
}

// readCA returns the stored entry of CA name, or nil when none exists.
func readCA(ctx context.Context, s logical.Storage, name caName) (*caEntry, error) {
	return readEntry[caEntry](ctx, s, name.storageKey(), name.label())
}

// putEntry stores v as JSON under key; what names it in errors.
func putEntry(ctx context.Context, s logical.Storage, key, what string, v any) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", what, err)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing %s: %w", what, err)
	}
	return nil
}

// readEntry decodes the JSON entry under key, or returns nil when there is
// none; what names it in errors.
func readEntry[T any](ctx context.Context, s logical.Storage, key, what string) (*T, error) {
	raw, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if raw == nil {
		return nil, nil
	}
	var v T
	if err := raw.DecodeJSON(&v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	return &v, nil
}

// Config.

const (
	leafNotAfterTruncate = "truncate"
	leafNotAfterError    = "error"
)

// mountConfig is the stored config entry.
type mountConfig struct {
	OrgID        string `json:"org_id"`
	TrustDomain  string `json:"trust_domain"`
	DefaultRole  string `json:"default_role"`
	LeafNotAfter string `json:"leaf_not_after"`
	// CRLExpiry is each CRL's nextUpdate - thisUpdate; 0 is the default.
	CRLExpiry             time.Duration `json:"crl_expiry,omitempty"`
	CRLDistributionPoints []string      `json:"crl_distribution_points,omitempty"`
	OCSPServers           []string      `json:"ocsp_servers,omitempty"`
	IssuingCertificates   []string      `json:"issuing_certificates,omitempty"`
	// DeltaCRLDistributionPoints go into complete CRLs (Freshest CRL).
	DeltaCRLDistributionPoints []string `json:"delta_crl_distribution_points,omitempty"`
}

// DefaultCRLExpiry is how long a CRL is valid, unless config says.
const DefaultCRLExpiry = 72 * time.Hour

// crlExpiry is the configured CRL validity, or the default.
func (c *mountConfig) crlExpiry() time.Duration {
	if c.CRLExpiry <= 0 {
		return DefaultCRLExpiry
	}
	return c.CRLExpiry
}

// urls are the URLs every certificate issued from now on carries.
func (c *mountConfig) urls() issuing.URLs {
	return issuing.URLs{CRL: c.CRLDistributionPoints, OCSP: c.OCSPServers, Issuing: c.IssuingCertificates, DeltaCRL: c.DeltaCRLDistributionPoints}
}

func defaultConfig() *mountConfig {
	return &mountConfig{TrustDomain: issuing.DefaultTrustDomain, DefaultRole: issuing.RoleAgent, LeafNotAfter: leafNotAfterTruncate}
}

// readConfig returns the stored config with defaults filled in.
func readConfig(ctx context.Context, s logical.Storage) (*mountConfig, error) {
	cfg := defaultConfig()
	raw, err := s.Get(ctx, configStorageKey)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if raw != nil {
		if err := raw.DecodeJSON(cfg); err != nil {
			return nil, fmt.Errorf("decoding config: %w", err)
		}
	}
	return cfg, nil
}

// writeConfig stores cfg and drops the cached copy.
func (b *mastioBackend) writeConfig(ctx context.Context, s logical.Storage, cfg *mountConfig) error {
	err := putEntry(ctx, s, configStorageKey, "config", cfg)
	b.configCache.reset() // also on error: the write may have landed
	return err
}

// Roles.

// readRole returns the named role, or nil when it does not exist.
func readRole(ctx context.Context, s logical.Storage, name string) (*issuing.Role, error) {
	return readEntry[issuing.Role](ctx, s, rolePrefix+name, fmt.Sprintf("role %q", name))
}

// listRoles lists the stored roles' names.
func listRoles(ctx context.Context, s logical.Storage) ([]string, error) {
	names, err := s.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return names, nil
}

// writeRole stores r under name and drops the cached roles. Callers hold
// roleLock.
func (b *mastioBackend) writeRole(ctx context.Context, s logical.Storage, name string, r *issuing.Role) error {
	err := putEntry(ctx, s, rolePrefix+name, fmt.Sprintf("role %q", name), r)
	b.roleCache.reset() // also on error: the write may have landed
	return err
}

// updateRole applies change to the named role (a new role starts as
// issuing.NewRole), validates the result and stores it, under roleLock.
func (b *mastioBackend) updateRole(ctx context.Context, s logical.Storage, name string, change func(*issuing.Role)) (*issuing.Role, error) {
	b.roleLock.Lock()
	defer b.roleLock.Unlock()
	r, err := readRole(ctx, s, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = issuing.NewRole()
	}
	change(r)
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, b.writeRole(ctx, s, name, r)
}

// deleteRole deletes the named role and drops the cached roles.
func (b *mastioBackend) deleteRole(ctx context.Context, s logical.Storage, name string) error {
	b.roleLock.Lock()
	defer b.roleLock.Unlock()
	err := s.Delete(ctx, rolePrefix+name)
	b.roleCache.reset()
	if err != nil {
		return fmt.Errorf("deleting role %q: %w", name, err)
	}
	return nil
}

// seedDefaultRoles writes the default profiles once per mount. The marker
// makes a deleted default stay deleted across restarts.
func (b *mastioBackend) seedDefaultRoles(ctx context.Context, s logical.Storage) error {
	b.roleLock.Lock()
	defer b.roleLock.Unlock()
	seeded, err := s.Get(ctx, defaultsSeededKey)
	if err != nil {
		return fmt.Errorf("reading default-roles marker: %w", err)
	}
	if seeded != nil {
		return nil
	}
	for name, r := range issuing.DefaultRoles() {
		existing, err := readRole(ctx, s, name)
		if err != nil {
			return err
		}
		if existing != nil {
			continue
		}
		if err := b.writeRole(ctx, s, name, r); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	return s.Put(ctx, &logical.StorageEntry{Key: defaultsSeededKey, Value: []byte("1")})
}

// checkSchema reads the mount's schema version and records ours on a new
// mount. A version newer than this plugin knows is an error: an older
// plugin must not misread (or rewrite) what a newer one stored.
func checkSchema(ctx context.Context, s logical.Storage, mayWrite bool) error {
	e, err := s.Get(ctx, schemaStorageKey)
	if err != nil {
		return fmt.Errorf("reading the storage schema version: %w", err)
	}
	if e == nil {
		if !mayWrite {
			return nil
		}
		return s.Put(ctx, &logical.StorageEntry{Key: schemaStorageKey, Value: []byte(strconv.Itoa(schemaVersion))})
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(e.Value)))
	if err != nil {
		return fmt.Errorf("the storage schema version %q does not parse", e.Value)
	}
	if v > schemaVersion {
		return fmt.Errorf("this mount's storage has schema version %d, newer than this plugin (v%s) understands (%d): register and run a newer mastio-ca plugin version", v, Version, schemaVersion)
	}
	return nil
}
