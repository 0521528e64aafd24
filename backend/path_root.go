package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// root/sign-intermediate speaks Vault PKI's request shape, as SPIRE's
// UpstreamAuthority "vault" and cert-manager's isCA requests send it
// (../shared/reference/spiffe-clients.md): every field is declared so that
// none draws an "unrecognized parameters" warning, and every field that
// would loosen the profile is refused with a 400.

func commaField(desc string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeCommaStringSlice, Description: desc}
}

func pathRootSignIntermediate(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "root/sign-intermediate",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"csr":                  {Type: framework.TypeString, Description: "The PEM CSR of the CA to sign (a SPIRE server's, an issuing mount's intermediate/generate-csr)."},
			"common_name":          {Type: framework.TypeString, Description: "The CN asked for (else the CSR's): used when root/profile allowed_common_names admits it, else the profile's common_name."},
			"organization":         commaField("Ignored: O is always the mount's org_id."),
			"ou":                   commaField("Ignored: the subject comes from root/profile."),
			"country":              commaField("Ignored: the subject comes from root/profile."),
			"locality":             commaField("Ignored: the subject comes from root/profile."),
			"province":             commaField("Ignored: the subject comes from root/profile."),
			"street_address":       commaField("Ignored: the subject comes from root/profile."),
			"postal_code":          commaField("Ignored: the subject comes from root/profile."),
			"serial_number":        {Type: framework.TypeString, Description: "Ignored (a subject serialNumber): the subject comes from root/profile."},
			"uri_sans":             commaField("Empty, or exactly spiffe://<trust domain>: the only URI SAN a signed CA carries (always)."),
			"alt_names":            commaField("Not copied (with a warning): a signed CA gets no DNS names."),
			"ip_sans":              commaField("Not copied (with a warning): a signed CA gets no IP addresses."),
			"other_sans":           commaField("Not copied (with a warning)."),
			"ttl":                  {Type: framework.TypeDurationSecond, Description: "Validity: integer seconds or a duration. Default root/profile ttl; capped at its max_ttl and at the Org CA's NotAfter (with a warning)."},
			"not_after":            {Type: framework.TypeString, Description: "Not supported: pass ttl."},
			"format":               {Type: framework.TypeString, Description: "pem (the default) only."},
			"exclude_cn_from_sans": {Type: framework.TypeBool, Description: "Accepted; no name is ever added from the CN."},
			"use_csr_values":       {Type: framework.TypeBool, Description: "Must be false: nothing is copied from the CSR but its public key."},
			"max_path_length":      {Type: framework.TypeInt, Default: -1, Description: "The signed CA's pathLen, up to root/profile max_path_length (the default)."},
			"key_usage":            commaField("CertSign and CRLSign always; DigitalSignature only when root/profile allow_digital_signature."),
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			// Signing writes nothing, so it is not forwarded; not on the
			// signing router either: a CA is signed rarely.
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathRootSignIntermediateWrite,
				Summary:      "Sign another CA's CSR with the Org CA under root/profile (Vault PKI's request and response shape).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "sign", OperationSuffix: "intermediate"},
			},
		},
		HelpSynopsis:    pathRootSignIntermediateHelpSyn,
		HelpDescription: pathRootSignIntermediateHelpDesc,
	}
}

func (b *mastioBackend) pathRootSignIntermediateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	if err := checkPEMOnly(d); err != nil {
		return respondErr(err)
	}
	if d.Get("use_csr_values").(bool) {
		return respondErr(issuing.Inputf("use_csr_values=true is refused: a signed CA's subject, names and extensions come from root/profile, never from the CSR"))
	}
	signed, org, err := b.signIntermediate(ctx, req.Storage, d.Get("csr").(string), issuing.IntermediateRequest{
		CommonName: d.Get("common_name").(string),
		URISANs:    commaList(d, "uri_sans"),
		AltNames:   commaList(d, "alt_names"),
		IPSANs:     commaList(d, "ip_sans"),
		OtherSANs:  commaList(d, "other_sans"),
		TTL:        time.Duration(d.Get("ttl").(int)) * time.Second,
		PathLen:    d.Get("max_path_length").(int),
		KeyUsage:   commaList(d, "key_usage"),
	})
	if err != nil {
		return respondErr(err)
	}
	certPEM := issuing.EncodeCertPEM(signed.DER)
	// What SPIRE and cert-manager parse: certificate one PEM block;
	// ca_chain the new certificate first, the root last.
	resp := &logical.Response{Data: map[string]any{
		"certificate":   certPEM,
		"issuing_ca":    org.certPEM,
		"ca_chain":      append([]string{certPEM}, org.chainPEMs...),
		"serial_number": issuing.FormatSerial(signed.Cert.SerialNumber),
		"expiration":    signed.Cert.NotAfter.Unix(),
		"not_after":     signed.Cert.NotAfter.UTC().Format(time.RFC3339),
	}}
	for _, w := range signed.Warnings {
		resp.AddWarning(w)
	}
	return resp, nil
}

func pathRootProfile(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "root/profile",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"common_name":             {Type: framework.TypeString, Description: "CN template of signed CAs ({{org_id}}, {{trust_domain}}). Default '{{org_id}} Intermediate CA'."},
			"allowed_common_names":    commaField("CNs a request may ask for instead (its common_name, else the CSR's): exact, or a prefix ending in *; {{org_id}}, {{trust_domain}}. Default '{{org_id}} Mastio CA' (what an issuing mount's generate-csr asks for)."),
			"ttl":                     {Type: framework.TypeDurationSecond, Description: "Validity when a request gives none. Default 8760h (1 year); at least 1h."},
			"max_ttl":                 {Type: framework.TypeDurationSecond, Description: "Longest validity; longer requests are capped with a warning. Default 43800h (5 years)."},
			"max_path_length":         {Type: framework.TypeInt, Description: "The signed CA's pathLen (a request may ask for less). Default 0, at most 3, and below the Org CA's."},
			"allow_digital_signature": {Type: framework.TypeBool, Description: "Let a request add keyUsage digitalSignature (key_usage=DigitalSignature). Default false."},
			"uri_name_constraint":     {Type: framework.TypeBool, Description: "Add a critical nameConstraints extension permitting URI SANs in the trust domain only. Default false."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathRootProfileRead,
				Summary:      "Read how this mount signs other CAs.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "intermediate-profile"},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathRootProfileWrite,
				Summary:                     "Change how this mount signs other CAs.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure", OperationSuffix: "intermediate-profile"},
			},
		},
		HelpSynopsis:    pathRootProfileHelpSyn,
		HelpDescription: pathRootProfileHelpDesc,
	}
}

func profileResponseData(p *issuing.IntermediateProfile) map[string]any {
	return map[string]any{
		"common_name":             p.CommonName,
		"allowed_common_names":    p.AllowedCommonNames,
		"ttl":                     int64(p.TTL / time.Second),
		"max_ttl":                 int64(p.MaxTTL / time.Second),
		"max_path_length":         p.MaxPathLength,
		"allow_digital_signature": p.AllowDigitalSignature,
		"uri_name_constraint":     p.URINameConstraint,
	}
}

func (b *mastioBackend) pathRootProfileRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	p, err := readProfile(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: profileResponseData(p)}, nil
}

func (b *mastioBackend) pathRootProfileWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	p, err := b.updateProfile(ctx, req.Storage, func(p *issuing.IntermediateProfile) {
		if v, ok := d.GetOk("common_name"); ok {
			p.CommonName = v.(string)
		}
		if _, ok := d.GetOk("allowed_common_names"); ok {
			p.AllowedCommonNames = commaList(d, "allowed_common_names")
		}
		if v, ok := d.GetOk("ttl"); ok {
			p.TTL = time.Duration(v.(int)) * time.Second
		}
		if v, ok := d.GetOk("max_ttl"); ok {
			p.MaxTTL = time.Duration(v.(int)) * time.Second
		}
		if v, ok := d.GetOk("max_path_length"); ok {
			p.MaxPathLength = v.(int)
		}
		if v, ok := d.GetOk("allow_digital_signature"); ok {
			p.AllowDigitalSignature = v.(bool)
		}
		if v, ok := d.GetOk("uri_name_constraint"); ok {
			p.URINameConstraint = v.(bool)
		}
	})
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: profileResponseData(p)}, nil
}

const pathRootSignIntermediateHelpSyn = `Sign another CA's CSR with the Org CA: a SPIRE server's, or an issuing mount's intermediate.`

const pathRootSignIntermediateHelpDesc = `
On the mount that holds the Org CA key (the root), signs the CSR of another
CA under root/profile, deny by default: the CSR supplies only the public
key (EC P-256/384/521, RSA 2048-8192, Ed25519). The certificate is always:

  - basicConstraints CA:true (critical) with pathLen root/profile
    max_path_length (default 0), which must stay below the Org CA's;
  - keyUsage keyCertSign + cRLSign (critical), + digitalSignature only when
    asked (key_usage) and allowed (allow_digital_signature);
  - subject CN from root/profile: the CN asked for (common_name, else the
    CSR's) when allowed_common_names admits it, else its common_name
    template; O=<org_id>;
  - one URI SAN, spiffe://<trust domain>, and, with uri_name_constraint, a
    critical name constraint permitting URIs in that trust domain only;
  - valid for ttl (integer seconds or a duration; default root/profile
    ttl), capped at max_ttl and at the Org CA's NotAfter with a warning.

The request is Vault PKI's, as SPIRE's UpstreamAuthority "vault" and
cert-manager's Vault issuer (isCA) send it. The other subject fields are
ignored, and names in alt_names, ip_sans, other_sans or the CSR are not
copied (a warning says so); a URI other than the trust domain's (in
uri_sans or in the CSR), use_csr_values=true, not_after and format other
than pem are refused with a 400. Vault PKI fields neither client sends
(signature_bits, permitted_uri_domains, ...) are refused as unknown.

The answer: certificate (one PEM block), issuing_ca (the Org CA),
ca_chain = [certificate, Org CA, ...], serial_number, expiration (unix
seconds), not_after. Signing writes nothing to storage.

Give a SPIRE server's token policies/mastio-spire.hcl.

Example:

    $ vault write mastio-ca/root/sign-intermediate csr=@issuing.csr ttl=43800h
`

const pathRootProfileHelpSyn = `How this mount's Org CA signs other CAs (root/sign-intermediate).`

const pathRootProfileHelpDesc = `
The intermediate profile: the CN template of signed CAs and the CNs a
request may ask for instead, their ttl and
max_ttl, the pathLen they get (max_path_length, default 0), whether a
request may add digitalSignature, and whether they carry a URI name
constraint to the trust domain. Read returns the defaults until written.

Example:

    $ vault write mastio-ca/root/profile uri_name_constraint=true max_ttl=8760h
`
