// Package backend is the mastio-ca Vault secrets engine: an Org CA whose
// private key is generated or imported into Vault and signs there, under
// deny-by-default SPIFFE profiles.
package backend

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/issuing"
)

// operationPrefix names this engine's operations in Vault's OpenAPI document.
const operationPrefix = "mastio-ca"

// mastioBackend is the framework backend plus the state that must survive
// between requests.
type mastioBackend struct {
	*framework.Backend

	// signing serves the signing operations without a call back into
	// Vault per request (see signing_router.go).
	signing *framework.Backend

	// caLock serialises every read-modify-write of the CA entry
	// (generate, import) and every cache fill, so a fill never races a write.
	caLock sync.Mutex
	// issuers caches each parsed CA (cert + signer) for the signing path;
	// the map is fixed at construction. Every reset stores a new empty slot,
	// so a fill that read storage before an Invalidate loses its
	// CompareAndSwap and stores nothing.
	issuers map[caName]*atomic.Pointer[issuerSlot]

	// configLock serialises read-modify-write of the config entry.
	configLock sync.Mutex
	// roleLock serialises read-modify-write of role entries.
	roleLock sync.Mutex

	// configCache and roleCache hold parsed config and roles for the
	// signing path; reset by invalidate and by our own writes.
	configCache *entryCache[*mountConfig]
	roleCache   *entryCache[*issuing.Role]

	// schemaErr, when set, is why this mount refuses every request: its
	// storage was written by a newer plugin (see checkSchema).
	schemaErr atomic.Pointer[error]

	// signed counts certificates issued by this mount since the process
	// started, for the health path; signing writes nothing to storage.
	signed atomic.Int64

	// tokens is the mount's PKCS#11 token (config/pkcs11), opened on
	// first use.
	tokens *tokenHolder

	// revocations holds the revoked serials and CRL states in memory, and
	// the CRLs built from them (revocation.go).
	revocations *revocations
}

// Factory is the logical.Factory that Vault (through plugin.ServeMultiplex)
// calls once per mount.
func Factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	b := newBackend()
	b.tokens.view = conf.StorageView
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	signing, err := newSigningRouter(ctx, b, conf)
	if err != nil {
		return nil, err
	}
	b.signing = signing
	return b, nil
}

func newBackend() *mastioBackend {
	b := &mastioBackend{
		issuers:     map[caName]*atomic.Pointer[issuerSlot]{},
		configCache: newEntryCache[*mountConfig](),
		roleCache:   newEntryCache[*issuing.Role](),
		revocations: newRevocations(),
		tokens:      &tokenHolder{},
	}
	for _, n := range caNames {
		b.issuers[n] = &atomic.Pointer[issuerSlot]{}
		b.issuers[n].Store(&issuerSlot{})
	}
	b.Backend = &framework.Backend{
		Help:        strings.TrimSpace(backendHelp),
		BackendType: logical.TypeLogical,
		PathsSpecial: &logical.Paths{
			SealWrapStorage: []string{caPrefix, pkcs11StorageKey},
			Unauthenticated: append([]string{"cert", "cert/pem", "intermediate/cert", "bundle"}, crlUnauthenticated...),
		},
		Paths: []*framework.Path{
			pathConfig(b),
			pathConfigPKCS11(b),
			pathGenerate(b),
			pathImport(b),
			pathIntermediateImport(b),
			pathIntermediateGenerate(b),
			pathIntermediateRotate(b),
			pathIntermediateGenerateCSR(b),
			pathIntermediatePending(b),
			pathIntermediateSetSigned(b),
			pathRootSignIntermediate(b),
			pathRootProfile(b),
			pathBundle(b),
			pathRevoke(b),
			pathTidy(b),
			pathCRL(b),
			pathIssuerCert(b),
			pathCertPEM(b),
			pathCert(b),
			pathIntermediateCert(b),
			pathKVExport(b),
			pathKVData(b),
			pathKVMetadata(b),
			pathRolesList(b),
			pathRoles(b),
			pathHealth(b),
		},
		InitializeFunc: b.initialize,
		Clean:          func(context.Context) { b.tokens.reset() },
		Invalidate:     b.invalidate,
		PeriodicFunc:   b.periodic,
		RunningVersion: "v" + Version,
	}
	b.Backend.Paths = append(b.Backend.Paths, signingPaths(b)...)
	return b
}

// initialize checks the storage schema and seeds the default profiles
// once per mount.
func (b *mastioBackend) initialize(ctx context.Context, req *logical.InitializationRequest) error {
	if err := checkSchema(ctx, req.Storage, b.WriteSafeReplicationState()); err != nil {
		b.schemaErr.Store(&err)
		b.Logger().Error("refusing to serve this mount", "error", err)
		return err
	}
	if !b.WriteSafeReplicationState() {
		return nil // the node that may write seeds them; they replicate here
	}
	return b.seedDefaultRoles(ctx, req.Storage)
}

// HandleRequest refuses a request field of the wrong type before the
// framework sees it (see typeGuard), then hands the request to the
// framework: signing requests to the signing router, the rest to b.
func (b *mastioBackend) HandleRequest(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	if err := b.schemaErr.Load(); err != nil {
		return nil, *err
	}
	target := b.Backend
	if b.signing != nil && isSigningRequest(req) {
		target = b.signing
	}
	if err := typeGuard(target, req); err != nil {
		return respondErr(err)
	}
	return target.HandleRequest(ctx, req)
}

// HandleExistenceCheck skips the check for a request the guard refuses:
// Vault runs it before HandleRequest and it decodes the fields too. Vault
// then calls HandleRequest, whose guard answers the 400 (an error here
// would reach the client as a 500).
func (b *mastioBackend) HandleExistenceCheck(ctx context.Context, req *logical.Request) (bool, bool, error) {
	if typeGuard(b.Backend, req) != nil {
		return false, false, nil
	}
	return b.Backend.HandleExistenceCheck(ctx, req)
}

// invalidate drops caches when another node (or a replication stream)
// changes the entries they mirror.
func (b *mastioBackend) invalidate(_ context.Context, key string) {
	switch {
	case key == configStorageKey:
		b.configCache.reset()
	case key == pkcs11StorageKey:
		b.tokens.reset()
	case strings.HasPrefix(key, rolePrefix):
		b.roleCache.reset()
	}
	for _, n := range caNames {
		if key == n.storageKey() {
			b.resetIssuer(n)
		}
	}
	b.revocations.invalidate(key)
}

const backendHelp = `
The mastio-ca secrets engine keeps a Mastio Org CA inside Vault. Its private
key is generated here ("generate") or imported once ("import") and never
leaves Vault: certificates are signed inside the plugin ("sign-csr") under
deny-by-default SPIFFE profiles ("roles/").

Quick start:

    $ vault secrets enable mastio-ca
    $ vault write mastio-ca/generate org_id=acme
    $ vault write mastio-ca/sign-csr csr=@agent.csr
    $ curl $VAULT_ADDR/v1/mastio-ca/cert/pem
`
