package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
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
			"kv_export":   kvExportField,
			"key_backend": importKeyBackendField,
			"cas":         casField,
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
	fields["grace_days"] = &framework.FieldSchema{
		Type:        framework.TypeInt,
		Description: "The grace in whole days, 1-90, as Mastio's rotation endpoint takes it (instead of grace_period).",
	}
	fields["dry_run"] = &framework.FieldSchema{
		Type:        framework.TypeBool,
		Description: "Mint the next intermediate and its continuity proof and return them, storing nothing (Mastio's dry_run). The certificate returned is signed by the Org CA but never used.",
	}
	fields["drop_earlier"] = &framework.FieldSchema{
		Type:        framework.TypeBool,
		Description: "Stop publishing every intermediate rotated out before the current one now, ending their grace early (after a key compromise). Default false: each stays published until its own grace ends.",
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

// decodeIntermediateSpec applies the request's key_type, key_bits, ttl
// and common_name to spec.
func decodeIntermediateSpec(d *framework.FieldData, spec issuing.IntermediateSpec) issuing.IntermediateSpec {
	if v, ok := d.GetOk("key_type"); ok {
		spec.KeyType, spec.KeyBits = v.(string), 0
	}
	if v, ok := d.GetOk("key_bits"); ok {
		spec.KeyBits = v.(int)
	}
	if v, ok := d.GetOk("ttl"); ok {
		spec.TTL = time.Duration(v.(int)) * time.Second
	}
	if v, ok := d.GetOk("common_name"); ok {
		spec.CommonName = v.(string)
	}
	return spec
}

func (b *mastioBackend) pathIntermediateGenerateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	cas, casSet := casOf(d)
	is, err := b.generateIntermediate(ctx, req.Storage, decodeIntermediateSpec(d, issuing.NewIntermediateSpec()), d.Get("key_backend").(string), cas, casSet)
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: intermediateResponseData(is, time.Now())}, nil
}

func (b *mastioBackend) pathIntermediateRotateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	r := rotateRequest{
		spec:        func(spec issuing.IntermediateSpec) issuing.IntermediateSpec { return decodeIntermediateSpec(d, spec) },
		grace:       issuing.DefaultIntermediateGrace,
		dropEarlier: d.Get("drop_earlier").(bool),
		dryRun:      d.Get("dry_run").(bool),
		keyBackend:  d.Get("key_backend").(string),
	}
	period, periodSet := d.GetOk("grace_period")
	days, daysSet := d.GetOk("grace_days")
	switch {
	case periodSet && daysSet:
		return respondErr(issuing.Inputf("pass grace_period or grace_days, not both"))
	case periodSet:
		r.grace = time.Duration(period.(int)) * time.Second
	case daysSet:
		if n := days.(int); n < 1 || n > 90 {
			return respondErr(issuing.Inputf("grace_days %d is out of range 1-90", n))
		}
		r.grace = time.Duration(days.(int)) * 24 * time.Hour
	}
	r.cas, r.casSet = casOf(d)
	rot, err := b.rotateIntermediate(ctx, req.Storage, r)
	if err != nil {
		return respondErr(err)
	}
	resp := &logical.Response{Data: intermediateResponseData(rot.next, time.Now())}
	// What Mastio's own rotation endpoint returns, beside the above.
	resp.Data["continuity_proof"] = rot.proof
	resp.Data["old_intermediate_cn"] = rot.old.Subject.CommonName
	resp.Data["new_intermediate_cn"] = rot.next.cert.Subject.CommonName
	graceDays := int((r.grace + 24*time.Hour - 1) / (24 * time.Hour)) // days the previous one stays, rounded up
	if daysSet {
		graceDays = days.(int)
	}
	resp.Data["grace_days"] = graceDays
	resp.Data["dry_run"] = r.dryRun
	return resp, nil
}

// intermediateResponseData is caResponseData plus the rotated-out
// intermediates still in their grace: the newest as previous (with its
// continuity proof over the current one), all of them in retired, and the
// bundle relying parties should accept.
func intermediateResponseData(is *issuer, now time.Time) map[string]any {
	data := caResponseData(is)
	bundle := []string{is.certPEM}
	var retired []map[string]any
	for i, r := range is.retired {
		if !now.Before(r.until) {
			continue
		}
		pemText := issuing.EncodeCertPEM(r.cert.Raw)
		if i == 0 {
			data["previous"] = pemText
			data["previous_grace_until"] = r.until.UTC().Format(time.RFC3339)
			data["continuity_proof"] = r.proof
		}
		retired = append(retired, map[string]any{
			"certificate":      pemText,
			"serial_number":    issuing.FormatSerial(r.cert.SerialNumber),
			"grace_until":      r.until.UTC().Format(time.RFC3339),
			"continuity_proof": r.proof,
		})
		bundle = append(bundle, pemText)
	}
	if retired != nil {
		data["retired"] = retired
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
every earlier one published until its own grace ends: previous is the one
just replaced, retired lists them all (each with its key's continuity proof
over the certificate that replaced it) and bundle holds them. At most 16 are
published at once; a rotation that would stop publishing one early is
refused (422) unless drop_earlier=true, which ends every earlier grace now,
as after a compromise of their keys.

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

As Mastio's own rotation endpoint: grace_days (1-90) instead of
grace_period; dry_run=true mints the next intermediate, has the Org CA sign
it and the current key make the continuity proof, returns them and stores
nothing. The answer also carries old_intermediate_cn, new_intermediate_cn,
grace_days and dry_run.

Example:

    $ vault write mastio-ca/intermediate/rotate grace_period=336h
    $ vault write mastio-ca/intermediate/rotate grace_days=14 dry_run=true
`
