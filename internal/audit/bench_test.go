package audit_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/rampartsec/rampart/internal/audit"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// BenchmarkRecord measures durable appends per second with group commit:
// 64 concurrent writers, each Record returning only after its transaction
// committed (SQLite synchronous=FULL; PostgreSQL default fsync).
//
//	go test -run '^$' -bench BenchmarkRecord -benchtime 20000x ./internal/audit/
func BenchmarkRecord(b *testing.B) {
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			s := storetest.Open(b, engine)
			m := startLog(b, s, newKeys(b), audit.LogConfig{}, audit.LogDeps{})
			ctx := context.Background()
			const writers = 64
			b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					e := event(i)
					e.Details["email"] = "user@example.com"
					if err := m.Record(ctx, e); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			elapsed := time.Since(start)
			b.StopTimer()
			st := m.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
			if st.Batches > 0 {
				b.ReportMetric(float64(st.Committed)/float64(st.Batches), "events/batch")
			}
		})
	}
}

// BenchmarkVerify1M loads a log straight through AppendAudit in large
// batches (setup, not timed) and times Verify over it. The size defaults to
// 1,000,000; RAMPART_BENCH_VERIFY_N overrides it.
//
//	go test -run '^$' -bench BenchmarkVerify1M -benchtime 1x -timeout 30m ./internal/audit/
func BenchmarkVerify1M(b *testing.B) {
	n := int64(1_000_000)
	if v := os.Getenv("RAMPART_BENCH_VERIFY_N"); v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			b.Fatalf("RAMPART_BENCH_VERIFY_N=%q", v)
		}
	}
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			s := storetest.Open(b, engine)
			t0 := time.Now()
			bulkLoad(b, s, n)
			b.Logf("%s: loaded %d records in %s", engine, n, time.Since(t0).Round(time.Millisecond))
			b.ResetTimer()
			cpu0 := processCPU(b)
			for b.Loop() {
				rep, err := audit.Verify(ctx, s, "", nil)
				if err != nil {
					b.Fatal(err)
				}
				if !rep.OK() || rep.Size != n {
					b.Fatalf("verify: size %d, problems %v", rep.Size, rep.Problems[:min(3, len(rep.Problems))])
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			// CPU of this process (not of a PostgreSQL server): on a shared
			// machine it shows the work apart from the wait for a core.
			b.ReportMetric((processCPU(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bulkLoad appends n realistic records in batches of 10,000, computing the
// stored hashes from an in-memory copy of the table.
func bulkLoad(b *testing.B, s *store.Store, n int64) {
	b.Helper()
	ctx := context.Background()
	all := make([]tlog.Hash, 0, tlog.StoredHashCount(n))
	mem := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = all[x]
		}
		return out, nil
	})
	sealed := make([]byte, 80) // the size of sealed small details
	keyed := []byte("0123456789abcdef0123456789abcdef")
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 10_000
	for from := int64(0); from < n; from += batch {
		to := min(from+batch, n)
		err := s.AppendAudit(ctx, func(size int64, _ tlog.HashReader) ([]audit.Record, []audit.StoredHash, error) {
			if size != from {
				return nil, nil, fmt.Errorf("size %d, want %d", size, from)
			}
			recs := make([]audit.Record, 0, to-from)
			var hs []audit.StoredHash
			for i := from; i < to; i++ {
				r := audit.Record{
					Index: i, Time: base.Add(time.Duration(i) * time.Millisecond), ActorType: audit.ActorUser,
					ActorID: "usr_" + strconv.FormatInt(i%5000, 10), Workspace: "ws_" + strconv.FormatInt(i%50, 10),
					Action: "auth.signin", Target: "usr_" + strconv.FormatInt(i%5000, 10), Outcome: audit.Success,
					UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", RequestID: "req_" + strconv.FormatInt(i, 36),
					Sealed: sealed,
				}
				if i%4 == 0 {
					r.Keyed = map[string][]byte{"email": keyed}
				}
				h, err := tlog.StoredHashesForRecordHash(i, r.LeafHash(), mem)
				if err != nil {
					return nil, nil, err
				}
				for _, x := range h {
					hs = append(hs, audit.StoredHash{Index: int64(len(all)), Hash: x})
					all = append(all, x)
				}
				recs = append(recs, r)
			}
			return recs, hs, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
