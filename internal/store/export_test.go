package store

import (
	"context"
	"database/sql"
)

// Test hooks: they let the external tests run raw SQL inside the same
// scoped transactions the store uses, to prove what the database enforces.

// WithWorkspaceTxForTest runs fn in a transaction bound to workspace ws.
func (s *Store) WithWorkspaceTxForTest(ctx context.Context, ws string, fn func(tx *sql.Tx) error) error {
	return s.withWorkspaceTx(ctx, "test", ws, fn)
}

// WithGlobalTxForTest runs fn in a transaction with the global scope.
func (s *Store) WithGlobalTxForTest(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.withGlobalTx(ctx, "test", fn)
}

// Q exposes the placeholder rebinding.
func (s *Store) Q(query string) string { return s.q(query) }
