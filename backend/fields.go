package backend

import (
	"sort"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Field schemas more than one path shares, and the checks on request
// fields that run before a handler.

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

// casOf reads the optional cas field: its value and whether it was sent.
func casOf(d *framework.FieldData) (int, bool) {
	v, ok := d.GetOk("cas")
	n, _ := v.(int)
	return n, ok
}

// intermediateKeyFields are the fields of a new intermediate's key and
// validity (intermediate/generate and intermediate/rotate).
func intermediateKeyFields() map[string]*framework.FieldSchema {
	return map[string]*framework.FieldSchema{
		"key_type": {
			Type:          framework.TypeString,
			Description:   "ec (default), rsa or ed25519. rotate defaults to the current intermediate's.",
			AllowedValues: []any{issuing.KeyTypeEC, issuing.KeyTypeRSA, issuing.KeyTypeEd25519},
		},
		"key_bits": {
			Type:        framework.TypeInt,
			Description: "ec: 256 (default) or 384; rsa: 2048, 3072 or 4096; ed25519: omit.",
		},
		"ttl": {
			Type:        framework.TypeDurationSecond,
			Description: "Validity. Default 5 years (43800h), never past the Org CA's NotAfter.",
		},
		"key_backend": keyBackendField("rotate and generate-csr default to the current intermediate's."),
	}
}

// keyBackendField is the key_backend field of the paths that make a CA
// key; more says what the path defaults to.
func keyBackendField(more string) *framework.FieldSchema {
	return &framework.FieldSchema{
		Type:          framework.TypeString,
		Description:   "Where the new key is made and signs: vault (default: in the plugin, stored in Vault's storage) or pkcs11 (inside the token of config/pkcs11, sensitive and non-extractable; Vault stores only its reference). " + more,
		AllowedValues: keyBackendValues,
	}
}

// importKeyBackendField is key_backend on the import paths, which only
// take vault (importKeyBackend says why).
var importKeyBackendField = &framework.FieldSchema{
	Type:          framework.TypeString,
	Description:   "Only vault (the default): an imported key stays in Vault's storage; it cannot be put into the PKCS#11 token.",
	AllowedValues: []any{keyBackendVault},
}

// importKeyBackend refuses an import into the token.
func importKeyBackend(v string) error {
	if v == "" || v == keyBackendVault {
		return nil
	}
	if v == keyBackendPKCS11 {
		return issuing.Inputf("key_backend=pkcs11 cannot import a key: a key that arrives as PEM has existed outside any HSM, so putting it into the token would promise a protection it never had (its copies stay wherever it came from). Import keeps it in Vault; for a CA key that only ever existed in the HSM, generate it there (generate or intermediate/generate with key_backend=pkcs11), or rotate the intermediate with key_backend=pkcs11")
	}
	return issuing.Inputf("key_backend %s is not valid for an import; only vault", issuing.Quote(v))
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

// checkFields refuses a request body that carries a field the path does
// not define. Vault would only warn, and on a CA a mistyped policy field
// ("alow_dns_sans") must not be silently ignored.
func checkFields(req *logical.Request, d *framework.FieldData) error {
	var unknown []string
	for k := range req.Data {
		if _, ok := d.Schema[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(d.Schema))
	for k := range d.Schema {
		known = append(known, k)
	}
	sort.Strings(known)
	return issuing.Inputf("unknown field(s) %s; this path accepts %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// typeGuard refuses a request field whose type its path's schema
// cannot take, with a message that names the field and the type it needs.
// The framework's own error quotes the value, which can be a private key
// (key_pem) or a file's contents passed by mistake (cas=@key.pem); every
// field of every path is checked here first, by the framework's own
// conversion rules.
func typeGuard(b *framework.Backend, req *logical.Request) error {
	p := b.Route(req.Path)
	if p == nil || len(req.Data) == 0 {
		return nil
	}
	d := &framework.FieldData{Raw: req.Data, Schema: p.Fields}
	names := make([]string, 0, len(req.Data))
	for k := range req.Data {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		schema, ok := p.Fields[k]
		if !ok {
			continue // checkFields refuses it
		}
		if _, isString := req.Data[k].(string); isString && schema.Type == framework.TypeString {
			continue // the common case, with nothing to convert
		}
		if _, _, err := d.GetOkErr(k); err != nil {
			if strings.Contains(err.Error(), "cannot provide negative value") {
				// The framework's one message that quotes nothing.
				return issuing.Inputf("%s: cannot provide negative value", k)
			}
			return issuing.Inputf("%s", fieldTypeMessage(k, schema.Type))
		}
	}
	return nil
}

// fieldTypeMessage says what field k must be; it never quotes the value.
func fieldTypeMessage(k string, t framework.FieldType) string {
	switch {
	case k == "key_pem":
		return "key_pem must be a string of PEM text"
	case k == "data":
		return `data must be an object: {"key_pem": ..., "cert_pem": ...}`
	}
	want := map[framework.FieldType]string{
		framework.TypeString:           "a string",
		framework.TypeInt:              "a whole number",
		framework.TypeBool:             "true or false",
		framework.TypeDurationSecond:   "a duration: seconds, or a number with a unit such as 24h",
		framework.TypeCommaStringSlice: "a list of strings, or one comma-separated string",
		framework.TypeStringSlice:      "a list of strings",
		framework.TypeMap:              "an object",
		framework.TypeSlice:            "a list",
	}[t]
	if want == "" {
		want = "of type " + t.String()
	}
	return k + " must be " + want + "; the value sent cannot be read as one (it is not repeated here, as it may be a secret)"
}

// checkPEMOnly refuses the Vault PKI fields this engine does not serve:
// format other than pem, and not_after (ttl sets the validity).
func checkPEMOnly(d *framework.FieldData) error {
	if f := d.Get("format").(string); f != "" && f != "pem" {
		return issuing.Inputf("format %s is not supported: the answer is PEM (format=pem)", issuing.Quote(f))
	}
	if d.Get("not_after").(string) != "" {
		return issuing.Inputf("not_after is not supported: pass ttl")
	}
	return nil
}

// commaList is a comma-list field without its empty entries, as Vault
// PKI reads "a,,b" and "a,".
func commaList(d *framework.FieldData, k string) []string {
	var out []string
	for _, v := range d.Get(k).([]string) {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
