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
			"requests": {
				Type:        framework.TypeSlice,
				Description: "Batch: a JSON list of 1 to 100 objects {public_key, name | spiffe_id}, each signed on its own under the same role (instead of public_key), e.g. to re-sign every agent certificate for its existing key after a new Org CA.",
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
	if batch, ok := d.GetOk("requests"); ok {
		for _, single := range []string{"public_key", "name", "spiffe_id"} {
			if _, ok := req.Data[single]; ok {
				return respondErr(issuing.Inputf("pass requests (a list) or public_key with name or spiffe_id, not both; %s is in the body", single))
			}
		}
		items, err := decodeKeyRequests(batch.([]any))
		if err != nil {
			return respondErr(err)
		}
		return respond(b.signBatch(ctx, req.Storage, sr, "requests", len(items), func(i int, r *issuing.Role, pattern *issuing.URIPattern) (*issuing.LeafRequest, error) {
			return items[i].leafRequest(r, pattern)
		}))
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
	return respondWarn(b.issue(ctx, req.Storage, sr, func(r *issuing.Role, pattern *issuing.URIPattern) (*issuing.LeafRequest, error) {
		return issuing.PublicKeyRequest(pub, r, pattern, name, spiffeID)
	}))
}

// keyRequest is one public key to sign and whom it is for.
type keyRequest struct{ publicKey, name, spiffeID string }

// leafRequest parses the key and builds the request the role checks.
func (k keyRequest) leafRequest(r *issuing.Role, pattern *issuing.URIPattern) (*issuing.LeafRequest, error) {
	pub, err := issuing.ParsePublicKeyPEM(k.publicKey)
	if err != nil {
		return nil, err
	}
	if (k.name == "") == (k.spiffeID == "") {
		return nil, issuing.Inputf("give exactly one of name and spiffe_id")
	}
	return issuing.PublicKeyRequest(pub, r, pattern, k.name, k.spiffeID)
}

// decodeKeyRequests reads the requests list; its shape is checked here,
// its contents one by one when signing.
func decodeKeyRequests(list []any) ([]keyRequest, error) {
	if len(list) == 0 || len(list) > maxBatch {
		return nil, issuing.Inputf("requests holds %d requests; send 1 to %d", len(list), maxBatch)
	}
	out := make([]keyRequest, len(list))
	for i, item := range list {
		m, ok := item.(map[string]any)
		if !ok {
			return nil, issuing.Inputf("requests[%d] must be an object {public_key, name | spiffe_id}", i)
		}
		for k, v := range m {
			s, isString := v.(string)
			switch {
			case k != "public_key" && k != "name" && k != "spiffe_id":
				return nil, issuing.Inputf("requests[%d] has an unknown field %s; use public_key, name, spiffe_id", i, issuing.Quote(k))
			case !isString:
				return nil, issuing.Inputf("requests[%d].%s must be a string", i, k)
			case k == "public_key":
				out[i].publicKey = s
			case k == "name":
				out[i].name = s
			default:
				out[i].spiffeID = s
			}
		}
	}
	return out, nil
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

requests (a JSON list of up to 100 objects {public_key, name | spiffe_id},
instead of public_key) signs each under the same role, as sign-csr's csrs
does: certificates holds one result per request, in order, each with index
and either the certificate or an error; failed counts the refused ones.
This re-signs every agent certificate for its existing key after a new Org
CA.

Example:

    $ vault write mastio-ca/sign-public-key public_key=@agent.pub name=agent-1
    $ vault write mastio-ca/sign-public-key/principal public_key=@user.pub \
        spiffe_id=spiffe://cullis.local/acme/user/alice
`
