package ratelimit

import (
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Local is an in-process GCRA limiter. Its state is one int64 (the
// theoretical arrival time) per key and policy, in a map split into shards
// with their own locks so that parallel requests rarely contend.
//
// Memory is bounded: each shard holds at most its share of maxKeys. A key
// whose arrival time has passed is exactly as good as an absent key, so
// such keys are dropped first and without loss; only when a shard is full
// of live keys is the most rested of a small random sample evicted, which
// at worst gives that one key a fresh burst. Evictions are counted.
type Local struct {
	now      func() time.Time
	seed     maphash.Seed
	mask     uint64
	perShard int
	shards   []shard
}

// entryKey keeps policy and key apart without building a joined string per
// request (the map lookup then allocates nothing).
type entryKey struct {
	policy, key string
}

type shard struct {
	mu        sync.Mutex
	tat       map[entryKey]int64
	evictions atomic.Uint64
	_         [40]byte // keep neighbouring shards' locks off one cache line
}

// evictSample is how many entries an insertion into a full shard looks at.
const evictSample = 8

// minPerShard keeps shards large enough that sampling eviction is
// meaningful; small limiters get fewer shards instead.
const minPerShard = 16

// maxShards suits machines up to a few dozen cores; more shards than that
// only spreads memory.
const maxShards = 64

// DefaultMaxKeys bounds a Local built with maxKeys ≤ 0: about 100 bytes a
// key, so some 100 MB at most.
const DefaultMaxKeys = 1 << 20

// NewLocal returns a Local reading the clock from now (time.Now when nil)
// and holding at most maxKeys keys (DefaultMaxKeys when ≤ 0).
func NewLocal(now func() time.Time, maxKeys int) *Local {
	if now == nil {
		now = time.Now
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	n := 1
	for n < maxShards && maxKeys/(n*2) >= minPerShard {
		n *= 2
	}
	l := &Local{now: now, seed: maphash.MakeSeed(), mask: uint64(n - 1), perShard: maxKeys / n, shards: make([]shard, n)}
	for i := range l.shards {
		l.shards[i].tat = make(map[entryKey]int64)
	}
	return l
}

// Allow applies p to key. It only fails for an invalid policy.
func (l *Local) Allow(_ context.Context, key string, p Policy) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	now := l.now().UnixNano()
	iv := p.interval()
	burstOffset := iv * int64(p.burst())
	k := entryKey{p.Name, key}
	s := &l.shards[maphash.String(l.seed, key)&l.mask]

	s.mu.Lock()
	tat, ok := s.tat[k]
	if !ok || tat < now {
		tat = now
	}
	newTat := tat + iv
	diff := now - (newTat - burstOffset)
	if diff < 0 {
		s.mu.Unlock()
		return Result{Allowed: false, Limit: p.Limit, RetryAfter: time.Duration(-diff), ResetAfter: time.Duration(tat - now)}, nil
	}
	if !ok && len(s.tat) >= l.perShard {
		s.evict(now)
	}
	s.tat[k] = newTat
	s.mu.Unlock()
	return Result{Allowed: true, Limit: p.Limit, Remaining: int(diff / iv), ResetAfter: time.Duration(newTat - now)}, nil
}

// evict makes room for one entry. Map iteration starts at a random place,
// so the sample is a cheap random one. Called with s.mu held.
func (s *shard) evict(now int64) {
	var victim entryKey
	oldest, seen, freed := int64(0), 0, false
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k) // rested: dropping it loses nothing
			freed = true
		} else if seen == 0 || tat < oldest {
			victim, oldest = k, tat
		}
		if seen++; seen >= evictSample {
			break
		}
	}
	if !freed {
		delete(s.tat, victim)
		s.evictions.Add(1)
	}
}

// LocalStats describes a Local's memory use.
type LocalStats struct {
	Keys int
	// Evictions counts live keys dropped for room; a steadily growing
	// number means maxKeys is too small for the traffic (or an attacker
	// is spraying keys) and some clients got a fresh burst early.
	Evictions uint64
}

// Stats counts keys and evictions. It locks each shard briefly.
func (l *Local) Stats() LocalStats {
	var st LocalStats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Keys += len(s.tat)
		s.mu.Unlock()
		st.Evictions += s.evictions.Load()
	}
	return st
}
