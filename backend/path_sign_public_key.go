package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

func pathSignPublicKey(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern: "sign-public-key(/" + framework.GenericNameRegex("role") + ")?$",
		DisplayAttrs: &framework.DisplayAttributes{
			OperationPrefix: operationPrefix,
		},
		Fields: signFields(map[string]*framework.FieldSchema{
			"public_key": {
				Type:        framework.TypeString,
				Description: "PEM public key (-----BEGIN PUBLIC KEY-----, SubjectPublicKeyInfo).",
			},
			"name": {
				Type:        framework.TypeString,
				Description: "Agent name: fills the single * of the role's uri_san_pattern (agent: spiffe://<td>/<org_id>/<name>).",
			},
			"spiffe_id": {
				Type:        framework.TypeString,
				Description: "Full SPIFFE ID instead of name, for patterns with alternatives (principal).",
			},
		}),
		Operations: map[logical.Operation]framework.OperationHandler{
			// Not forwarded: signing writes nothing, so standbys serve it.
			logical.UpdateOperation: &framework.PathOperation{
				Callback: b.pathSignPublicKeyWrite,
				Summary:  "Sign a bare public key for a named agent under a role (no CSR).",
				DisplayAttrs: &framework.DisplayAttributes{
					OperationVerb:   "sign",
					OperationSuffix: "public-key",
				},
			},
		},
		HelpSynopsis:    pathSignPublicKeyHelpSyn,
		HelpDescription: pathSignPublicKeyHelpDesc,
	}
}

func (b *mastioBackend) pathSignPublicKeyWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sr, err := decodeSignRequest(req, d, "sign-public-key")
	if err != nil {
		return respondErr(err)
	}
	pub, err := issuing.ParsePublicKeyPEM(d.Get("public_key").(string))
	if err != nil {
		return respondErr(err)
	}
	name, spiffeID := d.Get("name").(string), d.Get("spiffe_id").(string)
	switch {
	case name == "" && spiffeID == "":
		return respondErr(issuing.Inputf("name or spiffe_id is required: whom is this certificate for?"))
	case name != "" && spiffeID != "":
		return respondErr(issuing.Inputf("pass name or spiffe_id, not both"))
	}
	return respond(b.issue(ctx, req.Storage, sr, func(r *issuing.Role, pattern *issuing.URIPattern) (*issuing.LeafRequest, error) {
		return issuing.PublicKeyRequest(pub, r, pattern, name, spiffeID)
	}))
}

const pathSignPublicKeyHelpSyn = `Sign a bare public key for a named agent, under a role, with no CSR.`

const pathSignPublicKeyHelpDesc = `
Mastio's enrollment flow holds an agent's public key, not a CSR. This path
signs that key (public_key, PEM SubjectPublicKeyInfo) for the agent named by
name (which fills the single * of the role's uri_san_pattern) or by a full
spiffe_id, under the role in the path or config default_role. The same
profile rules and the same response as sign-csr apply.

Proof of possession is the caller's job: with no CSR there is no
self-signature, so this path cannot know that the requester holds the
private key. Mastio checks it during enrollment before calling here; give
this path only to such a caller.

Example:

    $ vault write mastio-ca/sign-public-key public_key=@agent.pub name=agent-1
    $ vault write mastio-ca/sign-public-key/principal public_key=@user.pub \
        spiffe_id=spiffe://cullis.local/acme/user/alice
`
