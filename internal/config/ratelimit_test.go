package config

import (
	"strings"
	"testing"
	"time"
)

// Tests for the redis, rate_limit and ip_filter sections.

func TestParseRatePolicy(t *testing.T) {
	tests := []struct {
		in   string
		want RatePolicy
		err  string
	}{
		{"login: 10/1m burst 5", RatePolicy{Name: "login", Limit: 10, Per: time.Minute, Burst: 5}, ""},
		{"100/s", RatePolicy{Limit: 100, Per: time.Second}, ""},
		{"api: 3000 / 1h", RatePolicy{Name: "api", Limit: 3000, Per: time.Hour}, ""},
		{"x: 5/500ms burst 1", RatePolicy{Name: "x", Limit: 5, Per: 500 * time.Millisecond, Burst: 1}, ""},
		{"Bad Name: 1/s", RatePolicy{}, "policy name"},
		{"a: 0/s", RatePolicy{}, "limit"},
		{"a: 1/0s", RatePolicy{}, "period"},
		{"a: 1/9000h", RatePolicy{}, "period"},
		{"a: 1/s burst 0", RatePolicy{}, "burst"},
		{"a: lots", RatePolicy{}, "must look like"},
		{"a: 1/fortnight", RatePolicy{}, "duration"},
	}
	for _, tt := range tests {
		got, err := ParseRatePolicy(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestRateLimitSection(t *testing.T) {
	yml := `
redis:
  url: rediss://cache.example.com:6380/0
rate_limit:
  policies:
    - "login: 10/1m burst 5"
    - {name: api, rate: 100, per: 1s, burst: 50}
  defaults:
    ip: 300/1m
    account: login
    route: api
ip_filter:
  allow: [10.0.0.0/8, "2001:db8::/32"]
  deny: [10.6.6.6]
  trusted_proxies: [192.0.2.0/24]
  lists:
    office: [198.51.100.0/24, "2001:db8:1::/48"]
`
	c, err := Load(writeFile(t, "r.yaml", yml), []string{"RAMPART_IP_FILTER_DENY=10.6.6.6,10.7.0.0/16"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.EffectiveRateLimitBackend() != "redis" {
		t.Errorf("backend = %s", c.EffectiveRateLimitBackend())
	}
	api, ok := c.RateLimit.Policy("api")
	if !ok || api != (RatePolicy{Name: "api", Limit: 100, Per: time.Second, Burst: 50}) {
		t.Errorf("api = %+v %v", api, ok)
	}
	ip, ok, err := c.RateLimit.Resolve(c.RateLimit.Defaults.IP, "ip")
	if err != nil || !ok || ip != (RatePolicy{Name: "ip", Limit: 300, Per: time.Minute}) {
		t.Errorf("ip default = %+v %v %v", ip, ok, err)
	}
	if _, ok, err := c.RateLimit.Resolve("off", "x"); ok || err != nil {
		t.Error("off resolved to a policy")
	}
	if cidrs, ok := c.IPFilter.List("office"); !ok || len(cidrs) != 2 {
		t.Errorf("office = %v %v", cidrs, ok)
	}
	if len(c.IPFilter.Deny) != 2 {
		t.Errorf("env deny list = %v", c.IPFilter.Deny)
	}
	if Default().EffectiveRateLimitBackend() != "local" {
		t.Error("default backend is not local")
	}
}

func TestRateLimitValidation(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"plaintext remote redis", func(c *Config) { c.Redis.URL = "redis://:pw@cache.internal:6379" }, "redis.url: redis:// to a non-loopback"},
		{"plaintext allowed", func(c *Config) { c.Redis.URL = "redis://cache.internal:6379"; c.Redis.AllowPlaintext = true }, ""},
		{"loopback plaintext", func(c *Config) { c.Redis.URL = "redis://127.0.0.1:6379" }, ""},
		{"bad scheme", func(c *Config) { c.Redis.URL = "http://x:1" }, "redis.url: must start"},
		{"zero timeout", func(c *Config) { c.Redis.ReadTimeout = 0 }, "redis.read_timeout"},
		{"redis backend without url", func(c *Config) { c.RateLimit.Backend = "redis" }, "rate_limit.backend: redis needs"},
		{"unknown backend", func(c *Config) { c.RateLimit.Backend = "memcached" }, "rate_limit.backend: must be"},
		{"bad policy", func(c *Config) { c.RateLimit.Policies = RatePolicies{"x: 0/s"} }, "rate_limit.policies[0]"},
		{"unnamed policy", func(c *Config) { c.RateLimit.Policies = append(c.RateLimit.Policies, "5/s") }, "needs a name"},
		{"duplicate policy", func(c *Config) { c.RateLimit.Policies = RatePolicies{"ip: 5/s", "ip: 6/s"} }, "defined twice"},
		{"unknown default", func(c *Config) { c.RateLimit.Defaults.Account = "nope" }, "rate_limit.defaults.account"},
		{"host bits", func(c *Config) { c.IPFilter.Allow = []string{"10.0.0.1/8"} }, "did you mean 10.0.0.0/8"},
		{"bad proxy", func(c *Config) { c.IPFilter.TrustedProxies = []string{"lb.internal"} }, "ip_filter.trusted_proxies[0]"},
		{"bad list", func(c *Config) { c.IPFilter.Lists = IPLists{"office 10.0.0.0/8"} }, "ip_filter.lists[0]"},
		{"bad list entry", func(c *Config) { c.IPFilter.Lists = IPLists{"office: 10.0.0.0/8 x"} }, "ip_filter.lists.office[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Error("validation message leaks the redis URL")
			}
		})
	}
}
