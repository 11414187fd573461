package store

import (
	"database/sql"
	"time"
)

// Query timing (MON-1). The store reports each operation — named by its op
// string, such as "create session" — to Options.Observe, with its duration
// and the error it returns. Nothing here knows about Prometheus: the app
// turns observations into metrics.
//
// The hooks sit in the shared helpers (inTx, read, exec, exists). A
// transaction is timed once, from BEGIN to COMMIT, and the statements inside
// it are not reported again; a statement run on its own on a pool is timed
// by itself. Methods that query a pool directly instead of through a helper
// (e.g. UserByID) are not timed until they move onto one.

// timed reports the operation op that started at start and ended with
// *err. Call it deferred, with a pointer to the named error result.
// Durations come from time.Now's monotonic clock, not Options.Now: that is
// a wall clock for stamping rows, and tests freeze it.
func (s *Store) timed(op string, start time.Time, err *error) {
	if s.observe != nil {
		s.observe(op, time.Since(start), *err)
	}
}

// timedAlone is timed for a statement helper (exec, exists) that may run
// on its own or inside an operation already being timed: it reports only
// when x is a pool, never a transaction or a querier read hands out.
func (s *Store) timedAlone(x querier, op string, start time.Time, err *error) {
	if _, pool := x.(*sql.DB); pool {
		s.timed(op, start, err)
	}
}

// inOp marks a querier that belongs to an operation already being timed,
// so statement helpers running on it do not report again.
type inOp struct{ querier }

// EngineFor returns the engine Open would choose for dsn, so a caller can
// label query metrics before the store exists.
func EngineFor(dsn string) string {
	if isPostgresDSN(dsn) {
		return EnginePostgres
	}
	return EngineSQLite
}
