package client_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/mastio/vault-plugin-mastio-ca/client"
	"github.com/mastio/vault-plugin-mastio-ca/internal/testvault"
)

// TestMain gives the package's runnable examples a real Vault: a dev server
// with the plugin mounted at mastio-ca/, an Org CA and an intermediate,
// reached through VAULT_ADDR and VAULT_TOKEN like any program using the
// client. With -short there is no server, and only the tests run.
func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		_ = flag.Set("test.run", "^Test")
		os.Exit(m.Run())
	}
	vs, err := testvault.Start(testvault.Options{PluginVersion: "v0.1.0-examples"})
	if err != nil {
		fmt.Fprintln(os.Stderr, "client examples need a Vault server:", err)
		os.Exit(1)
	}
	code, err := func() (int, error) {
		defer vs.Stop()
		if err := vs.Root.Sys().Mount("mastio-ca", &api.MountInput{Type: testvault.PluginName}); err != nil {
			return 0, err
		}
		ca := client.New(vs.Root, "mastio-ca")
		if _, err := ca.Generate(context.Background(), client.GenerateRequest{OrgID: "acme"}); err != nil {
			return 0, err
		}
		if _, err := ca.GenerateIntermediate(context.Background(), client.IntermediateRequest{}); err != nil {
			return 0, err
		}
		os.Setenv("VAULT_ADDR", vs.Addr)
		os.Setenv("VAULT_TOKEN", vs.Token)
		return m.Run(), nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "client examples:", err)
		os.Exit(1)
	}
	os.Exit(code)
}
