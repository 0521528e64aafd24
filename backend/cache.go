package backend

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// The caches the signing path reads instead of storage: parsed CAs
// (issuers), config and roles.

// entryCache caches parsed storage entries by storage key for the signing
// path, so that signing reads no storage. It is copy-on-write: a fill that
// read storage before a reset loses its CompareAndSwap and caches nothing,
// so a reset (Invalidate, or our own write) is never undone by a stale fill.
// Cached values are shared: callers must not modify them.
type entryCache[V any] struct {
	m atomic.Pointer[map[string]V]
}

func newEntryCache[V any]() *entryCache[V] {
	c := &entryCache[V]{}
	c.reset()
	return c
}

// load returns the cached value of key, or calls read and caches what it
// finds. found=false results are not cached.
func (c *entryCache[V]) load(key string, read func() (v V, found bool, err error)) (V, error) {
	m0 := c.m.Load()
	if v, ok := (*m0)[key]; ok {
		return v, nil
	}
	v, found, err := read()
	if err != nil || !found {
		return v, err
	}
	m1 := make(map[string]V, len(*m0)+1)
	for k, old := range *m0 {
		m1[k] = old
	}
	m1[key] = v
	c.m.CompareAndSwap(m0, &m1)
	return v, nil
}

// reset forgets every cached value.
func (c *entryCache[V]) reset() {
	c.m.Store(&map[string]V{})
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
	createdAt time.Time
	orgID     string
	cert      *x509.Certificate
	chain     []*x509.Certificate // the CAs above cert, nearest first
	signer    crypto.Signer       // nil for an anchor: the key is elsewhere
	keyRef    *hsmKeyRef          // the key in the PKCS#11 token, if it is there
	certPEM   string
	chainPEMs []string // the issuer certificate first, then its chain
	// retired are the rotated-out intermediates, newest first: the one
	// cert replaced, then those before it whose grace has not ended.
	retired []retiredCert
}

// keyBackend is where is's key lives ("" for an anchor: not here).
func (is *issuer) keyBackend() string {
	switch {
	case is.keyRef != nil:
		return keyBackendPKCS11
	case is.signer == nil:
		return ""
	}
	return keyBackendVault
}

// retiredCert is a parsed publishedCert.
type retiredCert struct {
	cert  *x509.Certificate
	until time.Time
	proof string // its key's signature over the certificate that replaced it
	// signer signs its CRL and OCSP answers during the grace; nil when the
	// entry keeps no key.
	signer crypto.Signer
}

// parseSigner parses a stored PKCS#8 key.
func parseSigner(pkcs8 []byte) (crypto.Signer, error) {
	key, err := x509.ParsePKCS8PrivateKey(pkcs8)
	if err != nil {
		return nil, fmt.Errorf("the key does not parse")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a key of type %T cannot sign", key)
	}
	return signer, nil
}

// newIssuer parses a stored entry. A key in the token is not looked up
// here: its signer finds it at the first signature.
func (b *mastioBackend) newIssuer(name caName, e *caEntry) (*issuer, error) {
	cert, err := x509.ParseCertificate(e.CertDER)
	if err != nil {
		return nil, fmt.Errorf("stored CA certificate does not parse: %w", err)
	}
	var signer crypto.Signer
	if e.Source != sourceAnchor {
		if signer, err = b.signerOf(e.KeyPKCS8, e.KeyPKCS11, cert.PublicKey); err != nil {
			return nil, fmt.Errorf("stored CA key: %w", err)
		}
	}
	is := &issuer{
		name:      name,
		version:   e.Version,
		source:    e.Source,
		kvExport:  e.KVExport,
		createdAt: e.CreatedAt,
		orgID:     e.OrgID,
		cert:      cert,
		signer:    signer,
		keyRef:    e.KeyPKCS11,
		certPEM:   issuing.EncodeCertPEM(e.CertDER),
	}
	is.chainPEMs = append(is.chainPEMs, is.certPEM)
	for _, p := range e.published() {
		c, err := x509.ParseCertificate(p.CertDER)
		if err != nil {
			return nil, fmt.Errorf("stored previous certificate does not parse: %w", err)
		}
		r := retiredCert{cert: c, until: p.GraceUntil, proof: p.ContinuityProof}
		if p.hasKey() {
			if r.signer, err = b.signerOf(p.KeyPKCS8, p.KeyPKCS11, c.PublicKey); err != nil {
				return nil, fmt.Errorf("stored retired CA key: %w", err)
			}
		}
		is.retired = append(is.retired, r)
	}
	for i, der := range e.ChainDER {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("stored CA chain certificate %d does not parse: %w", i+1, err)
		}
		is.chain = append(is.chain, c)
		is.chainPEMs = append(is.chainPEMs, issuing.EncodeCertPEM(der))
	}
	return is, nil
}

// noKeyHere is the refusal of an operation that needs the Org CA's key on
// a mount that holds only its certificate; then says what to do instead.
func noKeyHere(then string) error {
	return issuing.Statef("this mount holds only the Org CA's certificate (source anchor); its key is on the root mount: %s", then)
}

// published lists e's retired certificates, newest first.
func (e *caEntry) published() []publishedCert {
	if e.Previous == nil {
		return nil
	}
	return append([]publishedCert{*e.Previous}, e.Retired...)
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
	e, err := readCA(ctx, s, name)
	if err != nil {
		return nil, err
	}
	var is *issuer
	if e != nil {
		if is, err = b.newIssuer(name, e); err != nil {
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

// cachedConfig is readConfig through the cache, for the signing path.
func (b *mastioBackend) cachedConfig(ctx context.Context, s logical.Storage) (*mountConfig, error) {
	return b.configCache.load(configStorageKey, func() (*mountConfig, bool, error) {
		cfg, err := readConfig(ctx, s)
		return cfg, err == nil, err
	})
}

// cachedRole is readRole through the cache, for the signing path. The
// role returned is shared and must not be modified.
func (b *mastioBackend) cachedRole(ctx context.Context, s logical.Storage, name string) (*issuing.Role, error) {
	return b.roleCache.load(rolePrefix+name, func() (*issuing.Role, bool, error) {
		r, err := readRole(ctx, s, name)
		return r, r != nil, err
	})
}
