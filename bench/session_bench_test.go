package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/rampartsec/rampart/internal/identity"
	"github.com/rampartsec/rampart/internal/web"
)

// sessionTokens is how many live sessions the validation load spreads over,
// so parallel workers do not all hit one cache entry.
const sessionTokens = 16

// BenchmarkSessionValidation measures what every authenticated request pays
// to validate its session cookie, in parallel on all cores:
//
//   - Authenticate: identity.Service.Authenticate with a warm session cache,
//     the cost on the hot path (target: ≥ 100,000/s per core);
//   - GET_v1_me: the same through the full handler (middleware, cookie
//     parsing, JSON answer); note /v1/me also reads the user row from the
//     store on every call, so it is an upper bound on validation cost;
//   - StoreLookup: store.SessionByTokenHash, what a cache miss costs (the
//     cache TTL is fixed at 2s in app wiring, so it cannot be switched off
//     from configuration).
func BenchmarkSessionValidation(b *testing.B) {
	a := newApp(b)
	ac := createAccounts(b, a, 1)[0]
	tokens := make([]string, sessionTokens)
	for i := range tokens {
		code, tok := signIn(a.Handler, ac, workerAddr(i))
		if code != http.StatusOK || tok == "" {
			b.Fatalf("sign-in %d: status %d", i, code)
		}
		tokens[i] = tok
	}
	ctx := context.Background()
	procs := float64(runtime.GOMAXPROCS(0))
	report := func(b *testing.B) {
		rate := float64(b.N) / b.Elapsed().Seconds()
		b.ReportMetric(rate, "validations/s")
		b.ReportMetric(rate/procs, "validations/s/core")
	}

	b.Run("Authenticate", func(b *testing.B) {
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			tok := tokens[int(next.Add(1))%len(tokens)]
			for pb.Next() {
				au, err := a.Identity.Authenticate(ctx, tok)
				if err != nil || au.NewToken != "" {
					b.Errorf("Authenticate = %+v, %v", au.NewToken != "", err)
					return
				}
			}
		})
		b.StopTimer()
		report(b)
	})

	b.Run("GET_v1_me", func(b *testing.B) {
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			w := int(next.Add(1))
			tok, addr := tokens[w%len(tokens)], workerAddr(w)
			for pb.Next() {
				r := httptest.NewRequest(http.MethodGet, "https://localhost:8443/v1/me", nil)
				r.RemoteAddr = addr
				r.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: tok})
				rec := httptest.NewRecorder()
				a.Handler.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK {
					b.Errorf("GET /v1/me: status %d", rec.Code)
					return
				}
			}
		})
		b.StopTimer()
		report(b)
	})

	b.Run("StoreLookup", func(b *testing.B) {
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			h := identity.HashToken(tokens[int(next.Add(1))%len(tokens)])
			for pb.Next() {
				if _, err := a.Store.SessionByTokenHash(ctx, h); err != nil {
					b.Errorf("SessionByTokenHash: %v", err)
					return
				}
			}
		})
		b.StopTimer()
		report(b)
	})
}
