package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/fault"
)

//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migrateLockKey is the PostgreSQL advisory lock that serializes migrations
// across nodes starting at once ("rampart.migrate" as an arbitrary int64).
const migrateLockKey int64 = 0x72616d706d696772

type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the engine's embedded migrations in version order. A
// file is named NNNN_description.sql; NNNN is its version.
func (s *Store) migrations() ([]migration, error) {
	dir := "migrations/" + s.engine
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fault.Wrap(fault.Internal, "internal", "cannot read migrations", err)
	}
	var ms []migration
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fault.Wrap(fault.Internal, "internal", "bad migration file name", fmt.Errorf("%s/%s", dir, e.Name()))
		}
		b, err := migrationFiles.ReadFile(path.Join(dir, e.Name()))
		if err != nil {
			return nil, fault.Wrap(fault.Internal, "internal", "cannot read migrations", err)
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fault.Wrap(fault.Internal, "internal", "duplicate migration version", fmt.Errorf("%s and %s", ms[i-1].name, ms[i].name))
		}
	}
	return ms, nil
}

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    BIGINT NOT NULL PRIMARY KEY,
	applied_at BIGINT NOT NULL
)`

// Migrate applies pending migrations, each in its own transaction together
// with its schema_migrations row. Every transaction re-checks whether its
// version is applied after taking the lock, so concurrent callers (several
// nodes starting together on PostgreSQL, serialized by an advisory lock;
// processes on one SQLite file, serialized by the write lock) apply each
// migration exactly once. Running it again is a no-op.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := s.migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		applied := false
		err := s.withTx(ctx, "migrate", func(tx *sql.Tx) error {
			if s.engine == EnginePostgres {
				// Connections run as rampart_app, which may not change the
				// schema: the migration runs as the session user, the
				// owner, for this transaction only.
				if _, err := tx.ExecContext(ctx, "SET LOCAL ROLE NONE"); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLockKey); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, createSchemaMigrations); err != nil {
				return err
			}
			done, err := s.exists(ctx, tx, "migrate", "SELECT 1 FROM schema_migrations WHERE version = ?", m.version)
			if err != nil || done {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %s: %w", m.name, err)
			}
			_, err = tx.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"), m.version, s.now().UnixMicro())
			applied = err == nil
			return err
		})
		if err != nil {
			return err
		}
		if applied {
			s.log.Info("applied database migration", "engine", s.engine, "version", m.version, "name", m.name)
		}
	}
	if s.engine == EnginePostgres {
		// The migrations created rampart_app: connections opened before
		// switch to it when next handed out (keepAppRole).
		s.appRole.Store(true)
	}
	return nil
}

// MigrationStatus returns the applied versions recorded in the database and
// the embedded versions not yet applied, both ascending.
func (s *Store) MigrationStatus(ctx context.Context) (applied []int, pending []int, err error) {
	ms, err := s.migrations()
	if err != nil {
		return nil, nil, err
	}
	var tableQuery string
	if s.engine == EnginePostgres {
		tableQuery = "SELECT 1 WHERE to_regclass('schema_migrations') IS NOT NULL"
	} else {
		tableQuery = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
	}
	hasTable, err := s.exists(ctx, s.rdb, "migration status", tableQuery)
	if err != nil {
		return nil, nil, err
	}
	if hasTable {
		rows, err := s.rdb.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		if err != nil {
			return nil, nil, s.fail("migration status", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				return nil, nil, s.fail("migration status", err)
			}
			applied = append(applied, v)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, s.fail("migration status", err)
		}
	}
	for _, m := range ms {
		if !slices.Contains(applied, m.version) {
			pending = append(pending, m.version)
		}
	}
	return applied, pending, nil
}

// Meta returns the value stored under key; fault.ErrNotFound if absent.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.rdb.QueryRowContext(ctx, s.q("SELECT value FROM meta WHERE key = ?"), key).Scan(&v)
	if err != nil {
		return "", s.fail("meta", err)
	}
	return v, nil
}

// SetMetaIfAbsent stores value under key unless a value is already there,
// and returns the stored value either way. The first writer wins, which is
// what pinning a fingerprint at first start needs.
func (s *Store) SetMetaIfAbsent(ctx context.Context, key, value string) (string, error) {
	var stored string
	err := s.withTx(ctx, "set meta", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"), key, value); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, s.q("SELECT value FROM meta WHERE key = ?"), key).Scan(&stored)
	})
	if errors.Is(err, fault.ErrNotFound) {
		return "", fault.Wrap(fault.Internal, "internal", "storage error", errors.New("meta row vanished after insert"))
	}
	return stored, err
}

// SetMeta stores value under key, replacing what was there (for facts that
// change, such as the result of the last full audit verification).
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	return s.withTx(ctx, "set meta", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"), key, value)
		return err
	})
}
