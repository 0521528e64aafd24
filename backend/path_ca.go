package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

func pathGenerate(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "generate",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"org_id": orgIDField,
			"common_name": {
				Type:        framework.TypeString,
				Description: "Subject CN of the CA. Default '<org_id> CA'.",
			},
			"key_type": {
				Type:          framework.TypeString,
				Description:   "ec (default), rsa or ed25519.",
				Default:       issuing.KeyTypeEC,
				AllowedValues: []any{issuing.KeyTypeEC, issuing.KeyTypeRSA, issuing.KeyTypeEd25519},
			},
			"key_bits": {
				Type:        framework.TypeInt,
				Description: "ec: 256 (default) or 384; rsa: 2048, 3072 or 4096 (default); ed25519: omit.",
			},
			"ttl": {
				Type:        framework.TypeDurationSecond,
				Description: "Validity of the CA certificate. Default 15 years (131400h).",
			},
			"path_len": {
				Type:        framework.TypeInt,
				Description: "basicConstraints pathLen: how many intermediate CAs may sit below. Default 1; -1 for no limit.",
				Default:     1,
			},
			"key_backend": keyBackendField(""),
			"cas":         casField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathGenerateWrite,
				Summary:                     "Generate the Org CA key and self-signed certificate inside Vault (create-only).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "generate",
					OperationSuffix: "org-ca",
				},
			},
		},
		HelpSynopsis:    pathGenerateHelpSyn,
		HelpDescription: pathGenerateHelpDesc,
	}
}

func pathImport(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "import",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: map[string]*framework.FieldSchema{
			"key_pem": {
				Type:        framework.TypeString,
				Description: "The CA private key: PEM in PKCS#8, SEC1 or PKCS#1, unencrypted.",
				DisplayAttrs: &framework.DisplayAttributes{
					Sensitive: true,
				},
			},
			"cert_pem": {
				Type:        framework.TypeString,
				Description: "The CA certificate (PEM) matching key_pem.",
			},
			"chain_pem": {
				Type:        framework.TypeString,
				Description: "Optional issuers of cert_pem, nearest first (PEM).",
			},
			"org_id": {
				Type:        framework.TypeString,
				Description: "Organisation ID; default: config/org_id, else the certificate's O.",
			},
			"kv_export":   kvExportField,
			"key_backend": importKeyBackendField,
			"cas":         casField,
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathImportWrite,
				Summary:                     "Import an existing Org CA key and certificate (create-only, idempotent).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "import",
					OperationSuffix: "org-ca",
				},
			},
		},
		HelpSynopsis:    pathImportHelpSyn,
		HelpDescription: pathImportHelpDesc,
	}
}

func (b *mastioBackend) pathGenerateWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	r := issuing.OrgCARequest{
		OrgID:      strings.TrimSpace(d.Get("org_id").(string)),
		CommonName: strings.TrimSpace(d.Get("common_name").(string)),
		KeyType:    d.Get("key_type").(string),
		KeyBits:    d.Get("key_bits").(int),
		PathLen:    d.Get("path_len").(int),
		TTL:        issuing.DefaultCATTL,
	}
	if v, ok := d.GetOk("ttl"); ok {
		r.TTL = time.Duration(v.(int)) * time.Second
	}
	cas, casSet := casOf(d)
	is, err := b.generateOrgCA(ctx, req.Storage, r, d.Get("key_backend").(string), cas, casSet)
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: caResponseData(is)}, nil
}

func (b *mastioBackend) pathImportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.handleImport(ctx, req, d, orgCA)
}

// handleImport serves import and intermediate/import.
func (b *mastioBackend) handleImport(ctx context.Context, req *logical.Request, d *framework.FieldData, name caName) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	if err := importKeyBackend(d.Get("key_backend").(string)); err != nil {
		return respondErr(err)
	}
	ir := importRequest{
		name:     name,
		keyPEM:   d.Get("key_pem").(string),
		certPEM:  d.Get("cert_pem").(string),
		kvExport: d.Get("kv_export").(bool),
	}
	if name == orgCA {
		ir.chainPEM = d.Get("chain_pem").(string)
		ir.orgID = strings.TrimSpace(d.Get("org_id").(string))
	}
	ir.cas, ir.casSet = casOf(d)
	is, unchanged, err := b.importCA(ctx, req.Storage, ir)
	if err != nil {
		return respondErr(err)
	}
	resp := &logical.Response{Data: importResponseData(is)}
	resp.Data["unchanged"] = unchanged
	return resp, nil
}

// importResponseData is what import returns: identifiers, no PEM, no key.
func importResponseData(is *issuer) map[string]any {
	keyType, keyBits, _ := issuing.KeyInfo(is.cert.PublicKey)
	return map[string]any{
		"fingerprint_sha256":            issuing.FingerprintSHA256(is.cert.Raw),
		"public_key_fingerprint_sha256": issuing.PublicKeyFingerprint(is.cert),
		"serial_number":                 issuing.FormatSerial(is.cert.SerialNumber),
		"not_after":                     is.cert.NotAfter.UTC().Format(time.RFC3339),
		"key_type":                      keyType,
		"key_bits":                      keyBits,
		"version":                       is.version,
		"source":                        is.source,
		"kv_export":                     is.kvExport,
	}
}

const pathGenerateHelpSyn = `Generate the Org CA inside Vault; its private key never leaves.`

const pathGenerateHelpDesc = `
Creates the Org CA: a new private key and a self-signed certificate with
CN=<common_name> (default "<org_id> CA"), O=<org_id>, basicConstraints
CA:true pathLen=<path_len> (critical), keyUsage keyCertSign+cRLSign
(critical), a subject key identifier and a random 128-bit serial. Validity
starts 5 minutes in the past and lasts ttl (default 15 years).

The key is stored under the mount's ca/ prefix (seal-wrapped on Vault
Enterprise; protected by the barrier only on open-source Vault) and is never
returned by any path.

generate is create-only: while an Org CA exists the call is refused with
409 and the current version, unless cas equals that version, in which case
the old CA is replaced (its key is destroyed). Two replicas racing on first
boot therefore get one winner.

Example:

    $ vault write mastio-ca/generate org_id=acme
    $ vault write mastio-ca/generate org_id=acme key_type=rsa key_bits=4096 ttl=87600h
`

const pathImportHelpSyn = `Import an existing Org CA key and certificate (for example from Mastio's database).`

const pathImportHelpDesc = `
Imports a CA that exists outside Vault. key_pem is an unencrypted private
key in PKCS#8, SEC1 or PKCS#1 PEM; cert_pem its CA certificate; chain_pem,
optionally, the certificates above it.

With kv_export=true the KV mirror (data/org-ca) also serves the key, for a
cut-over from a Mastio that still loads it; turn it off for good with
kv-export/org-ca once Mastio signs through the plugin.

The import is refused with 400 unless: the key matches the certificate, the
certificate is a CA (basicConstraints CA:true and keyUsage keyCertSign), it
is valid now, and the key is EC P-256/P-384/P-521, RSA 2048-8192 or Ed25519.

Like generate, import is create-only (409 while a CA exists, unless cas
equals its version). Importing exactly the stored key and certificate again
succeeds without a write and reports unchanged=true. The response carries
fingerprints only, never the key.

Example:

    $ vault write mastio-ca/import key_pem=@org-ca.key cert_pem=@org-ca.crt
`
