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
		Fields: signFields(map[string]*framework.FieldSchema{
			"csr": {
				Type:        framework.TypeString,
				Description: "PEM certificate signing request.",
			},
			"csrs": {
				Type:        framework.TypeStringSlice,
				Description: "Batch: a JSON list of 1 to 100 PEM CSRs, each checked on its own (instead of csr).",
			},
		}),
		Operations: map[logical.Operation]framework.OperationHandler{
			// Not forwarded: signing writes nothing, so standbys serve it.
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathSignCSRWrite,
				Summary:  "Sign a CSR under a role (with the intermediate when one exists, else the Org CA).",
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

// signFields adds the fields every signing path takes (role, ttl) to a
// path's own.
func signFields(own map[string]*framework.FieldSchema) map[string]*framework.FieldSchema {
	own["role"] = &framework.FieldSchema{
		Type:        framework.TypeString,
		Description: "Role to sign under (in the path). Default: config default_role.",
	}
	own["ttl"] = &framework.FieldSchema{
		Type:        framework.TypeDurationSecond,
		Description: "Requested validity, at most the role's max_ttl. Default: the role's ttl.",
	}
	return own
}

// maxBatch is how many CSRs one sign-csr request may carry in csrs.
const maxBatch = 100

func (b *mastioBackend) pathSignCSRWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if _, inBody := req.Data["role"]; inBody {
		return logical.ErrorResponse("role goes in the path (sign-csr/<role>), not in the body"), nil
	}
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	if batch, ok := d.GetOk("csrs"); ok {
		if _, single := req.Data["csr"]; single {
			return logical.ErrorResponse("pass csr (one CSR) or csrs (a list), not both"), nil
		}
		return b.signBatch(ctx, req, d, batch.([]string))
	}
	csrReq, err := parseCSR(d.Get("csr").(string))
	if err != nil {
		return respondErr(err)
	}
	return b.issue(ctx, req, d, func(*role, *uriPattern) (*csrRequest, error) { return csrReq, nil })
}

// leafSigner is everything a signing needs that does not depend on the
// request being signed: resolved once per request, even for a batch.
type leafSigner struct {
	b        *mastioBackend
	roleName string
	role     *role
	issuer   *issuer
	pattern  *uriPattern
	params   issueParams
}

// newLeafSigner resolves config, role, signing CA and pattern for a signing
// request. A non-nil response is the refusal to return as is.
func (b *mastioBackend) newLeafSigner(ctx context.Context, req *logical.Request, d *framework.FieldData) (*leafSigner, *logical.Response, error) {
	cfg, err := b.cachedConfig(ctx, req.Storage)
	if err != nil {
		return nil, nil, err
	}
	roleName := d.Get("role").(string)
	if roleName == "" {
		roleName = cfg.DefaultRole
	}
	r, err := b.cachedRole(ctx, req.Storage, roleName)
	if err != nil {
		return nil, nil, err
	}
	if r == nil {
		resp, err := respondStatus(http.StatusNotFound, "role %q does not exist; see `vault list %sroles`", roleName, req.MountPoint)
		return nil, resp, err
	}
	is, err := b.signingIssuer(ctx, req.Storage, r)
	if err != nil {
		resp, err := respondErr(err)
		return nil, resp, err
	}
	if is == nil {
		msg := fmt.Sprintf("no Org CA exists yet: write %sgenerate or %simport first", req.MountPoint, req.MountPoint)
		if r.Issuer == issuerIntermediate {
			msg = fmt.Sprintf("role %q signs with the intermediate, and none exists: write %sintermediate/generate first", roleName, req.MountPoint)
		}
		resp, err := respondStatus(http.StatusNotFound, "%s", msg)
		return nil, resp, err
	}
	if v, ok := d.GetOk("ttl"); ok && v.(int) <= 0 {
		return nil, logical.ErrorResponse("ttl %ds is not a validity: give a positive duration, or omit ttl for the role's (%s)", v.(int), r.TTL), nil
	}
	var pattern *uriPattern
	if r.URISANPattern != "" {
		if pattern, err = compileURIPattern(r.URISANPattern, cfg.TrustDomain, is.orgID); err != nil {
			resp, err := respondErr(err)
			return nil, resp, err
		}
	}
	return &leafSigner{b: b, roleName: roleName, role: r, issuer: is, pattern: pattern, params: issueParams{
		TrustDomain:  cfg.TrustDomain,
		OrgID:        is.orgID,
		TTL:          time.Duration(d.Get("ttl").(int)) * time.Second,
		Now:          time.Now(),
		Issuer:       is.cert,
		TruncateLeaf: cfg.LeafNotAfter != leafNotAfterError,
		Pattern:      pattern,
	}}, nil, nil
}

// sign applies the role to one request and signs it. An inputError says
// which rule the request broke.
func (sg *leafSigner) sign(leafReq *csrRequest) (map[string]any, error) {
	tmpl, spiffeID, err := sg.role.leafTemplate(leafReq, sg.params)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, sg.issuer.cert, leafReq.csr.PublicKey, sg.issuer.signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	sg.b.signed.Add(1)
	serial := formatSerial(tmpl.SerialNumber)
	if sg.b.Logger().IsDebug() {
		sg.b.Logger().Debug("signed certificate", "role", sg.roleName, "issuer", string(sg.issuer.name), "serial", serial, "spiffe_id", spiffeID)
	}
	return map[string]any{
		"certificate":   encodeCertPEM(der),
		"serial_number": serial,
		"not_after":     tmpl.NotAfter.Format(time.RFC3339),
		"spiffe_id":     spiffeID,
	}, nil
}

// issue signs, under the role named in the path (or config default_role),
// the request that build returns once the role and its URI pattern for this
// mount are known. It serves sign-csr and sign-public-key.
func (b *mastioBackend) issue(ctx context.Context, req *logical.Request, d *framework.FieldData, build func(*role, *uriPattern) (*csrRequest, error)) (*logical.Response, error) {
	sg, resp, err := b.newLeafSigner(ctx, req, d)
	if sg == nil {
		return resp, err
	}
	leafReq, err := build(sg.role, sg.pattern)
	if err != nil {
		return respondErr(err)
	}
	data, err := sg.sign(leafReq)
	if err != nil {
		return respondErr(err)
	}
	data["issuing_ca"] = sg.issuer.certPEM
	data["ca_chain"] = sg.issuer.chainPEMs
	return &logical.Response{Data: data}, nil
}

// signBatch signs up to maxBatch CSRs under one role. Each is checked on
// its own: a refused CSR fails only itself, with its index in the error,
// and the request still succeeds for the others.
func (b *mastioBackend) signBatch(ctx context.Context, req *logical.Request, d *framework.FieldData, csrs []string) (*logical.Response, error) {
	if len(csrs) == 0 || len(csrs) > maxBatch {
		return logical.ErrorResponse("csrs holds %d CSRs; send 1 to %d", len(csrs), maxBatch), nil
	}
	sg, resp, err := b.newLeafSigner(ctx, req, d)
	if sg == nil {
		return resp, err
	}
	results := make([]map[string]any, len(csrs))
	failed := 0
	for i, text := range csrs {
		csrReq, err := parseCSR(text)
		var data map[string]any
		if err == nil {
			data, err = sg.sign(csrReq)
		}
		if err != nil {
			if !isInputError(err) {
				return nil, err
			}
			failed++
			data = map[string]any{"error": fmt.Sprintf("csrs[%d]: %v", i, err)}
		}
		data["index"] = i
		results[i] = data
	}
	return &logical.Response{Data: map[string]any{
		"certificates": results,
		"failed":       failed,
		"issuing_ca":   sg.issuer.certPEM,
		"ca_chain":     sg.issuer.chainPEMs,
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

const pathSignCSRHelpSyn = `Sign a CSR under a deny-by-default role, with the intermediate when one exists (else the Org CA).`

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

csrs (a JSON list, instead of csr) signs up to 100 CSRs in one request
under the same role: certificates holds one result per CSR, in order, each
with index and either certificate/serial_number/not_after/spiffe_id or an
error naming its index; failed counts the refused ones. A refused CSR fails
only itself.

Example:

    $ openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout agent.key -out agent.csr -subj "/CN=acme::agent-1" \
        -addext "subjectAltName=URI:spiffe://cullis.local/acme/agent-1"
    $ vault write mastio-ca/sign-csr csr=@agent.csr
    $ vault write mastio-ca/sign-csr/principal csr=@user.csr ttl=30m
`
