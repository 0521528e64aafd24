package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/sdk/logical"
)

// schemaVersion is the layout of this plugin's storage. Raise it when an
// entry changes in a way an older plugin would misread, and teach
// checkSchema to migrate from the old one.
const schemaVersion = 1

// schemaStorageKey records the schema version the mount's storage has.
const schemaStorageKey = "meta/schema-version"

// checkSchema reads the mount's schema version and records ours on a new
// mount. A version newer than this plugin knows is an error: an older
// plugin must not misread (or rewrite) what a newer one stored.
func checkSchema(ctx context.Context, s logical.Storage, mayWrite bool) error {
	e, err := s.Get(ctx, schemaStorageKey)
	if err != nil {
		return fmt.Errorf("reading the storage schema version: %w", err)
	}
	if e == nil {
		if !mayWrite {
			return nil
		}
		return s.Put(ctx, &logical.StorageEntry{Key: schemaStorageKey, Value: []byte(strconv.Itoa(schemaVersion))})
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(e.Value)))
	if err != nil {
		return fmt.Errorf("the storage schema version %q does not parse", e.Value)
	}
	if v > schemaVersion {
		return fmt.Errorf("this mount's storage has schema version %d, newer than this plugin (v%s) understands (%d): register and run a newer mastio-ca plugin version", v, Version, schemaVersion)
	}
	return nil
}
