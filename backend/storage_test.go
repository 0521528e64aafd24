package backend

import (
	"context"
	"strings"
	"testing"

	hclog "github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestSchema_RecordedOnNewMount(t *testing.T) {
	_, s := getTestBackend(t)
	e, err := s.Get(context.Background(), schemaStorageKey)
	if err != nil || e == nil || string(e.Value) != "1" {
		t.Fatalf("schema version entry = %v, %v; want 1", e, err)
	}
}

// A mount whose storage a newer plugin wrote is refused, not misread.
func TestSchema_NewerRefused(t *testing.T) {
	storage := &logical.InmemStorage{}
	if err := storage.Put(context.Background(), &logical.StorageEntry{Key: schemaStorageKey, Value: []byte("2")}); err != nil {
		t.Fatal(err)
	}
	config := logical.TestBackendConfig()
	config.StorageView = storage
	config.Logger = hclog.NewNullLogger()
	lb, err := Factory(context.Background(), config)
	if err != nil {
		t.Fatal(err)
	}
	b := lb.(*mastioBackend)
	err = b.Initialize(context.Background(), &logical.InitializationRequest{Storage: storage})
	if err == nil || !strings.Contains(err.Error(), "schema version 2, newer than this plugin") {
		t.Fatalf("Initialize on a newer schema: %v", err)
	}
	_, err = requestErr(b, storage, logical.ReadOperation, "cert", nil)
	if err == nil || !strings.Contains(err.Error(), "register and run a newer mastio-ca plugin version") {
		t.Fatalf("a request on a newer schema: %v, want the schema error", err)
	}
	if e, _ := storage.Get(context.Background(), defaultsSeededKey); e != nil {
		t.Fatal("a refused mount was written to")
	}
}
