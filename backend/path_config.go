package backend

import (
	"context"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

// Values of config leaf_not_after.
const (
	leafNotAfterTruncate = "truncate"
	leafNotAfterError    = "error"
)

const defaultTrustDomain = "cullis.local"

// orgIDPattern: an org_id becomes a SPIFFE path segment, so it uses that
// alphabet. 64 characters is ample for Mastio's 16-hex derived IDs.
var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// mountConfig is the stored config entry.
type mountConfig struct {
	OrgID        string `json:"org_id"`
	TrustDomain  string `json:"trust_domain"`
	DefaultRole  string `json:"default_role"`
	LeafNotAfter string `json:"leaf_not_after"`
}

func defaultConfig() *mountConfig {
	return &mountConfig{TrustDomain: defaultTrustDomain, DefaultRole: roleAgent, LeafNotAfter: leafNotAfterTruncate}
}

func validateOrgID(id string) error {
	if !orgIDPattern.MatchString(id) || id == "." || id == ".." {
		return inputErrorf("org_id %q is not valid: use 1-64 characters from A-Z a-z 0-9 . _ - (it becomes a SPIFFE ID path segment)", id)
	}
	return nil
}

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
				Default:     defaultTrustDomain,
			},
			"default_role": {
				Type:        framework.TypeString,
				Description: "Role used by sign-csr when the path names none.",
				Default:     roleAgent,
			},
			"leaf_not_after": {
				Type:          framework.TypeString,
				Description:   "When a leaf would outlive its issuer: 'truncate' caps it at the issuer's NotAfter, 'error' refuses.",
				Default:       leafNotAfterTruncate,
				AllowedValues: []any{leafNotAfterTruncate, leafNotAfterError},
			},
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
func effectiveOrgID(cfg *mountConfig, is *issuer) string {
	if is != nil {
		return is.orgID
	}
	return cfg.OrgID
}

func (b *mastioBackend) pathConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := b.readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	is, err := b.loadIssuer(ctx, req.Storage, orgCA)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"org_id":         effectiveOrgID(cfg, is),
		"trust_domain":   cfg.TrustDomain,
		"default_role":   cfg.DefaultRole,
		"leaf_not_after": cfg.LeafNotAfter,
	}}, nil
}

func (b *mastioBackend) pathConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	b.configLock.Lock()
	defer b.configLock.Unlock()

	cfg, err := b.readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if v, ok := d.GetOk("org_id"); ok {
		cfg.OrgID = strings.TrimSpace(v.(string))
		if err := validateOrgID(cfg.OrgID); err != nil {
			return respondErr(err)
		}
		is, err := b.loadIssuer(ctx, req.Storage, orgCA)
		if err != nil {
			return nil, err
		}
		if is != nil && is.orgID != cfg.OrgID {
			return logical.ErrorResponse("org_id cannot change to %q: the Org CA was made for %q; generate or import a CA for the new org (with cas) instead", cfg.OrgID, is.orgID), nil
		}
	}
	if v, ok := d.GetOk("trust_domain"); ok {
		td, err := spiffeid.TrustDomainFromString(v.(string))
		if err != nil || strings.Contains(v.(string), "://") {
			return logical.ErrorResponse("trust_domain %q is not a valid SPIFFE trust domain: use lowercase letters, digits, '.', '-' and '_' (e.g. cullis.local)", v), nil
		}
		cfg.TrustDomain = td.Name()
	}
	if v, ok := d.GetOk("default_role"); ok {
		name := v.(string)
		r, err := b.readRole(ctx, req.Storage, name)
		if err != nil {
			return nil, err
		}
		if r == nil {
			return logical.ErrorResponse("default_role %q does not exist; create it under roles/ first", name), nil
		}
		cfg.DefaultRole = name
	}
	if v, ok := d.GetOk("leaf_not_after"); ok {
		s := v.(string)
		if s != leafNotAfterTruncate && s != leafNotAfterError {
			return logical.ErrorResponse("leaf_not_after %q is not valid; use truncate or error", s), nil
		}
		cfg.LeafNotAfter = s
	}

	if err := b.writeConfig(ctx, req.Storage, cfg); err != nil {
		return nil, err
	}
	return b.pathConfigRead(ctx, req, d)
}

const pathConfigHelpSyn = `Configure the organisation, SPIFFE trust domain and signing defaults.`

const pathConfigHelpDesc = `
org_id names the organisation: it is the O of a generated CA and the first
path segment of every SPIFFE ID this mount issues. Once an Org CA exists,
the org it was made for is the mount's org_id and cannot be changed here. trust_domain (default cullis.local) is the SPIFFE
trust domain. default_role (default agent) is the role sign-csr uses when
called without one. leaf_not_after says what happens when a certificate
would outlive its issuer: truncate (default) caps it, error refuses.

Unknown fields are refused, not ignored.

Example:

    $ vault write mastio-ca/config trust_domain=acme.example leaf_not_after=error
    $ vault read mastio-ca/config
`
