// Package ratelimit decides whether a request may proceed under a rate
// limit (control APP-3). Limits use GCRA, the generic cell rate algorithm:
// one timestamp per key (the "theoretical arrival time"), so a limit costs a
// few bytes of state, is exact rather than windowed, and allows a burst
// without letting a client double its rate at a window boundary.
//
// Two implementations share the Limiter interface and the same arithmetic:
// Local, in process, for a single node; Redis, on
// github.com/go-redis/redis_rate/v10, for a cluster whose nodes must share
// one budget per key. Fallback puts Local behind Redis so that a Redis
// outage degrades limits to per-node instead of failing every request or
// dropping limits altogether.
package ratelimit

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

// Policy is one GCRA limit: Limit requests per Period on average, with up
// to Burst requests admitted back to back from a rested key. Name
// distinguishes policies that share keys (the same IP limited by a "login"
// and an "api" policy keeps two separate budgets) and is published in the
// RateLimit-Policy header.
//
// A Burst of zero means Burst = Limit, as redis_rate.PerSecond and friends
// do: "100 per minute" then admits 100 requests at once, not one.
type Policy struct {
	Name   string
	Limit  int
	Period time.Duration
	Burst  int
}

// Result is the outcome of one Allow. Remaining is how many more requests
// would be admitted right now; RetryAfter (only when denied) is how long
// until the next one will be; ResetAfter is how long until the key is fully
// rested again.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

// Limiter is the one interface the gateway calls. An error means the
// decision could not be made (backend down, bad policy); callers fail
// closed or fall back, never treat an error as "allowed".
type Limiter interface {
	Allow(ctx context.Context, key string, p Policy) (Result, error)
}

// Bounds on policies. With them (and the interval × burst check in
// Validate) the integer arithmetic of GCRA on nanosecond timestamps cannot
// overflow, and a typo such as a ten-year period is caught at start-up.
const (
	maxLimit  = 1_000_000_000
	maxBurst  = 1_000_000_000
	maxPeriod = 366 * 24 * time.Hour
)

// Validate reports a policy that cannot be enforced. It is an error of
// configuration, so it is of kind Invalid.
func (p Policy) Validate() error {
	switch {
	case p.Limit < 1 || p.Limit > maxLimit:
		return fault.Invalidf("ratelimit_policy", "rate limit policy %q: limit must be from 1 to %d", p.Name, maxLimit)
	case p.Period <= 0 || p.Period > maxPeriod:
		return fault.Invalidf("ratelimit_policy", "rate limit policy %q: period must be positive and at most %s", p.Name, maxPeriod)
	case p.Burst < 0 || p.Burst > maxBurst:
		return fault.Invalidf("ratelimit_policy", "rate limit policy %q: burst must be from 0 (= limit) to %d", p.Name, maxBurst)
	}
	iv, burst := p.interval(), int64(p.burst())
	if burst > math.MaxInt64/4/iv {
		return fault.Invalidf("ratelimit_policy", "rate limit policy %q: burst × period/limit is too long", p.Name)
	}
	return nil
}

// burst is the effective burst (zero means Limit).
func (p Policy) burst() int {
	if p.Burst == 0 {
		return p.Limit
	}
	return p.Burst
}

// interval is the GCRA emission interval in nanoseconds: the average gap
// between admitted requests. It is at least 1 ns so a huge Limit over a
// short Period still makes progress.
func (p Policy) interval() int64 {
	iv := int64(p.Period) / int64(p.Limit)
	if iv < 1 {
		return 1
	}
	return iv
}

// String renders the policy as the config syntax does: "100/1m0s burst 20".
func (p Policy) String() string {
	return fmt.Sprintf("%s: %d/%s burst %d", p.Name, p.Limit, p.Period, p.burst())
}
