package backend

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net/http"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

func pathSignCSR(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "sign-csr(/" + framework.GenericNameRegex("role") + ")?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"role": {
				Type:        framework.TypeString,
				Description: "Role to sign under (in the path). Default: config default_role.",
			},
			"csr": {
				Type:        framework.TypeString,
				Description: "PEM certificate signing request.",
				Required:    true,
			},
			"ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "Requested validity, at most the role's max_ttl. Default: the role's ttl.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			// Not forwarded: signing writes nothing, so standbys serve it.
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathSignCSRWrite,
				Summary:  "Sign a CSR under a role with the Org CA.",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "sign",
					OperationSuffix: "csr",
				},
			},
		},
		HelpSynopsis:    pathSignCSRHelpSyn,
		HelpDescription: pathSignCSRHelpDesc,
	}
}

func (b *mastioBackend) pathSignCSRWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if _, inBody := req.Data["role"]; inBody {
		return logical.ErrorResponse("role goes in the path (sign-csr/<role>), not in the body"), nil
	}
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	csrReq, err := parseCSR(d.Get("csr").(string))
	if err != nil {
		return respondErr(err)
	}
	return b.issue(ctx, req, d, func(*role, *uriPattern) (*csrRequest, error) { return csrReq, nil })
}

// issue signs, under the role named in the path (or config default_role),
// the request that build returns once the role and its URI pattern for this
// mount are known. It serves sign-csr and sign-public-key.
func (b *mastioBackend) issue(ctx context.Context, req *logical.Request, d *framework.FieldData, build func(*role, *uriPattern) (*csrRequest, error)) (*logical.Response, error) {
	cfg, err := b.cachedConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	roleName := d.Get("role").(string)
	if roleName == "" {
		roleName = cfg.DefaultRole
	}
	r, err := b.cachedRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return respondStatus(http.StatusNotFound, "role %q does not exist; see `vault list %sroles`", roleName, req.MountPoint)
	}
	is, err := b.signingIssuer(ctx, req.Storage, r)
	if err != nil {
		return respondErr(err)
	}
	if is == nil {
		if r.Issuer == issuerIntermediate {
			return respondStatus(http.StatusNotFound, "role %q signs with the intermediate, and none exists: write %sintermediate/generate first", roleName, req.MountPoint)
		}
		return respondStatus(http.StatusNotFound, "no Org CA exists yet: write %sgenerate or %simport first", req.MountPoint, req.MountPoint)
	}
	if v, ok := d.GetOk("ttl"); ok && v.(int) <= 0 {
		return logical.ErrorResponse("ttl %ds is not a validity: give a positive duration, or omit ttl for the role's (%s)", v.(int), r.TTL), nil
	}
	var pattern *uriPattern
	if r.URISANPattern != "" {
		if pattern, err = compileURIPattern(r.URISANPattern, cfg.TrustDomain, is.orgID); err != nil {
			return respondErr(err)
		}
	}
	leafReq, err := build(r, pattern)
	if err != nil {
		return respondErr(err)
	}

	tmpl, spiffeID, err := r.leafTemplate(leafReq, issueParams{
		TrustDomain:  cfg.TrustDomain,
		OrgID:        is.orgID,
		TTL:          time.Duration(d.Get("ttl").(int)) * time.Second,
		Now:          time.Now(),
		Issuer:       is.cert,
		TruncateLeaf: cfg.LeafNotAfter != leafNotAfterError,
		Pattern:      pattern,
	})
	if err != nil {
		return respondErr(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.cert, leafReq.csr.PublicKey, is.signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	b.signed.Add(1)
	serial := formatSerial(tmpl.SerialNumber)
	if b.Logger().IsDebug() {
		b.Logger().Debug("signed certificate", "role", roleName, "issuer", string(is.name), "serial", serial, "spiffe_id", spiffeID)
	}
	return &logical.Response{Data: map[string]any{
		"certificate":   encodeCertPEM(der),
		"issuing_ca":    is.certPEM,
		"ca_chain":      is.chainPEMs,
		"serial_number": serial,
		"not_after":     tmpl.NotAfter.Format(time.RFC3339),
		"spiffe_id":     spiffeID,
	}}, nil
}

// signingIssuer picks the CA a role signs with; nil when it does not exist.
// An intermediate signed by an Org CA that has since been replaced does not
// sign: its leaves would not chain to the current trust root.
func (b *mastioBackend) signingIssuer(ctx context.Context, s logical.Storage, r *role) (*issuer, error) {
	if r.Issuer == issuerOrgCA {
		return b.loadIssuer(ctx, s, orgCA)
	}
	inter, err := b.loadIssuer(ctx, s, intermediateCA)
	if err != nil {
		return nil, err
	}
	if inter == nil {
		if r.Issuer == issuerIntermediate {
			return nil, nil
		}
		return b.loadIssuer(ctx, s, orgCA)
	}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	if org == nil || len(inter.chain) == 0 || !inter.chain[0].Equal(org.cert) {
		return nil, inputErrorf("the Mastio Intermediate CA was signed by a previous Org CA; import a new intermediate (with cas) before signing")
	}
	return inter, nil
}

const pathSignCSRHelpSyn = `Sign a CSR with the Org CA under a deny-by-default role.`

const pathSignCSRHelpDesc = `
Signs the PEM CSR in csr under the role named in the path (sign-csr/<role>)
or, for plain sign-csr, under config default_role (agent unless changed).

The CSR's signature must verify and the CSR must satisfy every rule of the
role (see "vault path-help mastio-ca/roles/x"); otherwise the answer is a
400 that says which rule it broke. A CSR that asks for CA:true or for
keyCertSign/cRLSign is refused, never rewritten. The certificate's subject,
key usages and validity come from the role, not from the CSR.

ttl asks for a validity up to the role's max_ttl; the certificate never
outlives the CA (capped, or refused when config leaf_not_after=error).

The response carries certificate, issuing_ca, ca_chain, serial_number,
not_after and spiffe_id. Signing writes nothing to storage.

Example:

    $ openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout agent.key -out agent.csr -subj "/CN=acme::agent-1" \
        -addext "subjectAltName=URI:spiffe://cullis.local/acme/agent-1"
    $ vault write mastio-ca/sign-csr csr=@agent.csr
    $ vault write mastio-ca/sign-csr/principal csr=@user.csr ttl=30m
`
