package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// sign/<role> is Vault PKI's signing request shape, as cert-manager's Vault
// issuer sends it: the names in the body are cross-checked against the CSR
// (every one must be in it) and the role then judges the CSR as sign-csr
// does. The fields are never a way around the profile.

func pathSignPKI(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "sign/" + framework.GenericNameRegex("role"),
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"role":                    {Type: framework.TypeString, Description: "The role to sign under (in the path)."},
			"csr":                     {Type: framework.TypeString, Description: "PEM certificate signing request."},
			"common_name":             {Type: framework.TypeString, Description: "Empty, or the CSR's CN, which the role's subject_common_name must then produce."},
			"alt_names":               commaField("DNS names (and emails), each of which must be in the CSR and allowed by the role."),
			"ip_sans":                 commaField("IP addresses, each of which must be in the CSR and allowed by the role."),
			"uri_sans":                commaField("URIs, each of which must be in the CSR and match the role's uri_san_pattern."),
			"other_sans":              commaField("Must be empty: no otherName SANs are issued."),
			"ttl":                     {Type: framework.TypeDurationSecond, Description: "Requested validity (seconds or a duration such as 2160h0m0s). Default the role's ttl; above its max_ttl it is capped, with a warning."},
			"exclude_cn_from_sans":    {Type: framework.TypeBool, Description: "Accepted; no SAN is ever added from the CN, whatever its value."},
			"format":                  {Type: framework.TypeString, Description: "pem (the default) only."},
			"not_after":               {Type: framework.TypeString, Description: "Not supported: pass ttl."},
			"remove_roots_from_chain": {Type: framework.TypeBool, Description: "Leave self-signed certificates out of ca_chain."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			// Not forwarded: signing writes nothing, so standbys serve it.
			logical.UpdateOperation: &framework.PathOperation{
				Callback:     b.pathSignPKIWrite,
				Summary:      "Sign a CSR under a role, in Vault PKI's request and response shape (cert-manager's Vault issuer).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "sign", OperationSuffix: "pki-compatible"},
			},
		},
		HelpSynopsis:    pathSignPKIHelpSyn,
		HelpDescription: pathSignPKIHelpDesc,
	}
}

func (b *mastioBackend) pathSignPKIWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sr, err := decodeSignRequest(req, d, "sign")
	if err != nil {
		return respondErr(err)
	}
	sr.capTTL = true
	if err := checkPEMOnly(d); err != nil {
		return respondErr(err)
	}
	names := issuing.RequestedNames{
		CommonName: d.Get("common_name").(string),
		AltNames:   commaList(d, "alt_names"),
		IPSANs:     commaList(d, "ip_sans"),
		URISANs:    commaList(d, "uri_sans"),
		OtherSANs:  commaList(d, "other_sans"),
	}
	data, warnings, err := b.issue(ctx, req.Storage, sr, func(*issuing.Role, *issuing.URIPattern) (*issuing.LeafRequest, error) {
		lr, err := issuing.ParseCSR(d.Get("csr").(string))
		if err != nil {
			return nil, err
		}
		return lr, lr.Require(names)
	})
	if err != nil {
		return respondErr(err)
	}
	// Vault PKI's sign/<role> answer: ca_chain is the issuer's chain
	// without the leaf; expiration is unix seconds.
	if notAfter, err := time.Parse(time.RFC3339, data["not_after"].(string)); err == nil {
		data["expiration"] = notAfter.Unix()
	}
	if d.Get("remove_roots_from_chain").(bool) {
		if chain := withoutRoots(data["ca_chain"].([]string)); len(chain) > 0 {
			data["ca_chain"] = chain
		} else {
			delete(data, "ca_chain") // as Vault PKI: omitted, never null
		}
	}
	resp := &logical.Response{Data: data}
	for _, w := range warnings {
		resp.AddWarning(w)
	}
	return resp, nil
}

// withoutRoots drops the self-signed certificates from a PEM chain.
func withoutRoots(chain []string) []string {
	var out []string
	for _, p := range chain {
		certs, err := issuing.ParseCertificatesPEM("ca_chain", p)
		if err == nil && len(certs) == 1 && issuing.IsSelfSigned(certs[0]) {
			continue
		}
		out = append(out, p)
	}
	return out
}

const pathSignPKIHelpSyn = `Sign a CSR under a role, in Vault PKI's sign/<role> shape (for cert-manager's Vault issuer).`

const pathSignPKIHelpDesc = `
The request cert-manager's Vault issuer sends (csr, common_name,
alt_names, ip_sans, uri_sans, ttl as a Go duration, exclude_cn_from_sans,
all strings) is accepted and cross-checked: every name a field asks for
must be in the CSR, and the role judges the CSR exactly as sign-csr does
(key, SANs, URI pattern, key usages). A name the CSR lacks, or one the role
does not allow, is a 400 that names it: fields never add a name. A
non-empty common_name must be the CSR's CN, and the role's
subject_common_name must produce it.

Unlike sign-csr, a ttl above the role's max_ttl is capped with a warning,
as Vault PKI does (cert-manager asks for 90 days unless told otherwise).

The answer is Vault PKI's: certificate, issuing_ca, ca_chain (the issuer
and the CAs above it, without the leaf), serial_number, expiration (unix
seconds), plus not_after and spiffe_id. Signing writes nothing to storage.

Example (a role for Kubernetes workloads with the SPIFFE-recommended EKU):

    $ vault write mastio-ca/roles/k8s-workload \
        uri_san_pattern='spiffe://{{trust_domain}}/{{org_id}}/ns/*' \
        ext_key_usage=ServerAuth,ClientAuth ttl=24h max_ttl=2160h
    $ vault write mastio-ca/sign/k8s-workload csr=@tls.csr \
        uri_sans=spiffe://cullis.local/acme/ns/web ttl=2160h0m0s
`
