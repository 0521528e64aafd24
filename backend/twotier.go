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

// generateIntermediateCSR makes an intermediate key and keeps it pending
// (create-only on the pending slot). It returns what was stored.
func (b *mastioBackend) generateIntermediateCSR(ctx context.Context, s logical.Storage, spec issuing.IntermediateSpec, cas int, casSet bool) (*pendingEntry, error) {
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
	// Before the lock, as generate: a refused request only drops this key.
	p, err := issuing.NewIntermediateCSR(spec, orgID)
	if err != nil {
		return nil, err
	}
	e := &pendingEntry{KeyPKCS8: p.KeyPKCS8, CSRDER: p.CSRDER, CreatedAt: time.Now().UTC()}
	if err := b.replacePending(ctx, s, cas, casSet, e); err != nil {
		return nil, err
	}
	return e, nil
}

// setSignedRequest is intermediate/set-signed's input.
type setSignedRequest struct {
	certPEM, chainPEM string
	// For a rotation (an intermediate is active): as rotateRequest.
	grace       time.Duration
	dropEarlier bool
	cas         int
	casSet      bool
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
// grace and continuity proof, as intermediate/rotate does.
func (b *mastioBackend) setSignedIntermediate(ctx context.Context, s logical.Storage, r setSignedRequest) (*activation, error) {
	if err := issuing.CheckGracePeriod(r.grace); err != nil {
		return nil, err
	}
	now := time.Now()
	pending, err := readPending(ctx, s)
	if err != nil {
		return nil, err
	}
	if pending == nil {
		// A retry of a set-signed that succeeded finds its certificate
		// active and nothing pending.
		if cur, err := b.loadIssuer(ctx, s, intermediateCA); err != nil {
			return nil, err
		} else if cur != nil && firstCertIs(r.certPEM, cur.cert) {
			return &activation{is: cur, unchanged: true}, nil
		}
		return nil, issuing.NotFoundf("no intermediate key is pending: write intermediate/generate-csr first, and have the root mount sign that CSR")
	}
	si, err := issuing.ValidateSignedIntermediate(pending.KeyPKCS8, r.certPEM, r.chainPEM, now)
	if err != nil {
		return nil, err
	}
	act := &activation{}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	switch {
	case org == nil && si.OrgCA == nil:
		return nil, issuing.Inputf("this mount has no Org CA: pass the Org CA certificate (the root mount's cert/pem) in ca_chain, or after the certificate")
	case org == nil:
		if act.anchorInstalled, err = b.installAnchor(ctx, s, si.OrgCA, si.OrgCAChain); err != nil {
			return nil, err
		}
	case si.OrgCA != nil && !si.OrgCA.Equal(org.cert):
		return nil, issuing.Inputf("the certificate comes with the Org CA sha256 %s, not this mount's Org CA (sha256 %s)", issuing.FingerprintSHA256(si.OrgCA.Raw), issuing.FingerprintSHA256(org.cert.Raw))
	}
	rot := &rotation{}
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: intermediateCA, mode: casIfGiven, cas: r.cas, casSet: r.casSet, staged: true,
		check: func(current *caEntry) (bool, error) {
			// Under caLock: neither the pending key nor the Org CA can
			// change now.
			p, err := readPending(ctx, s)
			if err != nil {
				return false, err
			}
			if p == nil || !bytes.Equal(p.KeyPKCS8, pending.KeyPKCS8) {
				return false, issuing.Conflictf("the pending intermediate key changed while this request ran (another generate-csr or set-signed); read intermediate/pending and retry")
			}
			org, err := b.readOrgIssuer(ctx, s)
			if err != nil {
				return false, err
			}
			if org == nil {
				return false, noOrgCA("pass the Org CA certificate in ca_chain")
			}
			return false, si.CA.CheckIntermediateOf(org.cert, org.chain)
		},
		next: func(current *caEntry) (*caEntry, error) {
			next := &caEntry{Source: sourceGenerated, KeyPKCS8: pending.KeyPKCS8, CertDER: si.CA.Cert.Raw, ChainDER: si.CA.ChainDER, CreatedAt: now.UTC()}
			org, err := b.readOrgIssuer(ctx, s)
			if err != nil {
				return nil, err
			}
			next.OrgID = org.orgID
			if current == nil {
				return next, nil
			}
			old, err := newIssuer(intermediateCA, current)
			if err != nil {
				return nil, err
			}
			if err := checkRetireRoom(current, r.dropEarlier, now); err != nil {
				return nil, err
			}
			act.rot = rot
			return next, retireInto(rot, next, current, old, r.grace, r.dropEarlier, now)
		},
		cleanup: func() error { return s.Delete(ctx, pendingStorageKey) },
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
	return act, nil
}

// installAnchor stores org, whose chain upwards is chain, as this mount's
// Org CA: its certificate only (create-only; the same certificate again
// is a success). It reports whether it wrote.
func (b *mastioBackend) installAnchor(ctx context.Context, s logical.Storage, org *x509.Certificate, chain []*x509.Certificate) (bool, error) {
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
		name: orgCA, mode: casCreateOnly,
		check: func(current *caEntry) (bool, error) {
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
func (b *mastioBackend) signIntermediate(ctx context.Context, s logical.Storage, r issuing.IntermediateRequest) (*issuing.SignedCA, *issuer, error) {
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
