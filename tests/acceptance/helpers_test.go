package acceptance

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// agentCSR makes an EC P-256 CSR with openssl for agent name under org acme.
func agentCSR(t *testing.T, dir, name string) string {
	t.Helper()
	mustOpenSSL(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".csr",
		"-subj", "/CN=acme::"+name+"/O=acme",
		"-addext", "subjectAltName=URI:spiffe://cullis.local/acme/"+name)
	return filepath.Join(dir, name+".csr")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// opensslMayFail runs openssl and returns its output and error, for checks
// that expect a refusal.
func opensslMayFail(dir string, args ...string) (string, error) {
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// signUntil signs csr with c from workers goroutines until stop is closed,
// handing each call's send and return times and result to each (in the
// worker that made it). The returned wait blocks until every worker is done.
// The reliability and rotation tests load the plugin with it.
func signUntil(ctx context.Context, c *client.Client, csr []byte, workers int, stop <-chan struct{},
	each func(sent, recv time.Time, s *client.SignedCertificate, err error)) (wait func()) {
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				s, err := c.SignCSR(ctx, csr, client.SignOptions{})
				each(sent, time.Now(), s, err)
			}
		}()
	}
	return wg.Wait
}
