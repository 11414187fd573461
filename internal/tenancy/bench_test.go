package tenancy_test

import (
	"runtime"
	"testing"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/tenancy"
)

// benchEnv is a workspace with a member holding a custom role beside a
// built-in one, on SQLite.
func benchEnv(b *testing.B) (*env, tenancy.Principal, string) {
	e := newEnv(b, storetest.Open(b, store.EngineSQLite))
	must(b, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.read"}))
	must(b, e.svc.RegisterPermission(e.ctx, tenancy.Permission{Name: "reports.write"}))
	admin, ed := e.person("admin@example.com"), e.person("ed@example.com")
	ws := e.workspace(admin, "Acme")
	r, err := e.svc.CreateRole(e.ctx, admin.mfa(), ws, "Reports", "", []string{"reports.write"})
	must(b, err)
	e.join(admin, ws, ed, tenancy.RoleEditor, r.ID)
	p := ed.mfa()
	if d := e.check(p, ws, "reports.write"); !d.Allowed {
		b.Fatalf("setup: %+v", d)
	}
	return e, p, ws
}

// BenchmarkCheck is the hot path: a warm decision, from all cores. The
// clock stands still, so the cache never expires.
func BenchmarkCheck(b *testing.B) {
	e, p, ws := benchEnv(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d := e.svc.Check(e.ctx, p, ws, "reports.write"); !d.Allowed {
				b.Error(d)
				return
			}
		}
	})
	cpu := cpuTime() - cpu0
	perSec := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(perSec, "checks/s")
	b.ReportMetric(perSec/float64(runtime.GOMAXPROCS(0)), "checks/s/core")
	if cpu > 0 {
		// Per core measured in CPU time: immune to a busy machine.
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "checks/cpu-s")
	}
}

// BenchmarkCheckMiss is a cold decision: the workspace's cache is
// invalidated before every Check, so each reads the membership and the
// custom roles from SQLite (the permission catalog stays warm).
func BenchmarkCheckMiss(b *testing.B) {
	e, p, ws := benchEnv(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		tenancy.Invalidate(e.svc, ws)
		if d := e.svc.Check(e.ctx, p, ws, "reports.write"); !d.Allowed {
			b.Fatal(d)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
