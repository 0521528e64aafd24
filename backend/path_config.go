package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Values of config leaf_not_after.
func pathConfig(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "config",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"org_id": {
				Type:        framework.TypeString,
				Description: "Organisation ID: the O of the CA and the first path segment of SPIFFE IDs. Set by generate/import when empty.",
			},
			"trust_domain": {
				Type:        framework.TypeString,
				Description: "SPIFFE trust domain of issued identities.",
				Default:     issuing.DefaultTrustDomain,
			},
			"default_role": {
				Type:        framework.TypeString,
				Description: "Role used by sign-csr when the path names none.",
				Default:     issuing.RoleAgent,
			},
			"leaf_not_after": {
				Type:          framework.TypeString,
				Description:   "When a leaf would outlive its issuer: 'truncate' caps it at the issuer's NotAfter, 'error' refuses.",
				Default:       leafNotAfterTruncate,
				AllowedValues: []any{leafNotAfterTruncate, leafNotAfterError},
			},
			"crl_expiry": {
				Type:        framework.TypeDurationSecond,
				Description: "How long each CRL is valid (nextUpdate - thisUpdate): 1h to 720h, default 72h. CRLs are rebuilt on revoke and when half of it has passed.",
			},
			"crl_distribution_points":       commaField("URLs of the issuing CA's CRL put into every certificate issued from now on ({{issuer_id}}: the issuer's key ID), e.g. https://vault.example:8200/v1/mastio-ca/issuer/{{issuer_id}}/crl."),
			"ocsp_servers":                  commaField("OCSP responder URLs put into every certificate issued from now on, e.g. https://vault.example:8200/v1/mastio-ca/ocsp."),
			"delta_crl_distribution_points": commaField("URLs of the issuing CA's delta CRL, put into its complete CRLs (Freshest CRL, which openssl needs to use deltas), e.g. https://vault.example:8200/v1/mastio-ca/issuer/{{issuer_id}}/crl/delta."),
			"issuing_certificates":          commaField("URLs of the issuing CA's certificate (AIA caIssuers) put into every certificate issued from now on, e.g. https://vault.example:8200/v1/mastio-ca/issuer/{{issuer_id}}/der."),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathConfigRead,
				Summary:  "Read the mount configuration.",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationSuffix: "configuration",
				},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigWrite,
				Summary:                     "Update the mount configuration; omitted fields keep their value.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "configure",
					OperationSuffix: "",
				},
			},
		},
		HelpSynopsis:    pathConfigHelpSyn,
		HelpDescription: pathConfigHelpDesc,
	}
}

// effectiveOrgID is the org the Org CA was made for, else (before there is
// one) the configured org_id that generate and import will default to.
func (b *mastioBackend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return respond(b.configData(ctx, req.Storage))
}

func (b *mastioBackend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	var u configUpdate
	for field, dst := range map[string]**string{"org_id": &u.orgID, "trust_domain": &u.trustDomain, "default_role": &u.defaultRole, "leaf_not_after": &u.leafNotAfter} {
		if v, ok := d.GetOk(field); ok {
			text := v.(string)
			*dst = &text
		}
	}
	if v, ok := d.GetOk("crl_expiry"); ok {
		e := time.Duration(v.(int)) * time.Second
		u.crlExpiry = &e
	}
	for field, dst := range map[string]**[]string{"crl_distribution_points": &u.crlDistributionPoints, "ocsp_servers": &u.ocspServers, "issuing_certificates": &u.issuingCertificates, "delta_crl_distribution_points": &u.deltaCRLDistributionPts} {
		if _, ok := d.GetOk(field); ok {
			list := commaList(d, field)
			*dst = &list
		}
	}
	if err := b.updateConfig(ctx, req.Storage, u); err != nil {
		return respondErr(err)
	}
	return b.pathConfigRead(ctx, req, d)
}

// configData is what config reads: the stored config, and the Org CA's
// org as org_id once one exists.
func (b *mastioBackend) configData(ctx context.Context, s logical.Storage) (map[string]any, error) {
	cfg, err := readConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	is, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	orgID := cfg.OrgID
	if is != nil {
		orgID = is.orgID
	}
	return map[string]any{
		"org_id":                        orgID,
		"trust_domain":                  cfg.TrustDomain,
		"default_role":                  cfg.DefaultRole,
		"leaf_not_after":                cfg.LeafNotAfter,
		"crl_expiry":                    int64(cfg.crlExpiry() / time.Second),
		"crl_distribution_points":       nonNil(cfg.CRLDistributionPoints),
		"ocsp_servers":                  nonNil(cfg.OCSPServers),
		"issuing_certificates":          nonNil(cfg.IssuingCertificates),
		"delta_crl_distribution_points": nonNil(cfg.DeltaCRLDistributionPoints),
	}, nil
}

const pathConfigHelpSyn = `Configure the organisation, SPIFFE trust domain and signing defaults.`

const pathConfigHelpDesc = `
org_id names the organisation: it is the O of a generated CA and the first
path segment of every SPIFFE ID this mount issues. Once an Org CA exists,
the org it was made for is the mount's org_id and cannot be changed here. trust_domain (default cullis.local) is the SPIFFE
trust domain. default_role (default agent) is the role sign-csr uses when
called without one. leaf_not_after says what happens when a certificate
would outlive its issuer: truncate (default) caps it, error refuses.

Revocation (docs/revocation.md): crl_expiry is each CRL's validity;
crl_distribution_points, ocsp_servers and issuing_certificates, like Vault
PKI's config/urls, go into every leaf and intermediate issued after they
are set, {{issuer_id}} standing for the issuing CA's key ID, so that each
certificate points at its own issuer's CRL:

    $ vault write mastio-ca/config \
        crl_distribution_points='https://vault.example:8200/v1/mastio-ca/issuer/{{issuer_id}}/crl' \
        ocsp_servers=https://vault.example:8200/v1/mastio-ca/ocsp

Unknown fields are refused, not ignored.

Example:

    $ vault write mastio-ca/config trust_domain=acme.example leaf_not_after=error
    $ vault read mastio-ca/config
`
