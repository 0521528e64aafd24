package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

func pathRolesList(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "roles/?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "roles",
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: &framework.PathOperation{
				Callback: b.pathRolesList,
				Summary:  "List the signing roles.",
			},
		},
		HelpSynopsis:    pathRolesHelpSyn,
		HelpDescription: pathRolesHelpDesc,
	}
}

func pathRoles(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "roles/" + framework.GenericNameRegex("name"),
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "role",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {
				Type:        framework.TypeString,
				Description: "Name of the role.",
				Required:    true,
			},
			"issuer": {
				Type:        framework.TypeString,
				Description: "Which CA signs: auto (default: the intermediate when one exists, else the Org CA), intermediate-ca, or org-ca (pins the Org CA even when an intermediate exists; for verification such as mastio-ca migrate's proof).",
			},
			"allowed_key_types": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Key types a CSR may carry: ec, rsa, ed25519. Default ec,rsa.",
			},
			"allowed_ec_curves": {
				Type:        framework.TypeCommaStringSlice,
				Description: "EC curves a CSR may use: P-256, P-384, P-521. Default all three.",
			},
			"rsa_min_bits": {
				Type:        framework.TypeInt,
				Description: "Smallest RSA modulus accepted (at least 2048). Default 2048.",
			},
			"rsa_max_bits": {
				Type:        framework.TypeInt,
				Description: "Largest RSA modulus accepted (at most 8192). Default 8192.",
			},
			"uri_san_pattern": {
				Type:        framework.TypeString,
				Description: "SPIFFE ID pattern every URI SAN must match, e.g. spiffe://{{trust_domain}}/{{org_id}}/*. '*' is one path segment, {a|b} one of the literals.",
			},
			"uri_san_count": {
				Type:        framework.TypeInt,
				Description: "Exact number of URI SANs a CSR must carry. Default 1.",
			},
			"allow_outside_org": {
				Type:        framework.TypeBool,
				Description: "Let uri_san_pattern name IDs outside spiffe://{{trust_domain}}/{{org_id}}/. Default false: such a pattern is refused.",
			},
			"allow_dns_sans": {
				Type:        framework.TypeBool,
				Description: "Allow DNS SANs that match allowed_dns_sans (copied from the CSR). Default false.",
			},
			"allowed_dns_sans": {
				Type:        framework.TypeCommaStringSlice,
				Description: "DNS names a CSR may carry when allow_dns_sans is on: names or patterns where a '*' label matches exactly one label (*.agents.example.com); {{org_id}} and {{trust_domain}} are replaced. Required with allow_dns_sans.",
			},
			"allow_ip_sans": {
				Type:        framework.TypeBool,
				Description: "Allow IP address SANs within allowed_ip_sans (copied from the CSR). Default false.",
			},
			"allowed_ip_sans": {
				Type:        framework.TypeCommaStringSlice,
				Description: "CIDR prefixes or addresses an IP SAN must be in when allow_ip_sans is on. Required with allow_ip_sans.",
			},
			"allow_email_sans": {
				Type:        framework.TypeBool,
				Description: "Allow email SANs that match allowed_email_sans (copied from the CSR). Default false.",
			},
			"allowed_email_sans": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Email addresses a CSR may carry when allow_email_sans is on: local@domain or *@domain, domain as in allowed_dns_sans. Required with allow_email_sans.",
			},
			"subject_common_name": {
				Type:        framework.TypeString,
				Description: "Template of the issued CN; {{org_id}}, {{trust_domain}}, {{name}} (the last '*' of the URI), {{first_san}} (the first DNS or IP SAN). Empty: no CN. The CSR's subject is never copied.",
			},
			"subject_organization": {
				Type:        framework.TypeString,
				Description: "Template of the issued O, as subject_common_name. Empty: no O.",
			},
			"key_usage": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Key usages of issued certificates, and the most a CSR may request: DigitalSignature, ContentCommitment, KeyEncipherment, DataEncipherment, KeyAgreement. Default DigitalSignature.",
			},
			"ext_key_usage": {
				Type:        framework.TypeCommaStringSlice,
				Description: "Extended key usages of issued certificates, and the most a CSR may request: ServerAuth, ClientAuth, CodeSigning, EmailProtection, TimeStamping. Default ClientAuth.",
			},
			"ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "Validity when sign-csr asks for none. Default 1h.",
			},
			"max_ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "Longest validity sign-csr may ask for. A new role starts at 1h; setting ttl above max_ttl raises it to ttl.",
			},
			"not_before_skew": {
				Type:        framework.TypeDurationSecond,
				Description: "How far notBefore is set in the past, for clock skew (0-1h). Default 5m.",
			},
		},
		ExistenceCheck: b.roleExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathRoleRead,
				Summary:  "Read a signing role.",
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathRoleWrite,
				Summary:                     "Create a signing role.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRoleWrite,
				Summary:                     "Update a signing role; omitted fields keep their value.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathRoleDelete,
				Summary:                     "Delete a signing role.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    pathRolesHelpSyn,
		HelpDescription: pathRolesHelpDesc,
	}
}

func (b *mastioBackend) roleExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
	return r != nil, err
}

func (b *mastioBackend) pathRolesList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := listRoles(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return logical.ListResponse(names), nil
}

func (b *mastioBackend) pathRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := readRole(ctx, req.Storage, d.Get("name").(string))
	if err != nil || r == nil {
		return nil, err
	}
	return &logical.Response{Data: roleResponseData(r)}, nil
}

func roleResponseData(r *issuing.Role) map[string]any {
	return map[string]any{
		"issuer":               r.Issuer,
		"allowed_key_types":    r.AllowedKeyTypes,
		"allowed_ec_curves":    r.AllowedECCurves,
		"rsa_min_bits":         r.RSAMinBits,
		"rsa_max_bits":         r.RSAMaxBits,
		"uri_san_pattern":      r.URISANPattern,
		"uri_san_count":        r.URISANCount,
		"allow_dns_sans":       r.AllowDNSSANs,
		"allow_ip_sans":        r.AllowIPSANs,
		"allow_email_sans":     r.AllowEmailSANs,
		"allowed_dns_sans":     nonNil(r.AllowedDNSSANs),
		"allowed_ip_sans":      nonNil(r.AllowedIPSANs),
		"allowed_email_sans":   nonNil(r.AllowedEmailSANs),
		"allow_outside_org":    r.AllowOutsideOrg,
		"subject_common_name":  r.SubjectCommonName,
		"subject_organization": r.SubjectOrganization,
		"key_usage":            r.KeyUsage,
		"ext_key_usage":        r.ExtKeyUsage,
		"ttl":                  int64(r.TTL / time.Second),
		"max_ttl":              int64(r.MaxTTL / time.Second),
		"not_before_skew":      int64(r.NotBeforeSkew / time.Second),
	}
}

// nonNil makes an absent list read as [] rather than null.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

func (b *mastioBackend) pathRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	r, err := b.updateRole(ctx, req.Storage, d.Get("name").(string), func(r *issuing.Role) { applyRoleFields(d, r) })
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: roleResponseData(r)}, nil
}

// applyRoleFields sets the fields the request carries; the others keep
// their value.
func applyRoleFields(d *framework.FieldData, r *issuing.Role) {
	if v, ok := d.GetOk("issuer"); ok {
		r.Issuer = v.(string)
	}
	if v, ok := d.GetOk("allowed_key_types"); ok {
		r.AllowedKeyTypes = v.([]string)
	}
	if v, ok := d.GetOk("allowed_ec_curves"); ok {
		r.AllowedECCurves = v.([]string)
	}
	if v, ok := d.GetOk("rsa_min_bits"); ok {
		r.RSAMinBits = v.(int)
	}
	if v, ok := d.GetOk("rsa_max_bits"); ok {
		r.RSAMaxBits = v.(int)
	}
	if v, ok := d.GetOk("uri_san_pattern"); ok {
		r.URISANPattern = v.(string)
	}
	if v, ok := d.GetOk("uri_san_count"); ok {
		r.URISANCount = v.(int)
	}
	if v, ok := d.GetOk("allow_dns_sans"); ok {
		r.AllowDNSSANs = v.(bool)
	}
	if v, ok := d.GetOk("allow_ip_sans"); ok {
		r.AllowIPSANs = v.(bool)
	}
	if v, ok := d.GetOk("allow_email_sans"); ok {
		r.AllowEmailSANs = v.(bool)
	}
	if v, ok := d.GetOk("allowed_dns_sans"); ok {
		r.AllowedDNSSANs = v.([]string)
	}
	if v, ok := d.GetOk("allowed_ip_sans"); ok {
		r.AllowedIPSANs = v.([]string)
	}
	if v, ok := d.GetOk("allowed_email_sans"); ok {
		r.AllowedEmailSANs = v.([]string)
	}
	if v, ok := d.GetOk("allow_outside_org"); ok {
		r.AllowOutsideOrg = v.(bool)
	}
	if v, ok := d.GetOk("subject_common_name"); ok {
		r.SubjectCommonName = v.(string)
	}
	if v, ok := d.GetOk("subject_organization"); ok {
		r.SubjectOrganization = v.(string)
	}
	if v, ok := d.GetOk("key_usage"); ok {
		r.KeyUsage = v.([]string)
	}
	if v, ok := d.GetOk("ext_key_usage"); ok {
		r.ExtKeyUsage = v.([]string)
	}
	_, maxSet := d.GetOk("max_ttl")
	if v, ok := d.GetOk("ttl"); ok {
		r.TTL = time.Duration(v.(int)) * time.Second
		if !maxSet && r.MaxTTL < r.TTL {
			r.MaxTTL = r.TTL
		}
	}
	if maxSet {
		r.MaxTTL = time.Duration(d.Get("max_ttl").(int)) * time.Second
	}
	if v, ok := d.GetOk("not_before_skew"); ok {
		r.NotBeforeSkew = time.Duration(v.(int)) * time.Second
	}
}

func (b *mastioBackend) pathRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, b.deleteRole(ctx, req.Storage, d.Get("name").(string))
}

const pathRolesHelpSyn = `Manage signing profiles: what a CSR may carry and what the certificate gets.`

const pathRolesHelpDesc = `
A role is deny-by-default: a CSR is signed only when its key type and size
are allowed, it carries exactly uri_san_count URI SANs that all match
uri_san_pattern (a SPIFFE ID), no DNS, IP or email SAN unless allowed, and it
requests neither CA:true nor keyCertSign/cRLSign nor usages beyond the
role's. The issued certificate gets the role's subject templates, key_usage
and ext_key_usage (never the CSR's), basicConstraints CA:false (critical),
an AKI equal to the issuer's SKI, a random 128-bit serial and a validity of
ttl (or the requested ttl up to max_ttl), capped by the earliest NotAfter
of its CA chain. A subject CN or O longer than 64 characters is refused.

uri_san_pattern must start with spiffe://{{trust_domain}}/{{org_id}}/ so
that the role issues only inside the org, unless allow_outside_org=true.

DNS, IP and email SANs need both the switch and an allow-list:

  allow_dns_sans + allowed_dns_sans      DNS names or patterns; a "*" label
                                         matches exactly one label, so
                                         *.agents.acme.example allows
                                         a1.agents.acme.example only, not
                                         agents.acme.example or
                                         x.a1.agents.acme.example. Case is
                                         ignored; {{org_id}} and
                                         {{trust_domain}} are replaced.
                                         Wildcard names are never issued.
  allow_ip_sans + allowed_ip_sans        CIDR prefixes or single addresses.
  allow_email_sans + allowed_email_sans  local@domain or *@domain, the
                                         domain as in allowed_dns_sans.

Each list holds at most 64 entries.

Subject templates may use {{org_id}}, {{trust_domain}}, {{name}} (the
value of the pattern's last "*") and {{first_san}} (the CSR's first DNS
name, else its first IP address; for a server certificate whose CN is its
first SAN, as Mastio's nginx certificate). Subjects are written CN then O,
one RDN each, as UTF8String, as Mastio writes them.

Every mount starts with two roles:

  agent      Mastio agent certificate: CN=<org_id>::<name>, O=<org_id>,
             URI spiffe://<trust_domain>/<org_id>/<name>, 365 days.
  principal  empty subject, URI
             spiffe://<trust_domain>/<org_id>/{user|agent|workload}/<name>,
             KU digitalSignature, EKU clientAuth, 1 hour.

Both allow EC P-256/P-384/P-521 and RSA 2048-8192 keys, set notBefore 5
minutes back, and use KU digitalSignature and EKU clientAuth. A deleted
default role is not recreated.

Unknown fields are refused, not ignored.

Example:

    $ vault write mastio-ca/roles/workload \
        uri_san_pattern='spiffe://{{trust_domain}}/{{org_id}}/workload/*' \
        ttl=24h max_ttl=72h
    $ vault write mastio-ca/roles/svc \
        uri_san_pattern='spiffe://{{trust_domain}}/{{org_id}}/svc/*' \
        allow_dns_sans=true allowed_dns_sans='*.svc.{{org_id}}.example' \
        ext_key_usage=ServerAuth,ClientAuth
    $ vault list mastio-ca/roles
`
