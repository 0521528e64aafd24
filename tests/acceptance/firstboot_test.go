package acceptance

import (
	"errors"
	"testing"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestClient_ReplicasRaceOnFirstBoot: 16 Mastio replicas call Generate at
// once against the real server; exactly one CA is created, 15 get a
// conflict, and every certificate signed afterwards chains to that CA.
func TestClient_ReplicasRaceOnFirstBoot(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)
	const replicas = 16
	errs := make(chan error, replicas)
	fps := make(chan string, replicas)
	for i := 0; i < replicas; i++ {
		go func() {
			ca, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"})
			if err == nil {
				fps <- ca.FingerprintSHA256
			}
			errs <- err
		}()
	}
	wins, conflicts := 0, 0
	for i := 0; i < replicas; i++ {
		switch err := <-errs; {
		case err == nil:
			wins++
		case errors.Is(err, client.ErrExists):
			conflicts++
		default:
			t.Errorf("replica failed otherwise: %v", err)
		}
	}
	if wins != 1 || conflicts != replicas-1 {
		t.Fatalf("%d winners, %d conflicts; want 1 and %d", wins, conflicts, replicas-1)
	}
	ca, err := c.CA(ctx)
	if err != nil || ca.FingerprintSHA256 != <-fps || ca.Version != 1 {
		t.Fatalf("stored CA is not the winner's: %v", err)
	}
	assertLints(t, ca.CertificatePEM)

	// Every replica signs now, concurrently, and every leaf chains to it.
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "replica")))
	leaves := make(chan *client.SignedCertificate, replicas)
	for i := 0; i < replicas; i++ {
		go func() {
			s, err := c.SignCSR(ctx, csr, client.SignOptions{})
			if err != nil {
				t.Error(err)
			}
			leaves <- s
		}()
	}
	for i := 0; i < replicas; i++ {
		if s := <-leaves; s != nil {
			if err := s.Certificate.CheckSignatureFrom(ca.Certificate); err != nil {
				t.Errorf("a replica's certificate does not chain to the one CA: %v", err)
			}
		}
	}
}
