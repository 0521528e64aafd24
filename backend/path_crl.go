package backend

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// CRLs, issuer certificates and OCSP, all readable without a token.
//
// crl[/delta][/pem] is the CRL of the CA that signs leaves now (the
// intermediate, else the Org CA); issuer/<ref>/crl[/delta][/pem] that of
// any CA of the mount that publishes one, by org-ca, intermediate-ca or key
// id. Certificates point at issuer/{{issuer_id}}/crl (config
// crl_distribution_points), which stays right after a rotation.

// crlPattern matches crl, crl/pem, crl/delta, crl/delta/pem, with an
// optional issuer/<ref>/ in front.
const crlPattern = `(issuer/(?P<ref>[^/]+)/)?crl(?P<delta>/delta)?(?P<pem>/pem)?$`

// crlUnauthenticated are the CRL, issuer and OCSP paths for
// PathsSpecial.Unauthenticated.
var crlUnauthenticated = []string{
	"crl", "crl/pem", "crl/delta", "crl/delta/pem",
	"issuer/+/crl", "issuer/+/crl/pem", "issuer/+/crl/delta", "issuer/+/crl/delta/pem",
	"issuer/+/der", "issuer/+/pem",
	"ocsp/*",
}

func pathCRL(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      crlPattern,
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"ref":   {Type: framework.TypeString, Description: "The issuing CA: org-ca, intermediate-ca or its key id (hex subject key identifier). Omitted: the CA that signs leaves now."},
			"delta": {Type: framework.TypeString, Description: "/delta: the delta CRL."},
			"pem":   {Type: framework.TypeString, Description: "/pem: PEM instead of DER."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathCRLRead,
				Summary:      "A CRL of this mount, signed inside Vault (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "crl"},
			},
		},
		HelpSynopsis:    pathCRLHelpSyn,
		HelpDescription: pathCRLHelpDesc,
	}
}

func (b *mastioBackend) pathCRLRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	der, err := b.crl(ctx, req.Storage, d.Get("ref").(string), d.Get("delta").(string) != "")
	if err != nil {
		return respondErr(err)
	}
	if d.Get("pem").(string) != "" {
		return rawResponse("application/x-pem-file", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})), nil
	}
	return rawResponse("application/pkix-crl", der), nil
}

// revocationMaxAge is how long a CRL or OCSP answer may be cached: well
// within its validity (half of crl_expiry at least).
const revocationMaxAge = "max-age=300"

func rawResponse(contentType string, body []byte) *logical.Response {
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType:        contentType,
		logical.HTTPRawBody:            body,
		logical.HTTPStatusCode:         http.StatusOK,
		logical.HTTPCacheControlHeader: revocationMaxAge,
	}}
}

func pathIssuerCert(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      `issuer/(?P<ref>[^/]+)/(?P<format>der|pem)$`,
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"ref":    {Type: framework.TypeString, Description: "The CA: org-ca, intermediate-ca or its key id."},
			"format": {Type: framework.TypeString, Description: "der or pem."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathIssuerCertRead,
				Summary:      "An issuing CA's certificate, for AIA caIssuers (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "issuer-certificate"},
			},
		},
		HelpSynopsis:    "An issuing CA's certificate by key id, for the AIA caIssuers URL (config issuing_certificates).",
		HelpDescription: "Returns the certificate of org-ca, intermediate-ca or the CA with that key id (hex subject key identifier), as DER (application/pkix-cert) or PEM. No token needed.\n",
	}
}

func (b *mastioBackend) pathIssuerCertRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	cert, err := b.issuerCert(ctx, req.Storage, d.Get("ref").(string))
	if err != nil {
		return respondErr(err)
	}
	if d.Get("format").(string) == "pem" {
		return rawResponse("application/x-pem-file", []byte(issuing.EncodeCertPEM(cert))), nil
	}
	return rawResponse("application/pkix-cert", cert), nil
}

func pathOCSP(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      `ocsp/(?P<req>.+)`,
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"req": {Type: framework.TypeString, Description: "The DER OCSP request, base64 (RFC 6960 appendix A.1)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathOCSPRead,
				Summary:      "An OCSP answer (RFC 6960, GET), signed by the issuing CA (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "query", OperationSuffix: "ocsp"},
			},
		},
		HelpSynopsis:    pathOCSPHelpSyn,
		HelpDescription: pathOCSPHelpDesc,
	}
}

func (b *mastioBackend) pathOCSPRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	der, err := decodeOCSPRequest(d.Get("req").(string))
	var answer []byte
	if err == nil {
		answer, err = b.ocsp(ctx, req.Storage, der)
	} else {
		answer, err = b.ocsp(ctx, req.Storage, nil) // malformedRequest
	}
	if err != nil {
		return nil, err
	}
	return rawResponse("application/ocsp-response", answer), nil
}

// decodeOCSPRequest reads the base64 of a GET OCSP request: standard or
// URL-safe, padded or not (Vault has already undone the URL encoding).
func decodeOCSPRequest(s string) ([]byte, error) {
	if len(s) > 2*issuing.MaxOCSPRequestBytes {
		return nil, fmt.Errorf("too long")
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err := enc.DecodeString(strings.TrimSpace(s)); err == nil {
			return der, nil
		}
	}
	return nil, io.ErrUnexpectedEOF
}

const pathCRLHelpSyn = `The CRL of a CA of this mount, signed inside Vault. Readable without a token.`

const pathCRLHelpDesc = `
crl is the complete CRL (DER, application/pkix-crl) of the CA that signs
leaves now: the intermediate when one is active, else the Org CA; crl/pem
the same in PEM; crl/delta and crl/delta/pem its delta CRL.
issuer/<ref>/crl[/delta][/pem] serve any CA of the mount that publishes a
CRL: org-ca (on the mount that holds its key: it lists the revoked
intermediates and SPIRE CAs), intermediate-ca, or a key id (hex subject
key identifier), as config crl_distribution_points' {{issuer_id}} names
it; a rotated-out intermediate keeps publishing during its grace.

RFC 5280 v2 CRLs: CRL number (stored, monotonic across restarts and
failover; a complete CRL and its delta share it), thisUpdate and
nextUpdate (config crl_expiry, default 72h), AKI, a reason code on each
entry, a critical delta CRL indicator on deltas, and (config
delta_crl_distribution_points) a Freshest CRL extension on complete CRLs.
Every revoke and tidy, and the periodic function when half the validity
has passed, make a new CRL number; the periodic one is also the new base
of the deltas, which list what was revoked since. An entry stays on one
CRL issued after its certificate expired. CRLs are signed at their first
fetch and served from memory.

Example:

    $ curl -s $VAULT_ADDR/v1/mastio-ca/crl/pem > mastio.crl
    $ openssl verify -crl_check -CRLfile mastio.crl -CAfile org-ca.pem -untrusted intermediate.pem agent.pem
`

const pathOCSPHelpSyn = `OCSP (RFC 6960) over GET, signed by the issuing CA. Readable without a token.`

const pathOCSPHelpDesc = `
GET ocsp/<base64 of the DER request> answers good, revoked (time and
reason) or, for an issuer this mount does not hold, unknown. The base64
must be URL-escaped ("/" as %2F, "+" as %2B), as RFC 6960 asks: Vault's
HTTP server answers a path holding "//" with a redirect. Each answer is
signed by the CA that issued the certificate (no delegated responder) and
is valid as long as that CA's current CRL.

Vault gives an external plugin no raw request body, so the POST form
(application/ocsp-request) cannot reach it: point POST clients (openssl
ocsp -url) at "mastio-ca ocsp-relay", which takes both forms and asks this
path. nginx's ssl_ocsp and ssl_stapling use GET and need no relay.
`
