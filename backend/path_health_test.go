package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/mastio/vault-plugin-mastio-ca/internal/testpki"
)

func TestHealth(t *testing.T) {
	b, s := getTestBackend(t)
	resp := mustOK(t, request(t, b, s, logical.ReadOperation, "health", nil))
	if resp.Data["signed"] != int64(0) || resp.Data["org-ca_days_left"] != nil || resp.Data["version"] != "v"+Version {
		t.Fatalf("health on an empty mount: %v", resp.Data)
	}
	generateCA(t, b, s)
	for i := 0; i < 3; i++ {
		mustOK(t, request(t, b, s, logical.UpdateOperation, "sign-csr", map[string]any{"csr": testpki.AgentCSR(t, "h")}))
	}
	resp = mustOK(t, request(t, b, s, logical.ReadOperation, "health", nil))
	if resp.Data["signed"] != int64(3) || resp.Data["goroutines"].(int) < 1 || resp.Data["org-ca_days_left"].(int) < 15*365-1 {
		t.Fatalf("health: %v", resp.Data)
	}
	if rss, ok := resp.Data["rss_bytes"].(int64); !ok || rss <= 0 {
		t.Fatalf("rss_bytes = %v, want the process's resident set", resp.Data["rss_bytes"])
	}
}
