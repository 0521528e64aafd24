//go:build pkcs11

package hsm

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Built reports whether this build can use PKCS#11 tokens.
const Built = true

// retryInterval bounds the token's costly recoveries: a failed open is
// answered from memory this long before a token tries again (a missing
// token costs one open a second, not one per request), and a module is
// reset at most this often (a key missing for good, the wrong token
// configured, costs one re-open a second). A refused PIN is never tried
// again by the same Token (see Token).
const retryInterval = time.Second

// Token is one mount's view of its configured token. It opens the token
// on first use and keeps one crypto11 context (a session pool, logged in)
// until Close. When a signature fails on an open context (the token was
// removed, a session lost), every context on the same module is closed so
// that the module is finalised and re-read, and the signature is tried
// once more on a fresh one.
//
// A PIN the token refused is not tried again until the config changes (a
// new Token): tokens lock a PIN after a few wrong tries.
type Token struct {
	cfg Config

	mu       sync.Mutex // guards the fields below
	ctx      *crypto11.Context
	gen      uint64 // counts the contexts opened, so a stale failure resets nothing
	keys     map[string]crypto11.Signer
	openErr  error
	failedAt time.Time
	closed   bool
}

// modules guards every open and close of a context, process-wide: a reset
// closes all the contexts on a module at once, so that crypto11 finalises
// it and the next open re-reads the slots (PKCS#11 state is per process,
// shared by every mount of this plugin).
var modules struct {
	sync.Mutex
	tokens map[*Token]struct{}
	reset  map[string]time.Time // the last reset of each module
}

// Open returns the token of cfg. It does no I/O: the token is opened on
// first use (Check, Generate, a signature).
func Open(cfg Config) *Token {
	t := &Token{cfg: cfg}
	modules.Lock()
	if modules.tokens == nil {
		modules.tokens = map[*Token]struct{}{}
	}
	modules.tokens[t] = struct{}{}
	modules.Unlock()
	return t
}

// Close logs out and closes the token's sessions; t refuses everything
// afterwards.
func (t *Token) Close() {
	modules.Lock()
	defer modules.Unlock()
	delete(modules.tokens, t)
	t.mu.Lock()
	c := t.ctx
	t.ctx, t.keys, t.closed = nil, nil, true
	t.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// InUse reports whether a token other than t and except, still open in
// this process, is the same token of the same module: PKCS#11 shares a
// login among a process's sessions, so a second mount on it would not
// need the PIN.
func (t *Token) InUse(except *Token) bool {
	modules.Lock()
	defer modules.Unlock()
	for o := range modules.tokens {
		if o != t && o != except && o.cfg.ModulePath == t.cfg.ModulePath && o.cfg.TokenLabel == t.cfg.TokenLabel && sameSlot(o.cfg.Slot, t.cfg.Slot) {
			return true
		}
	}
	return false
}

func sameSlot(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// Check opens the token and logs in now, if it is not open yet.
func (t *Token) Check() error {
	_, _, err := t.context()
	return err
}

// context returns the open context, opening it if need be, and its
// generation.
func (t *Token) context() (*crypto11.Context, uint64, error) {
	t.mu.Lock()
	if t.ctx != nil {
		defer t.mu.Unlock()
		return t.ctx, t.gen, nil
	}
	t.mu.Unlock()
	modules.Lock()
	defer modules.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return nil, 0, issuing.Unavailablef("the PKCS#11 token %s was closed (its config changed): retry", t.cfg.TokenName())
	case t.ctx != nil:
		return t.ctx, t.gen, nil
	case t.openErr != nil && (isPINRefused(t.openErr) || time.Since(t.failedAt) < retryInterval):
		return nil, 0, t.openErr
	}
	c, err := crypto11.Configure(&crypto11.Config{
		Path: t.cfg.ModulePath, TokenLabel: t.cfg.TokenLabel, SlotNumber: t.cfg.Slot, Pin: t.cfg.PIN,
		// A request waits at most this long for a session; more than
		// MaxSessions at once queue.
		MaxSessions: 32, PoolWaitTimeout: 10 * time.Second,
	})
	if err != nil {
		t.openErr, t.failedAt = t.openError(err), time.Now()
		return nil, 0, t.openErr
	}
	t.ctx, t.keys, t.openErr = c, map[string]crypto11.Signer{}, nil
	t.gen++
	return c, t.gen, nil
}

// pinRefused marks the error of a PIN the token refused.
type pinRefused struct{ error }

func (e pinRefused) Unwrap() error { return e.error }

func isPINRefused(err error) bool {
	var p pinRefused
	return errors.As(err, &p)
}

// openError says why the token did not open, in words an operator can act
// on. The PIN is never part of it.
func (t *Token) openError(err error) error {
	name := t.cfg.TokenName()
	var p11 pkcs11.Error
	switch {
	case errors.As(err, &p11) && p11 == pkcs11.CKR_PIN_INCORRECT:
		return pinRefused{issuing.Unavailablef("the PKCS#11 token %s refused the PIN (CKR_PIN_INCORRECT): write config/pkcs11 with the right pin; the plugin does not try a refused PIN again, since tokens lock a PIN after a few wrong tries", name)}
	case errors.As(err, &p11) && (p11 == pkcs11.CKR_PIN_LOCKED || p11 == pkcs11.CKR_PIN_EXPIRED):
		return pinRefused{issuing.Unavailablef("the PIN of the PKCS#11 token %s is locked or expired (%s): its security officer must reset it, then write config/pkcs11 again", name, p11.Error())}
	case errors.As(err, &p11):
		return issuing.Unavailablef("opening the PKCS#11 token %s failed: %s", name, p11.Error())
	case strings.Contains(err.Error(), "could not find PKCS#11 token"):
		return issuing.Unavailablef("the PKCS#11 module has no token %s: is the token present and initialised (softhsm2-util --show-slots, or the HSM's own tool)?", name)
	case strings.Contains(err.Error(), "failed to open module") || strings.Contains(err.Error(), "failed to initialize module"):
		return issuing.Unavailablef("the PKCS#11 module %s could not be loaded or initialised", t.cfg.ModulePath)
	}
	return issuing.Unavailablef("opening the PKCS#11 token %s failed", name)
}

// resetModule closes every open context on t's module, so that the next
// use of any of them finalises and re-opens it: the cure for a removed
// token or lost sessions. gen is the context the failure was seen on. It
// reports whether a retry may find a fresh context: true when it reset,
// or when gen's context is gone already (another reset, or a newer one is
// open); false when a reset of the module was too recent.
func (t *Token) resetModule(gen uint64) bool {
	modules.Lock()
	defer modules.Unlock()
	t.mu.Lock()
	stale := t.gen != gen || t.ctx == nil // opened again since, or closed by another reset
	t.mu.Unlock()
	if stale {
		return true
	}
	if last := modules.reset[t.cfg.ModulePath]; time.Since(last) < retryInterval {
		return false
	}
	if modules.reset == nil {
		modules.reset = map[string]time.Time{}
	}
	modules.reset[t.cfg.ModulePath] = time.Now()
	var open []*crypto11.Context
	for o := range modules.tokens {
		if o.cfg.ModulePath != t.cfg.ModulePath {
			continue
		}
		o.mu.Lock()
		if o.ctx != nil {
			open = append(open, o.ctx)
		}
		o.ctx, o.keys = nil, nil
		o.mu.Unlock()
	}
	for _, c := range open {
		_ = c.Close()
	}
	return true
}

// newKeyRef makes a reference for a new key: a random 16-byte CKA_ID and
// the label prefix + its first 8 hex digits.
func newKeyRef(labelPrefix string) (KeyRef, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return KeyRef{}, err
	}
	return KeyRef{ID: id, Label: labelPrefix + hex.EncodeToString(id[:4])}, nil
}

// Generate makes a key pair inside the token: private key CKA_TOKEN,
// CKA_SENSITIVE and not CKA_EXTRACTABLE, as crypto11's templates set. The
// key's label is labelPrefix followed by the start of its random CKA_ID.
// Ed25519 is refused: PKCS#11 EdDSA is not in the library.
func (t *Token) Generate(keyType string, bits int, labelPrefix string) (KeyRef, crypto.Signer, error) {
	if keyType == issuing.KeyTypeEd25519 {
		return KeyRef{}, nil, issuing.Inputf("key_type ed25519 cannot be generated in a PKCS#11 token here (the PKCS#11 library has no EdDSA); use key_type ec or rsa with key_backend=pkcs11")
	}
	ref, err := newKeyRef(labelPrefix)
	if err != nil {
		return KeyRef{}, nil, err
	}
	c, _, err := t.context()
	if err != nil {
		return KeyRef{}, nil, err
	}
	var s crypto11.Signer
	switch {
	case keyType == issuing.KeyTypeEC && bits == 384:
		s, err = c.GenerateECDSAKeyPairWithLabel(ref.ID, []byte(ref.Label), elliptic.P384())
	case keyType == issuing.KeyTypeEC:
		s, err = c.GenerateECDSAKeyPairWithLabel(ref.ID, []byte(ref.Label), elliptic.P256())
	default:
		s, err = c.GenerateRSAKeyPairWithLabel(ref.ID, []byte(ref.Label), bits)
	}
	if err != nil {
		if !lostSession(err) {
			return KeyRef{}, nil, issuing.Statef("the PKCS#11 token %s refused to generate a %s key: %s", t.cfg.TokenName(), keyType, p11Reason(err))
		}
		return KeyRef{}, nil, issuing.Unavailablef("the PKCS#11 token %s could not generate a %s key: %s", t.cfg.TokenName(), keyType, p11Reason(err))
	}
	return ref, t.Signer(ref, s.Public()), nil
}

// lostSession reports whether err says the token or its sessions went
// away (worth a reset and a retry, and a 503), rather than that the token
// refused the operation for good (a mechanism or template it does not
// support, a key not allowed to sign: a 422).
func lostSession(err error) bool {
	if err == nil {
		return false
	}
	var p11 pkcs11.Error
	if !errors.As(err, &p11) {
		return true // crypto11's own: a closed context, a pool timeout
	}
	switch p11 {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED, pkcs11.CKR_OBJECT_HANDLE_INVALID,
		pkcs11.CKR_KEY_HANDLE_INVALID, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_DEVICE_MEMORY, pkcs11.CKR_USER_NOT_LOGGED_IN,
		pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED, pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED, pkcs11.CKR_SLOT_ID_INVALID:
		return true
	}
	return false
}

// p11Reason is the PKCS#11 return code in err, or a generic word.
func p11Reason(err error) string {
	var p11 pkcs11.Error
	if errors.As(err, &p11) {
		return p11.Error()
	}
	var u *issuing.Error
	if errors.As(err, &u) {
		return u.Msg
	}
	return "the token failed"
}

// find returns the token's signer for ref, checked against pub, and the
// generation of the context it belongs to. A key that cannot be found on
// a context that was open (a token taken out and put back leaves stale
// sessions that see no objects) is looked up once more after a reset.
func (t *Token) find(ref KeyRef, pub crypto.PublicKey, cached bool) (crypto11.Signer, uint64, error) {
	for attempt := 0; ; attempt++ {
		c, gen, err := t.context()
		if err != nil {
			return nil, 0, err
		}
		id := string(ref.ID)
		t.mu.Lock()
		s, ok := t.keys[id]
		t.mu.Unlock()
		if ok && cached {
			return s, gen, nil
		}
		found, err := c.FindKeyPairs(ref.ID, nil)
		if (lostSession(err) || (err == nil && len(found) == 0)) && attempt == 0 && t.resetModule(gen) {
			continue
		}
		switch {
		case err != nil:
			return nil, 0, issuing.Unavailablef("looking up the CA key %s in the PKCS#11 token %s failed: %s", ref, t.cfg.TokenName(), p11Reason(err))
		case len(found) == 0:
			return nil, 0, issuing.Unavailablef("the PKCS#11 token %s holds no key %s: is this the token the key was generated in?", t.cfg.TokenName(), ref)
		case pub != nil && !issuing.PublicKeysEqual(found[0].Public(), pub):
			return nil, 0, issuing.Statef("the key %s in the PKCS#11 token %s is not the key of the CA certificate", ref, t.cfg.TokenName())
		}
		s = found[0]
		if pub != nil { // only a key checked against its certificate is kept
			t.mu.Lock()
			if t.gen == gen && t.keys != nil {
				t.keys[id] = s
			}
			t.mu.Unlock()
		}
		return s, gen, nil
	}
}

// Probe looks ref up in the token (not in what t has cached), and checks
// it against pub when given: for health, which must see a token that is
// gone.
func (t *Token) Probe(ref KeyRef, pub crypto.PublicKey) error {
	_, _, err := t.find(ref, pub, false)
	return err
}

// Signer is the token's key ref as a crypto.Signer whose public half is
// pub. It looks the key up on first use, after a reset again.
func (t *Token) Signer(ref KeyRef, pub crypto.PublicKey) crypto.Signer {
	return &tokenKey{t: t, ref: ref, pub: pub}
}

type tokenKey struct {
	t   *Token
	ref KeyRef
	pub crypto.PublicKey
}

func (k *tokenKey) Public() crypto.PublicKey { return k.pub }

// Sign signs in the token. A failure on an open context resets the module
// and is tried once more; what fails then is a KindUnavailable error.
func (k *tokenKey) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		s, gen, err := k.t.find(k.ref, k.pub, true)
		if err != nil {
			return nil, err
		}
		sig, err := s.Sign(r, digest, opts)
		if err == nil {
			return sig, nil
		}
		if !lostSession(err) {
			return nil, issuing.Statef("the PKCS#11 token %s refused to sign with the CA key %s: %s", k.t.cfg.TokenName(), k.ref, p11Reason(err))
		}
		if attempt > 0 || !k.t.resetModule(gen) {
			return nil, issuing.Unavailablef("the PKCS#11 token %s could not sign with the CA key %s: %s", k.t.cfg.TokenName(), k.ref, p11Reason(err))
		}
	}
}

// Delete destroys the key pair ref in the token.
func (t *Token) Delete(ref KeyRef) error {
	s, _, err := t.find(ref, nil, false)
	if err != nil {
		return err
	}
	if err := s.Delete(); err != nil {
		return issuing.Unavailablef("destroying the key %s in the PKCS#11 token %s failed: %s", ref, t.cfg.TokenName(), p11Reason(err))
	}
	t.mu.Lock()
	delete(t.keys, string(ref.ID))
	t.mu.Unlock()
	return nil
}

// KeyAttributes reads the protection attributes of ref's private key.
func (t *Token) KeyAttributes(ref KeyRef) (Attributes, error) {
	s, _, err := t.find(ref, nil, false)
	if err != nil {
		return Attributes{}, err
	}
	c, _, err := t.context()
	if err != nil {
		return Attributes{}, err
	}
	set, err := c.GetAttributes(s, []crypto11.AttributeType{
		crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaAlwaysSensitive, crypto11.CkaNeverExtractable, crypto11.CkaToken,
	})
	if err != nil {
		return Attributes{}, issuing.Unavailablef("reading the attributes of the key %s in the PKCS#11 token failed: %s", ref, p11Reason(err))
	}
	b := func(a crypto11.AttributeType) bool {
		v := set[a]
		return v != nil && len(v.Value) == 1 && v.Value[0] != 0
	}
	return Attributes{
		Sensitive: b(crypto11.CkaSensitive), Extractable: b(crypto11.CkaExtractable),
		AlwaysSensitive: b(crypto11.CkaAlwaysSensitive), NeverExtractable: b(crypto11.CkaNeverExtractable), Token: b(crypto11.CkaToken),
	}, nil
}

// String names the token for logs.
func (t *Token) String() string { return fmt.Sprintf("PKCS#11 token %s", t.cfg.TokenName()) }
