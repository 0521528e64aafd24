package acceptance

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestReliability_RestartAndSeal: a one-node raft server keeps the CA across
// a restart, refuses to sign while sealed (503, ErrSealed), and signs again
// once unsealed.
func TestReliability_RestartAndSeal(t *testing.T) {
	n := newVaultNode(t, "single", nil)
	key, _ := n.initialize()
	n.enablePlugin()
	c := client.New(n.client, "mastio-ca")
	ca, err := c.Generate(t.Context(), client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "restart")))
	if _, err := c.SignCSR(t.Context(), csr, client.SignOptions{}); err != nil {
		t.Fatal(err)
	}

	n.stop()
	n.start()
	n.unseal(key)
	c = client.New(n.client, "mastio-ca")
	var signed *client.SignedCertificate
	took := n.waitFor("signing after restart", 60*time.Second, func() bool {
		signed, err = c.SignCSR(t.Context(), csr, client.SignOptions{})
		return err == nil
	})
	after, err := c.CA(t.Context())
	if err != nil || after.FingerprintSHA256 != ca.FingerprintSHA256 || !signed.IssuingCA.Equal(ca.Certificate) {
		t.Fatalf("after restart the CA changed: %v", err)
	}
	t.Logf("restart: same CA (sha256 %s), signing %s after unseal", ca.FingerprintSHA256[:16], took.Round(time.Millisecond))

	if err := n.client.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	_, err = c.SignCSR(t.Context(), csr, client.SignOptions{})
	var e *client.Error
	if !errors.Is(err, client.ErrSealed) || !errors.As(err, &e) || e.StatusCode != 503 {
		t.Fatalf("sign on a sealed server: %v, want a 503 ErrSealed", err)
	}
	if code, out := verifyCLI(t, n.addr, n.token); code != 3 || !strings.Contains(out, "could not check mastio-ca/") {
		t.Fatalf("mastio-ca verify on a sealed server: exit %d, want 3 (could not check)\n%s", code, out)
	}
	n.unseal(key)
	took = n.waitFor("signing after unseal", 60*time.Second, func() bool {
		_, err = c.SignCSR(t.Context(), csr, client.SignOptions{})
		return err == nil
	})
	t.Logf("seal: sign answered 503 ErrSealed; after unseal signing resumed in %s", took.Round(time.Millisecond))
	if code, out := verifyCLI(t, n.addr, n.token); code != 0 {
		t.Fatalf("mastio-ca verify after unseal: exit %d, want 0\n%s", code, out)
	}
}

// loadResult counts a signing load.
type loadResult struct {
	ok, failed atomic.Int64
}

// signLoad signs at the given concurrency until stop is closed.
func signLoad(c *client.Client, csr []byte, workers int, stop <-chan struct{}) *loadResult {
	r := &loadResult{}
	signUntil(context.Background(), c, csr, workers, stop, func(_, _ time.Time, _ *client.SignedCertificate, err error) {
		if err != nil {
			r.failed.Add(1)
			time.Sleep(10 * time.Millisecond)
			return
		}
		r.ok.Add(1)
	})
	return r
}

// TestReliability_PluginCrash kills the plugin process with SIGKILL while
// signing at concurrency 8, then reloads it through Vault under the same
// load: signing resumes, the CA is unchanged, and the failed requests are
// counted.
func TestReliability_PluginCrash(t *testing.T) {
	n := newVaultNode(t, "crash", nil)
	n.initialize()
	n.enablePlugin()
	c := client.New(n.client, "mastio-ca")
	ca, err := c.Generate(t.Context(), client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "crash")))

	measure := func(what string, disrupt func()) {
		stop := make(chan struct{})
		load := signLoad(c, csr, 8, stop)
		time.Sleep(500 * time.Millisecond)
		before := load.ok.Load()
		disrupt()
		okAt := load.ok.Load()
		recovered := n.waitFor("signing to resume after "+what, 60*time.Second, func() bool {
			return load.ok.Load() > okAt+8
		})
		time.Sleep(500 * time.Millisecond)
		close(stop)
		time.Sleep(100 * time.Millisecond)
		after, err := c.CA(t.Context())
		if err != nil || after.FingerprintSHA256 != ca.FingerprintSHA256 {
			t.Fatalf("after %s the CA changed: %v", what, err)
		}
		t.Logf("%s at concurrency 8: %d signed before, %d signed in all, %d failed; signing resumed within %s; CA unchanged",
			what, before, load.ok.Load(), load.failed.Load(), recovered.Round(time.Millisecond))
		if load.failed.Load() != 0 || recovered > 5*time.Second {
			t.Fatalf("%s: %d requests failed, signing resumed after %s (want none, and under 5s)", what, load.failed.Load(), recovered)
		}
	}

	var killed int
	measure("kill -9 of the plugin", func() {
		pid, err := n.pluginPID()
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed = pid
	})
	if pid, err := n.pluginPID(); err != nil || pid == killed {
		t.Fatalf("after kill -9 the plugin runs as pid %d (killed %d): %v", pid, killed, err)
	}
	before, err := n.pluginPID()
	if err != nil {
		t.Fatal(err)
	}
	measure("vault plugin reload", func() {
		if _, err := n.client.Sys().ReloadPlugin(&api.ReloadPluginInput{Plugin: pluginName}); err != nil {
			t.Fatal(err)
		}
	})
	if pid, err := n.pluginPID(); err != nil || pid == before {
		t.Fatalf("after reload the plugin runs as pid %d (was %d): %v", pid, before, err)
	}
}

// TestReliability_RaftFailover: three servers with integrated storage on
// loopback ports. The CA is generated through the leader; the leader is
// stopped; a new leader is elected, and sign-csr through it and through
// the remaining standby (forwarded) issues under the same CA.
func TestReliability_RaftFailover(t *testing.T) {
	n1 := newVaultNode(t, "node1", nil)
	key, _ := n1.initialize() // and active: it is a cluster of one until the others join
	n2 := newVaultNode(t, "node2", []string{n1.addr})
	n3 := newVaultNode(t, "node3", []string{n1.addr})
	for _, n := range []*vaultNode{n2, n3} {
		n.token = n1.token
		n.client.SetToken(n1.token)
		n.unseal(key)
	}
	n1.waitForVoters(3)
	n1.enablePlugin()
	ca, err := client.New(n1.client, "mastio-ca").Generate(t.Context(), client.GenerateRequest{OrgID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "raft")))

	// Kill the leader outright (no graceful step-down), and time from there.
	stopped := time.Now()
	n1.kill()
	var leader, standby *vaultNode
	var electedAfter time.Duration
	n2.waitFor("a new leader", 60*time.Second, func() bool {
		for _, n := range []*vaultNode{n2, n3} {
			if l, err := n.client.Sys().Leader(); err == nil && l.IsSelf {
				leader = n
				electedAfter = time.Since(stopped)
				return true
			}
		}
		return false
	})
	standby = n3
	if leader == n3 {
		standby = n2
	}
	if l, err := standby.client.Sys().Leader(); err != nil || l.IsSelf {
		t.Fatalf("%s is not a standby: %+v %v", standby.name, l, err)
	}
	for _, via := range []*vaultNode{leader, standby} {
		// No redirect following: the standby must forward, not send the
		// client elsewhere.
		conf := via.client.CloneConfig()
		conf.DisableRedirects = true
		direct, err := api.NewClient(conf)
		if err != nil {
			t.Fatal(err)
		}
		direct.SetToken(via.token)
		var signed *client.SignedCertificate
		via.waitFor("signing through "+via.name, 60*time.Second, func() bool {
			signed, err = client.New(direct, "mastio-ca").SignCSR(t.Context(), csr, client.SignOptions{})
			return err == nil
		})
		if !signed.IssuingCA.Equal(ca.Certificate) || signed.Certificate.CheckSignatureFrom(ca.Certificate) != nil {
			t.Fatalf("signing through %s: not the same CA", via.name)
		}
	}
	t.Logf("raft: leader killed (SIGKILL), %s elected %s after the kill; %s (leader) and %s (standby, forwarding, redirects off) sign under the same CA (sha256 %s); %s from the kill to both signing",
		leader.name, electedAfter.Round(time.Millisecond), leader.name, standby.name, ca.FingerprintSHA256[:16], time.Since(stopped).Round(time.Millisecond))
}
