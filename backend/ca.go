package backend

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// The CA operations. Each decides what the next entry is and hands the
// write to replaceCA (custody.go); the issuing package does the X.509.

// maxRetired bounds how many rotated-out intermediates are published at
// once, so that the entry and intermediate/cert stay small.
const maxRetired = 16

// generateOrgCA makes the Org CA inside the plugin, or with its key in
// the PKCS#11 token (keyBackend), create-only.
func (b *mastioBackend) generateOrgCA(ctx context.Context, s logical.Storage, r issuing.OrgCARequest, keyBackend string, cas int, casSet bool) (*issuer, error) {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	keys, err := b.newKeyMaker(ctx, s, keyBackend, orgCA)
	if err != nil {
		return nil, err
	}
	// A key in memory is made before taking the lock: RSA-4096 can take a
	// second, and a refused request only drops it. A key in the token is
	// made under the lock (in next), where config/pkcs11 cannot change:
	// the key is then in the token the stored config names.
	now := time.Now()
	r.NewKey = keys.gen()
	var ca *issuing.GeneratedCA
	if keys.backend == keyBackendVault {
		if ca, err = issuing.GenerateOrgCA(r, cfg.OrgID, now); err != nil {
			return nil, err
		}
	}
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: orgCA, mode: casCreateOnly, cas: cas, casSet: casSet,
		next: func(*caEntry) (*caEntry, error) {
			if ca == nil {
				var err error
				if ca, err = issuing.GenerateOrgCA(r, cfg.OrgID, now); err != nil {
					return nil, err
				}
			}
			return &caEntry{Source: sourceGenerated, OrgID: ca.OrgID, KeyPKCS8: ca.KeyPKCS8, KeyPKCS11: keys.stored(), CertDER: ca.CertDER, CreatedAt: now.UTC()}, nil
		},
		event:   "generated Org CA",
		logArgs: func() []any { return []any{"key_type", r.KeyType, "key_backend", keys.backend} },
	})
	if err != nil {
		keys.discard(err)
	}
	return is, err
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

// importCA validates and stores an import under the create-only rule.
// Identical input is a success that writes nothing (unchanged=true).
func (b *mastioBackend) importCA(ctx context.Context, s logical.Storage, r importRequest) (*issuer, bool, error) {
	now := time.Now()
	ic, err := issuing.ValidateImport(r.keyPEM, r.certPEM, r.chainPEM, now)
	if err != nil {
		return nil, false, err
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, false, err
	}
	var orgID string
	if r.name == orgCA {
		if orgID, err = issuing.ImportOrgID(r.orgID, cfg.OrgID, ic.Cert); err != nil {
			return nil, false, err
		}
	} else if r.chainPEM != "" {
		return nil, false, issuing.Inputf("chain_pem is not accepted for the intermediate: its chain is the stored Org CA")
	}
	return b.replaceCA(ctx, s, caChange{
		name: r.name, mode: casCreateOnly, cas: r.cas, casSet: r.casSet,
		check: func(current *caEntry) (bool, error) {
			if r.name == intermediateCA {
				// Under caLock: the Org CA cannot change meanwhile.
				org, err := b.readOrgIssuer(ctx, s)
				if err != nil {
					return false, err
				}
				if org == nil {
					return false, noOrgCA("import or generate the Org CA before its intermediate")
				}
				if err := ic.CheckIntermediateOf(org.cert, org.chain); err != nil {
					return false, err
				}
				orgID = org.orgID
			}
			if current != nil && current.KeyPKCS11 == nil && ic.Equal(current.KeyPKCS8, current.CertDER, current.ChainDER) {
				return true, nil
			}
			if r.viaMirror && current != nil && !current.KVExport {
				return false, issuing.Inputf("the %s is sign-only (kv_export is off): the KV mirror can never replace it; use %s with cas=%d", r.name.label(), r.name.importPath(), current.Version)
			}
			return false, nil
		},
		next: func(*caEntry) (*caEntry, error) {
			return &caEntry{Source: sourceImported, KVExport: r.kvExport, OrgID: orgID, KeyPKCS8: ic.KeyPKCS8, CertDER: ic.Cert.Raw, ChainDER: ic.ChainDER, CreatedAt: now.UTC()}, nil
		},
		event:   "imported CA",
		logArgs: func() []any { return []any{"kv_export", r.kvExport, "via_mirror", r.viaMirror} },
	})
}

// noOrgCA is the refusal of an operation that needs the Org CA on a mount
// that has none; then says what to do first.
func noOrgCA(then string) error {
	return issuing.NotFoundf("no Org CA exists yet: %s", then)
}

// readOrgIssuer parses the stored Org CA (nil when there is none) for a
// caller that holds caLock: loadIssuer would take it again.
func (b *mastioBackend) readOrgIssuer(ctx context.Context, s logical.Storage) (*issuer, error) {
	e, err := readCA(ctx, s, orgCA)
	if err != nil || e == nil {
		return nil, err
	}
	return b.newIssuer(orgCA, e)
}

// generateIntermediate mints the intermediate under the Org CA, its key
// where keyBackend says (create-only).
func (b *mastioBackend) generateIntermediate(ctx context.Context, s logical.Storage, spec issuing.IntermediateSpec, keyBackend string, cas int, casSet bool) (*issuer, error) {
	if err := spec.Check(); err != nil {
		return nil, err
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	keys, err := b.newKeyMaker(ctx, s, keyBackend, intermediateCA)
	if err != nil {
		return nil, err
	}
	var org *issuer
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: intermediateCA, mode: casCreateOnly, cas: cas, casSet: casSet,
		check: func(*caEntry) (bool, error) {
			var err error
			switch org, err = b.readOrgIssuer(ctx, s); {
			case err != nil:
			case org == nil:
				err = noOrgCA("generate or import the Org CA before its intermediate")
			case org.signer == nil:
				// Before the cas rule: no cas makes this possible here.
				err = noKeyHere(mintHere)
			}
			return false, err
		},
		next: func(*caEntry) (*caEntry, error) {
			return mintIntermediateEntry(spec, keys, org, cfg.urls(), time.Now())
		},
		event:   "generated Mastio Intermediate CA",
		logArgs: func() []any { return []any{"key_backend", keys.backend} },
	})
	if err != nil {
		keys.discard(err)
	}
	return is, err
}

// mintHere is what to do instead of minting an intermediate on a mount
// that holds only the Org CA's certificate.
const mintHere = "make the intermediate's key here with intermediate/generate-csr, have the root mount sign the CSR (root/sign-intermediate), then activate it with intermediate/set-signed"

// mintIntermediateEntry has org sign a new intermediate whose key keys
// makes.
func mintIntermediateEntry(spec issuing.IntermediateSpec, keys *keyMaker, org *issuer, urls issuing.URLs, now time.Time) (*caEntry, error) {
	if org.signer == nil {
		return nil, noKeyHere(mintHere)
	}
	spec.URLs = urls.For(org.cert)
	spec.NewKey = keys.gen()
	m, err := issuing.MintIntermediate(spec, issuing.Parent{Cert: org.cert, Signer: org.signer}, org.chain, org.orgID, now)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{org.cert.Raw}
	for _, c := range org.chain {
		chain = append(chain, c.Raw)
	}
	return &caEntry{Source: sourceGenerated, OrgID: org.orgID, KeyPKCS8: m.KeyPKCS8, KeyPKCS11: keys.stored(), CertDER: m.CertDER, ChainDER: chain, CreatedAt: now.UTC()}, nil
}

// rotateRequest is intermediate/rotate's input. spec, when set, changes
// the defaults taken from the current intermediate (issuing.RotationSpec).
type rotateRequest struct {
	spec  func(issuing.IntermediateSpec) issuing.IntermediateSpec
	grace time.Duration
	// dropEarlier stops publishing every intermediate retired before the
	// current one now, instead of at the end of its grace.
	dropEarlier bool
	// dryRun mints and signs the next intermediate and its continuity
	// proof, and stores nothing (Mastio's dry_run).
	dryRun bool
	// keyBackend is where the next key is made; "" keeps the current
	// intermediate's.
	keyBackend string
	cas        int
	casSet     bool
}

// rotation is what a rotation did (or, for a dry run, would do).
type rotation struct {
	next  *issuer
	old   *x509.Certificate
	proof string // the old key's continuity proof over next's certificate
}

// rotateIntermediate mints the next intermediate and makes it the signer.
// The new entry is staged first, so a failure half way leaves the current
// one signing. Every retired intermediate stays published until its own
// grace ends; the result carries the retiring key's continuity proof.
func (b *mastioBackend) rotateIntermediate(ctx context.Context, s logical.Storage, r rotateRequest) (*rotation, error) {
	if err := issuing.CheckGracePeriod(r.grace); err != nil {
		return nil, err
	}
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	var (
		rot  = &rotation{}
		now  = time.Now()
		keys *keyMaker
	)
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: intermediateCA, mode: casIfGiven, cas: r.cas, casSet: r.casSet, staged: true, dryRun: r.dryRun,
		check: func(current *caEntry) (bool, error) {
			if current == nil {
				return false, issuing.NotFoundf("no intermediate to rotate: write intermediate/generate or intermediate/import first")
			}
			return false, nil
		},
		// After the cas rule, so that a retried rotation gets its 409.
		next: func(current *caEntry) (*caEntry, error) {
			old, err := b.newIssuer(intermediateCA, current)
			if err != nil {
				return nil, err
			}
			org, err := b.readOrgIssuer(ctx, s)
			if err != nil {
				return nil, err
			}
			if org == nil {
				return nil, noOrgCA("the next intermediate needs the Org CA to sign it")
			}
			if err := checkRetireRoom(current, r.dropEarlier, now); err != nil {
				return nil, err
			}
			spec := issuing.RotationSpec(old.cert)
			if r.spec != nil {
				spec = r.spec(spec)
			}
			backend := r.keyBackend
			if backend == "" {
				backend = current.keyBackend()
			}
			if keys, err = b.newKeyMaker(ctx, s, backend, intermediateCA); err != nil {
				return nil, err
			}
			next, err := mintIntermediateEntry(spec, keys, org, cfg.urls(), now)
			if err != nil {
				return nil, err
			}
			return next, retireInto(rot, next, current, old, r.grace, r.dropEarlier, now)
		},
		event: "rotated Mastio Intermediate CA",
		logArgs: func() []any {
			return []any{"previous_serial", issuing.FormatSerial(rot.old.SerialNumber), "grace_until", now.Add(r.grace).UTC().Format(time.RFC3339)}
		},
	})
	if keys != nil && (err != nil || r.dryRun) {
		keys.discard(err)
	}
	if err != nil {
		return nil, err
	}
	rot.next = is
	if !r.dryRun {
		b.dropEndedGraceKeys(ctx, s)
	}
	return rot, nil
}

// dropEndedGraceKeys drops, right after a rotation, the keys of
// rotated-out intermediates whose grace has already ended (grace_period=0,
// drop_earlier after a compromise) rather than at the next hourly tidy. A
// failure is logged: tidy drops them later.
func (b *mastioBackend) dropEndedGraceKeys(ctx context.Context, s logical.Storage) {
	if _, err := b.dropRetiredKeys(ctx, s, time.Now()); err != nil {
		b.Logger().Warn("could not drop the keys of intermediates past their grace; the next tidy will", "error", err)
	}
}

// checkRetireRoom refuses a rotation that would stop publishing an earlier
// intermediate before its grace ends (unless dropEarlier).
func checkRetireRoom(current *caEntry, dropEarlier bool, now time.Time) error {
	if earlier := inGrace(current.published(), now); !dropEarlier && len(earlier) >= maxRetired {
		return issuing.Statef("%d rotated-out intermediates are still in their grace period; rotating again would stop publishing one early: wait until %s, or pass drop_earlier=true (which ends every earlier grace now)", len(earlier), earliestEnd(earlier).Format(time.RFC3339))
	}
	return nil
}

// retireInto makes next the rotation successor of current, whose parsed
// form is old: old's key signs the continuity proof over next's
// certificate, and current stays published for grace, with every earlier
// intermediate still in its own grace unless dropEarlier. rot records it.
func retireInto(rot *rotation, next, current *caEntry, old *issuer, grace time.Duration, dropEarlier bool, now time.Time) error {
	proof, err := issuing.ContinuityProof(old.signer, next.CertDER)
	if err != nil {
		return err
	}
	rot.old, rot.proof = old.cert, proof
	next.Previous = &publishedCert{CertDER: current.CertDER, GraceUntil: now.Add(grace).UTC(), ContinuityProof: proof, KeyPKCS8: current.KeyPKCS8, KeyPKCS11: current.KeyPKCS11}
	if !dropEarlier {
		next.Retired = inGrace(current.published(), now)
	}
	return nil
}

// inGrace keeps the published certificates whose grace has not ended.
func inGrace(certs []publishedCert, now time.Time) []publishedCert {
	var out []publishedCert
	for _, c := range certs {
		if now.Before(c.GraceUntil) {
			out = append(out, c)
		}
	}
	return out
}

// earliestEnd is the first grace among certs to end.
func earliestEnd(certs []publishedCert) time.Time {
	end := certs[0].GraceUntil
	for _, c := range certs[1:] {
		if c.GraceUntil.Before(end) {
			end = c.GraceUntil
		}
	}
	return end.UTC()
}

// setKVExport turns the KV mirror's key export of CA name off for good
// (want=false); want=true is accepted only while it is still on.
func (b *mastioBackend) setKVExport(ctx context.Context, s logical.Storage, name caName, want bool) (*issuer, error) {
	is, _, err := b.replaceCA(ctx, s, caChange{
		name: name, mode: casNone, amend: true,
		check: func(current *caEntry) (bool, error) {
			switch {
			case current == nil:
				return false, issuing.NotFoundf("no %s exists", name.label())
			case want && !current.KVExport:
				return false, issuing.Inputf("kv_export of the %s is off and can never be turned on again: a sign-only key stays sign-only", name.label())
			}
			return want || current.KVExportSealed, nil // nothing to change
		},
		next: func(current *caEntry) (*caEntry, error) {
			next := *current
			next.KVExport, next.KVExportSealed = false, true
			return &next, nil
		},
		event: "KV mirror key export turned off for good",
	})
	return is, err
}
