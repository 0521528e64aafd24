package backend

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Revocation without a certificate store (docs/revocation.md). Signing
// writes nothing; revoke writes one entry per revoked serial under
// revokedPrefix, and the CRL state (number, thisUpdate, nextUpdate, delta
// base) of its issuer under crlStatePrefix. CRLs and OCSP answers are
// built from an in-memory copy of both, so serving them reads no storage
// once warm; Invalidate marks what another node changed, and only that is
// read again.

const (
	revokedPrefix  = "revoked/"   // revoked/<issuer key id>/<serial hex>
	crlStatePrefix = "crl-state/" // crl-state/<issuer key id>
	// tidyEvery is how often the periodic function drops the entries of
	// expired certificates and the keys of retired intermediates.
	tidyEvery = time.Hour
)

// revokedEntry is one revoked certificate.
type revokedEntry struct {
	Serial    string    `json:"serial"` // hex
	RevokedAt time.Time `json:"revoked_at"`
	Reason    int       `json:"reason"`
	NotAfter  time.Time `json:"not_after"`
	// CRLNumber is the complete CRL that first lists it: deltas against
	// an earlier base list it.
	CRLNumber int64 `json:"crl_number"`
}

func (e revokedEntry) revocation() issuing.Revocation {
	n, _ := new(big.Int).SetString(e.Serial, 16)
	return issuing.Revocation{Serial: n, RevokedAt: e.RevokedAt, Reason: e.Reason, NotAfter: e.NotAfter}
}

// crlState says which CRLs an issuer publishes now: a complete CRL and its
// delta, issued together, so with the same Number (RFC 5280 5.2.3) and the
// same ThisUpdate and NextUpdate. The delta lists the revocations the
// complete CRL numbered BaseNumber did not.
//
// A CRL's content is a function of its state alone, so that every node
// builds the same CRL under one number: it lists the stored revocations
// first listed by a CRL numbered at most Number, whose certificates had not
// expired at Cutoff (the previous CRL's ThisUpdate: an entry stays on one
// CRL issued after its certificate expired, RFC 5280 3.3), and names
// DeltaURLs as its deltas' location. revoke writes its entry (with the next number)
// before the state that lists it; tidy moves the state on before it
// deletes. A reader that sees one write and not yet the other builds the
// previous content under the previous number.
type crlState struct {
	Number     int64     `json:"number"`
	ThisUpdate time.Time `json:"this_update"`
	NextUpdate time.Time `json:"next_update"`
	BaseNumber int64     `json:"base_number"`
	Cutoff     time.Time `json:"cutoff"`
	DeltaURLs  []string  `json:"delta_urls,omitempty"`
}

// next is the state after a change at now: a new number; newBase makes the
// new complete CRL the deltas' base. deltaURLs is where its deltas are.
func (st *crlState) next(now time.Time, expiry time.Duration, newBase bool, deltaURLs []string) *crlState {
	n := &crlState{Number: 1, ThisUpdate: now.UTC(), NextUpdate: now.Add(expiry).UTC(), BaseNumber: 1, DeltaURLs: deltaURLs}
	if st != nil {
		n.Number, n.BaseNumber, n.Cutoff = st.Number+1, st.BaseNumber, st.ThisUpdate
	}
	if newBase {
		n.BaseNumber = n.Number
	}
	return n
}

// builtCRL is a signed complete CRL and delta for one state.
type builtCRL struct {
	number          int64
	complete, delta []byte
}

// revocations is the in-memory copy of the revocation entries and CRL
// states, and the CRLs built from them.
type revocations struct {
	mu sync.Mutex
	// buildMu lets one CRL build run at a time, without holding mu.
	buildMu  sync.Mutex
	loaded   bool
	byIssuer map[string]map[string]revokedEntry // key id -> serial hex -> entry
	dirty    map[string]bool                    // storage keys to read again
	states   map[string]*crlState
	built    map[string]*builtCRL
	lastTidy time.Time
	// gen counts changes to what answers are built from; answers caches
	// signed OCSP answers by request, each valid while gen is unchanged.
	gen     uint64
	answers map[string]cachedAnswer
}

// cachedAnswer is a signed OCSP answer, the generation it was made in, and
// when it is served no more.
type cachedAnswer struct {
	gen   uint64
	until time.Time
	der   []byte
}

// answerCacheFor is how long a cached OCSP answer is served.
const answerCacheFor = 5 * time.Minute

// maxCachedAnswers bounds the OCSP answer cache; it starts over when full.
const maxCachedAnswers = 10000

func newRevocations() *revocations {
	return &revocations{byIssuer: map[string]map[string]revokedEntry{}, dirty: map[string]bool{}, states: map[string]*crlState{}, built: map[string]*builtCRL{}, answers: map[string]cachedAnswer{}}
}

// invalidate records that another node changed key.
func (r *revocations) invalidate(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	switch {
	case strings.HasPrefix(key, revokedPrefix):
		r.dirty[key] = true
	case strings.HasPrefix(key, crlStatePrefix):
		id := strings.TrimPrefix(key, crlStatePrefix)
		delete(r.states, id)
		delete(r.built, id)
	}
}

// refresh loads every entry on first use, then reads again what was
// invalidated. Callers hold r.mu.
func (r *revocations) refresh(ctx context.Context, s logical.Storage) error {
	if !r.loaded {
		ids, err := s.List(ctx, revokedPrefix)
		if err != nil {
			return fmt.Errorf("listing revocations: %w", err)
		}
		for _, id := range ids {
			serials, err := s.List(ctx, revokedPrefix+id)
			if err != nil {
				return fmt.Errorf("listing revocations: %w", err)
			}
			for _, serial := range serials {
				r.dirty[revokedPrefix+id+serial] = true
			}
		}
		r.loaded = true
	}
	for key := range r.dirty {
		e, err := readEntry[revokedEntry](ctx, s, key, "a revocation")
		if err != nil {
			return err
		}
		id, serial, _ := strings.Cut(strings.TrimPrefix(key, revokedPrefix), "/")
		if e == nil {
			delete(r.byIssuer[id], serial)
		} else {
			r.put(id, serial, *e)
		}
		delete(r.built, id)
		delete(r.dirty, key)
	}
	return nil
}

func (r *revocations) put(id, serial string, e revokedEntry) {
	r.gen++
	if r.byIssuer[id] == nil {
		r.byIssuer[id] = map[string]revokedEntry{}
	}
	r.byIssuer[id][serial] = e
}

// state is issuer id's CRL state, nil when it has none yet. Callers hold
// r.mu.
func (r *revocations) state(ctx context.Context, s logical.Storage, id string) (*crlState, error) {
	if st, ok := r.states[id]; ok {
		return st, nil
	}
	st, err := readEntry[crlState](ctx, s, crlStatePrefix+id, "the CRL state")
	if err != nil || st == nil {
		return nil, err
	}
	r.states[id] = st
	return st, nil
}

// ahead reports whether a stored revocation waits for a CRL numbered past
// st (its revoke's state write was lost). Callers hold r.mu.
func (r *revocations) ahead(id string, st *crlState) bool {
	for _, e := range r.byIssuer[id] {
		if e.CRLNumber > st.Number {
			return true
		}
	}
	return false
}

// current refreshes the in-memory copy and returns issuer id's CRL state
// (nil: none yet). Callers hold r.mu.
func (r *revocations) current(ctx context.Context, s logical.Storage, id string) (*crlState, error) {
	if err := r.refresh(ctx, s); err != nil {
		return nil, err
	}
	return r.state(ctx, s, id)
}

// setState stores issuer id's next CRL state. Callers hold r.mu.
func (r *revocations) setState(ctx context.Context, s logical.Storage, id string, st *crlState) error {
	r.gen++
	if err := putEntry(ctx, s, crlStatePrefix+id, "the CRL state", st); err != nil {
		delete(r.states, id) // the write may have landed all the same
		return err
	}
	r.states[id] = st
	delete(r.built, id)
	return nil
}

// crlIssuer is a CA of this mount that publishes a CRL: one whose key is
// here (the Org CA on a root mount, the intermediate, a rotated-out
// intermediate during its grace).
type crlIssuer struct {
	id     string
	label  string
	cert   *x509.Certificate
	signer crypto.Signer
	// active: it signs leaves now (the intermediate, else the Org CA).
	active bool
}

// crlIssuers lists this mount's CRL issuers, the active one first.
func (b *mastioBackend) crlIssuers(ctx context.Context, s logical.Storage) ([]crlIssuer, error) {
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	inter, err := b.loadIssuer(ctx, s, intermediateCA)
	if err != nil {
		return nil, err
	}
	var out []crlIssuer
	now := time.Now()
	if inter != nil {
		out = append(out, crlIssuer{id: issuing.KeyID(inter.cert), label: "Mastio Intermediate CA", cert: inter.cert, signer: inter.signer, active: true})
	}
	if org != nil && org.signer != nil {
		out = append(out, crlIssuer{id: issuing.KeyID(org.cert), label: "Org CA", cert: org.cert, signer: org.signer, active: inter == nil})
	}
	if inter != nil {
		for _, r := range inter.retired {
			if r.signer != nil && now.Before(r.until) {
				out = append(out, crlIssuer{id: issuing.KeyID(r.cert), label: "rotated-out intermediate " + issuing.FormatSerial(r.cert.SerialNumber), cert: r.cert, signer: r.signer})
			}
		}
	}
	return out, nil
}

// findIssuer resolves an issuer reference: org-ca, intermediate-ca (the
// current one), or a key id (hex SKI) of any CRL issuer.
func findIssuer(issuers []crlIssuer, ref string, org *issuer) (crlIssuer, error) {
	for _, is := range issuers {
		switch {
		case ref == is.id,
			ref == string(intermediateCA) && is.active && is.label == "Mastio Intermediate CA",
			ref == string(orgCA) && org != nil && is.cert.Equal(org.cert):
			return is, nil
		}
	}
	if ref == string(orgCA) && org != nil && org.signer == nil {
		return crlIssuer{}, issuing.NotFoundf("this mount holds only the Org CA's certificate; its CRL is served by the root mount")
	}
	return crlIssuer{}, issuing.NotFoundf("no CA of this mount publishes a CRL as %s: use org-ca, intermediate-ca, or an issuer key id (hex subject key identifier) of a CA in use", issuing.Quote(ref))
}

// revokeRequest is revoke's input: a certificate, or a serial with its
// NotAfter and issuer.
type revokeRequest struct {
	certPEM   string
	serial    string
	notAfter  time.Time
	issuerRef string
	reason    string
}

// revokeResult is what revoke did.
type revokeResult struct {
	issuer  crlIssuer
	entry   revokedEntry
	already bool // the serial was revoked before; entry is the first one
	number  int64
}

// revoke stores a revocation and moves the issuer's CRLs on. Revoking a
// revoked serial again changes nothing and answers the first revocation.
func (b *mastioBackend) revoke(ctx context.Context, s logical.Storage, r revokeRequest) (*revokeResult, error) {
	reason, err := issuing.ParseReason(r.reason)
	if err != nil {
		return nil, err
	}
	issuers, err := b.crlIssuers(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(issuers) == 0 {
		return nil, noOrgCA("there is nothing to revoke")
	}
	now := time.Now()
	var (
		is       crlIssuer
		serial   *big.Int
		notAfter time.Time
	)
	switch {
	case r.certPEM != "" && (r.serial != "" || r.issuerRef != "" || !r.notAfter.IsZero()):
		return nil, issuing.Inputf("pass certificate, or serial_number with issuer and not_after, not both")
	case r.certPEM != "":
		certs := make([]*x509.Certificate, len(issuers))
		for i, is := range issuers {
			certs[i] = is.cert
		}
		own, err := b.ownCACerts(ctx, s)
		if err != nil {
			return nil, err
		}
		t, err := issuing.IdentifyRevoked(r.certPEM, certs, own, now)
		if err != nil {
			return nil, err
		}
		is, serial, notAfter = issuers[t.Issuer], t.Serial, t.NotAfter
	case r.serial == "" || r.issuerRef == "" || r.notAfter.IsZero():
		return nil, issuing.Inputf("pass certificate (the PEM to revoke), or serial_number, issuer (org-ca, intermediate-ca or a key id) and not_after")
	default:
		if serial, err = issuing.ParseSerial(r.serial); err != nil {
			return nil, err
		}
		org, err := b.loadIssuer(ctx, s, orgCA)
		if err != nil {
			return nil, err
		}
		if is, err = findIssuer(issuers, r.issuerRef, org); err != nil {
			return nil, err
		}
		own, err := b.ownCACerts(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, c := range own {
			if c.SerialNumber.Cmp(serial) == 0 && c.CheckSignatureFrom(is.cert) == nil {
				return nil, issuing.Inputf("serial %s is one of this mount's own CAs (%s): revoke does not revoke them; rotate the intermediate (intermediate/rotate, drop_earlier=true after a compromise) or replace the Org CA", issuing.FormatSerial(serial), issuing.Quote(c.Subject.CommonName))
			}
		}
		if !now.Before(r.notAfter) {
			return nil, issuing.Inputf("not_after %s has passed: the certificate is no longer valid, and no CRL lists it", r.notAfter.UTC().Format(time.RFC3339))
		}
		if r.notAfter.After(is.cert.NotAfter) {
			return nil, issuing.Inputf("not_after %s is after the issuer's own NotAfter (%s): no certificate of it lives that long", r.notAfter.UTC().Format(time.RFC3339), is.cert.NotAfter.UTC().Format(time.RFC3339))
		}
		notAfter = r.notAfter
	}

	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	rv := b.revocations
	rv.mu.Lock()
	defer rv.mu.Unlock()
	st, err := rv.current(ctx, s, is.id)
	if err != nil {
		return nil, err
	}
	key := issuing.SerialHex(serial)
	if e, ok := rv.byIssuer[is.id][key]; ok {
		if st == nil || e.CRLNumber > st.Number {
			// Its state never landed (a failed write): move the CRL on now.
			st = st.next(now, cfg.crlExpiry(), false, cfg.urls().For(is.cert).DeltaCRL)
			if err := rv.setState(ctx, s, is.id, st); err != nil {
				return nil, err
			}
		}
		return &revokeResult{issuer: is, entry: e, already: true, number: st.Number}, nil
	}
	next := st.next(now, cfg.crlExpiry(), false, cfg.urls().For(is.cert).DeltaCRL)
	e := revokedEntry{Serial: key, RevokedAt: now.UTC().Truncate(time.Second), Reason: reason, NotAfter: notAfter.UTC(), CRLNumber: next.Number}
	if err := putEntry(ctx, s, revokedPrefix+is.id+"/"+key, "the revocation", e); err != nil {
		rv.dirty[revokedPrefix+is.id+"/"+key] = true // the write may have landed all the same
		return nil, err
	}
	rv.put(is.id, key, e)
	if err := rv.setState(ctx, s, is.id, next); err != nil {
		// The revocation is stored; the CRL moves on at the next change
		// or periodic rebuild, and OCSP answers revoked already.
		return nil, fmt.Errorf("the revocation is stored, but the CRL state could not be: %w", err)
	}
	b.Logger().Info("revoked a certificate", "issuer", is.label, "issuer_id", is.id, "serial", issuing.FormatSerial(serial), "reason", issuing.ReasonName(reason), "crl_number", next.Number)
	return &revokeResult{issuer: is, entry: e, number: next.Number}, nil
}

// ownCACerts are the CA certificates this mount signs with now (the Org
// CA and the CAs above it, the current intermediate), which revoke refuses:
// rotation replaces them. A rotated-out intermediate is not among them: it
// can be revoked onto the Org CA's CRL, as after a compromise of its key.
func (b *mastioBackend) ownCACerts(ctx context.Context, s logical.Storage) ([]*x509.Certificate, error) {
	var own []*x509.Certificate
	for _, n := range caNames {
		is, err := b.loadIssuer(ctx, s, n)
		if err != nil {
			return nil, err
		}
		if is != nil {
			own = append(append(own, is.cert), is.chain...)
		}
	}
	return own, nil
}

// crl returns issuer ref's complete CRL, or its delta, DER, building and
// caching it when the state moved on. A mount that has published no CRL
// for the issuer yet starts its state here (the active node only).
func (b *mastioBackend) crl(ctx context.Context, s logical.Storage, ref string, delta bool) ([]byte, error) {
	issuers, err := b.crlIssuers(ctx, s)
	if err != nil {
		return nil, err
	}
	if ref == "" {
		if len(issuers) == 0 || !issuers[0].active {
			return nil, noOrgCA("there is no CRL yet")
		}
		ref = issuers[0].id
	}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	is, err := findIssuer(issuers, ref, org)
	if err != nil {
		return nil, err
	}
	if is.cert.KeyUsage&x509.KeyUsageCRLSign == 0 {
		return nil, issuing.Statef("the %s's certificate lacks keyUsage cRLSign, so it may not sign a CRL: its revocations are answered by OCSP only (re-issue the CA with cRLSign to publish one)", is.label)
	}
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	rv := b.revocations
	// One build at a time (a burst of fetches after a revoke signs one
	// CRL), and outside rv.mu: at 100k entries a build takes half a
	// second, which OCSP answers, revokes and Invalidate do not wait for.
	rv.buildMu.Lock()
	defer rv.buildMu.Unlock()
	rv.mu.Lock()
	st, err := rv.current(ctx, s, is.id)
	if err == nil && st == nil {
		st = (*crlState)(nil).next(time.Now(), cfg.crlExpiry(), true, cfg.urls().For(is.cert).DeltaCRL)
		if err = rv.setState(ctx, s, is.id, st); errors.Is(err, logical.ErrReadOnly) {
			err = issuing.Statef("the %s has no CRL yet, and this node cannot start one: ask the active node", is.label)
		}
	}
	if err != nil {
		rv.mu.Unlock()
		return nil, err
	}
	built := rv.built[is.id]
	var all, recent []issuing.Revocation
	if built == nil || built.number != st.Number {
		built = nil
		all, recent = rv.listed(is.id, st)
	}
	rv.mu.Unlock()
	if built == nil {
		if built, err = buildCRLs(is, st, all, recent); err != nil {
			return nil, err
		}
		rv.mu.Lock()
		if cur := rv.states[is.id]; cur != nil && cur.Number == st.Number {
			rv.built[is.id] = built
		}
		rv.mu.Unlock()
	}
	if delta {
		return built.delta, nil
	}
	return built.complete, nil
}

// listed are the revocations issuer id's complete CRL for st lists, and
// those its delta lists. Callers hold r.mu.
func (r *revocations) listed(id string, st *crlState) (all, recent []issuing.Revocation) {
	for _, e := range r.byIssuer[id] {
		if e.CRLNumber > st.Number || !st.Cutoff.Before(e.NotAfter) {
			continue // not yet listed (its state is still on its way), or expired before the last CRL
		}
		all = append(all, e.revocation())
		if e.CRLNumber > st.BaseNumber {
			recent = append(recent, e.revocation())
		}
	}
	return all, recent
}

// buildCRLs signs issuer is's complete CRL and delta for st.
func buildCRLs(is crlIssuer, st *crlState, all, recent []issuing.Revocation) (*builtCRL, error) {
	complete, err := issuing.BuildCRL(is.cert, is.signer, all, issuing.CRLParams{Number: big.NewInt(st.Number), ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate, DeltaURLs: st.DeltaURLs})
	if err != nil {
		return nil, err
	}
	delta, err := issuing.BuildCRL(is.cert, is.signer, recent, issuing.CRLParams{Number: big.NewInt(st.Number), ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate, DeltaBase: big.NewInt(st.BaseNumber)})
	if err != nil {
		return nil, err
	}
	return &builtCRL{number: st.Number, complete: complete, delta: delta}, nil
}

// ocsp answers a DER OCSP request from the in-memory revocations. The
// lock is held only to refresh and to look the serial up: answers are
// signed outside it, in parallel.
func (b *mastioBackend) ocsp(ctx context.Context, s logical.Storage, der []byte) ([]byte, error) {
	issuers, err := b.crlIssuers(ctx, s)
	if err != nil {
		return nil, err
	}
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	signers := make([]issuing.OCSPIssuer, len(issuers))
	windows := make([]issuing.OCSPWindow, len(issuers))
	rv := b.revocations
	rv.mu.Lock()
	err = rv.refresh(ctx, s)
	gen := rv.gen
	for i, is := range issuers {
		if err != nil {
			break
		}
		signers[i] = issuing.OCSPIssuer{Cert: is.cert, Key: is.signer}
		windows[i] = issuing.OCSPWindow{ThisUpdate: now, NextUpdate: now.Add(cfg.crlExpiry())}
		var st *crlState
		if st, err = rv.state(ctx, s, is.id); st != nil {
			windows[i] = issuing.OCSPWindow{ThisUpdate: st.ThisUpdate, NextUpdate: st.NextUpdate}
		}
	}
	rv.mu.Unlock()
	if err != nil {
		return nil, err
	}
	fallback := -1
	if len(issuers) > 0 && issuers[0].active {
		fallback = 0
	}
	// An answer about a certificate of ours made since the last change (a
	// revocation, a CRL state, Invalidate) is the same answer: serve it
	// again. The key is the CertID and the issuer certificate, which a CA
	// change on this node (no Invalidate) changes.
	var key string
	if req, ok := issuing.ParseOCSPRequest(der); ok {
		if i := issuing.OCSPIssuerIndex(req, signers); i >= 0 {
			key = fmt.Sprintf("%d|%x|%x|%x|%s", req.HashAlgorithm, req.IssuerNameHash, req.IssuerKeyHash, req.SerialNumber, issuing.FingerprintSHA256(issuers[i].cert.Raw))
			rv.mu.Lock()
			c, ok := rv.answers[key]
			rv.mu.Unlock()
			if ok && c.gen == gen && now.Before(c.until) {
				return c.der, nil
			}
		}
	}
	answer, err := issuing.AnswerOCSP(der, signers, fallback, func(i int, serial *big.Int) (issuing.Revocation, bool) {
		rv.mu.Lock()
		e, ok := rv.byIssuer[issuers[i].id][issuing.SerialHex(serial)]
		rv.mu.Unlock()
		return e.revocation(), ok
	}, func(i int) issuing.OCSPWindow { return windows[i] }, now)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return answer, nil // malformed, or not ours: never cached
	}
	rv.mu.Lock()
	if rv.gen == gen {
		if len(rv.answers) >= maxCachedAnswers {
			rv.answers = map[string]cachedAnswer{}
		}
		rv.answers[key] = cachedAnswer{gen: gen, until: now.Add(answerCacheFor), der: answer}
	}
	rv.mu.Unlock()
	return answer, nil
}

// tidyResult is what a tidy removed.
type tidyResult struct {
	removed         int
	retiredKeysGone int
}

// tidy drops the revocations of certificates that have expired (they then
// leave the CRL, which moves on), and the keys of rotated-out
// intermediates whose grace has ended.
func (b *mastioBackend) tidy(ctx context.Context, s logical.Storage) (*tidyResult, error) {
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	res := &tidyResult{}
	now := time.Now()
	issuers, err := b.crlIssuers(ctx, s)
	if err != nil {
		return nil, err
	}
	rv := b.revocations
	rv.mu.Lock()
	err = func() error {
		defer rv.mu.Unlock()
		if err := rv.refresh(ctx, s); err != nil {
			return err
		}
		published := map[string]bool{}
		for _, is := range issuers {
			published[is.id] = true
		}
		// The entries of an issuer that publishes no CRL any more (a
		// rotated-out intermediate past its grace) are dropped once
		// expired: no CRL lists them.
		for id, entries := range rv.byIssuer {
			if published[id] {
				continue
			}
			for serial, e := range entries {
				if now.Before(e.NotAfter) {
					continue
				}
				if err := s.Delete(ctx, revokedPrefix+id+"/"+serial); err != nil {
					return fmt.Errorf("deleting an expired revocation: %w", err)
				}
				delete(entries, serial)
				rv.gen++
				res.removed++
			}
		}
		for _, is := range issuers {
			expired := false
			for _, e := range rv.byIssuer[is.id] {
				if !now.Before(e.NotAfter) {
					expired = true
					break
				}
			}
			if !expired {
				continue
			}
			// The state first: its CRL lists an entry until it has been on
			// one CRL issued after its certificate expired (RFC 5280 3.3),
			// so the entries deleted are those expired before its Cutoff,
			// which no CRL of it lists, whether or not the deletes land.
			st, err := rv.state(ctx, s, is.id)
			if err != nil {
				return err
			}
			next := st.next(now, cfg.crlExpiry(), false, cfg.urls().For(is.cert).DeltaCRL)
			if err := rv.setState(ctx, s, is.id, next); err != nil {
				return err
			}
			for serial, e := range rv.byIssuer[is.id] {
				if next.Cutoff.Before(e.NotAfter) {
					continue
				}
				if err := s.Delete(ctx, revokedPrefix+is.id+"/"+serial); err != nil {
					return fmt.Errorf("deleting an expired revocation: %w", err)
				}
				delete(rv.byIssuer[is.id], serial)
				rv.gen++
				res.removed++
			}
		}
		rv.lastTidy = now
		return nil
	}()
	if err != nil {
		return nil, err
	}
	if res.retiredKeysGone, err = b.dropRetiredKeys(ctx, s, now); err != nil {
		return nil, err
	}
	if res.removed > 0 || res.retiredKeysGone > 0 {
		b.Logger().Info("tidied revocations", "expired_revocations_removed", res.removed, "retired_keys_dropped", res.retiredKeysGone)
	}
	return res, nil
}

// dropRetiredKeys removes, through custody, the keys of rotated-out
// intermediates whose grace has ended.
func (b *mastioBackend) dropRetiredKeys(ctx context.Context, s logical.Storage, now time.Time) (int, error) {
	dropped := 0
	_, _, err := b.replaceCA(ctx, s, caChange{
		name: intermediateCA, mode: casNone, amend: true,
		check: func(current *caEntry) (bool, error) {
			if current == nil {
				return false, issuing.NotFoundf("no intermediate")
			}
			for _, p := range current.published() {
				if p.hasKey() && !now.Before(p.GraceUntil) {
					return false, nil
				}
			}
			return true, nil
		},
		next: func(current *caEntry) (*caEntry, error) {
			next := *current
			strip := func(p publishedCert) publishedCert {
				if p.hasKey() && !now.Before(p.GraceUntil) {
					p.KeyPKCS8, p.KeyPKCS11 = nil, nil
					dropped++
				}
				return p
			}
			if next.Previous != nil {
				prev := strip(*next.Previous)
				next.Previous = &prev
			}
			next.Retired = make([]publishedCert, len(current.Retired))
			for i, p := range current.Retired {
				next.Retired[i] = strip(p)
			}
			return &next, nil
		},
		event: "dropped the keys of rotated-out intermediates whose grace has ended",
	})
	if err != nil && issuing.KindOf(err) == issuing.KindNotFound {
		return 0, nil
	}
	return dropped, err
}

// periodic runs on the node that may write: it moves each published CRL
// on when half its validity has passed (a new delta base), when a revoke
// lost its state write, or when the delta URLs changed, and tidies every
// tidyEvery. It writes nothing for an issuer that has published no CRL.
func (b *mastioBackend) periodic(ctx context.Context, req *logical.Request) error {
	if !b.WriteSafeReplicationState() {
		return nil
	}
	s := req.Storage
	issuers, err := b.crlIssuers(ctx, s)
	if err != nil {
		return err
	}
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return err
	}
	now := time.Now()
	rv := b.revocations
	err = func() error {
		rv.mu.Lock()
		defer rv.mu.Unlock()
		if err := rv.refresh(ctx, s); err != nil {
			return err
		}
		for _, is := range issuers {
			st, err := rv.state(ctx, s, is.id)
			if err != nil {
				return err
			}
			deltaURLs := cfg.urls().For(is.cert).DeltaCRL
			if st == nil {
				continue // no CRL yet: the first revoke or fetch starts it; a mount that never revokes is never written to
			}
			if now.Before(st.ThisUpdate.Add(cfg.crlExpiry()/2)) && now.Before(st.NextUpdate) && !rv.ahead(is.id, st) && slices.Equal(st.DeltaURLs, deltaURLs) {
				continue
			}
			if err := rv.setState(ctx, s, is.id, st.next(now, cfg.crlExpiry(), true, deltaURLs)); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		return err
	}
	rv.mu.Lock()
	due := now.Sub(rv.lastTidy) >= tidyEvery
	rv.mu.Unlock()
	if due {
		_, err = b.tidy(ctx, s)
	}
	return err
}

// issuerCert is the DER certificate of a CA by reference: org-ca,
// intermediate-ca or a key id of any CA the mount holds (its Org CA, even
// as anchor, the intermediate, the rotated-out ones in their grace).
func (b *mastioBackend) issuerCert(ctx context.Context, s logical.Storage, ref string) ([]byte, error) {
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	inter, err := b.loadIssuer(ctx, s, intermediateCA)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	if ref == string(orgCA) && org != nil {
		return org.cert.Raw, nil
	}
	if ref == string(intermediateCA) && inter != nil {
		return inter.cert.Raw, nil
	}
	if org != nil {
		certs = append(certs, org.cert)
	}
	if inter != nil {
		certs = append(certs, inter.cert)
		for _, r := range inter.retired {
			certs = append(certs, r.cert)
		}
	}
	for _, c := range certs {
		if issuing.KeyID(c) == ref {
			return c.Raw, nil
		}
	}
	return nil, issuing.NotFoundf("no CA of this mount is %s: use org-ca, intermediate-ca or a key id", issuing.Quote(ref))
}
