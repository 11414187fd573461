// Package store is Rampart's SQL storage for embedded SQLite (the default,
// single node) and PostgreSQL (clusters). There is one code path through
// database/sql: queries are written once with ? placeholders and rebound to
// $1..$n for PostgreSQL; the few engine differences live in the per-engine
// migrations. Every timestamp is stored as BIGINT unix microseconds so both
// engines compare and round-trip times identically.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/rampartsec/rampart/internal/fault"
)

// Engine names returned by (*Store).Engine.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// Options configures Open.
type Options struct {
	// DSN selects the engine: "postgres://" or "postgresql://" URLs open
	// PostgreSQL; anything else is a SQLite file path. Empty means SQLitePath.
	DSN string
	// SQLitePath is the database file used when DSN is empty.
	SQLitePath string
	// AllowInsecureTransport permits plaintext PostgreSQL connections to a
	// non-loopback host (TLS-3). Off by default; for lab set-ups only.
	AllowInsecureTransport bool
	// Log receives operational messages; never values from rows.
	Log *slog.Logger
	// Now stamps rows whose time the caller left zero; time.Now when nil.
	Now func() time.Time
	// Rand generates ids the caller left empty; crypto/rand when nil.
	Rand io.Reader
	// Observe, if set, is told the duration and outcome of every store
	// operation, named by its op string (MON-1; observe.go).
	Observe func(op string, d time.Duration, err error)
}

// Store implements the storage interfaces of the capability packages.
type Store struct {
	engine string
	// db takes every write. On SQLite it is a single connection so writers
	// queue in Go instead of colliding on the database lock (SQLITE_BUSY);
	// on PostgreSQL it is the only pool and rdb is the same handle.
	db *sql.DB
	// rdb serves reads. On SQLite it is a small pool of query_only
	// connections that, thanks to WAL, read concurrently with the writer.
	rdb  *sql.DB
	log  *slog.Logger
	now  func() time.Time
	rand io.Reader
	// appRole is set once the PostgreSQL database is known to have the
	// rampart_app role (migration 0003): from then on every connection
	// must run as it, including those opened before the migration.
	appRole atomic.Bool
	observe func(op string, d time.Duration, err error)
}

// Open opens (and for SQLite creates) the database. It does not migrate;
// call Migrate.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s := &Store{log: opts.Log, now: opts.Now, rand: opts.Rand, observe: opts.Observe}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	var err error
	if isPostgresDSN(opts.DSN) {
		err = s.openPostgres(ctx, opts)
	} else {
		path := opts.DSN
		if path == "" {
			path = opts.SQLitePath
		}
		err = s.openSQLite(ctx, path)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func isPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func (s *Store) openPostgres(ctx context.Context, opts Options) error {
	cfg, err := pgx.ParseConfig(opts.DSN)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return fault.Wrap(fault.Invalid, "invalid_database_dsn", "invalid PostgreSQL connection string", err)
	}
	if err := checkTransport(&cfg.Config, opts.AllowInsecureTransport); err != nil {
		return err
	}
	if !verifiesServer(&cfg.Config) {
		s.log.Warn("PostgreSQL TLS does not verify the server certificate; use sslmode=verify-full for remote databases")
	}
	s.engine = EnginePostgres
	s.db = stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(s.assumeAppRole), stdlib.OptionResetSession(s.keepAppRole))
	// Two cores: a handful of connections keeps both busy while queries
	// wait on the network, without crowding a shared server.
	s.db.SetMaxOpenConns(8)
	s.db.SetMaxIdleConns(4)
	s.db.SetConnMaxIdleTime(5 * time.Minute)
	s.db.SetConnMaxLifetime(30 * time.Minute)
	s.rdb = s.db
	if err := s.Ping(ctx); err != nil {
		s.db.Close()
		return err
	}
	return nil
}

// appRoleName is the PostgreSQL role every application query runs as. It
// owns nothing and cannot bypass row-level security, so the workspace
// policies bind it (AC-3); the DSN user owns the tables and runs migrations.
const appRoleName = "rampart_app"

// appRoleMarker flags, in a connection's custom data, that it switched.
const appRoleMarker = "rampart.app_role"

// assumeAppRole runs on every new PostgreSQL connection: it switches the
// session to rampart_app once migration 0003 has created the workspace
// tables (and the role with them). Before that the connection stays the
// owner: there is nothing to protect yet, and the role may not exist.
// After it, failing to switch fails the connection rather than run with the
// owner's power to see every workspace.
func (s *Store) assumeAppRole(ctx context.Context, c *pgx.Conn) error {
	var member, migrated bool
	err := c.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+appRoleName+`' AND pg_has_role(oid,
				CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END)),
			to_regclass('workspaces') IS NOT NULL`).Scan(&member, &migrated)
	if err != nil {
		return err
	}
	if !migrated && !s.appRole.Load() {
		return nil
	}
	if !member {
		return errors.New("store: the database user cannot SET ROLE " + appRoleName + "; rerun the migrations as the owner")
	}
	if _, err := c.Exec(ctx, "SET ROLE "+appRoleName); err != nil {
		return err
	}
	c.PgConn().CustomData()[appRoleMarker] = true
	s.appRole.Store(true)
	return nil
}

// keepAppRole runs each time the pool hands out a connection: one opened
// before the migration that created rampart_app switches now. A connection
// that cannot switch is discarded (ErrBadConn); its replacement then fails
// in assumeAppRole.
func (s *Store) keepAppRole(ctx context.Context, c *pgx.Conn) error {
	if !s.appRole.Load() || c.PgConn().CustomData()[appRoleMarker] == true {
		return nil
	}
	if err := s.assumeAppRole(ctx, c); err != nil {
		return driver.ErrBadConn
	}
	return nil
}

// sqlitePragmas apply to every connection. synchronous=FULL makes each
// commit durable across power loss, which an auth store needs (a lost
// "token used" or "step advanced" write reopens a replay). _txlock=immediate
// takes the write lock at BEGIN, so a transaction never fails half-way when
// upgrading from a read lock.
const sqlitePragmas = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(FULL)&_txlock=immediate"

func (s *Store) openSQLite(ctx context.Context, path string) error {
	if path == "" {
		return fault.Invalidf("invalid_database_path", "no SQLite database path configured")
	}
	// A '?' would be read as the start of driver parameters and "file:" as
	// a URI with its own parameters; both would let the path we created
	// with mode 0600 differ from the file SQLite opens.
	if strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:") {
		return fault.Invalidf("invalid_database_path", "the SQLite database path must be a plain file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot create the database directory", err)
	}
	// Create the file ourselves so it is never world-readable; SQLite gives
	// its -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot create the database file", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot stat the database file", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fault.Wrap(fault.Internal, "internal", "cannot restrict the database file mode", err)
		}
		s.log.Warn("restricted the SQLite database file to mode 0600", "was", fi.Mode().Perm().String())
	}

	s.engine = EngineSQLite
	s.db, err = sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=journal_mode(WAL)")
	if err != nil {
		return fault.Wrap(fault.Internal, "internal", "cannot open the database", err)
	}
	s.db.SetMaxOpenConns(1)
	s.db.SetMaxIdleConns(1)
	s.db.SetConnMaxLifetime(0)
	// The writer connection switches the file to WAL before any reader
	// opens it.
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return s.fail("open", err)
	}
	s.rdb, err = sql.Open("sqlite", path+"?"+sqlitePragmas+"&_pragma=query_only(1)")
	if err != nil {
		s.db.Close()
		return fault.Wrap(fault.Internal, "internal", "cannot open the database", err)
	}
	s.rdb.SetMaxOpenConns(4)
	s.rdb.SetMaxIdleConns(4)
	s.rdb.SetConnMaxIdleTime(5 * time.Minute)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return err
	}
	return nil
}

// Engine returns "sqlite" or "postgres".
func (s *Store) Engine() string { return s.engine }

// DB returns the write pool (the only pool on PostgreSQL) for pool metrics.
func (s *Store) DB() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.fail("ping", err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return s.fail("ping", err)
		}
	}
	return nil
}

// Close closes every pool.
func (s *Store) Close() error {
	var errs []error
	if s.rdb != nil && s.rdb != s.db {
		errs = append(errs, s.rdb.Close())
	}
	if s.db != nil {
		errs = append(errs, s.db.Close())
	}
	return errors.Join(errs...)
}

// querier is what *sql.DB and *sql.Tx have in common, so a helper can run
// inside or outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withTx runs fn in a write transaction and commits when fn returns nil. It
// is the one place a transaction starts. fn must use only tx: on SQLite the
// write pool has a single connection, which tx holds.
func (s *Store) withTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, op, nil, "", fn)
}

// Row-level security scopes, read by the policies of migration 0003 through
// current_setting(). Both are set with set_config(..., true), so they end
// with the transaction and a pooled connection never carries one over.
const (
	settingWorkspace = "rampart.workspace_id"
	settingScope     = "rampart.scope"
	scopeGlobal      = "global"
)

// withWorkspaceTx runs fn in a write transaction bound to workspace ws: on
// PostgreSQL the row-level security policies then show and accept only
// ws's rows, whatever fn's queries say. Queries must still filter on
// workspace_id themselves: that is SQLite's only isolation, and keeps plans
// on the indexes.
func (s *Store) withWorkspaceTx(ctx context.Context, op, ws string, fn func(tx *sql.Tx) error) error {
	if ws == "" {
		return fault.ErrNotFound
	}
	return s.inTx(ctx, op, nil, ws, fn)
}

// withGlobalTx runs fn in a write transaction that sees every workspace.
// Only the lookups that by nature precede knowing the workspace use it
// (see tenancy.go); anything else is a workspace transaction.
func (s *Store) withGlobalTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, op, nil, scopeGlobal, fn)
}

// readWorkspace runs the reads of fn against workspace ws. On PostgreSQL
// that is a read-only, repeatable-read transaction bound to ws (the
// policies need the setting, and the reads see one snapshot); on SQLite it
// is the concurrent read pool, where fn's queries filter by ws themselves.
func (s *Store) readWorkspace(ctx context.Context, op, ws string, fn func(q querier) error) error {
	if ws == "" {
		return fault.ErrNotFound
	}
	return s.read(ctx, op, ws, fn)
}

// readGlobal is readWorkspace across every workspace; see withGlobalTx.
func (s *Store) readGlobal(ctx context.Context, op string, fn func(q querier) error) error {
	return s.read(ctx, op, scopeGlobal, fn)
}

func (s *Store) read(ctx context.Context, op, scope string, fn func(q querier) error) (err error) {
	if s.engine != EnginePostgres {
		defer s.timed(op, time.Now(), &err)
		return s.fail(op, fn(inOp{s.rdb}))
	}
	opts := &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	return s.inTx(ctx, op, opts, scope, func(tx *sql.Tx) error { return fn(tx) })
}

// rescope rebinds a transaction on PostgreSQL to workspace ws, dropping any
// global scope. A transaction that had to find its workspace first (an
// invitation found by id) narrows itself before it writes.
func (s *Store) rescope(ctx context.Context, tx *sql.Tx, ws string) error {
	if s.engine != EnginePostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, "SELECT set_config($1, '', true), set_config($2, $3, true)", settingScope, settingWorkspace, ws)
	return err
}

// inTx begins a transaction, binds it on PostgreSQL to scope (a workspace
// id, scopeGlobal, or "" for none), runs fn and commits when fn returns nil.
func (s *Store) inTx(ctx context.Context, op string, opts *sql.TxOptions, scope string, fn func(tx *sql.Tx) error) (err error) {
	defer s.timed(op, time.Now(), &err)
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return s.fail(op, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if scope != "" && s.engine == EnginePostgres {
		setting, value := settingWorkspace, scope
		if scope == scopeGlobal {
			setting = settingScope
		}
		if _, err := tx.ExecContext(ctx, "SELECT set_config($1, $2, true)", setting, value); err != nil {
			return s.fail(op, err)
		}
	}
	if err := fn(tx); err != nil {
		return s.fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return s.fail(op, err)
	}
	return nil
}

// q adapts a query written with ? placeholders to the engine.
func (s *Store) q(query string) string {
	if s.engine == EnginePostgres {
		return rebind(query)
	}
	return query
}

// rebind turns each ? outside single-quoted literals into $1..$n.
func rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, quoted := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// exec runs a write and returns the rows affected.
func (s *Store) exec(ctx context.Context, x querier, op, query string, args ...any) (n int64, err error) {
	defer s.timedAlone(x, op, time.Now(), &err)
	res, err := x.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err = res.RowsAffected()
	if err != nil {
		return 0, s.fail(op, err)
	}
	return n, nil
}

// execOne runs a write that must touch a row; fault.ErrNotFound otherwise.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	n, err := s.exec(ctx, s.db, op, query, args...)
	if err != nil {
		return err
	}
	if n == 0 {
		return fault.ErrNotFound
	}
	return nil
}

// exists reports whether query returns a row.
func (s *Store) exists(ctx context.Context, x querier, op, query string, args ...any) (found bool, err error) {
	defer s.timedAlone(x, op, time.Now(), &err)
	var one int
	err = x.QueryRowContext(ctx, s.q(query), args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.fail(op, err)
	}
	return true, nil
}

// newID returns a random 128-bit identifier in hex.
func (s *Store) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fault.Wrap(fault.Internal, "internal", "cannot generate an id", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// micros converts a time to the stored form: unix microseconds, or NULL for
// the zero time.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// fromMicros is the inverse of micros; times come back in UTC.
func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// blob stores empty byte slices as NULL, so "never set" reads back as nil on
// both engines.
func blob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// SQLite extended result codes (modernc.org/sqlite/lib).
const (
	sqliteConstraintForeignKey = 787
	sqliteConstraintPrimaryKey = 1555
	sqliteConstraintUnique     = 2067
)

// fail maps a driver error to a fault kind. The internal cause is rebuilt
// from codes and schema names only: driver messages can quote bound values
// (an email in a PostgreSQL detail, a value in a scan error), and causes are
// logged.
func (s *Store) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fault.ErrNotFound
	}
	var fe *fault.Error
	if errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fault.Wrap(fault.Unavailable, "unavailable", "storage unavailable", fmt.Errorf("store %s: %w", op, err))
	}
	cause := fmt.Errorf("store %s: %w", op, describe(err))
	var pe *pgconn.PgError
	var se *sqlite.Error
	switch {
	case errors.As(err, &pe) && pe.Code == "23505",
		errors.As(err, &se) && (se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPrimaryKey):
		return fault.Wrap(fault.Conflict, "conflict", "already exists", cause)
	case errors.As(err, &pe) && pe.Code == "23503",
		errors.As(err, &se) && se.Code() == sqliteConstraintForeignKey:
		// The referenced user or workspace is gone.
		return fault.Wrap(fault.NotFound, "not_found", "not found", cause)
	}
	return fault.Wrap(fault.Internal, "internal", "storage error", cause)
}

// describe returns a loggable form of a driver error that carries no row
// values.
func describe(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		msg := "postgres SQLSTATE " + pe.Code
		if pe.ConstraintName != "" {
			msg += " constraint " + pe.ConstraintName
		}
		// These classes describe the connection, the schema or the server,
		// not data: their messages are safe and needed to debug.
		switch pe.Code[:min(2, len(pe.Code))] {
		case "08", "28", "3D", "3F", "42", "53", "55", "57", "58":
			msg += ": " + pe.Message
		}
		return errors.New(msg)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// SQLite messages name tables, columns and constraints, never
		// bound values.
		return fmt.Errorf("sqlite: %s", se.Error())
	}
	if strings.HasPrefix(err.Error(), "sql: Scan error") {
		return errors.New("sql: scan error")
	}
	return err
}
