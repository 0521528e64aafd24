package backend

import (
	"context"
	"strings"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// The signing router.
//
// framework.Backend asks Vault for the replication state on every request to
// a path with Operations, to honour ForwardPerformanceStandby and
// ForwardPerformanceSecondary. In an external plugin each ask is a gRPC call
// from the plugin back into Vault: on the signing path, a third round trip
// per certificate on top of Vault's existence check and the request itself
// (BENCHMARKS.md). The signing operations set neither flag, so the answer
// cannot change what they do: they run wherever Vault sends them, a
// performance standby included.
//
// So signing requests go to a framework backend of their own (the same
// path definitions), whose SystemView answers ReplicationState without
// asking Vault. Every other request goes to the main backend, which asks
// Vault each time exactly as the SDK does; nothing is cached.

// signingPaths are the paths the signing router serves; their update
// operations must set no forwarding flag (TestSigningPathsDoNotForward).
func signingPaths(b *mastioBackend) []*framework.Path {
	return []*framework.Path{pathSignCSR(b), pathSignPublicKey(b), pathSignPKI(b), pathOCSP(b)}
}

// isSigningRequest reports whether req is a signing operation for the
// signing router. A path it claims but does not serve is refused there as
// the main backend would refuse it.
func isSigningRequest(req *logical.Request) bool {
	if req.Operation == logical.ReadOperation {
		return strings.HasPrefix(req.Path, "ocsp/") // signed answers, at a signing rate
	}
	if req.Operation != logical.UpdateOperation {
		return false
	}
	for _, p := range []string{"sign-csr", "sign-public-key"} {
		if req.Path == p || strings.HasPrefix(req.Path, p+"/") {
			return true
		}
	}
	return strings.HasPrefix(req.Path, "sign/")
}

// newSigningRouter is the framework backend for signing requests.
func newSigningRouter(ctx context.Context, b *mastioBackend, conf *logical.BackendConfig) (*framework.Backend, error) {
	r := &framework.Backend{BackendType: logical.TypeLogical, Paths: signingPaths(b), RunningVersion: b.RunningVersion}
	c := *conf
	c.System = signingSystemView{conf.System}
	if err := r.Setup(ctx, &c); err != nil {
		return nil, err
	}
	return r, nil
}

// signingSystemView is Vault's SystemView, except that ReplicationState
// does not ask Vault. Only the framework's forwarding check on signing
// paths calls it, and those paths forward nothing whatever it answers.
type signingSystemView struct {
	logical.SystemView
}

func (signingSystemView) ReplicationState() consts.ReplicationState {
	return consts.ReplicationUnknown
}
