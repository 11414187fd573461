package store

import (
	"context"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"sync"
	"time"
)

// leaderReleaseTimeout bounds the unlock at release; past it the
// connection is discarded, which releases the lock just as well.
const leaderReleaseTimeout = 5 * time.Second

// TryLeader makes this process the one that runs the background job name
// (checkpointer, sinks, reminders) cluster-wide, without waiting. When ok,
// the caller runs the job until it calls release; release is never nil and
// may be called more than once.
//
// On PostgreSQL leadership is a session-level advisory lock held on a
// dedicated connection taken from the pool: the server frees it the moment
// that session ends, so a crashed node never blocks the job. Each held name
// costs one pooled connection. If the session dies while held (network,
// server restart) leadership lapses silently and another node may take
// over: jobs must be safe to overlap briefly, as the checkpointer (an
// idempotent SaveCheckpoint) and sinks (forward-only cursors) are. On SQLite
// there is one node, so it always succeeds. Release before closing the
// store: Close does not end a connection that is still held.
func (s *Store) TryLeader(ctx context.Context, name string) (release func(), ok bool, err error) {
	noop := func() {}
	if s.engine != EnginePostgres {
		return noop, true, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return noop, false, s.fail("try leader", err)
	}
	key := leaderLockKey(name)
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		// A session lock survives the connection's return to the pool, so
		// one whose outcome is unknown is discarded, never reused.
		if err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // discarding
		}
		conn.Close()
		return noop, false, s.fail("try leader", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), leaderReleaseTimeout)
			defer cancel()
			var unlocked bool
			err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", key).Scan(&unlocked)
			if err != nil || !unlocked {
				// Closing the session is the sure way to drop the lock;
				// returning it to the pool still locked would make some
				// unrelated request the leader forever.
				conn.Raw(func(any) error { return driver.ErrBadConn }) //nolint:errcheck // discarding
			}
			conn.Close()
		})
	}, true, nil
}

// leaderLockKey maps a job name to an advisory lock key, namespaced so it
// cannot be chosen to equal the store's own lock keys by accident.
func leaderLockKey(name string) int64 {
	sum := sha256.Sum256([]byte("rampart.leader\x00" + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}
