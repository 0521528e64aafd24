package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// Signing: resolve what a signing request needs (config, role, CA, URI
// pattern) from the caches, once per request, then sign one request or a
// batch. Nothing here reads storage after the caches are warm, and
// nothing writes it.

// signRequest is what a signing path decoded from the request.
type signRequest struct {
	mount  string        // the mount's path, for messages
	role   string        // "" is config default_role
	ttl    time.Duration // 0 is the role's
	ttlSet bool
	// capTTL lowers a ttl above the role's max_ttl to it, with a warning,
	// as Vault PKI does (sign/<role>); otherwise such a ttl is refused.
	capTTL bool
}

// leafSigner is everything a signing needs that does not depend on the
// request being signed: resolved once per request, even for a batch.
type leafSigner struct {
	b        *mastioBackend
	roleName string
	role     *issuing.Role
	issuer   *issuer
	pattern  *issuing.URIPattern
	params   issuing.IssueParams
	warnings []string
}

// newLeafSigner resolves config, role, signing CA and pattern for a
// signing request.
func (b *mastioBackend) newLeafSigner(ctx context.Context, s logical.Storage, r signRequest) (*leafSigner, error) {
	cfg, err := b.cachedConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	roleName := r.role
	if roleName == "" {
		roleName = cfg.DefaultRole
	}
	role, err := b.cachedRole(ctx, s, roleName)
	if err != nil {
		return nil, err
	}
	if role == nil {
		return nil, issuing.NotFoundf("role %q does not exist; see `vault list %sroles`", roleName, r.mount)
	}
	is, err := b.signingIssuer(ctx, s, role)
	if err != nil {
		return nil, err
	}
	if is == nil {
		if role.Issuer == issuing.IssuerIntermediate {
			return nil, issuing.NotFoundf("role %q signs with the intermediate, and none exists: write %sintermediate/generate first", roleName, r.mount)
		}
		return nil, noOrgCA(fmt.Sprintf("write %sgenerate or %simport first", r.mount, r.mount))
	}
	if r.ttlSet && r.ttl <= 0 {
		return nil, issuing.Inputf("ttl %ds is not a validity: give a positive duration, or omit ttl for the role's (%s)", int64(r.ttl/time.Second), role.TTL)
	}
	var warnings []string
	if r.capTTL && r.ttl > role.MaxTTL {
		warnings = append(warnings, fmt.Sprintf("ttl %s is above the role's max_ttl %s: the certificate is valid for %s", r.ttl, role.MaxTTL, role.MaxTTL))
		r.ttl = role.MaxTTL
	}
	var pattern *issuing.URIPattern
	if role.URISANPattern != "" {
		if pattern, err = issuing.CompileURIPattern(role.URISANPattern, cfg.TrustDomain, is.orgID); err != nil {
			return nil, err
		}
	}
	return &leafSigner{b: b, roleName: roleName, role: role, issuer: is, pattern: pattern, warnings: warnings, params: issuing.IssueParams{
		TrustDomain:  cfg.TrustDomain,
		OrgID:        is.orgID,
		TTL:          r.ttl,
		Now:          time.Now(),
		Issuer:       is.cert,
		Chain:        is.chain,
		TruncateLeaf: cfg.LeafNotAfter != leafNotAfterError,
		Pattern:      pattern,
		URLs:         cfg.urls().For(is.cert),
	}}, nil
}

// sign applies the role to one request and signs it. A refusal says which
// rule the request broke.
func (sg *leafSigner) sign(req *issuing.LeafRequest) (map[string]any, error) {
	leaf, err := sg.role.Sign(req, sg.params, sg.issuer.signer)
	if err != nil {
		return nil, err
	}
	sg.b.signed.Add(1)
	serial := issuing.FormatSerial(leaf.Serial)
	if sg.b.Logger().IsDebug() {
		sg.b.Logger().Debug("signed certificate", "role", sg.roleName, "issuer", string(sg.issuer.name), "serial", serial, "spiffe_id", leaf.SPIFFEID)
	}
	return map[string]any{
		"certificate":   issuing.EncodeCertPEM(leaf.DER),
		"serial_number": serial,
		"not_after":     leaf.NotAfter.Format(time.RFC3339),
		"spiffe_id":     leaf.SPIFFEID,
	}, nil
}

// issue signs, under the role the request names (or config default_role),
// the request that build returns once the role and its URI pattern for
// this mount are known. It serves sign-csr and sign-public-key. build runs
// only when the role and a CA exist, so a request that cannot be signed
// anyway costs no parsing. It returns the response data and the warnings
// for the caller.
func (b *mastioBackend) issue(ctx context.Context, s logical.Storage, r signRequest, build func(*issuing.Role, *issuing.URIPattern) (*issuing.LeafRequest, error)) (map[string]any, []string, error) {
	sg, err := b.newLeafSigner(ctx, s, r)
	if err != nil {
		return nil, nil, err
	}
	leafReq, err := build(sg.role, sg.pattern)
	if err != nil {
		return nil, nil, err
	}
	data, err := sg.sign(leafReq)
	if err != nil {
		return nil, nil, err
	}
	data["issuing_ca"] = sg.issuer.certPEM
	data["ca_chain"] = sg.issuer.chainPEMs
	return data, sg.warnings, nil
}

// maxBatch is how many CSRs one sign-csr request may carry in csrs.
const maxBatch = 100

// signBatch signs up to maxBatch requests under one role; build makes the
// i-th once the role and pattern are known, and field names the list in
// messages. Each is checked on its own: a refused one fails only itself,
// with its index in the error, and the request still succeeds for the
// others. It stops when ctx is done (the client gave up, or Vault's
// request timeout passed).
// Callers have checked that n is 1 to maxBatch.
func (b *mastioBackend) signBatch(ctx context.Context, s logical.Storage, r signRequest, field string, n int, build func(i int, role *issuing.Role, pattern *issuing.URIPattern) (*issuing.LeafRequest, error)) (map[string]any, error) {
	sg, err := b.newLeafSigner(ctx, s, r)
	if err != nil {
		return nil, err
	}
	results := make([]map[string]any, n)
	failed := 0
	for i := range n {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("batch abandoned after %d of %d requests: %w", i, n, err)
		}
		leafReq, err := build(i, sg.role, sg.pattern)
		var data map[string]any
		if err == nil {
			data, err = sg.sign(leafReq)
		}
		if err != nil {
			if !issuing.IsInput(err) {
				return nil, err
			}
			failed++
			data = map[string]any{"error": fmt.Sprintf("%s[%d]: %v", field, i, err)}
		}
		data["index"] = i
		results[i] = data
	}
	return map[string]any{
		"certificates": results,
		"failed":       failed,
		"issuing_ca":   sg.issuer.certPEM,
		"ca_chain":     sg.issuer.chainPEMs,
	}, nil
}

// signingIssuer picks the CA a role signs with; nil when it does not exist.
// An intermediate signed by an Org CA that has since been replaced does not
// sign: its leaves would not chain to the current trust root.
func (b *mastioBackend) signingIssuer(ctx context.Context, s logical.Storage, r *issuing.Role) (*issuer, error) {
	orgSigner := func() (*issuer, error) {
		org, err := b.loadIssuer(ctx, s, orgCA)
		if err == nil && org != nil && org.signer == nil {
			err = noKeyHere("roles sign with this mount's intermediate: activate one (intermediate/generate-csr, then intermediate/set-signed), and sign under a role with issuer auto or intermediate-ca")
		}
		return org, err
	}
	if r.Issuer == issuing.IssuerOrgCA {
		return orgSigner()
	}
	inter, err := b.loadIssuer(ctx, s, intermediateCA)
	if err != nil {
		return nil, err
	}
	if inter == nil {
		if r.Issuer == issuing.IssuerIntermediate {
			return nil, nil
		}
		return orgSigner()
	}
	org, err := b.loadIssuer(ctx, s, orgCA)
	if err != nil {
		return nil, err
	}
	if org == nil || len(inter.chain) == 0 || !inter.chain[0].Equal(org.cert) {
		return nil, issuing.Statef("the Mastio Intermediate CA was signed by a previous Org CA; import a new intermediate (with cas) before signing")
	}
	return inter, nil
}
