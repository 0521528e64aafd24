package acceptance

import (
	"encoding/json"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestSoak signs 10,000 CSRs at concurrency 32 with no error, and checks
// that the plugin process's RSS and goroutines after the run are within
// 10 % of what they were after a warm-up. It runs only under `make soak`
// (MASTIO_SOAK=1); its figures go to RELIABILITY.md.
func TestSoak(t *testing.T) {
	if os.Getenv("MASTIO_SOAK") == "" {
		t.Skip("soak test: run `make soak`")
	}
	ctx := t.Context()
	mount, c, _, _ := newCA(t, true)
	csr := []byte(readFile(t, agentCSR(t, t.TempDir(), "soak")))
	run := func(total, workers int) (time.Duration, int64) {
		var next, failed atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= int64(total) {
					if _, err := c.SignCSR(ctx, csr, client.SignOptions{}); err != nil {
						if failed.Add(1) == 1 {
							t.Errorf("signing failed: %v", err)
						}
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start), failed.Load()
	}
	health := func() (int64, int64) {
		s, err := server.root.Logical().ReadWithContext(ctx, mount+"/health")
		if err != nil {
			t.Fatal(err)
		}
		rss, err1 := s.Data["rss_bytes"].(json.Number).Int64()
		gr, err2 := s.Data["goroutines"].(json.Number).Int64()
		if err1 != nil || err2 != nil {
			t.Fatalf("health: %v", s.Data)
		}
		return rss, gr
	}
	if _, failed := run(1000, 32); failed != 0 {
		t.Fatalf("warm-up: %d failures", failed)
	}
	rss0, gr0 := health()
	took, failed := run(10000, 32)
	rss1, gr1 := health()
	t.Logf("soak: 10000 sign-csr at concurrency 32 in %s (%.0f/s), %d failed; plugin RSS %.1f -> %.1f MiB (%+.1f%%), goroutines %d -> %d",
		took.Round(time.Millisecond), 10000/took.Seconds(), failed, float64(rss0)/(1<<20), float64(rss1)/(1<<20), 100*float64(rss1-rss0)/float64(rss0), gr0, gr1)
	if failed != 0 {
		t.Fatalf("%d signings failed", failed)
	}
	if float64(rss1) > 1.1*float64(rss0) || float64(gr1) > 1.1*float64(gr0) {
		t.Fatalf("the plugin grew by more than 10 %%: RSS %d -> %d, goroutines %d -> %d", rss0, rss1, gr0, gr1)
	}
}
