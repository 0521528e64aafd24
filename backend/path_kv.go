package backend

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// caNamePattern matches the names the KV mirror and kv-export serve.
const caNamePattern = `(?P<name>org-ca|intermediate-ca)`

// kvDataFields are the fields a mirror write may carry inside "data".
var kvDataFields = []string{"key_pem", "cert_pem", "chain_pem"}

func pathKVData(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "data/" + caNamePattern,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "kv-data",
		},
		Fields: map[string]*framework.FieldSchema{
			"name":    {Type: framework.TypeString, Description: "org-ca or intermediate-ca."},
			"data":    {Type: framework.TypeMap, Description: "KV v2 write: {key_pem, cert_pem[, chain_pem]}."},
			"options": {Type: framework.TypeMap, Description: "KV v2 write options: {cas: N}."},
		},
		ExistenceCheck: b.kvExistenceCheck,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathKVDataRead,
				Summary:  "Read the CA in KV v2's envelope (key_pem only while kv_export is on).",
			},
			logical.CreateOperation: &framework.PathOperation{
				Callback:                    b.pathKVDataWrite,
				Summary:                     "Import the CA through KV v2's write envelope (check-and-set).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathKVDataWrite,
				Summary:                     "Import the CA through KV v2's write envelope (check-and-set).",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    pathKVDataHelpSyn,
		HelpDescription: pathKVDataHelpDesc,
	}
}

func pathKVMetadata(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "metadata/" + caNamePattern,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "kv-metadata",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "org-ca or intermediate-ca."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathKVMetadataRead,
				Summary:  "Read the CA's KV v2 metadata (current version).",
			},
		},
		HelpSynopsis:    pathKVDataHelpSyn,
		HelpDescription: pathKVDataHelpDesc,
	}
}

func pathKVExport(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "kv-export/" + caNamePattern,
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
			OperationSuffix: "kv-export",
		},
		Fields: map[string]*framework.FieldSchema{
			"name": {Type: framework.TypeString, Description: "org-ca or intermediate-ca."},
			"kv_export": {
				Type:        framework.TypeBool,
				Description: "false turns the KV mirror's key export off for good; true is accepted only while it is still on.",
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback: b.pathKVExportRead,
				Summary:  "Whether the KV mirror serves this CA's key.",
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathKVExportWrite,
				Summary:                     "Turn the KV mirror's key export off, for good.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
			},
		},
		HelpSynopsis:    pathKVExportHelpSyn,
		HelpDescription: pathKVExportHelpDesc,
	}
}

func (b *mastioBackend) kvExistenceCheck(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	is, err := b.loadIssuer(ctx, req.Storage, caName(d.Get("name").(string)))
	return is != nil, err
}

// kvVersionMetadata is KV v2's per-version metadata for the stored CA.
func kvVersionMetadata(version int, created time.Time) map[string]any {
	return map[string]any{
		"created_time":    created.UTC().Format(time.RFC3339Nano),
		"custom_metadata": nil,
		"deletion_time":   "",
		"destroyed":       false,
		"version":         version,
	}
}

func (b *mastioBackend) pathKVDataRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := caName(d.Get("name").(string))
	e, err := readCA(ctx, req.Storage, name)
	if err != nil || e == nil {
		return nil, err
	}
	data := map[string]any{"cert_pem": issuing.EncodeCertPEM(e.CertDER)}
	if name == orgCA && len(e.ChainDER) > 0 {
		var chain strings.Builder
		for _, der := range e.ChainDER {
			chain.WriteString(issuing.EncodeCertPEM(der))
		}
		data["chain_pem"] = chain.String()
	}
	if keyPEM, ok := exportedKeyPEM(e); ok {
		data["key_pem"] = keyPEM
	}
	return &logical.Response{Data: map[string]any{
		"data":     data,
		"metadata": kvVersionMetadata(e.Version, e.CreatedAt),
	}}, nil
}

func (b *mastioBackend) pathKVMetadataRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := caName(d.Get("name").(string))
	e, err := readCA(ctx, req.Storage, name)
	if err != nil || e == nil {
		return nil, err
	}
	created := e.CreatedAt.UTC().Format(time.RFC3339Nano)
	return &logical.Response{Data: map[string]any{
		"cas_required":         false,
		"created_time":         created,
		"current_version":      e.Version,
		"custom_metadata":      nil,
		"delete_version_after": "0s",
		"max_versions":         0,
		"oldest_version":       e.Version,
		"updated_time":         created,
		"versions": map[string]any{
			strconv.Itoa(e.Version): map[string]any{"created_time": created, "deletion_time": "", "destroyed": false},
		},
	}}, nil
}

func (b *mastioBackend) pathKVDataWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	name := caName(d.Get("name").(string))
	data, _ := d.Get("data").(map[string]any)
	ir := importRequest{name: name, kvExport: true, viaMirror: true}
	var unknown []string
	for k, v := range data {
		s, isString := v.(string)
		switch {
		case !isKVDataField(k):
			unknown = append(unknown, k)
		case !isString:
			return respondErr(issuing.Inputf("data.%s must be a string of PEM text", k))
		case k == "key_pem":
			ir.keyPEM = s
		case k == "cert_pem":
			ir.certPEM = s
		case k == "chain_pem":
			ir.chainPEM = s
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return respondErr(issuing.Inputf("data holds unknown field(s) %s; the mirror stores only %s", strings.Join(unknown, ", "), strings.Join(kvDataFields, ", ")))
	}
	options, _ := d.Get("options").(map[string]any)
	for k, v := range options {
		if k != "cas" {
			return respondErr(issuing.Inputf("options.%s is not supported; the mirror takes only options.cas", k))
		}
		cas, err := issuing.ParseCAS("options.cas", v)
		if err != nil {
			return respondErr(err)
		}
		ir.cas, ir.casSet = cas, true
	}
	is, _, err := b.importCA(ctx, req.Storage, ir)
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: kvVersionMetadata(is.version, is.createdAt)}, nil
}

func isKVDataField(k string) bool {
	for _, f := range kvDataFields {
		if f == k {
			return true
		}
	}
	return false
}

func (b *mastioBackend) pathKVExportRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	is, err := b.loadIssuer(ctx, req.Storage, caName(d.Get("name").(string)))
	if err != nil || is == nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{"kv_export": is.kvExport, "source": is.source, "version": is.version}}, nil
}

func (b *mastioBackend) pathKVExportWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	v, ok := d.GetOk("kv_export")
	if !ok {
		return respondErr(issuing.Inputf("kv_export is required: kv_export=false turns the KV mirror's key export off for good"))
	}
	is, err := b.setKVExport(ctx, req.Storage, caName(d.Get("name").(string)), v.(bool))
	if err != nil {
		return respondErr(err)
	}
	return &logical.Response{Data: map[string]any{"kv_export": is.kvExport, "source": is.source, "version": is.version}}, nil
}

const pathKVDataHelpSyn = `A KV v2 view of the CAs, so Mastio's existing Vault provider keeps working during a cut-over.`

const pathKVDataHelpDesc = `
data/org-ca and data/intermediate-ca answer in KV v2's envelope:
{"data":{"data":{"cert_pem":...,"key_pem"?:...},"metadata":{"version":N,...}}},
404 when nothing is stored. key_pem appears only for an imported CA whose
kv_export is on; a generated key never appears.

A write {"data":{"key_pem":...,"cert_pem":...},"options":{"cas":N}} is an
import with check-and-set: identical input succeeds without a change; a
write without cas creates only on an empty mount (two replicas racing on
first boot get one winner, the other a 409); a different key with cas equal
to the current version replaces the CA only while its kv_export is on. A
CA written here starts with kv_export on, because its writer loads the key
itself; a sign-only CA is never replaced here. metadata/<name> gives KV v2
metadata. There is no delete.

Point Mastio at it with MCP_PROXY_VAULT_ORG_CA_PATH=mastio-ca/data/org-ca;
its token needs create, read and update on mastio-ca/data/org-ca and read on
mastio-ca/metadata/org-ca.

Example:

    $ curl -H "X-Vault-Token: $VAULT_TOKEN" $VAULT_ADDR/v1/mastio-ca/data/org-ca
`

const pathKVExportHelpSyn = `Whether the KV mirror serves a CA's key; turn it off for good.`

const pathKVExportHelpDesc = `
kv_export says whether data/<name> serves the CA's private key. It is on
only for a CA written through the mirror or imported with kv_export=true,
never for a generated one. Once Mastio signs through the plugin, turn it
off; it can never be turned on again.

Example:

    $ vault read mastio-ca/kv-export/org-ca
    $ vault write mastio-ca/kv-export/org-ca kv_export=false
`
