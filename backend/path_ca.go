package backend

import (
	"context"
	"crypto/x509"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// Limits on a generated CA.
const (
	defaultCATTL = 15 * 365 * 24 * time.Hour
	maxCATTL     = 30 * 365 * 24 * time.Hour
	minCATTL     = 24 * time.Hour
)

var casField = &framework.FieldSchema{
	Type:        framework.TypeInt,
	Description: "Check-and-set: omit (or 0) to create only when no Org CA exists; set to the current version to replace it.",
}

var kvExportField = &framework.FieldSchema{
	Type:        framework.TypeBool,
	Description: "Let the KV mirror (data/<name>) serve this key, for a cut-over from a Mastio that still loads it. Default false. Can later be turned off for good (kv-export/<name>), never on.",
}

var orgIDField = &framework.FieldSchema{
	Type:        framework.TypeString,
	Description: "Organisation ID. Required by generate unless config/org_id is set; must match it when both are given.",
}

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
				Default:       keyTypeEC,
				AllowedValues: []any{keyTypeEC, keyTypeRSA, keyTypeEd25519},
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
			"cas": casField,
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
			"kv_export": kvExportField,
			"cas":       casField,
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
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
	}
	cfg, err := b.readConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	orgID := strings.TrimSpace(d.Get("org_id").(string))
	switch {
	case orgID == "" && cfg.OrgID == "":
		return logical.ErrorResponse("org_id is required (or set config org_id first)"), nil
	case orgID == "":
		orgID = cfg.OrgID
	case cfg.OrgID != "" && orgID != cfg.OrgID:
		return logical.ErrorResponse("org_id %q differs from config org_id %q; change config first or omit org_id", orgID, cfg.OrgID), nil
	}
	if err := validateOrgID(orgID); err != nil {
		return respondErr(err)
	}
	cn := strings.TrimSpace(d.Get("common_name").(string))
	if cn == "" {
		cn = orgID + " CA"
	}
	if len(cn) > 64 {
		return logical.ErrorResponse("common_name is %d characters; X.509 allows at most 64", len(cn)), nil
	}
	keyType := d.Get("key_type").(string)
	ttl := defaultCATTL
	if v, ok := d.GetOk("ttl"); ok {
		ttl = time.Duration(v.(int)) * time.Second
	}
	if ttl < minCATTL || ttl > maxCATTL {
		return logical.ErrorResponse("ttl %s is out of range: a CA must be valid for 24h to 30 years (262800h)", ttl), nil
	}
	pathLen := d.Get("path_len").(int)
	if pathLen < -1 || pathLen > 8 {
		return logical.ErrorResponse("path_len %d is out of range -1..8", pathLen), nil
	}
	cas, casSet := d.GetOk("cas")

	// Generate before taking the lock: RSA-4096 can take a second, and a
	// refused request only drops this key.
	key, err := generateKey(keyType, d.Get("key_bits").(int))
	if err != nil {
		return respondErr(err)
	}
	now := time.Now()
	certDER, err := newCACertificate(caParams{CommonName: cn, Organization: orgID, NotAfter: now.Add(ttl), PathLen: pathLen, Now: now}, key, nil)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}

	b.caLock.Lock()
	defer b.caLock.Unlock()
	existing, err := b.readCA(ctx, req.Storage, orgCA)
	if err != nil {
		return nil, err
	}
	casInt, _ := cas.(int)
	if err := checkCAS(orgCA, existing, casInt, casSet); err != nil {
		return respondErr(err)
	}
	entry := &caEntry{Source: sourceGenerated, OrgID: orgID, KeyPKCS8: keyDER, CertDER: certDER, CreatedAt: now.UTC()}
	if err := succeed(orgCA, existing, entry); err != nil {
		return respondErr(err)
	}
	is, err := b.writeCA(ctx, req.Storage, orgCA, entry)
	if err != nil {
		return nil, err
	}
	b.Logger().Info("generated Org CA", "version", is.version, "key_type", keyType, "serial", formatSerial(is.cert.SerialNumber), "sha256", fingerprintSHA256(is.cert.Raw))
	return &logical.Response{Data: caResponseData(is)}, nil
}

func (b *mastioBackend) pathImportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return b.handleImport(ctx, req, d, orgCA)
}

// handleImport serves import and intermediate/import.
func (b *mastioBackend) handleImport(ctx context.Context, req *logical.Request, d *framework.FieldData, name caName) (*logical.Response, error) {
	if resp := rejectUnknownFields(req, d); resp != nil {
		return resp, nil
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
	if v, ok := d.GetOk("cas"); ok {
		ir.cas, ir.casSet = v.(int), true
	}
	is, unchanged, err := b.storeImport(ctx, req.Storage, ir)
	if err != nil {
		return respondErr(err)
	}
	resp := &logical.Response{Data: importResponseData(is)}
	resp.Data["unchanged"] = unchanged
	return resp, nil
}

// importResponseData is what import returns: identifiers, no PEM, no key.
func importResponseData(is *issuer) map[string]any {
	keyType, keyBits, _ := keyInfo(is.cert.PublicKey)
	return map[string]any{
		"fingerprint_sha256":            fingerprintSHA256(is.cert.Raw),
		"public_key_fingerprint_sha256": publicKeyFingerprint(is.cert),
		"serial_number":                 formatSerial(is.cert.SerialNumber),
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

The key is stored seal-wrapped and is never returned by any path.

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
