package identity

import (
	"sync"
	"time"
)

// ThrottleConfig sets the account-takeover protection limits (AUTH-6).
type ThrottleConfig struct {
	AccountFreeFailures int           // failures per account before backoff starts
	AccountLockAfter    int           // failures that lock the account (with a notice mail)
	AccountLockDuration time.Duration // how long a lock lasts
	IPFreeFailures      int           // failures per source address before backoff starts
	BaseDelay           time.Duration // first backoff step; doubles with each further failure
	MaxDelay            time.Duration // backoff ceiling
	StuffingAccounts    int           // distinct accounts failing from one source…
	StuffingWindow      time.Duration // …within this window mark credential stuffing
	StuffingBlock       time.Duration // and block that source for this long
}

// throttle keeps per-key failure counters with exponential backoff, and per
// source the distinct accounts that failed from it (credential stuffing).
// It is in-process: a cluster shares the per-account lock through the
// database, while per-address counters stay per node until the gateway's
// shared rate limiter (Redis) takes them over.
type throttle struct {
	cfg ThrottleConfig
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*throttleEntry
	sources map[string]*stuffingEntry
	lastGC  time.Time
	maxKeys int
}

type throttleEntry struct {
	failures int
	next     time.Time // earliest next attempt
	seen     time.Time
}

type stuffingEntry struct {
	accounts     map[string]time.Time
	blockedUntil time.Time
	seen         time.Time
}

func newThrottle(cfg ThrottleConfig, now func() time.Time) *throttle {
	return &throttle{cfg: cfg, now: now, entries: map[string]*throttleEntry{}, sources: map[string]*stuffingEntry{}, maxKeys: 100000}
}

// wait reports how long key must wait before its next attempt (0 = allowed).
func (t *throttle) wait(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return 0
	}
	if d := e.next.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

// fail records a failure for key, where free failures pass without delay,
// and returns the new failure count.
func (t *throttle) fail(key string, free int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.gcLocked(now)
	e := t.entries[key]
	if e == nil {
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.failures++
	e.seen = now
	// After free failures the next attempt waits BaseDelay (free 0 acts as 1).
	if over := e.failures - max(free, 1) + 1; over > 0 {
		d := t.cfg.BaseDelay
		for i := 1; i < over && d < t.cfg.MaxDelay; i++ {
			d *= 2
		}
		if d > t.cfg.MaxDelay {
			d = t.cfg.MaxDelay
		}
		e.next = now.Add(d)
	}
	return e.failures
}

// block makes key wait at least d.
func (t *throttle) block(key string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.entries[key]
	if e == nil {
		e = &throttleEntry{}
		t.entries[key] = e
	}
	e.seen = now
	if until := now.Add(d); until.After(e.next) {
		e.next = until
	}
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// stuffingBlocked reports how long source stays blocked for stuffing.
func (t *throttle) stuffingBlocked(source string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sources[source]
	if s == nil {
		return 0
	}
	if d := s.blockedUntil.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

// failAccountFrom notes that account failed from source and reports whether
// this failure newly marks the source as credential stuffing.
func (t *throttle) failAccountFrom(source, account string) bool {
	if t.cfg.StuffingAccounts <= 0 {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	s := t.sources[source]
	if s == nil {
		s = &stuffingEntry{accounts: map[string]time.Time{}}
		t.sources[source] = s
	}
	s.seen = now
	s.accounts[account] = now
	for a, at := range s.accounts {
		if now.Sub(at) > t.cfg.StuffingWindow {
			delete(s.accounts, a)
		}
	}
	if len(s.accounts) >= t.cfg.StuffingAccounts && !s.blockedUntil.After(now) {
		s.blockedUntil = now.Add(t.cfg.StuffingBlock)
		s.accounts = map[string]time.Time{}
		return true
	}
	return false
}

// gcLocked drops stale entries once the tables grow, so a spray of
// addresses cannot grow memory without bound.
func (t *throttle) gcLocked(now time.Time) {
	if len(t.entries)+len(t.sources) < 1024 || now.Sub(t.lastGC) < time.Minute && len(t.entries)+len(t.sources) < t.maxKeys {
		return
	}
	t.lastGC = now
	keep := t.cfg.MaxDelay + t.cfg.AccountLockDuration
	if t.cfg.StuffingWindow+t.cfg.StuffingBlock > keep {
		keep = t.cfg.StuffingWindow + t.cfg.StuffingBlock
	}
	for k, e := range t.entries {
		if now.Sub(e.seen) > keep && !e.next.After(now) {
			delete(t.entries, k)
		}
	}
	for k, s := range t.sources {
		if now.Sub(s.seen) > keep && !s.blockedUntil.After(now) {
			delete(t.sources, k)
		}
	}
}
