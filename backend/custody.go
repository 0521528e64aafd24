package backend

import (
	"context"
	"crypto"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Custody: the one place a CA entry is replaced. generate, import, the KV
// mirror's write, intermediate/generate, intermediate/import,
// intermediate/rotate, intermediate/set-signed and kv-export/<name> each
// describe their change as a caChange; replaceCA applies it under caLock:
// read the current entry, apply the check-and-set rule, build the next
// entry, store it, refresh the signing cache, log. The one key that is not
// yet a CA, the pending intermediate of intermediate/generate-csr, is
// written by replacePending under the same lock and rule.

// casMode is the check-and-set rule of a change.
type casMode int

const (
	// casNone: the change takes no cas (kv-export).
	casNone casMode = iota
	// casCreateOnly: no cas creates only when no CA exists; replacing one
	// takes cas equal to its version (generate, import, KV mirror).
	casCreateOnly
	// casIfGiven: cas is optional; when given it must equal the current
	// version (rotate).
	casIfGiven
)

// caChange is one replacement of a CA entry.
type caChange struct {
	name   caName
	mode   casMode
	cas    int
	casSet bool

	// check, when set, runs first, given the current entry (nil: none):
	// it refuses the change (preconditions of the operation), or reports
	// that current already is what the caller asks for (same), a success
	// that writes nothing, before the cas rule applies.
	check func(current *caEntry) (same bool, err error)
	// next builds the entry to store in place of current (nil: none).
	// It returns nil to leave the entry as it is.
	next func(current *caEntry) (*caEntry, error)
	// amend keeps current's version (an entry's own flag changes); any
	// other change stores current's successor (see succeed).
	amend bool
	// dryRun builds and checks the next entry and stores nothing: the
	// caller gets what the change would store.
	dryRun bool
	// staged writes the next entry to its staging key before the
	// switch, so that a failure half way leaves the current CA signing.
	staged bool

	// cleanup, when set, runs under the lock once next is stored
	// (set-signed drops the pending key it activated); its failure is
	// logged, not returned: the change itself succeeded.
	cleanup func() error

	// event is the log message of a successful change, logArgs its
	// attributes beyond name, version, serial and fingerprint.
	event   string
	logArgs func() []any
}

// replaceCA applies c. It returns the CA as now stored (for a dry run: as
// it would be) and whether nothing was written.
func (b *mastioBackend) replaceCA(ctx context.Context, s logical.Storage, c caChange) (*issuer, bool, error) {
	b.caLock.Lock()
	defer b.caLock.Unlock()
	current, err := readCA(ctx, s, c.name)
	if err != nil {
		return nil, false, err
	}
	if c.check != nil {
		same, err := c.check(current)
		if err != nil {
			return nil, false, err
		}
		if same {
			is, err := b.newIssuer(c.name, current)
			return is, true, err
		}
	}
	switch c.mode {
	case casCreateOnly:
		err = issuing.CheckCreateOnly(c.name.current(current), c.cas, c.casSet)
	case casIfGiven:
		err = issuing.CheckIfVersion(c.name.current(current), c.cas, c.casSet)
	}
	if err != nil {
		return nil, false, err
	}
	next, err := c.next(current)
	if err != nil {
		return nil, false, err
	}
	if next == nil {
		if current == nil {
			return nil, false, fmt.Errorf("%s: nothing to keep and nothing to store", c.name.label())
		}
		is, err := b.newIssuer(c.name, current)
		return is, true, err
	}
	if !c.amend {
		if err := succeed(c.name, current, next); err != nil {
			return nil, false, err
		}
	}
	is, err := b.newIssuer(c.name, next)
	if err != nil {
		return nil, false, err
	}
	if c.dryRun {
		return is, true, nil
	}
	if c.staged {
		if err := putEntry(ctx, s, c.name.stagingKey(), "the staged "+c.name.label(), next); err != nil {
			return nil, false, err
		}
	}
	err = putEntry(ctx, s, c.name.storageKey(), c.name.label(), next)
	if c.staged {
		// Leave no unused CA key behind; the next rotation overwrites it
		// anyway should this delete fail.
		if derr := s.Delete(ctx, c.name.stagingKey()); derr != nil {
			b.Logger().Warn("could not delete the staged CA; the next rotation overwrites it", "ca", string(c.name), "error", derr)
		}
	}
	if err != nil {
		// The write may have landed all the same (a timeout): drop the
		// cache so this node reads storage again rather than keep signing
		// with what may no longer be the stored CA.
		b.resetIssuer(c.name)
		if c.staged {
			return nil, false, fmt.Errorf("switching to the next %s (the current one still signs): %w", c.name.label(), err)
		}
		return nil, false, err
	}
	b.issuers[c.name].Store(&issuerSlot{is: is, known: true})
	if current != nil {
		b.destroyUnused(current, next)
	}
	if c.cleanup != nil {
		if err := c.cleanup(); err != nil {
			b.Logger().Warn("the CA was stored, tidying up after it failed", "ca", string(c.name), "error", err)
		}
	}
	args := []any{"ca", string(c.name), "version", is.version, "serial", issuing.FormatSerial(is.cert.SerialNumber), "sha256", issuing.FingerprintSHA256(is.cert.Raw)}
	if c.logArgs != nil {
		args = append(args, c.logArgs()...)
	}
	b.Logger().Info(c.event, args...)
	return is, false, nil
}

// exportedKeyPEM is the one place a private key leaves the plugin: the KV
// mirror serves an imported key while its kv_export is on. A generated
// key is never exported.
func exportedKeyPEM(e *caEntry) (string, bool) {
	if !e.KVExport || e.Source != sourceImported {
		return "", false
	}
	return issuing.EncodePrivateKeyPEM(e.KeyPKCS8), true
}

// succeed makes next the successor of current (nil on an empty mount):
// the next version, and the kv_export seal carried over, so that no
// replacement can export a key once export was turned off on this mount.
func succeed(name caName, current, next *caEntry) error {
	next.Version = 1
	if current == nil {
		return nil
	}
	next.Version = current.Version + 1
	next.KVExportSealed = current.KVExportSealed
	if next.KVExportSealed && next.KVExport {
		return issuing.Inputf("kv_export of the %s was turned off for good on this mount: a replacement cannot turn it on again", name.label())
	}
	return nil
}

// pendingLabel names the pending intermediate in messages.
const pendingLabel = "pending intermediate key"

// replacePending stores the pending intermediate build makes under the
// create-only rule: no cas creates one only when none is pending; cas
// equal to the pending one's version replaces it (dropping its key, also
// from the token). build runs under the lock, after the rule: a key made
// in the token there is in the token config/pkcs11 names.
func (b *mastioBackend) replacePending(ctx context.Context, s logical.Storage, cas int, casSet bool, build func() (*pendingEntry, error)) (*pendingEntry, error) {
	b.caLock.Lock()
	defer b.caLock.Unlock()
	current, err := readPending(ctx, s)
	if err != nil {
		return nil, err
	}
	cur := issuing.Current{Label: pendingLabel}
	if current.live() {
		cur.Exists, cur.Version, cur.Fingerprint = true, current.Version, current.publicKeySHA256()
	}
	if err := issuing.CheckCreateOnly(cur, cas, casSet); err != nil {
		return nil, err
	}
	next, err := build()
	if err != nil {
		return nil, err
	}
	next.Version = 1
	if current != nil {
		next.Version = current.Version + 1
	}
	if err := putEntry(ctx, s, pendingStorageKey, "the "+pendingLabel, next); err != nil {
		return nil, err
	}
	if current.live() {
		b.destroyPendingKey(ctx, s, current)
	}
	b.Logger().Info("made a pending intermediate key; its CSR awaits the root mount's signature", "version", next.Version, "public_key_sha256", next.publicKeySHA256(), "key_backend", next.keyBackend())
	return next, nil
}

// keyBackend is where p's key lives.
func (p *pendingEntry) keyBackend() string {
	if p.KeyPKCS11 != nil {
		return keyBackendPKCS11
	}
	return keyBackendVault
}

// destroyPendingKey destroys p's key in the token, when it is there and
// no CA refers to it (a replaced or dropped pending key; one an activation
// whose tidy-up did not land made the intermediate's stays). Callers hold
// caLock.
func (b *mastioBackend) destroyPendingKey(ctx context.Context, s logical.Storage, p *pendingEntry) {
	if p.KeyPKCS11 == nil {
		return
	}
	for _, n := range caNames {
		e, err := readCA(ctx, s, n)
		if err != nil {
			b.Logger().Warn("kept a dropped pending key in the token: could not check that no CA uses it", "key", p.KeyPKCS11.ref().String(), "error", err)
			return
		}
		for _, k := range e.tokenKeys() {
			if k.ref.ID == p.KeyPKCS11.ID {
				return
			}
		}
	}
	b.destroyUnused(&caEntry{KeyPKCS11: p.KeyPKCS11}, &caEntry{})
}

// checkPendingKey refuses a pending entry whose key is not the one its CSR
// names (pub), or is not to be had: the PKCS#8 key must be pub's private
// half; a key in the token must be there, in the token config/pkcs11
// names now, with pub. set-signed checks before it writes anything, and
// again under caLock.
func (b *mastioBackend) checkPendingKey(ctx context.Context, s logical.Storage, p *pendingEntry, pub crypto.PublicKey) error {
	switch {
	case len(p.KeyPKCS8) > 0 && p.KeyPKCS11 != nil:
		return issuing.Statef("the %s holds key bytes and a token reference: drop it (DELETE intermediate/pending) and start a new round", pendingLabel)
	case p.KeyPKCS11 != nil:
		tok, err := b.tokens.token(ctx, s)
		if err != nil {
			return err
		}
		return tok.Probe(p.KeyPKCS11.ref(), pub)
	}
	signer, err := parseSigner(p.KeyPKCS8)
	if err != nil {
		return fmt.Errorf("the %s: %w", pendingLabel, err)
	}
	if !issuing.PublicKeysEqual(signer.Public(), pub) {
		return issuing.Statef("the %s is not the key of its CSR: drop it (DELETE intermediate/pending) and start a new round", pendingLabel)
	}
	return nil
}

// dropPending drops the pending intermediate key; false when there was
// none.
func (b *mastioBackend) dropPending(ctx context.Context, s logical.Storage) (bool, error) {
	b.caLock.Lock()
	defer b.caLock.Unlock()
	current, err := readPending(ctx, s)
	if err != nil || !current.live() {
		return false, err
	}
	if err := consumePending(ctx, s, current); err != nil {
		return false, err
	}
	b.destroyPendingKey(ctx, s, current)
	b.Logger().Info("dropped the pending intermediate key", "version", current.Version)
	return true, nil
}

// dropPendingKey drops the pending entry if it still holds key's key,
// logging a failure: for a tidy-up that an activation left undone. The
// key itself is the active intermediate's and stays.
func (b *mastioBackend) dropPendingKey(ctx context.Context, s logical.Storage, key *pendingEntry) {
	b.caLock.Lock()
	defer b.caLock.Unlock()
	current, err := readPending(ctx, s)
	if err == nil && current.sameKey(key) {
		err = consumePending(ctx, s, current)
	}
	if err != nil {
		b.Logger().Warn("could not drop the pending intermediate key, which is already active", "error", err)
	}
}

// consumePending replaces the pending entry p with one that keeps only its
// version. Callers hold caLock (replaceCA's cleanup does).
func consumePending(ctx context.Context, s logical.Storage, p *pendingEntry) error {
	return putEntry(ctx, s, pendingStorageKey, "the "+pendingLabel, &pendingEntry{Version: p.Version, CreatedAt: time.Now().UTC()})
}
