package backend

import (
	"bytes"
	"context"
	"crypto/x509"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// The two-tier setup (docs/spiffe.md). On an issuing mount the
// intermediate's key is made here and only its CSR leaves
// (generateIntermediateCSR); the root mount, which holds the Org CA key,
// signs it (signIntermediate); the certificate comes back and is
// activated (setSignedIntermediate), the Org CA's certificate stored
// beside it as the trust anchor when the mount has none. Every CA write
// goes through replaceCA.

// generateIntermediateCSR makes an intermediate key where keyBackend says
// and keeps it pending (create-only on the pending slot). It returns what
// was stored.
func (b *mastioBackend) generateIntermediateCSR(ctx context.Context, s logical.Storage, spec issuing.IntermediateSpec, keyBackend string, cas int, casSet bool) (*pendingEntry, error) {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	orgID := cfg.OrgID
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	if org != nil {
		orgID = org.orgID
	}
	if keyBackend == "" {
		// A second round is a rotation: as rotate, it keeps the current
		// intermediate's key backend unless told otherwise.
		current, err := b.loadIssuer(ctx, s, intermediateCA)
		if err != nil {
			return nil, err
		}
		if current != nil {
			keyBackend = current.keyBackend()
		}
	}
	keys, err := b.newKeyMaker(ctx, s, keyBackend, intermediateCA)
	if err != nil {
		return nil, err
	}
	spec.NewKey = keys.gen()
	newPending := func() (*pendingEntry, error) {
		p, err := issuing.NewIntermediateCSR(spec, orgID)
		if err != nil {
			keys.discard(nil) // nothing was stored: a key made in the token goes
			return nil, err
		}
		return &pendingEntry{KeyPKCS8: p.KeyPKCS8, KeyPKCS11: keys.stored(), CSRDER: p.CSRDER, CreatedAt: time.Now().UTC()}, nil
	}
	// A key in memory is made before the lock, as generate's: a refused
	// request only drops it. One in the token is made under the lock.
	var made *pendingEntry
	if keys.backend == keyBackendVault {
		if made, err = newPending(); err != nil {
			return nil, err
		}
	}
	e, err := b.replacePending(ctx, s, cas, casSet, func() (*pendingEntry, error) {
		if made != nil {
			return made, nil
		}
		return newPending()
	})
	if err != nil {
		keys.discard(err)
	}
	return e, err
}

// setSignedRequest is intermediate/set-signed's input.
type setSignedRequest struct {
	certPEM, chainPEM string
	// cas is the create-only rule on the intermediate: none activates the
	// first one; replacing an active one (a rotation) takes its version.
	cas    int
	casSet bool
	// For a rotation: as rotateRequest.
	grace       time.Duration
	dropEarlier bool
	// orgCAS, when set, lets the request replace this mount's anchor (the
	// Org CA certificate) whose version it is, after the root replaced its
	// Org CA.
	orgCAS    int
	orgCASSet bool
}

// activation is what set-signed did.
type activation struct {
	is *issuer
	// rot is set when the certificate replaced an active intermediate.
	rot *rotation
	// anchorInstalled: the Org CA certificate was stored now, as anchor.
	anchorInstalled bool
	// unchanged: the certificate already was the active intermediate.
	unchanged bool
}

// setSignedIntermediate activates the certificate a root mount signed for
// the pending key. When an intermediate is active it is rotated out, with
// grace and continuity proof, as intermediate/rotate does. On a mount with
// no Org CA (or with orgCAS, another one) the Org CA certificate is stored
// first, as the anchor; every check that can refuse the request runs
// before that write.
func (b *mastioBackend) setSignedIntermediate(ctx context.Context, s logical.Storage, r setSignedRequest) (*activation, error) {
	if err := issuing.CheckGracePeriod(r.grace); err != nil {
		return nil, err
	}
	now := time.Now()
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	current, err := b.loadIssuer(ctx, s, intermediateCA)
	if err != nil {
		return nil, err
	}
	pending, err := readPending(ctx, s)
	if err != nil {
		return nil, err
	}
	if !pending.live() {
		// A retry of a set-signed that succeeded finds its certificate
		// active and nothing pending.
		if current != nil && firstCertIs(r.certPEM, current.cert) {
			return &activation{is: current, unchanged: true}, nil
		}
		return nil, issuing.NotFoundf("no intermediate key is pending: write intermediate/generate-csr first, and have the root mount sign that CSR")
	}
	pub, err := issuing.CSRPublicKey(pending.CSRDER)
	if err != nil {
		return nil, err
	}
	si, err := issuing.ValidateSignedIntermediate(pub, r.certPEM, r.chainPEM, cfg.TrustDomain, now)
	if err != nil {
		return nil, err
	}
	// Before anything is written (the anchor below); again under the lock.
	if err := b.checkPendingKey(ctx, s, pending, pub); err != nil {
		return nil, err
	}
	if current != nil && bytes.Equal(current.cert.RawSubjectPublicKeyInfo, si.CA.Cert.RawSubjectPublicKeyInfo) {
		// The pending key is already the active one (its tidy-up after
		// an activation did not land): never rotate a key out for itself.
		if !current.cert.Equal(si.CA.Cert) {
			return nil, issuing.Conflictf("the pending key is already the active intermediate's, with another certificate: start a new round with intermediate/generate-csr")
		}
		b.dropPendingKey(ctx, s, pending)
		return &activation{is: current, unchanged: true}, nil
	}
	// The cas rule and the rotation bound, before anything is written;
	// replaceCA applies both again under the lock.
	cur := intermediateCA.currentOf(current)
	if err := issuing.CheckCreateOnly(cur, r.cas, r.casSet); err != nil {
		return nil, err
	}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	act := &activation{}
	switch {
	case org == nil && si.OrgCA == nil:
		return nil, issuing.Inputf("this mount has no Org CA: pass the Org CA certificate (the root mount's cert/pem) in ca_chain, or after the certificate")
	case org != nil && (si.OrgCA == nil || si.OrgCA.Equal(org.cert)):
		// The mount's own Org CA: checked against it under the lock.
	case org != nil && org.signer != nil:
		return nil, issuing.Inputf("the certificate comes with the Org CA sha256 %s, and this mount holds the key of another Org CA (sha256 %s): set-signed serves issuing mounts", issuing.FingerprintSHA256(si.OrgCA.Raw), issuing.FingerprintSHA256(org.cert.Raw))
	case org != nil && !r.orgCASSet:
		return nil, issuing.Inputf("the certificate comes with the Org CA sha256 %s, not this mount's (sha256 %s, version %d): after the root replaced its Org CA, pass org_ca_cas=%d to replace it here", issuing.FingerprintSHA256(si.OrgCA.Raw), issuing.FingerprintSHA256(org.cert.Raw), org.version, org.version)
	default:
		if current != nil {
			// A rotation under a replaced Org CA: the rotation bound too.
			e, err := readCA(ctx, s, intermediateCA)
			if err != nil {
				return nil, err
			}
			if err := checkRetireRoom(e, r.dropEarlier, now); err != nil {
				return nil, err
			}
		}
		if act.anchorInstalled, err = b.installAnchor(ctx, s, si.OrgCA, si.OrgCAChain, r.orgCAS, r.orgCASSet); err != nil {
			return nil, err
		}
	}
	rot := &rotation{}
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: intermediateCA, mode: casCreateOnly, cas: r.cas, casSet: r.casSet, staged: true,
		check: func(*caEntry) (bool, error) {
			// Under caLock: neither the pending key nor the Org CA can
			// change now.
			p, err := readPending(ctx, s)
			if err != nil {
				return false, err
			}
			if !p.sameKey(pending) {
				return false, issuing.Conflictf("the pending intermediate key changed while this request ran (another generate-csr or set-signed); read intermediate/pending and retry")
			}
			if err := b.checkPendingKey(ctx, s, p, pub); err != nil {
				return false, err
			}
			if org, err = b.readOrgIssuer(ctx, s); err != nil {
				return false, err
			}
			if org == nil {
				return false, noOrgCA("pass the Org CA certificate in ca_chain")
			}
			return false, si.CA.CheckIntermediateOf(org.cert, org.chain)
		},
		next: func(current *caEntry) (*caEntry, error) {
			next := &caEntry{Source: sourceGenerated, OrgID: org.orgID, KeyPKCS8: pending.KeyPKCS8, KeyPKCS11: pending.KeyPKCS11, CertDER: si.CA.Cert.Raw, ChainDER: issuerChainDER(org), CreatedAt: now.UTC()}
			if current == nil {
				return next, nil
			}
			old, err := b.newIssuer(intermediateCA, current)
			if err != nil {
				return nil, err
			}
			if err := checkRetireRoom(current, r.dropEarlier, now); err != nil {
				return nil, err
			}
			act.rot = rot
			return next, retireInto(rot, next, current, old, r.grace, r.dropEarlier, now)
		},
		cleanup: func() error { return consumePending(ctx, s, pending) },
		event:   "activated the Mastio Intermediate CA signed by the root mount",
		logArgs: func() []any {
			if act.rot == nil {
				return []any{"rotation", false}
			}
			return []any{"rotation", true, "previous_serial", issuing.FormatSerial(rot.old.SerialNumber), "grace_until", now.Add(r.grace).UTC().Format(time.RFC3339)}
		},
	})
	if err != nil {
		return nil, err
	}
	act.is = is
	if act.rot != nil {
		b.dropEndedGraceKeys(ctx, s)
	}
	return act, nil
}

// issuerChainDER is the chain of a CA org signs: org, then the CAs above it.
func issuerChainDER(org *issuer) [][]byte {
	chain := [][]byte{org.cert.Raw}
	for _, c := range org.chain {
		chain = append(chain, c.Raw)
	}
	return chain
}

// installAnchor stores org, whose chain upwards is chain, as this mount's
// Org CA: its certificate only. Create-only: the same certificate again is
// a success; cas replaces an anchor of that version. It reports whether it
// wrote.
func (b *mastioBackend) installAnchor(ctx context.Context, s logical.Storage, org *x509.Certificate, chain []*x509.Certificate, cas int, casSet bool) (bool, error) {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return false, err
	}
	orgID, err := issuing.ImportOrgID("", cfg.OrgID, org)
	if err != nil {
		return false, err
	}
	var chainDER [][]byte
	for _, c := range chain {
		chainDER = append(chainDER, c.Raw)
	}
	_, unchanged, err := b.replaceCA(ctx, s, caChange{
		name: orgCA, mode: casCreateOnly, cas: cas, casSet: casSet,
		check: func(current *caEntry) (bool, error) {
			if current != nil && current.Source != sourceAnchor && !bytes.Equal(current.CertDER, org.Raw) {
				return false, issuing.Inputf("this mount holds the key of its Org CA: an anchor cannot replace it")
			}
			return current != nil && bytes.Equal(current.CertDER, org.Raw), nil
		},
		next: func(*caEntry) (*caEntry, error) {
			return &caEntry{Source: sourceAnchor, OrgID: orgID, CertDER: org.Raw, ChainDER: chainDER, CreatedAt: time.Now().UTC()}, nil
		},
		event: "stored the Org CA certificate as this mount's trust anchor (its key stays on the root mount)",
	})
	return !unchanged, err
}

// firstCertIs reports whether the first PEM certificate in text is c.
func firstCertIs(text string, c *x509.Certificate) bool {
	certs, err := issuing.ParseCertificatesPEM("certificate", text)
	return err == nil && certs[0].Equal(c)
}

// signIntermediate has this mount's Org CA sign another CA's CSR under the
// mount's intermediate profile (root/sign-intermediate). It writes
// nothing.
func (b *mastioBackend) signIntermediate(ctx context.Context, s logical.Storage, csrPEM string, r issuing.IntermediateRequest) (*issuing.SignedCA, *issuer, error) {
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, nil, err
	}
	if org == nil {
		return nil, nil, noOrgCA("generate or import the Org CA on this (root) mount first")
	}
	if org.signer == nil {
		return nil, nil, noKeyHere("sign intermediates on the root mount")
	}
	profile, err := readProfile(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	// Parsed only now that the mount can sign: a refused request costs no
	// signature check.
	if r.CSR, err = issuing.ParseCSR(csrPEM); err != nil {
		return nil, nil, err
	}
	r.URLs = cfg.urls().For(org.cert)
	signed, err := issuing.SignIntermediate(profile, r, issuing.Parent{Cert: org.cert, Signer: org.signer}, org.chain, org.orgID, cfg.TrustDomain, time.Now())
	if err != nil {
		return nil, nil, err
	}
	b.Logger().Info("signed an intermediate CA", "serial", issuing.FormatSerial(signed.Cert.SerialNumber), "path_len", signed.Cert.MaxPathLen, "not_after", signed.Cert.NotAfter.UTC().Format(time.RFC3339), "public_key_sha256", issuing.PublicKeyFingerprint(signed.Cert))
	return signed, org, nil
}

// updateProfile applies change to the stored intermediate profile (or the
// default), validates it and stores it.
func (b *mastioBackend) updateProfile(ctx context.Context, s logical.Storage, change func(*issuing.IntermediateProfile)) (*issuing.IntermediateProfile, error) {
	b.roleLock.Lock()
	defer b.roleLock.Unlock()
	p, err := readProfile(ctx, s)
	if err != nil {
		return nil, err
	}
	change(p)
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return p, putEntry(ctx, s, profileStorageKey, "root/profile", p)
}
