package backend

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/license"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

// countingSystemView counts the SystemView calls a request handler could
// make; from an external plugin each is a gRPC call back into Vault.
type countingSystemView struct {
	logical.SystemView
	calls atomic.Int64
	state atomic.Uint32
}

func (c *countingSystemView) ReplicationState() consts.ReplicationState {
	c.calls.Add(1)
	return consts.ReplicationState(c.state.Load())
}
func (c *countingSystemView) DefaultLeaseTTL() time.Duration {
	c.calls.Add(1)
	return c.SystemView.DefaultLeaseTTL()
}
func (c *countingSystemView) MaxLeaseTTL() time.Duration {
	c.calls.Add(1)
	return c.SystemView.MaxLeaseTTL()
}
func (c *countingSystemView) Tainted() bool { c.calls.Add(1); return c.SystemView.Tainted() }
func (c *countingSystemView) CachingDisabled() bool {
	c.calls.Add(1)
	return c.SystemView.CachingDisabled()
}
func (c *countingSystemView) LocalMount() bool   { c.calls.Add(1); return c.SystemView.LocalMount() }
func (c *countingSystemView) MlockEnabled() bool { c.calls.Add(1); return c.SystemView.MlockEnabled() }
func (c *countingSystemView) HasFeature(f license.Features) bool {
	c.calls.Add(1)
	return c.SystemView.HasFeature(f)
}
func (c *countingSystemView) EntityInfo(id string) (*logical.Entity, error) {
	c.calls.Add(1)
	return c.SystemView.EntityInfo(id)
}
func (c *countingSystemView) GroupsForEntity(id string) ([]*logical.Group, error) {
	c.calls.Add(1)
	return c.SystemView.GroupsForEntity(id)
}
func (c *countingSystemView) PluginEnv(ctx context.Context) (*logical.PluginEnvironment, error) {
	c.calls.Add(1)
	return c.SystemView.PluginEnv(ctx)
}
func (c *countingSystemView) VaultVersion(ctx context.Context) (string, error) {
	c.calls.Add(1)
	return c.SystemView.VaultVersion(ctx)
}
func (c *countingSystemView) ClusterID(ctx context.Context) (string, error) {
	c.calls.Add(1)
	return c.SystemView.ClusterID(ctx)
}

// countingBackend is a test backend whose SystemView counts its calls.
func countingBackend(t *testing.T) (*mastioBackend, logical.Storage, *countingSystemView) {
	t.Helper()
	var sv *countingSystemView
	b, s := getTestBackendWithSystem(t, func(base logical.SystemView) logical.SystemView {
		sv = &countingSystemView{SystemView: base}
		return sv
	})
	return b, s, sv
}

// After the first signing, 1,000 more make no call back into Vault: no
// storage (TestSignCSR_NoStorageAfterFirst) and no SystemView call, which
// the framework would otherwise make on every request for the replication
// state.
func TestSignCSR_NoSystemViewCallsAfterFirst(t *testing.T) {
	b, s, sv := countingBackend(t)
	generateCA(t, b, s)
	data := map[string]any{"csr": testpki.AgentCSR(t, "a1")}
	for _, p := range []string{"sign-csr", "sign-csr/agent"} {
		mustOK(t, request(t, b, s, logical.UpdateOperation, p, data))
	}
	sv.calls.Store(0)
	for i := 0; i < 1000; i++ {
		mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", data))
	}
	if n := sv.calls.Load(); n != 0 {
		t.Fatalf("1000 signings made %d SystemView calls", n)
	}
}

// The signing router's shortcut is sound only while no signing operation
// asks to be forwarded.
func TestSigningPathsDoNotForward(t *testing.T) {
	b, _ := getTestBackend(t)
	for _, p := range b.signing.Paths {
		for op, h := range p.Operations {
			if props := h.Properties(); props.ForwardPerformanceStandby || props.ForwardPerformanceSecondary {
				t.Errorf("%s %s asks to be forwarded: it must not be served by the signing router", op, p.Pattern)
			}
		}
	}
	for _, path := range []string{"sign-csr", "sign-csr/agent", "sign-public-key", "sign-public-key/agent"} {
		if !isSigningRequest(&logical.Request{Operation: logical.UpdateOperation, Path: path}) {
			t.Errorf("%s is not routed to the signing router", path)
		}
	}
	for _, req := range []*logical.Request{
		{Operation: logical.ReadOperation, Path: "sign-csr"},
		{Operation: logical.HelpOperation, Path: "sign-csr"},
		{Operation: logical.UpdateOperation, Path: "sign-csrx"},
		{Operation: logical.UpdateOperation, Path: "generate"},
	} {
		if isSigningRequest(req) {
			t.Errorf("%s %s goes to the signing router", req.Operation, req.Path)
		}
	}
}

// On a performance standby the writes that ask for it are refused (and so
// forwarded by Vault), asked afresh each time, while signing runs locally.
func TestPerformanceStandby_SignsLocallyForwardsWrites(t *testing.T) {
	b, s, sv := countingBackend(t)
	generateCA(t, b, s) // on the active node

	sv.state.Store(uint32(consts.ReplicationPerformanceStandby)) // this node becomes a standby
	if _, err := requestErr(b, s, logical.UpdateOperation, "roles/agent", map[string]any{"ttl": "2h", "max_ttl": "2h"}); err != logical.ErrReadOnly {
		t.Fatalf("a role write on a performance standby: %v, want ErrReadOnly (forward to the active node)", err)
	}
	mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "a1")}))

	sv.state.Store(0) // active again: the next write is served, with no delay
	mustOK(t, request(t, b, s, logical.UpdateOperation, "roles/agent", map[string]any{"ttl": "2h", "max_ttl": "2h"}))
}
