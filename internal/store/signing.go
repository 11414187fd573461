package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth/signing"
)

var _ signing.Store = (*Store)(nil)

// Signing keys (migration 0006) are operator-level, not workspace-owned:
// every method here runs without a workspace scope.

const signingKeyColumns = `id, algorithm, public_key, private_key, created_at, active_from, retired_at, delete_after`

// signingKeysLockKey serializes key creation across nodes on PostgreSQL
// ("rampart.signing" as an arbitrary int64); on SQLite the single writer
// already does.
const signingKeysLockKey int64 = 0x72616d707369676e

func scanSigningKey(r rowScanner) (signing.StoredKey, error) {
	var (
		k                   signing.StoredKey
		alg                 string
		created, activeFrom int64
		retired, deleteAt   sql.NullInt64
	)
	err := r.Scan(&k.ID, &alg, &k.PublicKey, &k.PrivateKey, &created, &activeFrom, &retired, &deleteAt)
	k.Algorithm = signing.Algorithm(alg)
	k.CreatedAt, k.ActiveFrom = timeOf(created), timeOf(activeFrom)
	k.RetiredAt, k.DeleteAfter = fromMicros(retired), fromMicros(deleteAt)
	return k, err
}

// SigningKeys returns every stored signing key, oldest activation first.
func (s *Store) SigningKeys(ctx context.Context) ([]signing.StoredKey, error) {
	var keys []signing.StoredKey
	err := s.read(ctx, "signing keys", "", func(q querier) (err error) {
		keys, err = queryAll(ctx, s, q, scanSigningKey, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY active_from, id`)
		return err
	})
	return keys, err
}

// CreateSigningKey inserts k; with unlessSignsAfter set, only if no
// unretired key has active_from after it (checked under a lock that
// serializes creators across nodes, so the check and the insert are one
// step).
func (s *Store) CreateSigningKey(ctx context.Context, k signing.StoredKey, unlessSignsAfter *time.Time) (bool, error) {
	if k.ID == "" || k.Algorithm == "" || len(k.PublicKey) == 0 || len(k.PrivateKey) == 0 || k.CreatedAt.IsZero() || k.ActiveFrom.IsZero() {
		return false, fault.Invalidf("invalid_signing_key", "a signing key needs an id, algorithm, keys and times")
	}
	created := false
	err := s.withTx(ctx, "create signing key", func(tx *sql.Tx) error {
		if s.engine == EnginePostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", signingKeysLockKey); err != nil {
				return err
			}
		}
		if unlessSignsAfter != nil {
			found, err := s.exists(ctx, tx, "create signing key",
				`SELECT 1 FROM signing_keys WHERE retired_at IS NULL AND active_from > ?`, unlessSignsAfter.UnixMicro())
			if err != nil || found {
				return err
			}
		}
		if _, err := s.exec(ctx, tx, "create signing key", `INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, string(k.Algorithm), k.PublicKey, k.PrivateKey, k.CreatedAt.UnixMicro(), k.ActiveFrom.UnixMicro(),
			micros(k.RetiredAt), micros(k.DeleteAfter)); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return created, nil
}

// RetireSigningKey records that the key stopped signing, once: false if it
// was already retired (or is gone).
func (s *Store) RetireSigningKey(ctx context.Context, id string, retiredAt, deleteAfter time.Time) (bool, error) {
	n, err := s.exec(ctx, s.db, "retire signing key",
		`UPDATE signing_keys SET retired_at = ?, delete_after = ? WHERE id = ? AND retired_at IS NULL`,
		retiredAt.UnixMicro(), deleteAfter.UnixMicro(), id)
	return n == 1, err
}

// RevokeSigningKey sets both times whatever they were; fault.ErrNotFound
// for an unknown id.
func (s *Store) RevokeSigningKey(ctx context.Context, id string, retiredAt, deleteAfter time.Time) error {
	return s.execOne(ctx, "revoke signing key", `UPDATE signing_keys SET retired_at = ?, delete_after = ? WHERE id = ?`,
		retiredAt.UnixMicro(), deleteAfter.UnixMicro(), id)
}

// DeleteSigningKey removes the key; false if it was already gone.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) (bool, error) {
	n, err := s.exec(ctx, s.db, "delete signing key", `DELETE FROM signing_keys WHERE id = ?`, id)
	return n == 1, err
}
