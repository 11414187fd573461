package ratelimit

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
)

func TestWriteHeaders(t *testing.T) {
	tests := []struct {
		name                      string
		p                         Policy
		r                         Result
		policy, state, retryAfter string
	}{
		{"allowed", Policy{Name: "api", Limit: 100, Period: time.Minute},
			Result{Allowed: true, Limit: 100, Remaining: 42, ResetAfter: 17500 * time.Millisecond},
			`"api";q=100;w=60`, `"api";r=42;t=18`, ""},
		{"denied rounds Retry-After up", Policy{Name: "login", Limit: 5, Period: time.Hour, Burst: 5},
			Result{Allowed: false, Limit: 5, RetryAfter: 720*time.Second + time.Millisecond, ResetAfter: time.Hour},
			`"login";q=5;w=3600`, `"login";r=0;t=3600`, "721"},
		{"denied under a second still says 1", Policy{Name: "x", Limit: 10, Period: time.Second},
			Result{Allowed: false, Limit: 10, RetryAfter: 3 * time.Millisecond, ResetAfter: time.Second},
			`"x";q=10;w=1`, `"x";r=0;t=1`, "1"},
		{"sub-second period publishes w=1", Policy{Name: "f", Limit: 10, Period: 100 * time.Millisecond},
			Result{Allowed: true, Remaining: 3}, `"f";q=10;w=1`, `"f";r=3;t=0`, ""},
		{"empty name", Policy{Limit: 1, Period: time.Second}, Result{Allowed: true},
			`"default";q=1;w=1`, `"default";r=0;t=0`, ""},
		{"hostile name cannot break the field", Policy{Name: "a\"b\\c\r\nSet-Cookie: x=1\x80", Limit: 1, Period: time.Second}, Result{Allowed: true},
			`"a\"b\\c__Set-Cookie: x=1_";q=1;w=1`, `"a\"b\\c__Set-Cookie: x=1_";r=0;t=0`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			WriteHeaders(h, tt.p, tt.r)
			if got := h.Get("RateLimit-Policy"); got != tt.policy {
				t.Errorf("RateLimit-Policy = %s, want %s", got, tt.policy)
			}
			if got := h.Get("RateLimit"); got != tt.state {
				t.Errorf("RateLimit = %s, want %s", got, tt.state)
			}
			if got := h.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

func TestNewRedisClientTLS3(t *testing.T) {
	tests := []struct {
		name    string
		o       RedisOptions
		wantErr string
		tls     bool
	}{
		{"loopback plaintext", RedisOptions{URL: "redis://127.0.0.1:6379/0"}, "", false},
		{"localhost plaintext", RedisOptions{URL: "redis://localhost:6379"}, "", false},
		{"ipv6 loopback", RedisOptions{URL: "redis://[::1]:6379"}, "", false},
		{"remote plaintext refused", RedisOptions{URL: "redis://:pw@cache.internal:6379"}, "redis_plaintext", false},
		{"remote plaintext allowed", RedisOptions{URL: "redis://cache.internal:6379", AllowPlaintext: true}, "", false},
		{"remote tls", RedisOptions{URL: "rediss://user:pw@cache.example.com:6380/1"}, "", true},
		{"other scheme", RedisOptions{URL: "http://cache:6379"}, "redis_url", false},
		{"garbage", RedisOptions{URL: "redis://%zz"}, "redis_url", false},
		{"bad db", RedisOptions{URL: "redis://127.0.0.1:6379/notanumber"}, "redis_url", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewRedisClient(tt.o)
			if tt.wantErr != "" {
				fe := fault.As(err)
				if fe == nil || fe.Code != tt.wantErr {
					t.Fatalf("err = %v, want code %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "cache") {
					t.Errorf("error leaks the URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			opts := c.Options()
			if (opts.TLSConfig != nil) != tt.tls {
				t.Fatalf("TLS config present = %v, want %v", opts.TLSConfig != nil, tt.tls)
			}
			if tt.tls && (opts.TLSConfig.InsecureSkipVerify || opts.TLSConfig.MinVersion < 0x0303 || opts.TLSConfig.ServerName != "cache.example.com") {
				t.Errorf("weak TLS config: %+v", opts.TLSConfig)
			}
			if opts.MaxRetries > 0 { // go-redis stores the -1 it was given as 0
				t.Errorf("MaxRetries = %d, want none (no retry storms)", opts.MaxRetries)
			}
		})
	}
}
