package backend

import (
	"context"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage of the mount's config and roles, and their caches for the
// signing path. Path handlers call these and never storage themselves.

// readConfig returns the stored config with defaults filled in.
func (b *mastioBackend) readConfig(ctx context.Context, s logical.Storage) (*mountConfig, error) {
	cfg := defaultConfig()
	raw, err := s.Get(ctx, configStorageKey)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	if raw != nil {
		if err := raw.DecodeJSON(cfg); err != nil {
			return nil, fmt.Errorf("decoding config: %w", err)
		}
	}
	return cfg, nil
}

// cachedConfig is readConfig through the cache, for the signing path.
func (b *mastioBackend) cachedConfig(ctx context.Context, s logical.Storage) (*mountConfig, error) {
	return b.configCache.load(configStorageKey, func() (*mountConfig, bool, error) {
		cfg, err := b.readConfig(ctx, s)
		return cfg, err == nil, err
	})
}

// writeConfig stores cfg and drops the cached copy.
func (b *mastioBackend) writeConfig(ctx context.Context, s logical.Storage, cfg *mountConfig) error {
	entry, err := logical.StorageEntryJSON(configStorageKey, cfg)
	if err != nil {
		return err
	}
	err = s.Put(ctx, entry)
	b.configCache.reset() // also on error: the write may have landed
	if err != nil {
		return fmt.Errorf("storing config: %w", err)
	}
	return nil
}

// readRole returns the named role, or nil when it does not exist.
func (b *mastioBackend) readRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	raw, err := s.Get(ctx, rolePrefix+name)
	if err != nil {
		return nil, fmt.Errorf("reading role %q: %w", name, err)
	}
	if raw == nil {
		return nil, nil
	}
	var r role
	if err := raw.DecodeJSON(&r); err != nil {
		return nil, fmt.Errorf("decoding role %q: %w", name, err)
	}
	return &r, nil
}

// cachedRole is readRole through the cache, for the signing path. The
// role returned is shared and must not be modified.
func (b *mastioBackend) cachedRole(ctx context.Context, s logical.Storage, name string) (*role, error) {
	return b.roleCache.load(rolePrefix+name, func() (*role, bool, error) {
		r, err := b.readRole(ctx, s, name)
		return r, r != nil, err
	})
}

// listRoles lists the stored roles' names.
func (b *mastioBackend) listRoles(ctx context.Context, s logical.Storage) ([]string, error) {
	names, err := s.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing roles: %w", err)
	}
	return names, nil
}

// writeRole stores r under name and drops the cached roles. Callers hold
// roleLock.
func (b *mastioBackend) writeRole(ctx context.Context, s logical.Storage, name string, r *role) error {
	entry, err := logical.StorageEntryJSON(rolePrefix+name, r)
	if err != nil {
		return err
	}
	err = s.Put(ctx, entry)
	b.roleCache.reset() // also on error: the write may have landed
	if err != nil {
		return fmt.Errorf("storing role %q: %w", name, err)
	}
	return nil
}

// deleteRole deletes the named role and drops the cached roles. Callers
// hold roleLock.
func (b *mastioBackend) deleteRole(ctx context.Context, s logical.Storage, name string) error {
	err := s.Delete(ctx, rolePrefix+name)
	b.roleCache.reset()
	if err != nil {
		return fmt.Errorf("deleting role %q: %w", name, err)
	}
	return nil
}
