package identity_test

import (
	"runtime"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// BenchmarkAuthenticate measures session validation on the request path:
// Service.Authenticate with the session cache warm (the steady state for an
// active user), on SQLite, from all cores at once. The clock stands still, so
// no validation is due a last-seen write or a rotation.
func BenchmarkAuthenticate(b *testing.B) {
	e := newEnv(b, storetest.Open(b, store.EngineSQLite))
	e.signUp("bench@example.com", goodPW)
	tok := e.signIn("bench@example.com", goodPW, "192.0.2.1").Token
	e.auth(tok) // warm the cache
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.svc.Authenticate(e.ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "validations/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "validations/s/core")
}
