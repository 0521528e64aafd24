package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

func pathRevoke(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "revoke",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"certificate":   {Type: framework.TypeString, Description: "The PEM certificate to revoke (preferred: its issuer, serial and NotAfter are read from it)."},
			"serial_number": {Type: framework.TypeString, Description: "Instead of certificate: the serial, in hex (as sign-csr returns it)."},
			"issuer":        {Type: framework.TypeString, Description: "With serial_number: the issuing CA, org-ca, intermediate-ca or its key id (hex subject key identifier)."},
			"not_after":     {Type: framework.TypeString, Description: "With serial_number: the certificate's NotAfter (RFC 3339); the revocation is kept until then."},
			"reason":        {Type: framework.TypeString, Description: "RFC 5280 CRL reason: unspecified (default), keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn, aACompromise (certificateHold is refused: a hold could never be released)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRevokeWrite,
				Summary:                     "Revoke a certificate this mount issued (idempotent).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "revoke", OperationSuffix: "certificate"},
			},
		},
		HelpSynopsis:    pathRevokeHelpSyn,
		HelpDescription: pathRevokeHelpDesc,
	}
}

func (b *mastioBackend) pathRevokeWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	r := revokeRequest{
		certPEM:   d.Get("certificate").(string),
		serial:    d.Get("serial_number").(string),
		issuerRef: d.Get("issuer").(string),
		reason:    d.Get("reason").(string),
	}
	if v := d.Get("not_after").(string); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return respondErr(issuing.Inputf("not_after must be an RFC 3339 time, such as 2027-01-31T12:00:00Z"))
		}
		r.notAfter = t
	}
	res, err := b.revoke(ctx, req.Storage, r)
	if err != nil {
		return respondErr(err)
	}
	serial := res.entry.revocation().Serial
	return &logical.Response{Data: map[string]any{
		"serial_number":   issuing.FormatSerial(serial),
		"revocation_time": res.entry.RevokedAt.Format(time.RFC3339),
		"reason":          issuing.ReasonName(res.entry.Reason),
		"not_after":       res.entry.NotAfter.Format(time.RFC3339),
		"issuer_id":       res.issuer.id,
		"already_revoked": res.already,
		"crl_number":      res.number,
	}}, nil
}

func pathTidy(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "tidy",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathTidyWrite,
				Summary:                     "Drop the revocations of expired certificates (and the keys of intermediates past their grace) now.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "tidy", OperationSuffix: "revocations"},
			},
		},
		HelpSynopsis:    pathTidyHelpSyn,
		HelpDescription: pathTidyHelpDesc,
	}
}

func (b *mastioBackend) pathTidyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	res, err := b.tidy(ctx, req.Storage)
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: map[string]any{"revocations_removed": res.removed, "retired_keys_dropped": res.retiredKeysGone}}, nil
}

const pathRevokeHelpSyn = `Revoke a certificate this mount issued: it enters its issuer's CRL and OCSP answers.`

const pathRevokeHelpDesc = `
Revokes a certificate issued by this mount's Org CA or one of its
intermediates (the current one, or a rotated-out one during its grace).
Give the certificate (its issuer, serial and NotAfter are read from it), or
serial_number with issuer and not_after, for a caller that kept only the
serial. reason is an RFC 5280 CRL reason (default unspecified).

Only revocations are stored, one entry per serial, until the certificate
expires: signing still writes nothing. Revoking a revoked serial again
changes nothing and answers the first revocation (already_revoked=true).
The CA certificates the mount signs with (the Org CA, the current
intermediate) cannot be revoked here: rotation replaces them. A rotated-out
intermediate can, onto the Org CA's CRL (after a compromise of its key:
rotate with grace_period=0 drop_earlier=true, then revoke the old one with
reason=cACompromise), and so can a CA that root/sign-intermediate signed
(a SPIRE server's, an issuing Vault's).

The issuer's CRL (crl, issuer/<id>/crl) moves on at once, and OCSP
answers revoked. policies/mastio-revoker.hcl allows this path only.

Example:

    $ vault write mastio-ca/revoke certificate=@agent.pem reason=keyCompromise
    $ vault write mastio-ca/revoke serial_number=4f:2a:... issuer=intermediate-ca not_after=2027-01-31T12:00:00Z
`

const pathTidyHelpSyn = `Drop the revocations of expired certificates now.`

const pathTidyHelpDesc = `
A revocation is kept until its certificate expires; then it leaves the
CRL. The mount's periodic function does this every hour on the active node;
tidy does it now, and also drops the keys of rotated-out intermediates
whose grace has ended (kept until then only to sign their CRL).
`
