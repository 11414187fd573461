package config

import (
	"net/url"
	"time"

	"github.com/rampartsec/rampart/internal/outbound"
)

// RedisConfig configures the Redis connection a cluster shares (rate
// limits today). URL is a secret: it may carry a password, so it is best
// given by reference (${env:REDIS_URL} or ${file:/run/secrets/redis}).
type RedisConfig struct {
	// URL is redis://[user:password@]host:port/db, or rediss:// for TLS.
	// Empty means no Redis: single-node, in-process limits.
	URL string `yaml:"url"`
	// AllowPlaintext permits redis:// to a host that is not loopback.
	// Refused by default (TLS-3): the connection carries credentials.
	AllowPlaintext bool `yaml:"allow_plaintext"`
	// PoolSize is the connection pool size; 0 means go-redis's default
	// (10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// Timeouts are short on purpose: a slow Redis should hand rate limits
	// to the local fallback quickly rather than slow every request.
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

func defaultRedis() RedisConfig {
	return RedisConfig{DialTimeout: time.Second, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}
}

// check adds the section's problems; c is the whole (finalized) config.
// Messages never include the URL.
func (s RedisConfig) check(p *problems, c Config) {
	positive(p, "redis.dial_timeout", s.DialTimeout)
	positive(p, "redis.read_timeout", s.ReadTimeout)
	positive(p, "redis.write_timeout", s.WriteTimeout)
	if s.PoolSize < 0 {
		p.add("redis.pool_size", "must be 0 (default) or more")
	}
	if s.URL == "" {
		return
	}
	u, err := url.Parse(s.URL)
	if err != nil || u.Host == "" {
		p.add("redis.url", "must be a redis:// or rediss:// URL with a host")
		return
	}
	switch u.Scheme {
	case "rediss":
	case "redis":
		if !s.AllowPlaintext && !outbound.IsLoopback(u.Hostname()) {
			p.add("redis.url", "redis:// to a non-loopback host sends credentials and data in clear; use rediss:// or set redis.allow_plaintext")
		}
	default:
		p.add("redis.url", "must start with redis:// or rediss://")
	}
}
