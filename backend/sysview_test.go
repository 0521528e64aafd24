package backend

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/helper/license"
	"github.com/hashicorp/vault/sdk/logical"
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

// After the first signing, 1,000 more make no call back into Vault: no
// storage (TestSignCSR_NoStorageAfterFirst) and no SystemView call, which
// the framework would otherwise make on every request for the replication
// state.
func TestSignCSR_NoSystemViewCallsAfterFirst(t *testing.T) {
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	config.Logger = hclog.NewNullLogger()
	sv := &countingSystemView{SystemView: config.System}
	config.System = sv
	lb, err := Factory(t.Context(), config)
	if err != nil {
		t.Fatal(err)
	}
	b, s := lb.(*mastioBackend), config.StorageView
	if err := b.Initialize(t.Context(), &logical.InitializationRequest{Storage: s}); err != nil {
		t.Fatal(err)
	}
	generateCA(t, b, s)
	data := map[string]any{"csr": agentCSR(t, "a1")}
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

func TestReplicationStateView_RefreshesAfterTTL(t *testing.T) {
	sv := &countingSystemView{SystemView: logical.TestSystemView()}
	v := newReplicationStateView(sv)
	now := time.Unix(1_700_000_000, 0)
	v.now = func() time.Time { return now }

	sv.state.Store(uint32(consts.ReplicationPerformancePrimary))
	if got := v.ReplicationState(); got != consts.ReplicationPerformancePrimary {
		t.Fatalf("first answer %v", got)
	}
	sv.state.Store(uint32(consts.ReplicationPerformanceStandby))
	now = now.Add(replicationStateTTL - time.Millisecond)
	if got := v.ReplicationState(); got != consts.ReplicationPerformancePrimary {
		t.Fatalf("within the TTL: %v, want the cached answer", got)
	}
	if n := sv.calls.Load(); n != 1 {
		t.Fatalf("%d calls to Vault within the TTL, want 1", n)
	}
	now = now.Add(time.Millisecond)
	if got := v.ReplicationState(); !got.HasState(consts.ReplicationPerformanceStandby) {
		t.Fatalf("after the TTL: %v, want Vault's new answer", got)
	}
	if n := sv.calls.Load(); n != 2 {
		t.Fatalf("%d calls to Vault, want 2", n)
	}
}

// A performance standby must still refuse (and so forward) the writes that
// ask for it, through the cached view.
func TestReplicationStateView_StandbyForwardsWrites(t *testing.T) {
	config := logical.TestBackendConfig()
	config.StorageView = &logical.InmemStorage{}
	config.Logger = hclog.NewNullLogger()
	sv := &countingSystemView{SystemView: config.System}
	sv.state.Store(uint32(consts.ReplicationPerformanceStandby))
	config.System = sv
	lb, err := Factory(t.Context(), config)
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*mastioBackend)
	_, err = requestErr(b, config.StorageView, logical.UpdateOperation, "generate", map[string]any{"org_id": "acme"})
	if err != logical.ErrReadOnly {
		t.Fatalf("generate on a performance standby: %v, want ErrReadOnly (forward to the active node)", err)
	}
}
