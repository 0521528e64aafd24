package backend

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathIntermediateImport(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "intermediate/import",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"key_pem": {
				Type:         framework.TypeString,
				Description:  "The intermediate's private key: PEM in PKCS#8, SEC1 or PKCS#1, unencrypted.",
				DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
			},
			"cert_pem": {
				Type:        framework.TypeString,
				Description: "The intermediate's CA certificate (PEM), signed by the stored Org CA.",
			},
			"kv_export": kvExportField,
			"cas":       casField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediateImportWrite,
				Summary:                     "Import an existing Mastio Intermediate CA (create-only, idempotent).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "import",
					OperationSuffix: "intermediate-ca",
				},
			},
		},
		HelpSynopsis:    pathIntermediateImportHelpSyn,
		HelpDescription: pathIntermediateImportHelpDesc,
	}
}

func (b *mastioBackend) pathIntermediateImportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.handleImport(ctx, req, d, intermediateCA)
}

func pathIntermediateCert(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "intermediate/cert",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathIntermediateCertRead,
				Summary:  "Read the Mastio Intermediate CA certificate, its chain and metadata (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "intermediate-ca-certificate",
				},
			},
		},
		HelpSynopsis:    pathIntermediateCertHelpSyn,
		HelpDescription: pathIntermediateCertHelpDesc,
	}
}

func (b *mastioBackend) pathIntermediateCertRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	is, err := b.loadIssuer(ctx, req.Storage, intermediateCA)
	if err != nil || is == nil {
		return nil, err
	}
	return &logical.Response{Data: intermediateResponseData(is, time.Now())}, nil
}

const pathIntermediateImportHelpSyn = `Import an existing Mastio Intermediate CA, signed by the stored Org CA.`

const pathIntermediateImportHelpDesc = `
Imports the Mastio Intermediate CA that Mastio keeps today (proxy_config
mastio_ca_key/mastio_ca_cert). The same checks as import apply, and the
certificate must be signed by the Org CA stored in this mount; its chain is
that Org CA. Create-only with cas; identical input succeeds unchanged.

While an intermediate exists, roles with issuer=auto (the default) sign
with it and return ca_chain = [intermediate, Org CA].

Example:

    $ vault write mastio-ca/intermediate/import key_pem=@mastio-ca.key cert_pem=@mastio-ca.crt
`

const pathIntermediateCertHelpSyn = `The Mastio Intermediate CA certificate and its chain. Readable without a token.`

const pathIntermediateCertHelpDesc = `
Returns the intermediate's certificate, ca_chain = [intermediate, Org CA],
and the same metadata as cert. After intermediate/rotate it also carries,
for the grace period, the rotated-out certificate (previous,
previous_grace_until); bundle lists every intermediate relying parties
should accept now. 404 when no intermediate exists.

Example:

    $ vault read mastio-ca/intermediate/cert
`

// Defaults of a generated intermediate (Mastio's: 5 years, 14 days of grace).
const (
	defaultIntermediateTTL   = 5 * 365 * 24 * time.Hour
	defaultIntermediateGrace = 14 * 24 * time.Hour
	maxIntermediateGrace     = 90 * 24 * time.Hour
)

func intermediateKeyFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"key_type": {
			Type:          framework.TypeString,
			Description:   "ec (default), rsa or ed25519. rotate defaults to the current intermediate's.",
			AllowedValues: []any{keyTypeEC, keyTypeRSA, keyTypeEd25519},
		},
		"key_bits": {
			Type:        framework.TypeInt,
			Description: "ec: 256 (default) or 384; rsa: 2048, 3072 or 4096; ed25519: omit.",
		},
		"ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Validity. Default 5 years (43800h), never past the Org CA's NotAfter.",
		},
	}
}

func pathIntermediateGenerate(b *mastioBackend) *framework.Path {
	fields := intermediateKeyFields()
	fields["common_name"] = &framework.FieldSchema{Type: framework.TypeString, Description: "Subject CN. Default '<org_id> Mastio CA'."}
	fields["cas"] = casField
	return &framework.Path{
		Pattern:      "intermediate/generate",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields:       fields,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediateGenerateWrite,
				Summary:                     "Generate the Mastio Intermediate CA inside Vault, signed by the Org CA (create-only).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "generate", OperationSuffix: "intermediate-ca"},
			},
		},
		HelpSynopsis:    pathIntermediateGenerateHelpSyn,
		HelpDescription: pathIntermediateGenerateHelpDesc,
	}
}

func pathIntermediateRotate(b *mastioBackend) *framework.Path {
	fields := intermediateKeyFields()
	fields["grace_period"] = &framework.FieldSchema{
		Type:        framework.TypeDurationSecond,
		Description: "How long the previous intermediate stays published (previous, bundle). Default 14 days (336h), at most 90 days.",
	}
	fields["cas"] = &framework.FieldSchema{
		Type:        framework.TypeInt,
		Description: "Optional: rotate only if the current intermediate's version is this, so a retried request does not rotate twice.",
	}
	return &framework.Path{
		Pattern:      "intermediate/rotate",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields:       fields,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediateRotateWrite,
				Summary:                     "Mint the next intermediate, make it the signer, and prove continuity.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "rotate", OperationSuffix: "intermediate-ca"},
			},
		},
		HelpSynopsis:    pathIntermediateRotateHelpSyn,
		HelpDescription: pathIntermediateRotateHelpDesc,
	}
}

// intermediateSpec is a request for a new intermediate, decoded and checked.
type intermediateSpec struct {
	keyType string
	keyBits int
	ttl     time.Duration
	cn      string
}

func decodeIntermediateSpec(d *framework.FieldData, current *issuer) (intermediateSpec, error) {
	spec := intermediateSpec{keyType: keyTypeEC, ttl: defaultIntermediateTTL, cn: ""}
	if current != nil {
		// Rotation keeps the key type; a size generate cannot make (an
		// imported P-521 or RSA-8192 key) falls back to the type's default.
		spec.keyType, spec.keyBits, _ = keyInfo(current.cert.PublicKey)
		switch {
		case spec.keyType == keyTypeEd25519,
			spec.keyType == keyTypeEC && spec.keyBits != 256 && spec.keyBits != 384,
			spec.keyType == keyTypeRSA && spec.keyBits != 2048 && spec.keyBits != 3072 && spec.keyBits != 4096:
			spec.keyBits = 0
		}
		spec.cn = current.cert.Subject.CommonName
	}
	if v, ok := d.GetOk("key_type"); ok {
		spec.keyType, spec.keyBits = v.(string), 0
	}
	if v, ok := d.GetOk("key_bits"); ok {
		spec.keyBits = v.(int)
	}
	if v, ok := d.GetOk("ttl"); ok {
		spec.ttl = time.Duration(v.(int)) * time.Second
	}
	if spec.ttl < minCATTL || spec.ttl > maxCATTL {
		return spec, inputErrorf("ttl %s is out of range: an intermediate must be valid for 24h to 30 years", spec.ttl)
	}
	if v, ok := d.GetOk("common_name"); ok {
		spec.cn = v.(string)
	}
	if len(spec.cn) > 64 {
		return spec, inputErrorf("common_name is %d characters; X.509 allows at most 64", len(spec.cn))
	}
	return spec, nil
}

// mintIntermediate makes a new intermediate key and has the Org CA sign it
// (pathLen 0, never past the Org CA's NotAfter). It writes nothing.
func mintIntermediate(spec intermediateSpec, org *issuer, now time.Time) (*caEntry, error) {
	if !now.Before(org.cert.NotAfter) {
		return nil, inputErrorf("the Org CA expired at %s; it signs nothing more", org.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if org.cert.MaxPathLenZero {
		return nil, inputErrorf("the Org CA has basicConstraints pathLen 0: it may not sign an intermediate CA")
	}
	notAfter := now.Add(spec.ttl)
	if notAfter.After(org.cert.NotAfter) {
		notAfter = org.cert.NotAfter
	}
	if notAfter.Sub(now) < minCATTL {
		return nil, inputErrorf("the Org CA expires at %s, under 24h from now: renew it before minting an intermediate", org.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := generateKey(spec.keyType, spec.keyBits)
	if err != nil {
		return nil, err
	}
	cn := spec.cn
	if cn == "" {
		cn = org.orgID + " Mastio CA"
	}
	der, err := newCACertificate(caParams{CommonName: cn, Organization: org.orgID, NotAfter: notAfter, PathLen: 0, Now: now}, key, org)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	chain := [][]byte{org.cert.Raw}
	for _, c := range org.chain {
		chain = append(chain, c.Raw)
	}
	return &caEntry{Source: sourceGenerated, OrgID: org.orgID, KeyPKCS8: keyDER, CertDER: der, ChainDER: chain, CreatedAt: now.UTC()}, nil
}

// readOrgIssuer parses the stored Org CA for a caller that holds caLock
// (loadIssuer would take it again).
func (b *mastioBackend) readOrgIssuer(ctx context.Context, s logical.Storage) (*issuer, error) {
	e, err := b.readCA(ctx, s, orgCA)
	if err != nil || e == nil {
		return nil, err
	}
	return newIssuer(orgCA, e)
}

func (b *mastioBackend) pathIntermediateGenerateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	spec, err := decodeIntermediateSpec(d, nil)
	if err != nil {
		return respondErr(err)
	}
	cas, casSet := d.GetOk("cas")
	casInt, _ := cas.(int)

	b.caLock.Lock()
	defer b.caLock.Unlock()
	org, err := b.readOrgIssuer(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if org == nil {
		return logical.ErrorResponse("no Org CA exists yet: generate or import the Org CA before its intermediate"), nil
	}
	existing, err := b.readCA(ctx, req.Storage, intermediateCA)
	if err != nil {
		return nil, err
	}
	if err := checkCAS(intermediateCA, existing, casInt, casSet); err != nil {
		return respondErr(err)
	}
	entry, err := mintIntermediate(spec, org, time.Now())
	if err != nil {
		return respondErr(err)
	}
	if err := succeed(intermediateCA, existing, entry); err != nil {
		return respondErr(err)
	}
	is, err := b.writeCA(ctx, req.Storage, intermediateCA, entry)
	if err != nil {
		return nil, err
	}
	b.Logger().Info("generated Mastio Intermediate CA", "version", is.version, "serial", formatSerial(is.cert.SerialNumber), "sha256", fingerprintSHA256(is.cert.Raw))
	return &logical.Response{Data: intermediateResponseData(is, time.Now())}, nil
}

func (b *mastioBackend) pathIntermediateRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	grace := defaultIntermediateGrace
	if v, ok := d.GetOk("grace_period"); ok {
		grace = time.Duration(v.(int)) * time.Second
	}
	if grace < 0 || grace > maxIntermediateGrace {
		return logical.ErrorResponse("grace_period %s is out of range 0-90 days (2160h)", grace), nil
	}

	b.caLock.Lock()
	defer b.caLock.Unlock()
	currentEntry, err := b.readCA(ctx, req.Storage, intermediateCA)
	if err != nil {
		return nil, err
	}
	if currentEntry == nil {
		return logical.ErrorResponse("no intermediate to rotate: write %sintermediate/generate or %sintermediate/import first", req.MountPoint, req.MountPoint), nil
	}
	if v, ok := d.GetOk("cas"); ok && v.(int) != currentEntry.Version {
		return respondErr(&conflictError{msg: fmt.Sprintf("check-and-set failed: cas=%d but the current Mastio Intermediate CA version is %d", v.(int), currentEntry.Version)})
	}
	current, err := newIssuer(intermediateCA, currentEntry)
	if err != nil {
		return nil, err
	}
	org, err := b.readOrgIssuer(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if org == nil {
		return logical.ErrorResponse("no Org CA exists: the next intermediate needs the Org CA to sign it"), nil
	}
	spec, err := decodeIntermediateSpec(d, current)
	if err != nil {
		return respondErr(err)
	}
	now := time.Now()
	next, err := mintIntermediate(spec, org, now)
	if err != nil {
		return respondErr(err)
	}
	proof, err := continuityProof(current.signer, next.CertDER)
	if err != nil {
		return nil, err
	}
	if err := succeed(intermediateCA, currentEntry, next); err != nil {
		return respondErr(err)
	}
	next.Previous = &publishedCert{CertDER: currentEntry.CertDER, GraceUntil: now.Add(grace).UTC(), ContinuityProof: proof}

	is, err := b.rotateIntermediate(ctx, req.Storage, next)
	if err != nil {
		return nil, err
	}
	b.Logger().Info("rotated Mastio Intermediate CA", "version", is.version, "serial", formatSerial(is.cert.SerialNumber),
		"previous_serial", formatSerial(current.cert.SerialNumber), "grace_until", next.Previous.GraceUntil.Format(time.RFC3339))
	resp := &logical.Response{Data: intermediateResponseData(is, now)}
	resp.Data["continuity_proof"] = proof
	return resp, nil
}

// continuityProof is the retiring intermediate key's signature over the new
// certificate's DER (ECDSA or RSA PKCS#1 v1.5 over SHA-256, or Ed25519),
// base64url without padding, as Mastio computes it.
func continuityProof(oldKey crypto.Signer, newCertDER []byte) (string, error) {
	var (
		sig []byte
		err error
	)
	switch oldKey.(type) {
	case ed25519.PrivateKey:
		sig, err = oldKey.Sign(rand.Reader, newCertDER, crypto.Hash(0))
	default:
		digest := sha256.Sum256(newCertDER)
		sig, err = oldKey.Sign(rand.Reader, digest[:], crypto.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("signing the continuity proof: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// intermediateResponseData is caResponseData plus the previous intermediate
// while its grace lasts, and the bundle relying parties should accept.
func intermediateResponseData(is *issuer, now time.Time) map[string]any {
	data := caResponseData(is)
	bundle := []string{is.certPEM}
	if is.previous != nil && now.Before(is.previousUntil) {
		prev := encodeCertPEM(is.previous.Raw)
		data["previous"] = prev
		data["previous_grace_until"] = is.previousUntil.UTC().Format(time.RFC3339)
		data["continuity_proof"] = is.proof
		bundle = append(bundle, prev)
	}
	data["bundle"] = bundle
	return data
}

const pathIntermediateGenerateHelpSyn = `Generate the Mastio Intermediate CA inside Vault, signed there by the Org CA.`

const pathIntermediateGenerateHelpDesc = `
Mints the intermediate's key inside the plugin and has the Org CA sign it
inside the plugin: CN=<org_id> Mastio CA, O=<org_id>, EC P-256 unless
key_type/key_bits say otherwise, valid 5 years (ttl) but never past the Org
CA, basicConstraints CA:true pathLen 0 and keyUsage keyCertSign+cRLSign
(both critical), SKI, and AKI = the Org CA's SKI. Neither key leaves Vault.

Create-only like generate: 409 while an intermediate exists unless cas
equals its version. From then on roles with issuer=auto sign with it and
return ca_chain = [intermediate, Org CA]; the Org CA signs only
intermediates.

Example:

    $ vault write -f mastio-ca/intermediate/generate
    $ openssl verify -CAfile org-ca.pem -untrusted intermediate.pem agent.pem
`

const pathIntermediateRotateHelpSyn = `Replace the intermediate with a new one and return a continuity proof.`

const pathIntermediateRotateHelpDesc = `
Mints the next intermediate (same key type as the current one unless
key_type says otherwise), signed by the Org CA, and makes it the signer.
The previous intermediate's certificate stays published in
intermediate/cert as previous and in bundle for grace_period (default 14
days); its key is discarded. Rotating again within the grace period keeps
exactly one previous: the one just replaced.

continuity_proof is the previous intermediate key's signature (ECDSA
SHA-256 for EC keys) over the new certificate's DER, base64url without
padding: anyone holding the previous certificate can check that the new
intermediate was introduced by the holder of the old key
(client.VerifyContinuity, or openssl dgst -sha256 -verify).

The rotate response always carries the proof; intermediate/cert serves it
again while the grace lasts (with grace_period=0, only the response has
it). With
cas equal to the current version, a retried request cannot rotate twice.

The new intermediate is written before the switch; a rotation that fails
half way leaves the previous intermediate as the signer.

Example:

    $ vault write mastio-ca/intermediate/rotate grace_period=336h
`
