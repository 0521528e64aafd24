package acceptance

import (
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ocsp"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// Revocation under failure and load (issue 15, point 7): a revoke the raft
// leader acknowledged survives its SIGKILL and a restart of the cluster;
// concurrent revokes of distinct and identical serials lose nothing and
// count nothing twice; revoking while signing at concurrency 8 fails no
// signing.

// newFastRaftNode is newVaultNode with raft's timing at
// performance_multiplier = 1 (Vault's default, 5, is for slow links): an
// election after a SIGKILL or a restart takes about a second, not ten,
// which keeps the revocation tests under a minute on two cores.
func newFastRaftNode(t *testing.T, name string, raftPeers []string) *vaultNode {
	t.Helper()
	return newVaultNodeRaft(t, name, raftPeers, "", "  performance_multiplier = 1\n")
}

// newRaftCluster starts three raft servers on loopback (node1 initialises
// the cluster, node2 and node3 join it) and waits until all three are
// voters, as TestReliability_RaftFailover does. It returns the unseal key.
func newRaftCluster(t *testing.T) ([]*vaultNode, string) {
	t.Helper()
	n1 := newFastRaftNode(t, "node1", nil)
	key, _ := n1.initialize()
	// Autopilot promotes a joined server to voter once it has been stable
	// this long (10s by default).
	if _, err := n1.client.Logical().Write("sys/storage/raft/autopilot/configuration", map[string]any{"server_stabilization_time": "2s"}); err != nil {
		t.Fatal(err)
	}
	n2 := newFastRaftNode(t, "node2", []string{n1.addr})
	n3 := newFastRaftNode(t, "node3", []string{n1.addr})
	for _, n := range []*vaultNode{n2, n3} {
		n.token = n1.token
		n.client.SetToken(n1.token)
		n.unseal(key)
	}
	n1.waitForVoters(3)
	return []*vaultNode{n1, n2, n3}, key
}

// tryCRL fetches and parses a DER CRL, reporting failures instead of
// failing the test (for polling).
func tryCRL(u string) (*x509.RevocationList, error) {
	resp, err := noRedirects.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return x509.ParseRevocationList(body)
}

// tryOCSP asks base/ocsp/<base64> about leaf, reporting failures.
func tryOCSP(base string, leaf, issuer *x509.Certificate) (*ocsp.Response, error) {
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		return nil, err
	}
	u := base + "/ocsp/" + pathEscapedBase64(req)
	resp, err := noRedirects.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return ocsp.ParseResponseForCert(body, leaf, issuer)
}

// directClient is n's API client with redirects off: a standby must
// forward, not send the client to the leader.
func directClient(t *testing.T, n *vaultNode) *api.Client {
	t.Helper()
	conf := n.client.CloneConfig()
	conf.DisableRedirects = true
	c, err := api.NewClient(conf)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(n.token)
	return c
}

// leaderOf waits until one of nodes is active and returns it.
func leaderOf(t *testing.T, nodes []*vaultNode) *vaultNode {
	t.Helper()
	var leader *vaultNode
	nodes[0].waitFor("a leader", 60*time.Second, func() bool {
		for _, n := range nodes {
			if l, err := n.client.Sys().Leader(); err == nil && l.IsSelf {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// TestRevocation_SurvivesLeaderKillAndRestart: on a three-node raft
// cluster, a leaf revoked through the leader is, after the leader's
// SIGKILL, in the CRL (number at least the one revoke returned) and
// revoked in OCSP, served by the new leader and through the standby
// (forwarding, redirects off); after all three servers restart (the
// killed one too) it is still there, and a second revoke answers the first.
func TestRevocation_SurvivesLeaderKillAndRestart(t *testing.T) {
	start := time.Now()
	nodes, key := newRaftCluster(t)
	n1 := nodes[0]
	n1.enablePlugin()
	c := client.New(n1.client, "mastio-ca")
	if _, err := c.Generate(t.Context(), client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	inter, err := c.GenerateIntermediate(t.Context(), client.IntermediateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	csr := []byte(readFile(t, agentCSR(t, dir, "raft")))
	signed := make([]*client.SignedCertificate, 3)
	for i := range signed {
		if signed[i], err = c.SignCSR(t.Context(), csr, client.SignOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	leaf, kept, later := signed[0], signed[1], signed[2]
	if _, err := tryCRL(n1.addr + "/v1/mastio-ca/crl"); err != nil { // the CRL state exists before the revoke
		t.Fatal(err)
	}
	if r, err := tryOCSP(n1.addr+"/v1/mastio-ca", leaf.Certificate, inter.Certificate); err != nil || r.Status != ocsp.Good {
		t.Fatalf("OCSP before the revoke: %v %+v", err, r)
	}
	rev := mustRevoke(t, n1.client, "mastio-ca", map[string]any{"certificate": leaf.CertificatePEM, "reason": "keyCompromise"})
	if rev.AlreadyRevoked || rev.CRLNumber <= 0 {
		t.Fatalf("revoke through the leader: %+v", rev)
	}
	clusterUp := time.Since(start)

	// check polls through n until its CRL lists the revoked leaf (and not
	// the kept one) with a number ≥ the one revoke returned, and OCSP says
	// revoked (and good for the kept leaf).
	check := func(what string, n *vaultNode, minNumber int64) int64 {
		t.Helper()
		base := n.addr + "/v1/mastio-ca"
		var number int64
		poll(t, n, what+": the revocation in the CRL and OCSP through "+n.name, 60*time.Second, func() error {
			crl, err := tryCRL(base + "/crl")
			if err != nil {
				return err
			}
			if err := crl.CheckSignatureFrom(inter.Certificate); err != nil {
				return fmt.Errorf("CRL signature: %w", err)
			}
			e, listed := crlEntry(crl, leaf.Certificate.SerialNumber)
			_, keptListed := crlEntry(crl, kept.Certificate.SerialNumber)
			if !listed || keptListed || e.ReasonCode != ocsp.KeyCompromise || !e.RevocationTime.Equal(rev.RevocationTime) || crl.Number.Int64() < minNumber {
				return fmt.Errorf("CRL #%s: revoked leaf listed %v (%+v), kept leaf listed %v; want #≥%d", crl.Number, listed, e, keptListed, minNumber)
			}
			r, err := tryOCSP(base, leaf.Certificate, inter.Certificate)
			if err != nil || r.Status != ocsp.Revoked || r.RevocationReason != ocsp.KeyCompromise {
				return fmt.Errorf("OCSP for the revoked leaf: %v %+v", err, r)
			}
			if r, err := tryOCSP(base, kept.Certificate, inter.Certificate); err != nil || r.Status != ocsp.Good {
				return fmt.Errorf("OCSP for the kept leaf: %v %+v", err, r)
			}
			number = crl.Number.Int64()
			return nil
		})
		return number
	}

	killed := time.Now()
	n1.kill()
	leader := leaderOf(t, nodes[1:])
	standby := nodes[1]
	if leader == standby {
		standby = nodes[2]
	}
	if l, err := standby.client.Sys().Leader(); err != nil || l.IsSelf {
		t.Fatalf("%s is not a standby: %+v %v", standby.name, l, err)
	}
	var numbers []int64
	for _, via := range []*vaultNode{leader, standby} {
		numbers = append(numbers, check("after the leader's SIGKILL", via, rev.CRLNumber))
	}
	// A revoke through the standby (forwarded, redirects off) moves the
	// CRL number on from where the dead leader left it.
	second := mustRevoke(t, directClient(t, standby), "mastio-ca", revokeData(later, false, "affiliationChanged"))
	if second.AlreadyRevoked || second.CRLNumber <= numbers[0] {
		t.Fatalf("revoke through the standby after the failover: %+v, want a CRL number above %d", second, numbers[0])
	}
	t.Logf("raft: revoke through node1 → serial %s, crl_number %d; node1 SIGKILLed, %s leader; CRL #%d via %s (leader) and #%d via %s (standby, redirects off) list it, OCSP revoked, %s after the kill; a revoke through the standby then → crl_number %d",
		rev.SerialNumber, rev.CRLNumber, leader.name, numbers[0], leader.name, numbers[1], standby.name, time.Since(killed).Round(time.Millisecond), second.CRLNumber)

	// Restart everything, the killed node too.
	restarted := time.Now()
	for _, n := range nodes[1:] {
		n.stop()
	}
	n1.single = false // it may not win the election now
	for _, n := range nodes {
		n.start()
	}
	for _, n := range nodes {
		n.unseal(key)
	}
	leader = leaderOf(t, nodes)
	for _, via := range nodes {
		check("after a restart of all three", via, second.CRLNumber)
	}
	crl, err := tryCRL(leader.addr + "/v1/mastio-ca/crl")
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := crlEntry(crl, later.Certificate.SerialNumber); !ok || e.ReasonCode != ocsp.AffiliationChanged || len(crl.RevokedCertificateEntries) != 2 {
		t.Fatalf("after the restart the CRL #%s lists %d entries; the leaf revoked through the standby: %v %+v", crl.Number, len(crl.RevokedCertificateEntries), ok, e)
	}
	var again *revokeAnswer
	leader.waitFor("revoke through the leader after the restart", 60*time.Second, func() bool {
		again, err = revokeWith(leader.client, "mastio-ca", map[string]any{"certificate": leaf.CertificatePEM, "reason": "superseded"})
		return err == nil
	})
	if !again.AlreadyRevoked || !again.RevocationTime.Equal(rev.RevocationTime) || again.Reason != "keyCompromise" {
		t.Fatalf("revoke after the restart: %+v, want the first revocation (%+v)", again, rev)
	}
	for _, n := range nodes {
		assertNoDataRace(t, n.logPath)
	}
	t.Logf("restart of all three servers: %s leader after %s; the CRL (#%s) through each node lists both serials; revoke again → already_revoked=%v, reason %s; cluster up in %s, whole test %s",
		leader.name, time.Since(restarted).Round(time.Millisecond), crl.Number, again.AlreadyRevoked, again.Reason, clusterUp.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// signBatch signs n copies of csr with sign-csr batches (each copy gets
// its own serial).
func signBatch(t *testing.T, c *client.Client, csr []byte, n int) []*client.SignedCertificate {
	t.Helper()
	var out []*client.SignedCertificate
	for len(out) < n {
		k := min(100, n-len(out))
		res, err := c.SignCSRBatch(t.Context(), slices.Repeat([][]byte{csr}, k), client.SignOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			out = append(out, r.Certificate)
		}
	}
	return out
}

// revokeData asks to revoke s by certificate, or by serial, issuer and
// not_after.
func revokeData(s *client.SignedCertificate, byCert bool, reason string) map[string]any {
	if byCert {
		return map[string]any{"certificate": s.CertificatePEM, "reason": reason}
	}
	return map[string]any{"serial_number": s.SerialNumber, "issuer": "intermediate-ca", "not_after": s.Certificate.NotAfter.Format(time.RFC3339), "reason": reason}
}

// TestRevocation_ConcurrentRevokes: 8 goroutines revoke 200 distinct
// leaves (25 each, half by certificate, half by serial) and all 8 the same
// one. Nothing fails; the shared leaf is reported already_revoked by all
// but one caller, all with the first time; every first revoke got its
// own CRL number, rising within each goroutine; the CRL lists each of the
// 201 serials exactly once, with a number at least the highest returned.
func TestRevocation_ConcurrentRevokes(t *testing.T) {
	start := time.Now()
	mount, c, _, inter := newCA(t, true)
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "many")))
	leaves := signBatch(t, c, csr, 201)
	shared, distinct := leaves[200], leaves[:200]
	signedIn := time.Since(start)

	const workers = 8
	type result struct {
		leaf *client.SignedCertificate
		a    *revokeAnswer
		err  error
	}
	results := make([][]result, workers)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			mine := []*client.SignedCertificate{shared}
			for i := w; i < len(distinct); i += workers {
				mine = append(mine, distinct[i])
			}
			for i, s := range mine {
				a, err := revokeWith(server.root, mount, revokeData(s, i%2 == 0, "cessationOfOperation"))
				results[w] = append(results[w], result{s, a, err})
			}
		}()
	}
	revoking := time.Now()
	close(gate)
	wg.Wait()
	took := time.Since(revoking)

	var sharedFirst, sharedAgain []*revokeAnswer
	var numbers []int64
	for w, rs := range results {
		var prev int64
		for _, r := range rs {
			if r.err != nil {
				t.Fatalf("goroutine %d revoking %s: %v", w, r.leaf.SerialNumber, r.err)
			}
			if serialOf(r.a.SerialNumber).Cmp(r.leaf.Certificate.SerialNumber) != 0 {
				t.Fatalf("revoke of %s answered serial %s", r.leaf.SerialNumber, r.a.SerialNumber)
			}
			if r.a.CRLNumber < prev {
				t.Errorf("goroutine %d: CRL number went from %d to %d", w, prev, r.a.CRLNumber)
			}
			prev = r.a.CRLNumber
			switch {
			case r.leaf == shared && r.a.AlreadyRevoked:
				sharedAgain = append(sharedAgain, r.a)
				continue
			case r.leaf == shared:
				sharedFirst = append(sharedFirst, r.a)
			case r.a.AlreadyRevoked:
				t.Errorf("revoking distinct leaf %s reported already_revoked", r.leaf.SerialNumber)
			}
			numbers = append(numbers, r.a.CRLNumber)
		}
	}
	if len(sharedFirst) != 1 || len(sharedAgain) != workers-1 {
		t.Fatalf("the shared leaf: %d first revokes, %d already_revoked; want 1 and %d", len(sharedFirst), len(sharedAgain), workers-1)
	}
	for _, a := range sharedAgain {
		if !a.RevocationTime.Equal(sharedFirst[0].RevocationTime) || a.Reason != sharedFirst[0].Reason || a.CRLNumber < sharedFirst[0].CRLNumber {
			t.Errorf("already_revoked answer %+v differs from the first %+v", a, sharedFirst[0])
		}
	}
	sort.Slice(numbers, func(i, j int) bool { return numbers[i] < numbers[j] })
	for i := 1; i < len(numbers); i++ {
		if numbers[i] <= numbers[i-1] {
			t.Errorf("two first revokes got CRL number %d (%d then %d)", numbers[i], numbers[i-1], numbers[i])
			break
		}
	}

	base := server.addr + "/v1/" + mount
	crl, der := fetchCRL(t, base+"/crl")
	if err := crl.CheckSignatureFrom(inter.Certificate); err != nil {
		t.Fatal(err)
	}
	counts := crlSerials(crl)
	if len(crl.RevokedCertificateEntries) != 201 || len(counts) != 201 {
		t.Errorf("the CRL holds %d entries for %d serials, want 201 and 201", len(crl.RevokedCertificateEntries), len(counts))
	}
	for _, s := range leaves {
		if n := counts[s.Certificate.SerialNumber.Text(16)]; n != 1 {
			t.Errorf("the CRL lists %s %d times", s.SerialNumber, n)
		}
	}
	if max := numbers[len(numbers)-1]; crl.Number.Int64() < max {
		t.Errorf("the CRL is #%s, below the highest number revoke returned (%d)", crl.Number, max)
	}
	if bad := lintCRL(t, der); len(bad) > 0 {
		t.Errorf("zlint on the CRL of 201 entries: %v", bad)
	}
	for _, s := range []*client.SignedCertificate{shared, distinct[0], distinct[199]} {
		if r := ocspGet(t, base, s.Certificate, inter.Certificate); r.Status != ocsp.Revoked || r.RevocationReason != ocsp.CessationOfOperation {
			t.Errorf("OCSP for %s: %s (reason %d)", s.SerialNumber, ocspStatus[r.Status], r.RevocationReason)
		}
	}
	assertNoDataRace(t, server.logPath)
	t.Logf("%d goroutines: 201 revokes + %d repeats of one serial in %s (%d leaves signed in %s); CRL numbers %d..%d, all distinct; CRL #%s lists 201 serials once each (%d bytes); shared serial: 1 first revoke, %d already_revoked; race detector in the plugin: %v",
		workers, workers-1, took.Round(time.Millisecond), len(leaves), signedIn.Round(time.Millisecond), numbers[0], numbers[len(numbers)-1], crl.Number, len(der), len(sharedAgain), raceEnabled)
}

// TestRevocation_WhileSigning: 50 leaves are revoked while sign-csr runs
// at concurrency 8; no signing fails, signing goes on during the revokes,
// and the CRL lists the 50.
func TestRevocation_WhileSigning(t *testing.T) {
	mount, c, _, inter := newCA(t, true)
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "load")))
	toRevoke := signBatch(t, c, csr, 50)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	wait := signUntil(t.Context(), c, csr, 8, stop, func(_, _ time.Time, s *client.SignedCertificate, err error) {
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		if s.Certificate.CheckSignatureFrom(inter.Certificate) != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, "a leaf not signed by the intermediate")
			return
		}
		ok.Add(1)
	})
	time.Sleep(300 * time.Millisecond)
	atStart := ok.Load()
	began := time.Now()
	var slowest time.Duration
	for i, s := range toRevoke {
		t0 := time.Now()
		a, err := revokeWith(server.root, mount, revokeData(s, i%2 == 0, "keyCompromise"))
		if err != nil || a.AlreadyRevoked {
			close(stop)
			wait()
			t.Fatalf("revoke %d of 50 while signing: %v %+v", i, err, a)
		}
		slowest = max(slowest, time.Since(t0))
	}
	revokeTook := time.Since(began)
	during := ok.Load() - atStart
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wait()

	if failed.Load() != 0 {
		t.Errorf("%d signings failed while revoking (first: %v)", failed.Load(), firstErr.Load())
	}
	if during == 0 {
		t.Errorf("no signing completed during the %s of revokes", revokeTook)
	}
	crl, _ := fetchCRL(t, server.addr+"/v1/"+mount+"/crl")
	counts := crlSerials(crl)
	for _, s := range toRevoke {
		if counts[s.Certificate.SerialNumber.Text(16)] != 1 {
			t.Errorf("the CRL does not list %s once", s.SerialNumber)
		}
	}
	if len(crl.RevokedCertificateEntries) != 50 {
		t.Errorf("the CRL lists %d entries, want 50", len(crl.RevokedCertificateEntries))
	}
	assertNoDataRace(t, server.logPath)
	t.Logf("signing at concurrency 8: %d signed in all, %d during the 50 revokes (%s, slowest revoke %s), %d failed; CRL #%s lists the 50",
		ok.Load(), during, revokeTook.Round(time.Millisecond), slowest.Round(time.Millisecond), failed.Load(), crl.Number)
}

// assertNoDataRace fails the test when a race-built plugin reported a
// data race in a Vault server's log (Vault logs its plugins' stderr).
func assertNoDataRace(t *testing.T, logPath string) {
	t.Helper()
	if !raceEnabled {
		return
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if i := strings.Index(string(b), "DATA RACE"); i >= 0 {
		t.Errorf("the race detector reported a data race in the plugin (%s):\n%s", logPath, b[max(0, i-200):min(len(b), i+3000)])
	}
}

// pathEscapedBase64 is the base64 of der escaped for a URL path (RFC 6960
// appendix A.1).
func pathEscapedBase64(der []byte) string {
	return url.PathEscape(base64.StdEncoding.EncodeToString(der))
}

// poll calls cond until it returns nil; past limit it fails the test with
// cond's last error and the tail of n's log.
func poll(t *testing.T, n *vaultNode, what string, limit time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tail, _ := tailFile(n.logPath, 30)
			t.Fatalf("%s: waited %s for %s; last: %v\n%s", n.name, limit, what, err, tail)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRevocation_CrashBetweenEntryAndState: revoke writes the revocation
// entry, then the issuer's CRL state (number, thisUpdate), in two storage
// writes. A crash between them (SIGKILL of Vault or of the plugin) leaves
// the entry stored and the state one revoke behind; that storage is made
// here with sys/raw, and the mount's plugin reloaded (fresh memory, as
// after the crash). Then no CRL number is published twice with different
// contents (RFC 5280 5.2.3), and the caller's retry of the unanswered
// revoke answers already_revoked with a crl_number whose CRL lists the
// serial.
func TestRevocation_CrashBetweenEntryAndState(t *testing.T) {
	mount, c, _, inter := newCA(t, true)
	base := server.addr + "/v1/" + mount
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "crash")))
	leaves := signBatch(t, c, csr, 2)
	a, b := leaves[0], leaves[1]
	mounts, err := server.root.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	stateKey := "sys/raw/logical/" + mounts[mount+"/"].UUID + "/crl-state/" + keyID(inter.Certificate)

	fetchCRL(t, base+"/crl") // the state exists
	mustRevoke(t, server.root, mount, revokeData(a, true, "keyCompromise"))
	published, _ := fetchCRL(t, base+"/crl") // listing a
	saved, err := server.root.Logical().Read(stateKey)
	if err != nil || saved == nil {
		t.Fatalf("reading %s: %v", stateKey, err)
	}
	rb := mustRevoke(t, server.root, mount, revokeData(b, true, "keyCompromise"))
	// The crash: b's entry is stored, the state is still the one before.
	if _, err := server.root.Logical().Write(stateKey, map[string]any{"value": saved.Data["value"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.root.Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{mount}}); err != nil {
		t.Fatal(err)
	}
	var after *x509.RevocationList
	poll(t, &vaultNode{name: "dev server", logPath: server.logPath}, "the CRL after the reload", 30*time.Second, func() error {
		after, err = tryCRL(base + "/crl")
		return err
	})
	if err := after.CheckSignatureFrom(inter.Certificate); err != nil {
		t.Fatal(err)
	}
	_, bListed := crlEntry(after, b.Certificate.SerialNumber)
	if after.Number.Cmp(published.Number) < 0 {
		t.Errorf("after the crash the CRL number went back from #%s to #%s", published.Number, after.Number)
	}
	if after.Number.Cmp(published.Number) == 0 && !slices.Equal(serialList(after), serialList(published)) {
		t.Errorf("CRL #%s is published twice with different contents: first %v, after the crash %v", after.Number, serialList(published), serialList(after))
	}
	ocspAfter := "error"
	if r, err := tryOCSP(base, b.Certificate, inter.Certificate); err == nil {
		ocspAfter = ocspStatus[r.Status]
	}
	// The caller never had an answer (the crash came first), so it retries.
	again := mustRevoke(t, server.root, mount, revokeData(b, true, "keyCompromise"))
	retried, _ := fetchCRL(t, base+"/crl")
	_, bListedAfterRetry := crlEntry(retried, b.Certificate.SerialNumber)
	if !again.AlreadyRevoked || again.CRLNumber <= published.Number.Int64() || !bListedAfterRetry || retried.Number.Int64() < again.CRLNumber || len(retried.RevokedCertificateEntries) != 2 {
		t.Errorf("the retried revoke of b answered already_revoked=%v crl_number %d; the CRL is then #%s listing b %v (%d entries); want already_revoked, a number above #%s, and a CRL of that number listing a and b",
			again.AlreadyRevoked, again.CRLNumber, retried.Number, bListedAfterRetry, len(retried.RevokedCertificateEntries), published.Number)
	}
	t.Logf("crash between the entry and the state write (revoke of b had answered crl_number %d): after a reload the CRL is #%s (b listed: %v) and OCSP for b says %s; the retried revoke → already_revoked=%v, crl_number %d, and CRL #%s lists a and b",
		rb.CRLNumber, after.Number, bListed, ocspAfter, again.AlreadyRevoked, again.CRLNumber, retried.Number)
}

// serialList is a CRL's serials, sorted.
func serialList(crl *x509.RevocationList) []string {
	var out []string
	for s := range crlSerials(crl) {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
