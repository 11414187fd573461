package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// fakeClock is an injected clock the tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// redisAddr is the Redis the tests share with the rest of the machine.
func redisAddr() string {
	if a := os.Getenv("RAMPART_TEST_REDIS"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// testRedis connects to the shared Redis. Missing Redis skips the test on
// a developer machine but fails it under CI=true, where Redis is part of
// the test environment.
func testRedis(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: redisAddr(), DialTimeout: time.Second, ReadTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis at %s is required under CI: %v", redisAddr(), err)
		}
		t.Skipf("Redis at %s not reachable: %v", redisAddr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix gives each test its own key space in the shared Redis, so
// nothing global is ever flushed and parallel runs do not collide.
func uniquePrefix(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "rampart-test:" + hex.EncodeToString(b[:]) + ":"
}

// cleanupKeys deletes the test's keys afterwards (they also expire on
// their own).
func cleanupKeys(t testing.TB, c *redis.Client, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, "rate:"+prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
}
