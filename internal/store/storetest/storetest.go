// Package storetest gives tests a migrated store on each engine, so every
// storage behaviour is proven on SQLite and PostgreSQL alike.
//
// PostgreSQL tests need RAMPART_TEST_POSTGRES, a server URL such as
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Each store
// gets a fresh database, dropped when the test ends. Without the variable
// the PostgreSQL half is skipped locally and fails under CI=true, so CI can
// never pass while silently testing only one engine.
package storetest

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rampartsec/rampart/internal/store"
)

// EnvPostgres names the variable holding the PostgreSQL server URL.
const EnvPostgres = "RAMPART_TEST_POSTGRES"

// Each runs fn as the subtests "sqlite" and "postgres", each with its own
// fresh, migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			fn(t, Open(t, engine))
		})
	}
}

// Open returns a fresh, migrated store on engine ("sqlite" or "postgres"),
// closed (and on PostgreSQL dropped) when the test ends.
func Open(t testing.TB, engine string) *store.Store {
	t.Helper()
	s := OpenDSN(t, DSN(t, engine))
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("storetest: migrate %s: %v", engine, err)
	}
	return s
}

// DSN returns the address of a fresh, empty (unmigrated) database on
// engine: a file in t.TempDir() for SQLite, a new database for PostgreSQL,
// dropped when the test ends. For tests that open several stores on one
// database or test migrations themselves.
func DSN(t testing.TB, engine string) string {
	t.Helper()
	switch engine {
	case store.EngineSQLite:
		return t.TempDir() + "/rampart.db"
	case store.EnginePostgres:
		return freshDatabase(t)
	}
	t.Fatalf("storetest: unknown engine %q", engine)
	return ""
}

// OpenDSN opens a store on dsn without migrating it, closed when the test
// ends (before a database from DSN is dropped: cleanups run last-in
// first-out).
func OpenDSN(t testing.TB, dsn string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Options{DSN: dsn})
	if err != nil {
		t.Fatalf("storetest: open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// freshDatabase creates an empty database with a random name on the server
// in RAMPART_TEST_POSTGRES and returns its URL.
func freshDatabase(t testing.TB) string {
	t.Helper()
	server := os.Getenv(EnvPostgres)
	if server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("RAMPART_TEST_POSTGRES is required under CI")
		}
		t.Skip("PostgreSQL tests skipped: set RAMPART_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable to run them")
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("storetest: %s must be a postgres:// URL", EnvPostgres)
	}
	name := "rampart_test_" + strings.ToLower(rand.Text())
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Fatalf("storetest: connect to %s: %v", EnvPostgres, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, server, ident) })

	u.Path = "/" + name
	return u.String()
}

func dropDatabase(t testing.TB, server, ident string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, server)
	if err != nil {
		t.Errorf("storetest: connect to drop %s: %v", ident, err)
		return
	}
	defer admin.Close(ctx)
	var version int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		t.Errorf("storetest: server version: %v", err)
		return
	}
	drop := "DROP DATABASE IF EXISTS " + ident + " WITH (FORCE)"
	if version < 130000 {
		// Before 13 there is no FORCE: end the sessions ourselves.
		name := strings.Trim(ident, `"`)
		if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
			t.Errorf("storetest: terminate sessions: %v", err)
		}
		drop = "DROP DATABASE IF EXISTS " + ident
	}
	if _, err := admin.Exec(ctx, drop); err != nil {
		t.Errorf("storetest: drop database: %v", err)
	}
}
