package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Backend names reported by Fallback.Backend (and by the APP-3 live check).
const (
	BackendRedis         = "redis"
	BackendLocalFallback = "local-fallback"
	BackendLocal         = "local"
)

// Fallback answers from primary (Redis) while it works and from a Local
// limiter while it does not, so a Redis outage weakens limits to per node
// rather than refusing all traffic or dropping limits. onFail is called
// once when an outage starts (the app raises an alert) and onRecover once
// when it ends; both run under Fallback's lock and must return quickly.
//
// While failing, one request every ProbeEvery tries the primary again; the
// first success switches back. Each primary call is bounded by Timeout, so
// a hung Redis costs a request at most that much.
type Fallback struct {
	// Timeout bounds each primary call (default 250ms). Set before use.
	Timeout time.Duration
	// ProbeEvery is how often the primary is retried during an outage
	// (default 1s). Set before use.
	ProbeEvery time.Duration
	// Now is the clock for probe scheduling (default time.Now). Set
	// before use.
	Now func() time.Time

	primary   Limiter
	local     *Local
	onFail    func(error)
	onRecover func()

	failing   atomic.Bool
	probing   atomic.Bool
	mu        sync.Mutex // orders state changes and callbacks
	nextProbe time.Time
}

// NewFallback returns a Fallback over primary with local as the stand-in.
// primary may be nil for a single node: Backend then reports "local" and
// every call goes to local. onFail and onRecover may be nil.
func NewFallback(primary Limiter, local *Local, onFail func(error), onRecover func()) *Fallback {
	return &Fallback{
		Timeout: 250 * time.Millisecond, ProbeEvery: time.Second, Now: time.Now,
		primary: primary, local: local, onFail: onFail, onRecover: onRecover,
	}
}

// Backend reports which limiter is answering: "redis", "local-fallback"
// during an outage, or "local" when no primary is configured.
func (f *Fallback) Backend() string {
	switch {
	case f.primary == nil:
		return BackendLocal
	case f.failing.Load():
		return BackendLocalFallback
	default:
		return BackendRedis
	}
}

// Allow applies p to key on the current backend.
func (f *Fallback) Allow(ctx context.Context, key string, p Policy) (Result, error) {
	if f.primary == nil {
		return f.local.Allow(ctx, key, p)
	}
	if err := p.Validate(); err != nil {
		return Result{}, err // a bad policy is not an outage
	}
	probe := false
	if f.failing.Load() {
		if !f.probeDue() {
			return f.local.Allow(ctx, key, p)
		}
		probe = true
		defer f.probing.Store(false)
	}
	res, err := f.callPrimary(ctx, key, p)
	if err == nil {
		// Only the probe ends an outage, so a call that was already in
		// flight when the outage began cannot make the state flap.
		if probe {
			f.recovered()
		}
		return res, nil
	}
	if ctx.Err() != nil {
		// The caller gave up (client went away); that says nothing
		// about Redis.
		return Result{}, ctx.Err()
	}
	f.failed(err)
	return f.local.Allow(ctx, key, p)
}

func (f *Fallback) callPrimary(ctx context.Context, key string, p Policy) (Result, error) {
	if f.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.Timeout)
		defer cancel()
	}
	return f.primary.Allow(ctx, key, p)
}

// probeDue claims the one probe allowed per ProbeEvery.
func (f *Fallback) probeDue() bool {
	f.mu.Lock()
	due := !f.Now().Before(f.nextProbe)
	f.mu.Unlock()
	return due && f.probing.CompareAndSwap(false, true)
}

func (f *Fallback) failed(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextProbe = f.Now().Add(f.ProbeEvery)
	if f.failing.Swap(true) {
		return // already in an outage: one alert per outage
	}
	if f.onFail != nil {
		f.onFail(errors.Join(fault.New(fault.Unavailable, "ratelimit_fallback", "rate limit backend failed; using local limits"), err))
	}
}

func (f *Fallback) recovered() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.failing.Swap(false) {
		return
	}
	if f.onRecover != nil {
		f.onRecover()
	}
}
