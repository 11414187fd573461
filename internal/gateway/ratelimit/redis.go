package ratelimit

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/rampartsec/rampart/internal/fault"
)

// Redis is a GCRA limiter whose state lives in Redis, so every node of a
// cluster draws on the same budget per key. It runs redis_rate's Lua script:
// one round trip, atomic on the server, timed by the server's clock (node
// clocks need not agree).
type Redis struct {
	lim    *redis_rate.Limiter
	prefix string
}

// DefaultRedisPrefix namespaces Rampart's keys; redis_rate adds "rate:" in
// front of it.
const DefaultRedisPrefix = "rampart:"

// NewRedis returns a Redis limiter on client. Timeouts are the client's: the
// gateway wants them short (see RedisOptions) so that Fallback takes over
// quickly when Redis is unreachable.
func NewRedis(client redis.UniversalClient) *Redis {
	return &Redis{lim: redis_rate.NewLimiter(client), prefix: DefaultRedisPrefix}
}

// WithPrefix returns a copy that namespaces keys under prefix, for several
// deployments sharing one Redis (and for tests).
func (r *Redis) WithPrefix(prefix string) *Redis {
	c := *r
	c.prefix = prefix
	return &c
}

// Allow applies p to key in Redis.
func (r *Redis) Allow(ctx context.Context, key string, p Policy) (Result, error) {
	if err := p.Validate(); err != nil {
		return Result{}, err
	}
	res, err := r.lim.Allow(ctx, r.prefix+p.Name+":"+key, redis_rate.Limit{Rate: p.Limit, Burst: p.burst(), Period: p.Period})
	if err != nil {
		return Result{}, fault.Wrap(fault.Unavailable, "ratelimit_redis", "rate limit backend unavailable", err)
	}
	out := Result{Allowed: res.Allowed > 0, Limit: p.Limit, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if !out.Allowed {
		out.RetryAfter = max(res.RetryAfter, 0)
	}
	return out, nil
}

// RedisOptions are the connection settings the app takes from the redis
// config section.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port/db or rediss:// for TLS.
	URL string
	// AllowPlaintext permits redis:// to a host that is not loopback
	// (control TLS-3 refuses it otherwise).
	AllowPlaintext bool
	PoolSize       int // 0: go-redis's default (10 per CPU)
	DialTimeout    time.Duration
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
}

// NewRedisClient builds a client from o. TLS (rediss://) always verifies
// the server certificate with TLS 1.2 or later; plaintext to a remote host
// is refused unless AllowPlaintext. Errors never include the URL, which may
// carry a password.
func NewRedisClient(o RedisOptions) (*redis.Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fault.New(fault.Invalid, "redis_url", "redis url is not a valid URL")
	}
	switch u.Scheme {
	case "rediss":
	case "redis":
		if !o.AllowPlaintext && !IsLoopbackHost(u.Hostname()) {
			return nil, fault.New(fault.Invalid, "redis_plaintext", "redis:// to a non-loopback host sends data in clear; use rediss:// or set redis.allow_plaintext")
		}
	default:
		return nil, fault.New(fault.Invalid, "redis_url", "redis url must start with redis:// or rediss://")
	}
	opts, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fault.New(fault.Invalid, "redis_url", "redis url is not valid (check host, port, database number and options)")
	}
	if opts.TLSConfig != nil {
		opts.TLSConfig.MinVersion = tls.VersionTLS12
		opts.TLSConfig.InsecureSkipVerify = false
	}
	if o.PoolSize > 0 {
		opts.PoolSize = o.PoolSize
	}
	if o.DialTimeout > 0 {
		opts.DialTimeout = o.DialTimeout
	}
	if o.ReadTimeout > 0 {
		opts.ReadTimeout = o.ReadTimeout
	}
	if o.WriteTimeout > 0 {
		opts.WriteTimeout = o.WriteTimeout
	}
	// A rate limit answer is worth little after a retry storm; Fallback
	// handles failures instead.
	opts.MaxRetries = -1
	return redis.NewClient(opts), nil
}

// IsLoopbackHost reports whether host (a name or an address, without port)
// is this machine: "localhost" or a loopback address.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
