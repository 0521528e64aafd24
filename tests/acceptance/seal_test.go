package acceptance

import (
	"errors"
	"testing"
	"time"

	"github.com/mastio/vault-plugin-mastio-ca/client"
)

// TestClient_Sealed seals the shared server, checks that calls fail with
// ErrSealed, and unseals it again (also on failure) for the tests after it.
func TestClient_Sealed(t *testing.T) {
	ctx := t.Context()
	mount := newMount(t)
	c := client.New(server.root, mount)
	if _, err := c.Generate(ctx, client.GenerateRequest{OrgID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := server.root.Sys().SealWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	unsealed := false
	t.Cleanup(func() {
		if !unsealed {
			_, _ = server.root.Sys().UnsealWithContext(ctx, server.unsealKey)
		}
	})
	if _, err := c.CA(ctx); !errors.Is(err, client.ErrSealed) {
		t.Fatalf("CA on a sealed Vault: %v, want ErrSealed", err)
	}
	st, err := server.root.Sys().UnsealWithContext(ctx, server.unsealKey)
	if err != nil || st.Sealed {
		t.Fatalf("unseal: %+v, %v", st, err)
	}
	unsealed = true
	// After unseal the same CA signs again (the key survived, sealed at rest).
	deadline := time.Now().Add(30 * time.Second)
	for {
		ca, err := c.CA(ctx)
		if err == nil {
			if ca.Version != 1 {
				t.Fatalf("CA version after unseal = %d", ca.Version)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CA after unseal: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
