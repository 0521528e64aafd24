package backend

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

func pathCert(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "cert",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathCertRead,
				Summary:  "Read the Org CA certificate and its metadata (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "org-ca-certificate",
				},
			},
		},
		HelpSynopsis:    pathCertHelpSyn,
		HelpDescription: pathCertHelpDesc,
	}
}

func pathCertPEM(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "cert/pem",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathCertPEMRead,
				Summary:  "Read the Org CA certificate chain as raw PEM (no token needed).",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "read",
					OperationSuffix: "org-ca-certificate-pem",
				},
			},
		},
		HelpSynopsis:    pathCertPEMHelpSyn,
		HelpDescription: pathCertPEMHelpDesc,
	}
}

// caResponseData describes the Org CA: public data only.
func caResponseData(is *issuer) map[string]any {
	keyType, keyBits, _ := issuing.KeyInfo(is.cert.PublicKey)
	return map[string]any{
		"certificate":        is.certPEM,
		"ca_chain":           is.chainPEMs,
		"fingerprint_sha256": issuing.FingerprintSHA256(is.cert.Raw),
		"serial_number":      issuing.FormatSerial(is.cert.SerialNumber),
		"not_before":         is.cert.NotBefore.UTC().Format(time.RFC3339),
		"not_after":          is.cert.NotAfter.UTC().Format(time.RFC3339),
		"key_type":           keyType,
		"key_bits":           keyBits,
		"source":             is.source,
		"key_backend":        is.keyBackend(),
		"version":            is.version,
		"kv_export":          is.kvExport,
	}
}

func (b *mastioBackend) pathCertRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return b.readCertResponse(ctx, req, orgCA)
}

func (b *mastioBackend) readCertResponse(ctx context.Context, req *logical.Request, name caName) (*logical.Response, error) {
	is, err := b.loadIssuer(ctx, req.Storage, name)
	if err != nil || is == nil {
		return nil, err
	}
	return &logical.Response{Data: caResponseData(is)}, nil
}

func (b *mastioBackend) pathCertPEMRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	is, err := b.loadIssuer(ctx, req.Storage, orgCA)
	if err != nil || is == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		logical.HTTPContentType: "application/pem-certificate-chain",
		logical.HTTPRawBody:     []byte(strings.Join(is.chainPEMs, "")),
		logical.HTTPStatusCode:  http.StatusOK,
	}}, nil
}

const pathCertHelpSyn = `The Org CA certificate and its metadata. Readable without a token.`

const pathCertHelpDesc = `
Returns the Org CA certificate (certificate), the chain from it upwards
(ca_chain), its SHA-256 fingerprint, serial, validity, key type and size,
whether it was generated here or imported (source; anchor on an issuing
mount, which holds the certificate only, its key being on the root mount:
docs/spiffe.md) and its version, which
is the value cas must carry to replace it, and whether the KV mirror may
serve its key (kv_export). 404 when no CA exists.

Example:

    $ vault read mastio-ca/cert
    $ curl $VAULT_ADDR/v1/mastio-ca/cert
`

const pathCertPEMHelpSyn = `The Org CA certificate chain as raw PEM. Readable without a token.`

const pathCertPEMHelpDesc = `
Returns the Org CA certificate followed by any imported chain, as
application/pem-certificate-chain, for trust bundles and curl.

Example:

    $ curl -o org-ca.pem $VAULT_ADDR/v1/mastio-ca/cert/pem
`
