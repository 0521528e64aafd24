package backend

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// bundleRefreshHint is the spiffe_refresh_hint of the bundle, in seconds:
// it changes only when the Org CA is replaced.
const bundleRefreshHint = 300

func pathBundle(b *mastioBackend) *framework.Path {
	return &framework.Path{
		Pattern:      "bundle",
		DisplayAttrs: &framework.DisplayAttributes{OperationPrefix: operationPrefix},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: &framework.PathOperation{
				Callback:     b.pathBundleRead,
				Summary:      "The trust domain's SPIFFE bundle (JWKS, use x509-svid): the Org CA. No token needed.",
				DisplayAttrs: &framework.DisplayAttributes{OperationVerb: "read", OperationSuffix: "spiffe-bundle"},
			},
		},
		HelpSynopsis:    pathBundleHelpSyn,
		HelpDescription: pathBundleHelpDesc,
	}
}

// spiffeBundle is the SPIFFE bundle format (SPIFFE Trust Domain and
// Bundle, section 4): a JWK Set with the SPIFFE members.
type spiffeBundle struct {
	Keys        []jose.JSONWebKey `json:"keys"`
	Sequence    uint64            `json:"spiffe_sequence"`
	RefreshHint int64             `json:"spiffe_refresh_hint"`
}

// bundleJSON is the bundle of the trust anchor org: one x509-svid key,
// the Org CA, so it stays the same while intermediates rotate.
func bundleJSON(org *issuer) ([]byte, error) {
	key := jose.JSONWebKey{Key: org.cert.PublicKey, Certificates: []*x509.Certificate{org.cert}, Use: "x509-svid"}
	// The Org CA's NotBefore, in seconds: it rises when the Org CA is
	// replaced, and a root mount and its issuing mounts agree on it (their
	// entries' versions need not).
	body, err := json.Marshal(spiffeBundle{Keys: []jose.JSONWebKey{key}, Sequence: uint64(org.cert.NotBefore.Unix()), RefreshHint: bundleRefreshHint})
	if err != nil {
		return nil, fmt.Errorf("encoding the SPIFFE bundle: %w", err)
	}
	return body, nil
}

func (b *mastioBackend) pathBundleRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	org, err := b.loadIssuer(ctx, req.Storage, orgCA)
	if err != nil || org == nil {
		return nil, err
	}
	body, err := bundleJSON(org)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	status := http.StatusOK
	if etagMatches(req.Headers["If-None-Match"], etag) {
		status, body = http.StatusNotModified, nil
	}
	data := map[string]any{
		logical.HTTPContentType:        "application/json",
		logical.HTTPStatusCode:         status,
		logical.HTTPCacheControlHeader: fmt.Sprintf("max-age=%d", bundleRefreshHint),
	}
	if body != nil {
		// A nil body reaches Vault as JSON null, which it cannot write.
		data[logical.HTTPRawBody] = body
	}
	return &logical.Response{
		Data: data,
		// Vault passes these on only for a mount tuned with
		// -allowed-response-headers=ETag (and reads If-None-Match with
		// -passthrough-request-headers=If-None-Match).
		Headers: map[string][]string{"ETag": {etag}},
	}, nil
}

const pathBundleHelpSyn = `The trust domain's SPIFFE trust bundle. Readable without a token.`

const pathBundleHelpDesc = `
The SPIFFE bundle (JWK Set, one key with use=x509-svid and the Org CA
certificate in x5c) for
go-spiffe's spiffebundle, SPIRE's federation and any relying party;
spiffe_sequence is the Org CA's NotBefore in Unix seconds. It
holds the trust anchor only, so it does not change while intermediates
rotate, and an issuing mount that holds the Org CA as anchor serves the
same bundle as the root mount.

An ETag (a hash of the body) comes with it, and a request with a matching
If-None-Match gets 304, once the mount is tuned to let the headers through:

    $ vault secrets tune -allowed-response-headers=ETag \
        -passthrough-request-headers=If-None-Match mastio-ca/
    $ curl -i $VAULT_ADDR/v1/mastio-ca/bundle
`

// etagMatches reports whether an If-None-Match header (RFC 9110 13.1.2:
// "*", or a comma list of tags, weak ones with W/) names etag.
func etagMatches(header []string, etag string) bool {
	for _, h := range header {
		for _, tag := range strings.Split(h, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == etag || tag == "*" {
				return true
			}
		}
	}
	return false
}
