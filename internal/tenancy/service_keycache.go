package tenancy

import (
	"context"
	"sync"
	"time"
)

// keyCache keeps recently verified API keys in memory so that a request
// authenticated by key costs no database round trip: the key row is reused
// while its workspace's generation is unchanged (every revocation, role or
// membership change in this process bumps it) and for at most
// DecisionCacheTTL (the bound for changes made on other nodes). The secret
// is still compared, in constant time, on every request. Last-use writes
// are throttled to one a minute per key, as the store would do anyway.
type keyCache struct {
	mu      sync.Mutex
	keys    map[string]cachedKey
	touched map[string]time.Time
}

type cachedKey struct {
	k       APIKey
	gen     uint64
	global  uint64
	fetched time.Time
}

const keyCacheMax = 100000

// cachedAPIKey returns a copy of the key row for id.
func (s *Service) cachedAPIKey(ctx context.Context, id string, now time.Time) (*APIKey, error) {
	global := s.az.global.Load()
	s.kc.mu.Lock()
	c, ok := s.kc.keys[id]
	s.kc.mu.Unlock()
	if ok && now.Sub(c.fetched) < s.cfg.DecisionCacheTTL && c.global == global && c.gen == s.az.state(c.k.WorkspaceID).gen.Load() {
		k := c.k
		return &k, nil
	}
	k, err := s.d.Store.APIKeyByID(ctx, id)
	if err != nil {
		return nil, err
	}
	gen := s.az.state(k.WorkspaceID).gen.Load()
	s.kc.mu.Lock()
	if s.kc.keys == nil || len(s.kc.keys) >= keyCacheMax {
		s.kc.keys = map[string]cachedKey{}
	}
	s.kc.keys[id] = cachedKey{k: *k, gen: gen, global: global, fetched: now}
	s.kc.mu.Unlock()
	return k, nil
}

// dueTouch reports whether the key's last use should be written now.
func (c *keyCache) dueTouch(id string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.touched == nil || len(c.touched) >= keyCacheMax {
		c.touched = map[string]time.Time{}
	}
	if last, ok := c.touched[id]; ok && now.Sub(last) < time.Minute {
		return false
	}
	c.touched[id] = now
	return true
}
