package backend

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Key backends: where a CA's private key lives and signs. It is chosen
// per CA when its key is made (generate, intermediate/generate,
// intermediate/rotate) and recorded in its entry: KeyPKCS8 for vault,
// KeyPKCS11 (a reference, no key bytes) for pkcs11.
const (
	keyBackendVault  = "vault"
	keyBackendPKCS11 = "pkcs11"
)

// keyBackendValues are the values of a key_backend field.
var keyBackendValues = []any{keyBackendVault, keyBackendPKCS11}

// hsmKeyRef is the stored reference to a key in the mount's PKCS#11
// token: all Vault keeps of it.
type hsmKeyRef struct {
	ID    string `json:"id"` // CKA_ID, hex
	Label string `json:"label"`
}

func (r *hsmKeyRef) ref() hsm.KeyRef {
	id, _ := hex.DecodeString(r.ID)
	return hsm.KeyRef{ID: id, Label: r.Label}
}

func storedRef(r hsm.KeyRef) *hsmKeyRef {
	return &hsmKeyRef{ID: hex.EncodeToString(r.ID), Label: r.Label}
}

// keyBackend is where e's key lives.
func (e *caEntry) keyBackend() string {
	if e.KeyPKCS11 != nil {
		return keyBackendPKCS11
	}
	return keyBackendVault
}

// tokenKey is a key in the token a CA entry refers to, with the
// certificate whose public key it must have.
type tokenKey struct {
	ref     hsmKeyRef
	certDER []byte
}

// tokenKeys lists the token keys e refers to: its own and those of the
// retired intermediates it publishes.
func (e *caEntry) tokenKeys() []tokenKey {
	if e == nil {
		return nil
	}
	var out []tokenKey
	if e.KeyPKCS11 != nil {
		out = append(out, tokenKey{*e.KeyPKCS11, e.CertDER})
	}
	for _, p := range e.published() {
		if p.KeyPKCS11 != nil {
			out = append(out, tokenKey{*p.KeyPKCS11, p.CertDER})
		}
	}
	return out
}

// pkcs11StorageKey holds config/pkcs11, PIN included: listed in
// SealWrapStorage with the CA keys.
const pkcs11StorageKey = "config/pkcs11"

// pkcs11Config is the stored config/pkcs11.
type pkcs11Config struct {
	ModulePath string    `json:"module_path"`
	TokenLabel string    `json:"token_label,omitempty"`
	Slot       *int      `json:"slot,omitempty"`
	PIN        string    `json:"pin"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (c *pkcs11Config) hsm() hsm.Config {
	return hsm.Config{ModulePath: c.ModulePath, TokenLabel: c.TokenLabel, Slot: c.Slot, PIN: c.PIN}
}

func readPKCS11Config(ctx context.Context, s logical.Storage) (*pkcs11Config, error) {
	return readEntry[pkcs11Config](ctx, s, pkcs11StorageKey, "config/pkcs11")
}

// tokenHolder is the mount's PKCS#11 token, opened from config/pkcs11 on
// first use, replaced when the config changes.
type tokenHolder struct {
	mu     sync.Mutex
	tok    *hsm.Token
	loaded bool // tok reflects the stored config (nil: none)
	// view is the mount's storage, for a signature that needs the token
	// before any request has loaded it (signing takes no storage).
	view logical.Storage
}

// reset forgets the token (config changed, on this node or another).
func (h *tokenHolder) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.tok != nil {
		h.tok.Close()
	}
	h.tok, h.loaded = nil, false
}

// token returns the mount's token; a mount without config/pkcs11 is a
// KindState refusal.
func (h *tokenHolder) token(ctx context.Context, s logical.Storage) (*hsm.Token, error) {
	if !hsm.Built {
		return nil, hsm.ErrNotBuilt
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.loaded {
		if s == nil {
			s = h.view
		}
		cfg, err := readPKCS11Config(ctx, s)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			// The allow-list holds at every load, not only at the write:
			// a plugin re-registered without a module stops loading it.
			if err := cfg.hsm().Check(hsm.AllowedModules()); err != nil {
				return nil, issuing.Unavailablef("config/pkcs11 cannot be used, no PKCS#11 token is opened: %v", err)
			}
			h.tok = hsm.Open(cfg.hsm())
		}
		h.loaded = true
	}
	if h.tok == nil {
		return nil, issuing.Statef("this mount has no config/pkcs11: write module_path, token_label (or slot) and pin there before using key_backend=pkcs11")
	}
	return h.tok, nil
}

// tokenSigner is a CA key in the token as a crypto.Signer: it finds the
// mount's current token at each signature, so a config change or a
// re-opened token is picked up without re-parsing the CA.
type tokenSigner struct {
	h   *tokenHolder
	ref hsm.KeyRef
	pub crypto.PublicKey
}

func (k *tokenSigner) Public() crypto.PublicKey { return k.pub }

func (k *tokenSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := k.h.token(ctx, nil)
	if err != nil {
		return nil, err
	}
	return tok.Signer(k.ref, k.pub).Sign(r, digest, opts)
}

// signerOf is the signer of a stored key: parsed from PKCS#8, or the
// token's key ref with the certificate's public key pub.
func (b *mastioBackend) signerOf(pkcs8 []byte, ref *hsmKeyRef, pub crypto.PublicKey) (crypto.Signer, error) {
	if ref != nil {
		return &tokenSigner{h: b.tokens, ref: ref.ref(), pub: pub}, nil
	}
	return parseSigner(pkcs8)
}

// keyMaker makes the key of one CA operation in the chosen backend. The
// token keys it made and the operation did not store are destroyed by
// discard.
type keyMaker struct {
	b       *mastioBackend
	ctx     context.Context
	s       logical.Storage
	backend string
	label   string
	tok     *hsm.Token // the token the keys were made in
	made    []hsm.KeyRef
}

// newKeyMaker checks backend (keyBackendVault or keyBackendPKCS11) for CA
// name; a pkcs11 maker needs the mount's token configured.
func (b *mastioBackend) newKeyMaker(ctx context.Context, s logical.Storage, backend string, name caName) (*keyMaker, error) {
	m := &keyMaker{b: b, ctx: ctx, s: s, backend: backend, label: "mastio-ca/" + string(name) + "/"}
	switch backend {
	case "", keyBackendVault:
		m.backend = keyBackendVault
	case keyBackendPKCS11:
		if _, err := b.tokens.token(ctx, s); err != nil {
			return nil, err
		}
	default:
		return nil, issuing.Inputf("key_backend %s is not valid; use vault or pkcs11", issuing.Quote(backend))
	}
	return m, nil
}

// gen is the issuing.KeyGen of m: nil (in memory) for vault. For pkcs11 it
// makes the key in the mount's token as configured when it runs: callers
// run it under caLock, which config/pkcs11 writes take too.
func (m *keyMaker) gen() issuing.KeyGen {
	if m.backend != keyBackendPKCS11 {
		return nil
	}
	return func(keyType string, bits int) (crypto.Signer, error) {
		tok, err := m.b.tokens.token(m.ctx, m.s)
		if err != nil {
			return nil, err
		}
		ref, s, err := tok.Generate(keyType, bits, m.label)
		if err != nil {
			return nil, err
		}
		m.tok = tok
		m.made = append(m.made, ref)
		m.b.Logger().Info("generated a CA key in the PKCS#11 token", "token", tok.String(), "key", ref.String(), "key_type", keyType, "key_bits", bits)
		return s, nil
	}
}

// stored is the reference to put in the entry of the key m made last (nil
// for vault).
func (m *keyMaker) stored() *hsmKeyRef {
	if len(m.made) == 0 {
		return nil
	}
	return storedRef(m.made[len(m.made)-1])
}

// discard destroys the token keys m made, for an operation that was
// refused (err, of an issuing kind) or a dry run (err nil). After any other
// failure (a storage write that may have landed all the same) the keys are
// kept and logged: a CA may refer to them.
func (m *keyMaker) discard(err error) {
	if err != nil && issuing.KindOf(err) == issuing.KindInternal {
		for _, r := range m.made {
			m.b.Logger().Warn("kept a CA key made in the PKCS#11 token although the operation failed: the CA entry may have been stored all the same; if no CA uses it (health, cert), delete it from the token", "key", r.String())
		}
		m.made = nil
		return
	}
	for _, r := range m.made {
		if err := m.tok.Delete(r); err != nil {
			m.b.Logger().Warn("could not destroy a CA key the operation did not keep; delete it from the token by hand", "key", r.String(), "error", err)
		}
	}
	m.made = nil
}

// destroyUnused destroys the token keys current referred to and next no
// longer does: a replaced Org CA, a rotated-out intermediate past its
// grace. A failure is logged with the key's reference, for the operator.
func (b *mastioBackend) destroyUnused(current, next *caEntry) {
	keep := map[string]bool{}
	for _, k := range next.tokenKeys() {
		keep[k.ref.ID] = true
	}
	var gone []hsmKeyRef
	for _, k := range current.tokenKeys() {
		if !keep[k.ref.ID] {
			gone = append(gone, k.ref)
		}
	}
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok, err := b.tokens.token(ctx, nil)
	for _, r := range gone {
		if err == nil {
			err = tok.Delete(r.ref())
		}
		if err != nil {
			b.Logger().Warn("could not destroy a CA key no CA uses any more; delete it from the token by hand", "key", r.ref().String(), "error", err)
			continue
		}
		b.Logger().Info("destroyed a CA key no CA uses any more in the PKCS#11 token", "key", r.ref().String())
	}
}

// pkcs11Update is a config/pkcs11 write: nil fields keep their value.
type pkcs11Update struct {
	modulePath, tokenLabel, pin *string
	slot                        *int
}

// writePKCS11Config checks u against the allow-list, logs in to the token
// it names, checks that the token holds every CA key the mount has there,
// and stores it. Nothing is stored unless all of that holds.
func (b *mastioBackend) writePKCS11Config(ctx context.Context, s logical.Storage, u pkcs11Update) (*pkcs11Config, error) {
	if !hsm.Built {
		return nil, hsm.ErrNotBuilt
	}
	b.caLock.Lock() // no CA key is made or replaced meanwhile
	defer b.caLock.Unlock()
	cfg, err := readPKCS11Config(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &pkcs11Config{}
	}
	if u.modulePath != nil {
		cfg.ModulePath = *u.modulePath
	}
	if u.tokenLabel != nil {
		cfg.TokenLabel, cfg.Slot = *u.tokenLabel, nil
	}
	if u.slot != nil {
		cfg.Slot, cfg.TokenLabel = u.slot, ""
	}
	if u.tokenLabel != nil && u.slot != nil {
		return nil, issuing.Inputf("give token_label or slot, not both")
	}
	if u.pin != nil {
		cfg.PIN = *u.pin
	}
	if err := cfg.hsm().Check(hsm.AllowedModules()); err != nil {
		return nil, err
	}
	// The mount's own token is closed first, and cannot be opened again
	// until the new one is stored or refused (tokens.mu): were its login
	// still live, the token would take any PIN (CKR_USER_ALREADY_LOGGED_IN).
	// Its signers wait meanwhile; on a refusal the stored config is opened
	// again at their next use.
	b.tokens.mu.Lock()
	defer b.tokens.mu.Unlock()
	tok := hsm.Open(cfg.hsm())
	keep := false
	defer func() {
		if !keep {
			tok.Close()
		}
	}()
	if tok.InUse(b.tokens.tok) {
		return nil, issuing.Inputf("the PKCS#11 token %s is in use by another mount of this plugin: PKCS#11 shares a token's login within a process, so give each mount a token of its own", cfg.hsm().TokenName())
	}
	if b.tokens.tok != nil {
		b.tokens.tok.Close()
	}
	b.tokens.tok, b.tokens.loaded = nil, false
	if err := tok.Check(); err != nil {
		return nil, issuing.Inputf("config/pkcs11 not stored: %v", err)
	}
	for _, n := range caNames {
		e, err := readCA(ctx, s, n)
		if err != nil {
			return nil, err
		}
		for _, k := range e.tokenKeys() {
			cert, err := x509.ParseCertificate(k.certDER)
			if err != nil {
				return nil, fmt.Errorf("stored %s certificate does not parse: %w", n.label(), err)
			}
			if err := tok.Probe(k.ref.ref(), cert.PublicKey); err != nil {
				return nil, issuing.Inputf("config/pkcs11 not stored: the %s uses the key %s, which this token cannot give (%v); a CA's key stays in the token it was generated in", n.label(), k.ref.ref(), err)
			}
		}
	}
	if p, err := pendingTokenKey(ctx, s); err != nil {
		return nil, err
	} else if p != nil {
		pub, err := issuing.CSRPublicKey(p.CSRDER)
		if err != nil {
			return nil, err
		}
		if err := tok.Probe(p.KeyPKCS11.ref(), pub); err != nil {
			return nil, issuing.Inputf("config/pkcs11 not stored: the %s is the key %s, which this token cannot give (%v); drop it (DELETE intermediate/pending) first to move to another token", pendingLabel, p.KeyPKCS11.ref(), err)
		}
	}
	cfg.UpdatedAt = time.Now().UTC()
	if err := putEntry(ctx, s, pkcs11StorageKey, "config/pkcs11", cfg); err != nil {
		return nil, err
	}
	b.tokens.tok, b.tokens.loaded, keep = tok, true, true
	b.Logger().Info("configured the PKCS#11 token", "module", cfg.ModulePath, "token", cfg.hsm().TokenName())
	return cfg, nil
}

// pendingTokenKey is the pending intermediate when its key is in the
// token (nil otherwise).
func pendingTokenKey(ctx context.Context, s logical.Storage) (*pendingEntry, error) {
	p, err := readPending(ctx, s)
	if err != nil || !p.live() || p.KeyPKCS11 == nil {
		return nil, err
	}
	return p, nil
}

// deletePKCS11Config removes config/pkcs11, unless a CA's key is in the
// token.
func (b *mastioBackend) deletePKCS11Config(ctx context.Context, s logical.Storage) error {
	b.caLock.Lock()
	defer b.caLock.Unlock()
	for _, n := range caNames {
		e, err := readCA(ctx, s, n)
		if err != nil {
			return err
		}
		if len(e.tokenKeys()) > 0 {
			return issuing.Statef("the %s has its key in the PKCS#11 token: config/pkcs11 stays while a CA uses it (replace the CA with key_backend=vault first)", n.label())
		}
	}
	if p, err := pendingTokenKey(ctx, s); err != nil {
		return err
	} else if p != nil {
		return issuing.Statef("the %s is in the PKCS#11 token: config/pkcs11 stays while it is pending (activate it with intermediate/set-signed, or drop it with DELETE intermediate/pending)", pendingLabel)
	}
	if err := s.Delete(ctx, pkcs11StorageKey); err != nil {
		return fmt.Errorf("deleting config/pkcs11: %w", err)
	}
	b.tokens.reset()
	return nil
}

// pkcs11Status is what health and config/pkcs11 report of the token: ""
// when every CA key in it can be found, else why not.
func (b *mastioBackend) pkcs11Status(ctx context.Context, s logical.Storage) (configured bool, problem string) {
	cfg, err := readPKCS11Config(ctx, s)
	if err != nil {
		return false, err.Error()
	}
	if cfg == nil {
		return false, ""
	}
	tok, err := b.tokens.token(ctx, s)
	if err == nil {
		err = tok.Check()
	}
	if err != nil {
		return true, err.Error()
	}
	for _, n := range caNames {
		is, err := b.loadIssuer(ctx, s, n)
		if err != nil {
			return true, err.Error()
		}
		if is == nil || is.keyRef == nil {
			continue
		}
		if err := tok.Probe(is.keyRef.ref(), is.cert.PublicKey); err != nil {
			return true, fmt.Sprintf("the %s's key: %v", n.label(), err)
		}
	}
	return true, ""
}
