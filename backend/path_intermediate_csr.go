package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// The CSR round of an issuing mount: intermediate/generate-csr,
// intermediate/pending, intermediate/set-signed.

func pathIntermediateGenerateCSR(b *mastioBackend) *framework.Path {
	fields := intermediateKeyFields()
	delete(fields, "ttl") // the root mount decides the validity
	fields["common_name"] = &framework.FieldSchema{Type: framework.TypeString, Description: "The CSR's subject CN (a label: the root mount's profile decides the certificate's). Default '<org_id> Mastio CA'."}
	fields["cas"] = &framework.FieldSchema{Type: framework.TypeInt, Description: "Replace the pending key only if its version is this (create-only without it)."}
	return &framework.Path{
		Pattern:      "intermediate/generate-csr",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields:       fields,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediateGenerateCSRWrite,
				Summary:                     "Make the intermediate's key inside Vault and return only its CSR (kept pending until set-signed).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "generate", OperationSuffix: "intermediate-csr"},
			},
		},
		HelpSynopsis:    pathIntermediateGenerateCSRHelpSyn,
		HelpDescription: pathIntermediateGenerateCSRHelpDesc,
	}
}

func (b *mastioBackend) pathIntermediateGenerateCSRWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	cas, casSet := casOf(d)
	p, err := b.generateIntermediateCSR(ctx, req.Storage, decodeIntermediateSpec(d, issuing.NewIntermediateSpec()), d.Get("key_backend").(string), cas, casSet)
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: pendingResponseData(p)}, nil
}

func pendingResponseData(p *pendingEntry) map[string]any {
	return map[string]any{
		"csr":               issuing.EncodeCSRPEM(p.CSRDER),
		"public_key_sha256": p.publicKeySHA256(),
		"key_backend":       p.keyBackend(),
		"version":           p.Version,
		"created_at":        p.CreatedAt.UTC().Format(time.RFC3339),
	}
}

func pathIntermediatePending(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "intermediate/pending",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathIntermediatePendingRead,
				Summary:      "Read the pending intermediate's CSR again.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "pending-intermediate"},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediatePendingDelete,
				Summary:                     "Drop the pending intermediate key (its CSR can then never be activated).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "delete", OperationSuffix: "pending-intermediate"},
			},
		},
		HelpSynopsis:    pathIntermediatePendingHelpSyn,
		HelpDescription: pathIntermediatePendingHelpDesc,
	}
}

func (b *mastioBackend) pathIntermediatePendingRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	p, err := readPending(ctx, req.Storage)
	if err != nil || !p.live() {
		return nil, err
	}
	return &logical.Response{Data: pendingResponseData(p)}, nil
}

func (b *mastioBackend) pathIntermediatePendingDelete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	dropped, err := b.dropPending(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if !dropped {
		return respondErr(issuing.NotFoundf("no intermediate key is pending"))
	}
	return nil, nil
}

func pathIntermediateSetSigned(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "intermediate/set-signed",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"certificate": {
				Type:        framework.TypeString,
				Description: "The PEM certificate the root mount signed for the pending key (root/sign-intermediate's certificate), optionally followed by its issuers up to the Org CA.",
			},
			"ca_chain": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Its issuers instead, nearest first: the Org CA certificate (root/sign-intermediate's ca_chain, or the root mount's cert/pem). Required when this mount has no Org CA yet; otherwise it must be this mount's.",
			},
			"grace_period": {
				Type:        framework.TypeDurationSecond,
				Description: "When an intermediate is active (a rotation): how long it stays published. Default 14 days (336h), at most 90 days.",
			},
			"drop_earlier": {
				Type:        framework.TypeBool,
				Description: "As intermediate/rotate's: stop publishing every intermediate rotated out before the current one now.",
			},
			"cas": {
				Type:        framework.TypeInt,
				Description: "Create-only, as generate: none activates the first intermediate; replacing an active one (a rotation) takes its version.",
			},
			"org_ca_cas": {
				Type:        framework.TypeInt,
				Description: "Replace this mount's Org CA certificate (source anchor) of this version with the one in ca_chain, after the root replaced its Org CA.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathIntermediateSetSignedWrite,
				Summary:                     "Activate the certificate the root mount signed for the pending intermediate key.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "set-signed", OperationSuffix: "intermediate-ca"},
			},
		},
		HelpSynopsis:    pathIntermediateSetSignedHelpSyn,
		HelpDescription: pathIntermediateSetSignedHelpDesc,
	}
}

func (b *mastioBackend) pathIntermediateSetSignedWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	r := setSignedRequest{
		certPEM:     d.Get("certificate").(string),
		chainPEM:    strings.Join(d.Get("ca_chain").([]string), "\n"),
		grace:       issuing.DefaultIntermediateGrace,
		dropEarlier: d.Get("drop_earlier").(bool),
	}
	if v, ok := d.GetOk("grace_period"); ok {
		r.grace = time.Duration(v.(int)) * time.Second
	}
	r.cas, r.casSet = casOf(d)
	if v, ok := d.GetOk("org_ca_cas"); ok {
		r.orgCAS, r.orgCASSet = v.(int), true
	}
	act, err := b.setSignedIntermediate(ctx, req.Storage, r)
	if err != nil {
		return respondErr(err)
	}
	data := intermediateResponseData(act.is, time.Now())
	data["org_ca_installed"] = act.anchorInstalled
	data["unchanged"] = act.unchanged
	if act.rot != nil {
		data["continuity_proof"] = act.rot.proof
		data["old_intermediate_cn"] = act.rot.old.Subject.CommonName
		data["new_intermediate_cn"] = act.is.cert.Subject.CommonName
	}
	return &logical.Response{Data: data}, nil
}

const pathIntermediateGenerateCSRHelpSyn = `Make the intermediate's key inside Vault; only a CSR leaves (for a root mount to sign).`

const pathIntermediateGenerateCSRHelpDesc = `
The first half of the two-tier setup (docs/spiffe.md): on an issuing mount,
makes the Mastio Intermediate CA's key inside the plugin (key_backend=vault)
or inside the PKCS#11 token of config/pkcs11 (key_backend=pkcs11,
docs/hsm.md) and returns a CSR for it (CN=<org_id> Mastio CA unless
common_name says otherwise, O=<org_id>, asking for CA:true pathLen 0). The
key stays here, pending, until intermediate/set-signed activates the
certificate the root mount signed for it. It is never returned. With an
intermediate active, key_backend defaults to its.

Create-only like generate: 409 while a key is pending unless cas equals
its version (which replaces, and drops, the pending key). With an
intermediate already active this starts a rotation: set-signed then
rotates it out with a grace period and a continuity proof.

public_key_sha256 (the SHA-256 of the key's SubjectPublicKeyInfo) lets an
operator match the CSR to the certificate that comes back.

Example:

    $ vault write -f -field=csr mastio-ca/intermediate/generate-csr > issuing.csr
    $ VAULT_ADDR=$ROOT vault write -format=json root-ca/root/sign-intermediate csr=@issuing.csr ttl=43800h > signed.json
    $ vault write mastio-ca/intermediate/set-signed \
        certificate="$(jq -r .data.certificate signed.json)" \
        ca_chain="$(jq -r '.data.ca_chain[1:][]' signed.json)"
`

const pathIntermediatePendingHelpSyn = `The pending intermediate's CSR (read), or drop the pending key (delete).`

const pathIntermediatePendingHelpDesc = `
Read returns the CSR intermediate/generate-csr made, its public key's
SHA-256, version and creation time; 404 when no key is pending. Delete
drops the pending key: a certificate signed for it can then never be
activated here.
`

const pathIntermediateSetSignedHelpSyn = `Activate the certificate a root mount signed for the pending intermediate key.`

const pathIntermediateSetSignedHelpDesc = `
The second half of the two-tier setup. certificate is the PEM the root
mount's root/sign-intermediate returned. It must be for the pending key, a
CA certificate with pathLen 0 and keyCertSign, valid now, and signed by
the Org CA; then it becomes this mount's Mastio Intermediate CA, through the
same custody path as generate, import and rotate, and the pending key is
dropped.

The Org CA: ca_chain (or certificates after the first in certificate) gives
it. On a mount that has no Org CA, it is stored as the trust anchor: the
certificate only (cert shows source=anchor), the key staying on the root
mount. cert, cert/pem, bundle, health and verify then work here; generate,
intermediate/generate and intermediate/rotate do not (they need the key).
On a mount that has an Org CA, ca_chain may be omitted and, if given, must
be that Org CA.

Create-only like generate: with an intermediate active, this is a
rotation and takes cas equal to its version. The current one is rotated
out with grace_period (default 14 days) and its key signs the continuity
proof over the new certificate, exactly as intermediate/rotate. A retry
after success answers unchanged=true.

After the root replaced its Org CA, org_ca_cas (the version of this
mount's anchor, as cert shows it) lets ca_chain bring the new one.

Example:

    $ vault write mastio-ca/intermediate/set-signed certificate=@intermediate.pem ca_chain=@org-ca.pem
`
