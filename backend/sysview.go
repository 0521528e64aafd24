package backend

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/helper/consts"
	"github.com/hashicorp/vault/sdk/logical"
)

// replicationStateTTL bounds how long replicationStateView answers from
// memory before it asks Vault again.
const replicationStateTTL = time.Second

// replicationStateView is Vault's SystemView with ReplicationState answered
// from memory for up to replicationStateTTL.
//
// framework.Backend asks for the replication state on every request to a
// path with Operations, to honour ForwardPerformanceStandby and
// ForwardPerformanceSecondary. In an external plugin each ask is a gRPC call
// from the plugin back into Vault: a third round trip on every signing, on
// top of Vault's existence check and the request itself (BENCHMARKS.md).
// Signing paths set neither flag, so the answer never changes what they do.
// For the write paths that do set them, a node's replication state changes
// only when it is promoted, demoted or joins replication, which Vault follows
// by reloading its mounts (a new backend, a new view); and within the TTL a
// stale answer is still safe, because a performance standby's storage
// refuses writes and Vault forwards such a request to the active node.
//
// The wrapper hides optional interfaces of the view it wraps (the framework
// looks for entropy.Sourcer); the gRPC view an external plugin gets has
// none, and this backend draws randomness from crypto/rand.
type replicationStateView struct {
	logical.SystemView
	now    func() time.Time
	cached atomic.Pointer[cachedReplicationState]
}

type cachedReplicationState struct {
	state   consts.ReplicationState
	expires time.Time
}

func newReplicationStateView(sv logical.SystemView) *replicationStateView {
	return &replicationStateView{SystemView: sv, now: time.Now}
}

// ReplicationState returns the cached state, refreshing it from Vault when
// older than replicationStateTTL. Concurrent refreshes are harmless: each
// stores what Vault answered.
func (v *replicationStateView) ReplicationState() consts.ReplicationState {
	now := v.now()
	if c := v.cached.Load(); c != nil && now.Before(c.expires) {
		return c.state
	}
	state := v.SystemView.ReplicationState()
	v.cached.Store(&cachedReplicationState{state: state, expires: now.Add(replicationStateTTL)})
	return state
}
