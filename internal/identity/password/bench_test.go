package password

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"
)

var benchPw = []byte("correct horse battery staple")

// BenchmarkHashDefault is one argon2id hash at DefaultParams on one core:
// the unit of the hash-bound sign-in limit (cores ÷ this time).
func BenchmarkHashDefault(b *testing.B) {
	p := DefaultParams()
	salt := make([]byte, p.SaltLen)
	for b.Loop() {
		derive(argon2id, benchPw, salt, p)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s")
}

// BenchmarkVerifyParallel drives Verify through the pool from GOMAXPROCS
// goroutines and compares the throughput with the hash bound computed from
// a single-hash time measured in the same run, so the ratio shows what the
// pool and the machine (memory bandwidth, GC) cost on top of pure hashing.
func BenchmarkVerifyParallel(b *testing.B) {
	ctx := context.Background()
	p := DefaultParams()
	procs := runtime.GOMAXPROCS(0)
	h := NewHasher(HasherConfig{Params: p, MaxWait: time.Minute})
	stored, err := h.Hash(ctx, string(benchPw))
	if err != nil {
		b.Fatal(err)
	}

	salt := make([]byte, p.SaltLen)
	times := make([]time.Duration, 5)
	for i := range times {
		start := time.Now()
		derive(argon2id, benchPw, salt, p)
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	single := times[len(times)/2] // median
	bound := float64(procs) / single.Seconds()

	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ok, _, err := h.Verify(ctx, stored, string(benchPw))
			if err != nil || !ok {
				b.Errorf("Verify = %v, %v", ok, err)
				return
			}
		}
	})
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "hashes/s")
	b.ReportMetric(rate/bound, "ratio_to_hash_bound")
	b.ReportMetric(float64(single.Microseconds())/1000, "single_hash_ms")
}
