package acceptance

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestIntermediate_ThreeTier: the Org CA signs the intermediate inside the
// plugin, the intermediate signs agents (through the sign-only KMS, which
// does not know which CA is active), and openssl verifies the chain.
func TestIntermediate_ThreeTier(t *testing.T) {
	ctx := t.Context()
	mount, c, org, inter := newCA(t, true)
	if inter.Certificate.Subject.CommonName != "acme Mastio CA" || !inter.Certificate.MaxPathLenZero || inter.Certificate.CheckSignatureFrom(org.Certificate) != nil {
		t.Fatalf("intermediate: %v", inter.Certificate.Subject)
	}
	if _, err := c.GenerateIntermediate(ctx, client.IntermediateRequest{}); !errors.Is(err, client.ErrExists) {
		t.Fatalf("second GenerateIntermediate: %v, want ErrExists", err)
	}
	assertLints(t, org.CertificatePEM, inter.CertificatePEM)
	if code, body := unauthenticatedGet(t, mount+"/intermediate/cert"); code != 200 || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Fatalf("intermediate/cert without a token: %d", code)
	}

	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("org.pem", org.CertificatePEM)
	write("int.pem", inter.CertificatePEM)

	kms := client.NewKMS(server.root, mount, "agent")
	signed, err := kms.Sign(ctx, []byte(readFile(t, agentCSR(t, dir, "agent-3t"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.CAChainPEM) != 2 || signed.CAChainPEM[0] != inter.CertificatePEM || signed.CAChainPEM[1] != org.CertificatePEM {
		t.Fatalf("ca_chain is not [intermediate, Org CA]")
	}
	write("leaf.pem", signed.CertificatePEM)
	if out := mustOpenSSL(t, dir, "verify", "-CAfile", "org.pem", "-untrusted", "int.pem", "leaf.pem"); !strings.Contains(out, "leaf.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	if out, _ := opensslMayFail(dir, "verify", "-CAfile", "org.pem", "leaf.pem"); strings.Contains(out, "leaf.pem: OK") {
		t.Fatal("the leaf verifies without the intermediate: it was not signed by it")
	}
	assertLints(t, signed.CertificatePEM)

	// Enrollment: a bare public key made by openssl, through the KMS.
	mustOpenSSL(t, dir, "pkey", "-in", "agent-3t.key", "-pubout", "-out", "agent-3t.pub")
	byKey, err := kms.SignPublicKey(ctx, []byte(readFile(t, filepath.Join(dir, "agent-3t.pub"))), "agent-3t")
	if err != nil {
		t.Fatal(err)
	}
	if byKey.SPIFFEID != "spiffe://cullis.local/acme/agent-3t" || byKey.Certificate.Subject.CommonName != "acme::agent-3t" {
		t.Fatalf("sign-public-key: %s %q", byKey.SPIFFEID, byKey.Certificate.Subject)
	}
	write("bykey.pem", byKey.CertificatePEM)
	if out := mustOpenSSL(t, dir, "verify", "-CAfile", "org.pem", "-untrusted", "int.pem", "bykey.pem"); !strings.Contains(out, "bykey.pem: OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	assertLints(t, byKey.CertificatePEM)

	// The principal profile, field for field where it differs from agent.
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "user.key", "-out", "user.csr", "-subj", "/CN=ignored",
		"-addext", "subjectAltName=URI:spiffe://cullis.local/acme/user/alice")
	now := time.Now()
	p, err := c.SignCSR(ctx, []byte(readFile(t, filepath.Join(dir, "user.csr"))), client.SignOptions{Role: "principal"})
	if err != nil {
		t.Fatal(err)
	}
	pc := p.Certificate
	if len(pc.Subject.Names) != 0 || pc.NotAfter.Sub(now) > time.Hour+time.Minute || now.Sub(pc.NotBefore) < 4*time.Minute {
		t.Fatalf("principal: subject %q, %s..%s", pc.Subject, pc.NotBefore, pc.NotAfter)
	}
	kuCritical := false
	for _, e := range pc.Extensions {
		if e.Id.String() == "2.5.29.15" {
			kuCritical = e.Critical
		}
	}
	if pc.KeyUsage != x509.KeyUsageDigitalSignature || !kuCritical || len(pc.ExtKeyUsage) != 1 || pc.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("principal: KU %b (critical %v), EKU %v", pc.KeyUsage, kuCritical, pc.ExtKeyUsage)
	}
	if len(pc.URIs) != 1 || pc.URIs[0].String() != "spiffe://cullis.local/acme/user/alice" {
		t.Fatalf("principal URIs %v", pc.URIs)
	}
	assertLints(t, p.CertificatePEM)
}

// TestIntermediate_RotateContinuity rotates and checks the continuity
// proof with the client and with openssl dgst.
func TestIntermediate_RotateContinuity(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)
	if _, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RotateIntermediate(ctx, client.IntermediateRequest{}); err == nil || !strings.Contains(err.Error(), "no intermediate to rotate") {
		t.Fatalf("rotate before generate: %v", err)
	}
	old, err := c.GenerateIntermediate(ctx, client.IntermediateRequest{})
	if err != nil {
		t.Fatal(err)
	}
	next, err := c.RotateIntermediate(ctx, client.IntermediateRequest{GracePeriod: 14 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if next.Previous == nil || !next.Previous.Equal(old.Certificate) || len(next.Bundle) != 2 || next.Version != 2 {
		t.Fatalf("rotation: previous %v, bundle %d, version %d", next.Previous != nil, len(next.Bundle), next.Version)
	}
	if err := client.VerifyContinuity(old.Certificate, next.Certificate, next.ContinuityProof); err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyContinuity(next.Certificate, next.Certificate, next.ContinuityProof); !errors.Is(err, client.ErrContinuity) {
		t.Fatalf("the proof verifies under the wrong key: %v", err)
	}
	assertLints(t, next.CertificatePEM)

	// openssl, as an outside judge: the old intermediate's public key
	// verifies the proof over the new certificate's DER.
	dir := t.TempDir()
	sig, err := base64.RawURLEncoding.DecodeString(next.ContinuityProof)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"old.pem": []byte(old.CertificatePEM), "new.der": next.Certificate.Raw, "proof.sig": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mustOpenSSL(t, dir, "x509", "-in", "old.pem", "-pubkey", "-noout", "-out", "old.pub")
	if out := mustOpenSSL(t, dir, "dgst", "-sha256", "-verify", "old.pub", "-signature", "proof.sig", "new.der"); !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl dgst: %s", out)
	}

	// The new one signs now; the published bundle still carries the old one.
	signed, err := c.SignCSR(ctx, []byte(readFile(t, agentCSR(t, dir, "after-rotate"))), client.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !signed.IssuingCA.Equal(next.Certificate) {
		t.Fatal("after rotation the new intermediate is not the signer")
	}
	got, err := c.Intermediate(ctx)
	if err != nil || got.Previous == nil || !got.Previous.Equal(old.Certificate) {
		t.Fatalf("intermediate/cert after rotation: %v", err)
	}
	assertLints(t, signed.CertificatePEM)
}

// TestIntermediate_SignDuringRotation signs at concurrency 8 while the
// intermediate rotates three times: no signing fails, every certificate
// verifies against the Org CA, and each was signed by the intermediate that
// was current while its request was in flight (never a retired one).
func TestIntermediate_SignDuringRotation(t *testing.T) {
	ctx := t.Context()
	_, c, org, first := newCA(t, true)
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "rotating")))

	// The k-th intermediate is current from the start of the call that made
	// it until the next rotation call returns.
	type period struct {
		cert       *x509.Certificate
		from, till time.Time
	}
	periods := []period{{cert: first.Certificate, from: time.Time{}}}
	type result struct {
		leaf       *x509.Certificate
		sent, recv time.Time
		err        error
	}
	var (
		mu      sync.Mutex
		results []result
	)
	stop := make(chan struct{})
	wait := signUntil(ctx, c, csr, 8, stop, func(sent, recv time.Time, s *client.SignedCertificate, err error) {
		r := result{sent: sent, recv: recv, err: err}
		if err == nil {
			r.leaf = s.Certificate
		}
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond)
		from := time.Now()
		next, err := c.RotateIntermediate(ctx, client.IntermediateRequest{})
		if err != nil {
			t.Fatal(err)
		}
		periods[len(periods)-1].till = time.Now()
		periods = append(periods, period{cert: next.Certificate, from: from})
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wait()
	periods[len(periods)-1].till = time.Now()

	roots, mids := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(org.Certificate)
	for _, p := range periods {
		mids.AddCert(p.cert)
	}
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("a signing during rotation failed: %v", r.err)
		}
		if _, err := r.leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: mids, CurrentTime: r.leaf.NotBefore.Add(6 * time.Minute), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("a certificate signed during rotation does not verify: %v", err)
		}
		current := false
		for _, p := range periods {
			if string(r.leaf.AuthorityKeyId) == string(p.cert.SubjectKeyId) {
				// Its request overlapped the time that intermediate was current.
				current = !r.sent.After(p.till) && !r.recv.Before(p.from)
			}
		}
		if !current {
			t.Fatalf("a certificate requested %s..%s was signed by an intermediate that was not current then", r.sent.Format(time.StampMicro), r.recv.Format(time.StampMicro))
		}
	}
	if len(results) < 50 {
		t.Fatalf("only %d signings happened during the rotations", len(results))
	}
	t.Logf("%d signings during 3 rotations: all verified, each by the intermediate current at the time, none failed", len(results))
}
