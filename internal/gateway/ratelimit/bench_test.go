package ratelimit

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"
)

// benchKeys is the working set: 10k clients.
var benchKeys = func() []string {
	k := make([]string, 10000)
	for i := range k {
		k[i] = "ip:203.0.113." + strconv.Itoa(i)
	}
	return k
}()

// baselineMutexMap measures, in the same run, the cheapest thing a limiter
// could possibly do: one uncontended lock plus one map update per request.
// (testing.Benchmark cannot nest inside a running benchmark, so it is timed
// by hand, once per process.)
var baselineMutexMap = sync.OnceValue(func() float64 {
	const n = 2_000_000
	var mu sync.Mutex
	m := make(map[string]int64, len(benchKeys))
	start := time.Now()
	for i := range n {
		mu.Lock()
		m[benchKeys[i%len(benchKeys)]]++
		mu.Unlock()
	}
	return float64(time.Since(start).Nanoseconds()) / n
})

// BenchmarkLocalAllowParallel is the hot path of every gateway request on a
// single node. x-of-raw is its ns/op divided by the single-goroutine
// mutex+map baseline above (below 1 means sharding beats one plain map).
func BenchmarkLocalAllowParallel(b *testing.B) {
	base := baselineMutexMap()
	l := NewLocal(time.Now, 0)
	p := Policy{Name: "api", Limit: 1000, Period: time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			if _, err := l.Allow(ctx, benchKeys[i%len(benchKeys)], p); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
	ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "baseline-ns/op")
	b.ReportMetric(ns/base, "x-of-raw")
}

// BenchmarkRedisAllow is one limiter round trip to Redis; x-of-ping relates
// it to a bare PING on the same connection, which is the floor.
func BenchmarkRedisAllow(b *testing.B) {
	c := testRedis(b)
	prefix := uniquePrefix(b)
	cleanupKeys(b, c, prefix)
	ctx := context.Background()
	const pings = 2000
	pingStart := time.Now()
	for range pings {
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	pingNs := float64(time.Since(pingStart).Nanoseconds()) / pings
	r := NewRedis(c).WithPrefix(prefix)
	p := Policy{Name: "api", Limit: 1000, Period: time.Second}
	start := time.Now()
	i := 0
	for b.Loop() {
		if _, err := r.Allow(ctx, benchKeys[i%len(benchKeys)], p); err != nil {
			b.Fatal(err)
		}
		i++
	}
	ns := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(pingNs, "ping-ns/op")
	b.ReportMetric(ns/pingNs, "x-of-ping")
}
