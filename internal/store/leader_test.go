package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func TestTryLeaderSQLite(t *testing.T) {
	s := storetest.Open(t, store.EngineSQLite)
	ctx := context.Background()
	// One node: every job is always ours.
	for range 2 {
		release, ok, err := s.TryLeader(ctx, "checkpointer")
		if err != nil || !ok || release == nil {
			t.Fatalf("TryLeader = %v, %v", ok, err)
		}
		release()
		release()
	}
}

func TestTryLeaderPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t, store.EnginePostgres)
	a := storetest.OpenDSN(t, dsn)
	mustOK(t, a.Migrate(ctx))
	b := storetest.OpenDSN(t, dsn)

	try := func(s *store.Store, name string, want bool) func() {
		t.Helper()
		release, ok, err := s.TryLeader(ctx, name)
		if err != nil || ok != want || release == nil {
			t.Fatalf("TryLeader(%q) = %v, %v; want %v", name, ok, err, want)
		}
		return release
	}

	releaseA := try(a, "checkpointer", true)
	try(b, "checkpointer", false)
	// Leadership belongs to the session holding it, not the process: a
	// second call in the same store is refused too.
	try(a, "checkpointer", false)
	// Other jobs are independent.
	releaseSinks := try(b, "sinks", true)
	try(a, "sinks", false)

	releaseA()
	releaseA() // idempotent
	releaseB := try(b, "checkpointer", true)
	try(a, "checkpointer", false)
	releaseB()
	releaseSinks()

	// The released connections went back to the pool without the lock.
	var held int
	mustOK(t, a.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&held))
	if held != 0 {
		t.Fatalf("%d advisory locks still held after release", held)
	}

	// A node that dies (its session ends: here the server kills it) frees
	// its jobs at once.
	c := storetest.OpenDSN(t, dsn)
	try(c, "reminders", true)
	try(a, "reminders", false)
	tx, err := a.DB().BeginTx(ctx, nil)
	mustOK(t, err)
	defer tx.Rollback()
	_, err = tx.ExecContext(ctx, "SET LOCAL ROLE NONE") // the owner may end sessions
	mustOK(t, err)
	var killed int
	mustOK(t, tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) k`).Scan(&killed))
	mustOK(t, tx.Commit())
	if killed != 1 {
		t.Fatalf("%d sessions held an advisory lock, want 1", killed)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		release, ok, err := a.TryLeader(ctx, "reminders")
		mustOK(t, err)
		if ok {
			release()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the lock of a dead session was not freed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
