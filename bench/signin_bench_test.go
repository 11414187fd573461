package bench

import (
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/config"
)

// signInAccounts is how many distinct accounts the sign-in load cycles
// through: enough that no account is signed in twice at once at the
// concurrencies used here, so per-account rows do not serialise requests.
const signInAccounts = 64

// hashSamples is how many sequential argon2id hashes are timed before and
// again after each load.
const hashSamples = 9

// rawPerWorker is how many bare hashes each core computes for the
// raw-parallel reference, before and again after the load.
const rawPerWorker = 16

// reportHash reports the one-hash time and the hash-bound rate every
// sign-in figure is compared with, and returns the bound.
func reportHash(b *testing.B, h time.Duration) (bound float64) {
	bound = float64(runtime.GOMAXPROCS(0)) / h.Seconds()
	b.ReportMetric(ms(h), "hash_ms")
	b.ReportMetric(bound, "hash_bound/s")
	return bound
}

// BenchmarkSignInThroughput is the closed-loop sign-in capacity: 2×GOMAXPROCS
// workers each send POST /v1/signin with a correct password through the full
// handler as fast as answers come back. With hashing the bottleneck the rate
// approaches the hash bound, GOMAXPROCS ÷ one hash time, and
// ratio_to_hash_bound says how much of it the rest of the sign-in path
// (JSON, middleware, SQLite writes, audit, sessions) and the machine leave.
// Latency is per request and includes queueing for a hash slot behind the
// other workers.
//
// Two more ratios separate the causes when ratio_to_hash_bound is low:
// raw_parallel_ratio is bare argon2id hashing on every core at once (no
// Rampart code) against the bound, which is what the machine itself loses
// running hashes side by side (shared caches, memory bandwidth, and on a
// shared machine other processes taking the cores); ratio_to_raw_parallel
// is sign-ins/s against that bare rate, which is what Rampart's own sign-in
// path costs. ratio_to_hash_bound ≈ raw_parallel_ratio ×
// ratio_to_raw_parallel. The bare rate is measured before and after the
// load and averaged, as is the hash time.
func BenchmarkSignInThroughput(b *testing.B) {
	a := newApp(b)
	accts := createAccounts(b, a, signInAccounts)
	warmUp(b, a.Handler, accts)
	const perProc = 2
	workers := perProc * runtime.GOMAXPROCS(0)

	b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
		hc := probeHash(a.Config.Password, hashSamples)
		raw := rawParallelRate(a.Config.Password, rawPerWorker)
		var (
			nextAcct, nextWorker, failed atomic.Int64
			mu                           sync.Mutex
			lat                          = make([]time.Duration, 0, b.N)
		)
		b.SetParallelism(perProc)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			addr := workerAddr(int(nextWorker.Add(1)))
			var mine []time.Duration
			for pb.Next() {
				ac := accts[int(nextAcct.Add(1))%len(accts)]
				start := time.Now()
				code, tok := signIn(a.Handler, ac, addr)
				mine = append(mine, time.Since(start))
				if code != http.StatusOK || tok == "" {
					failed.Add(1)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		b.StopTimer()
		hc = hc.merge(probeHash(a.Config.Password, hashSamples))
		raw = (raw + rawParallelRate(a.Config.Password, rawPerWorker)) / 2
		if n := failed.Load(); n > 0 {
			b.Errorf("%d of %d sign-ins did not succeed", n, b.N)
		}
		h := hc.time()
		bound := reportHash(b, h)
		rate := float64(b.N) / b.Elapsed().Seconds()
		p99 := percentile(lat, 99)
		b.ReportMetric(rate, "signins/s")
		b.ReportMetric(rate/bound, "ratio_to_hash_bound")
		b.ReportMetric(raw/bound, "raw_parallel_ratio")
		b.ReportMetric(rate/raw, "ratio_to_raw_parallel")
		b.ReportMetric(ms(percentile(lat, 50)), "p50_ms")
		b.ReportMetric(ms(p99), "p99_ms")
		b.ReportMetric(float64(p99)/float64(h), "p99_over_hash")
	})
}

// BenchmarkSignInLoad80 is the latency at 80% load from an open-loop
// generator: it schedules b.N sign-ins evenly at the offered rate, each on
// its own goroutine whether or not earlier ones have finished, and measures
// each from its scheduled start, so time spent queueing (for a hash slot,
// the database, or a late generator) is counted rather than hidden (no
// coordinated omission). refused counts 503 answers (hash pool saturated:
// more than MaxWait in the queue); any other answer but 200 fails.
//
//   - of=hash_bound offers 0.8 × GOMAXPROCS ÷ one hash time (the target's
//     definition; the hash time is measured just before);
//   - of=raw_parallel offers 0.8 × the rate bare argon2id reaches on all
//     cores just before, which on a machine shared with other work is what
//     the cores actually deliver; it shows Rampart's latency at 80% of the
//     capacity really there when the hash bound itself is out of reach.
//
// p99_over_hash divides by the one-hash time measured before and after.
func BenchmarkSignInLoad80(b *testing.B) {
	a := newApp(b)
	accts := createAccounts(b, a, signInAccounts)
	warmUp(b, a.Handler, accts)
	const load = 0.8
	pc := a.Config.Password
	procs := float64(runtime.GOMAXPROCS(0))

	b.Run("of=hash_bound", func(b *testing.B) {
		hc := probeHash(pc, hashSamples)
		openLoop(b, a.Handler, accts, pc, load*procs/hc.time().Seconds(), hc)
	})
	b.Run("of=raw_parallel", func(b *testing.B) {
		hc := probeHash(pc, hashSamples)
		openLoop(b, a.Handler, accts, pc, load*rawParallelRate(pc, rawPerWorker), hc)
	})
}

// openLoop offers b.N sign-ins at offered per second and reports the
// figures; hc is the hash cost (at parameters pc) measured before, to which
// it adds samples taken after.
func openLoop(b *testing.B, h http.Handler, accts []account, pc config.PasswordConfig, offered float64, hc hashCost) {
	interval := time.Duration(float64(time.Second) / offered)
	lat := make([]time.Duration, b.N)
	codes := make([]int, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		wg.Go(func() {
			codes[i], _ = signIn(h, accts[i%len(accts)], workerAddr(i))
			lat[i] = time.Since(due)
		})
	}
	wg.Wait()
	b.StopTimer()
	hc = hc.merge(probeHash(pc, hashSamples))
	refused := 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
		case http.StatusServiceUnavailable:
			refused++
		default:
			b.Errorf("sign-in %d answered %d", i, c)
		}
	}
	ht := hc.time()
	bound := reportHash(b, ht)
	p99 := percentile(lat, 99)
	b.ReportMetric(offered, "offered/s")
	b.ReportMetric(offered/bound, "offered_over_bound")
	b.ReportMetric(float64(b.N-refused)/b.Elapsed().Seconds(), "signins/s")
	b.ReportMetric(float64(refused), "refused")
	b.ReportMetric(ms(percentile(lat, 50)), "p50_ms")
	b.ReportMetric(ms(p99), "p99_ms")
	b.ReportMetric(float64(p99)/float64(ht), "p99_over_hash")
}

// BenchmarkSignInPathOverhead is one sign-in at a time through the full
// handler with argon2id turned down to its minimum (8 KiB, one pass), so
// what is left is the rest of the sign-in path: JSON, middleware, the user
// lookup, four SQLite write transactions (each fsynced), audit and session
// creation. ns/op is its wall time (mostly waiting on fsync), cpu_ms its
// process CPU time per sign-in. ceiling_ratio is the share of the hash
// bound this overhead leaves on dedicated cores, hash ÷ (hash + cpu_ms),
// where hash is one argon2id hash at the default parameters measured in the
// same run: the smaller of its median wall time and its process CPU time
// (the CPU time also carries the garbage collector's work for the 19 MiB
// each hash allocates, which varies with heap state), so the ceiling errs
// low. CPU time, unlike wall time, is not stretched while other processes
// hold the cores, so this ceiling is steadier than the wall-clock ratio on
// a shared machine. Writes waiting on fsync cost wall time but no CPU; with
// more workers than cores they overlap other requests' hashing, and the
// single SQLite writer they queue on (about 1 ÷ ns/op sign-ins per second)
// stays above the hash bound.
func BenchmarkSignInPathOverhead(b *testing.B) {
	a := newApp(b, func(c *config.Config) {
		c.Password.HashMemoryKiB, c.Password.HashTime = 8, 1
	})
	accts := createAccounts(b, a, signInAccounts)
	warmUp(b, a.Handler, accts)
	i := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if code, _ := signIn(a.Handler, accts[i%len(accts)], workerAddr(i)); code != http.StatusOK {
			b.Fatalf("sign-in %d: status %d", i, code)
		}
		i++
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	if cpu <= 0 {
		return // no CPU clock on this platform
	}
	overhead := cpu / time.Duration(b.N)
	hc := probeHash(config.Default().Password, hashSamples)
	hash := min(hc.time(), hc.cpuPerHash())
	b.ReportMetric(ms(overhead), "cpu_ms")
	b.ReportMetric(ms(hash), "hash_ms")
	b.ReportMetric(float64(hash)/float64(hash+overhead), "ceiling_ratio")
}
