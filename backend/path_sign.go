package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
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

func (b *mastioBackend) pathSignCSRWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	sr, err := decodeSignRequest(req, d, "sign-csr")
	if err != nil {
		return respondErr(err)
	}
	if batch, ok := d.GetOk("csrs"); ok {
		if _, single := req.Data["csr"]; single {
			return respondErr(issuing.Inputf("pass csr (one CSR) or csrs (a list), not both"))
		}
		csrs := batch.([]string)
		if len(csrs) == 0 || len(csrs) > maxBatch {
			return respondErr(issuing.Inputf("csrs holds %d CSRs; send 1 to %d", len(csrs), maxBatch))
		}
		return respond(b.signBatch(ctx, req.Storage, sr, "csrs", len(csrs), func(i int, _ *issuing.Role, _ *issuing.URIPattern) (*issuing.LeafRequest, error) {
			return issuing.ParseCSR(csrs[i])
		}))
	}
	return respondWarn(b.issue(ctx, req.Storage, sr, func(*issuing.Role, *issuing.URIPattern) (*issuing.LeafRequest, error) {
		return issuing.ParseCSR(d.Get("csr").(string))
	}))
}

// decodeSignRequest reads the fields every signing path shares.
func decodeSignRequest(req *logical.Request, d *framework.FieldData, path string) (signRequest, error) {
	if _, inBody := req.Data["role"]; inBody {
		return signRequest{}, issuing.Inputf("role goes in the path (%s/<role>), not in the body", path)
	}
	if err := checkFields(req, d); err != nil {
		return signRequest{}, err
	}
	ttl, ttlSet := d.GetOk("ttl")
	if raw, isString := req.Data["ttl"].(string); isString && raw == "" {
		ttlSet = false // "ttl": "" is no ttl, as Vault PKI reads it
	}
	ttlSeconds, _ := ttl.(int)
	return signRequest{mount: req.MountPoint, role: d.Get("role").(string), ttl: time.Duration(ttlSeconds) * time.Second, ttlSet: ttlSet}, nil
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

Audit: Vault's audit devices HMAC every response field unless the mount
is tuned. Leave exactly the certificate's identifiers readable, and
nothing key-bearing, so that "mastio-ca audit-report" shows who got which
certificate:

    $ vault secrets tune -audit-non-hmac-response-keys=serial_number \
        -audit-non-hmac-response-keys=spiffe_id \
        -audit-non-hmac-response-keys=not_after mastio-ca/

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
