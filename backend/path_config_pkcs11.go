package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/hsm"
)

func pathConfigPKCS11(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "config/pkcs11",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Fields: map[string]*framework.FieldSchema{
			"module_path": {
				Type:        framework.TypeString,
				Description: "Absolute path of the HSM's PKCS#11 module (.so). It must be on the allow-list the plugin was registered with (-env " + hsm.ModulesEnv + "=<path>[:<path>...]).",
			},
			"token_label": {
				Type:        framework.TypeString,
				Description: "Label of the token the CA keys live in (better than slot, whose numbers can change).",
			},
			"slot": {
				Type:        framework.TypeInt,
				Description: "Slot of the token, instead of token_label.",
			},
			"pin": {
				Type:         framework.TypeString,
				Description:  "The token's user PIN. Write-only: stored in Vault (seal-wrapped where Vault supports it), never returned.",
				DisplayAttrs: &framework.DisplayAttributes{Sensitive: true},
			},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathConfigPKCS11Read,
				Summary:      "Read the PKCS#11 token settings (never the PIN) and whether the token can be used now.",
				DisplayAttrs: &framework.DisplayAttributes{OperationSuffix: "pkcs11-configuration"},
			},
			logical.UpdateOperation: &framework.PathOperation{
				Callback:                    b.pathConfigPKCS11Write,
				Summary:                     "Set the PKCS#11 token CA keys are made in with key_backend=pkcs11; omitted fields keep their value. The plugin logs in before storing.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationVerb: "configure", OperationSuffix: "pkcs11"},
			},
			logical.DeleteOperation: &framework.PathOperation{
				Callback:                    b.pathConfigPKCS11Delete,
				Summary:                     "Remove the PKCS#11 settings; refused while a CA's key is in the token.",
				ForwardPerformanceStandby:   true,
				ForwardPerformanceSecondary: true,
				DisplayAttrs:                &framework.DisplayAttributes{OperationSuffix: "pkcs11-configuration"},
			},
		},
		HelpSynopsis:    pathConfigPKCS11HelpSyn,
		HelpDescription: pathConfigPKCS11HelpDesc,
	}
}

func (b *mastioBackend) pathConfigPKCS11Read(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := readPKCS11Config(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	data := map[string]any{"built": hsm.Built, "allowed_modules": hsm.AllowedModules()}
	if cfg == nil {
		data["configured"] = false
		return &logical.Response{Data: data}, nil
	}
	data["configured"] = true
	data["module_path"] = cfg.ModulePath
	data["token_label"] = cfg.TokenLabel
	if cfg.Slot != nil {
		data["slot"] = *cfg.Slot
	}
	data["pin_set"] = cfg.PIN != ""
	data["updated_at"] = cfg.UpdatedAt
	_, problem := b.pkcs11Status(ctx, req.Storage)
	data["status"] = statusWord(problem)
	if problem != "" {
		data["error"] = problem
	}
	return &logical.Response{Data: data}, nil
}

// statusWord is "ok", or "unavailable" when problem says why not.
func statusWord(problem string) string {
	if problem != "" {
		return "unavailable"
	}
	return "ok"
}

func (b *mastioBackend) pathConfigPKCS11Write(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkFields(req, d); err != nil {
		return respondErr(err)
	}
	var u pkcs11Update
	if v, ok := d.GetOk("module_path"); ok {
		s := v.(string)
		u.modulePath = &s
	}
	if v, ok := d.GetOk("token_label"); ok {
		s := v.(string)
		u.tokenLabel = &s
	}
	if v, ok := d.GetOk("slot"); ok {
		n := v.(int)
		u.slot = &n
	}
	if v, ok := d.GetOk("pin"); ok {
		s := v.(string)
		u.pin = &s
	}
	if _, err := b.writePKCS11Config(ctx, req.Storage, u); err != nil {
		return respondErr(err)
	}
	return b.pathConfigPKCS11Read(ctx, req, d)
}

func (b *mastioBackend) pathConfigPKCS11Delete(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	return respond(nil, b.deletePKCS11Config(ctx, req.Storage))
}

const pathConfigPKCS11HelpSyn = `The PKCS#11 token (HSM) in which key_backend=pkcs11 CA keys are made and sign.`

const pathConfigPKCS11HelpDesc = `
A CA generated with key_backend=pkcs11 (generate, intermediate/generate,
intermediate/rotate) has its key made inside this token, sensitive and not
extractable; Vault stores only the key's reference (CKA_ID and label) and
the certificate. Every signature is made in the token.

module_path must be on the allow-list the plugin was registered with, so a
mount admin cannot make the plugin load a library of their choosing:

    $ vault plugin register -sha256=<sha> \
        -command=vault-plugin-mastio-ca-pkcs11 \
        -env MASTIO_CA_PKCS11_MODULES=/usr/lib/softhsm/libsofthsm2.so \
        secret mastio-ca
    $ vault write mastio-ca/config/pkcs11 \
        module_path=/usr/lib/softhsm/libsofthsm2.so token_label=mastio pin=@pin.txt
    $ vault write mastio-ca/generate org_id=acme key_backend=pkcs11

The write logs in to the token before storing, and refuses a token that
does not hold the keys of the CAs already in one. The PIN is write-only.
A PIN the token refuses is not tried again until this path is written: a
token locks a PIN after a few wrong tries. Only the PKCS#11 build of the
plugin (vault-plugin-mastio-ca-pkcs11) has this; the static build answers
that it was built without it. Delete is refused while a CA's key is in the
token.
`
