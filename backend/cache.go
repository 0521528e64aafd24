package backend

import "sync/atomic"

// entryCache caches parsed storage entries by storage key for the signing
// path, so that signing reads no storage. It is copy-on-write: a fill that
// read storage before a reset loses its CompareAndSwap and caches nothing,
// so a reset (Invalidate, or our own write) is never undone by a stale fill.
// Cached values are shared: callers must not modify them.
type entryCache[V any] struct {
	m atomic.Pointer[map[string]V]
}

func newEntryCache[V any]() *entryCache[V] {
	c := &entryCache[V]{}
	c.reset()
	return c
}

// load returns the cached value of key, or calls read and caches what it
// finds. found=false results are not cached.
func (c *entryCache[V]) load(key string, read func() (v V, found bool, err error)) (V, error) {
	m0 := c.m.Load()
	if v, ok := (*m0)[key]; ok {
		return v, nil
	}
	v, found, err := read()
	if err != nil || !found {
		return v, err
	}
	m1 := make(map[string]V, len(*m0)+1)
	for k, old := range *m0 {
		m1[k] = old
	}
	m1[key] = v
	c.m.CompareAndSwap(m0, &m1)
	return v, nil
}

// reset forgets every cached value.
func (c *entryCache[V]) reset() {
	c.m.Store(&map[string]V{})
}
