package store

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault"
)

var _ vault.KeyStore = (*Store)(nil)

// Meta keys of the root: the fingerprint (or HSM key check value) of the
// root that wraps the KEKs, and the derivation root wrapped under it
// (base64; absent until the first root rotation or HSM start).
const (
	MetaRootKeyID      = "root_key_id"
	MetaRootDerivation = "root_derive_wrapped"
)

// Vault keys (migration 0008). A scope's rows are read and written in a
// transaction bound to its workspace, so on PostgreSQL row-level security
// confines them; the operator scope (workspace_id '') and the cross-scope
// operations (VaultAll, VaultRewrapRoot) run in the global scope.

// vaultWrite runs fn in a write transaction bound to scope.
func (s *Store) vaultWrite(ctx context.Context, op, scope string, fn func(tx *sql.Tx) error) error {
	if scope == "" {
		return s.withGlobalTx(ctx, op, fn)
	}
	return s.withWorkspaceTx(ctx, op, scope, fn)
}

// vaultRead runs the reads of fn bound to scope.
func (s *Store) vaultRead(ctx context.Context, op, scope string, fn func(q querier) error) error {
	if scope == "" {
		return s.readGlobal(ctx, op, fn)
	}
	return s.readWorkspace(ctx, op, scope, fn)
}

func scanVaultScope(r rowScanner) (vault.Scope, error) {
	var sc vault.Scope
	var min, created int64
	var shredded sql.NullInt64
	err := r.Scan(&sc.Scope, &min, &sc.BlindWrapped, &sc.RootID, &created, &shredded)
	sc.MinVersion, sc.CreatedAt, sc.ShreddedAt = uint32(min), timeOf(created), fromMicros(shredded)
	return sc, err
}

func scanKEK(r rowScanner) (vault.KEK, error) {
	var k vault.KEK
	var version, created int64
	err := r.Scan(&k.Scope, &version, &k.Wrapped, &k.RootID, &created)
	k.Version, k.CreatedAt = uint32(version), timeOf(created)
	return k, err
}

const (
	vaultScopeColumns = `workspace_id, min_version, blind_wrapped, root_id, created_at, shredded_at`
	vaultKEKColumns   = `workspace_id, version, wrapped, root_id, created_at`
)

// VaultScope implements vault.KeyStore.
func (s *Store) VaultScope(ctx context.Context, scope string) (*vault.Scope, []vault.KEK, error) {
	var sc vault.Scope
	var keks []vault.KEK
	err := s.vaultRead(ctx, "vault scope", scope, func(q querier) error {
		var err error
		sc, err = scanVaultScope(q.QueryRowContext(ctx, s.q(`SELECT `+vaultScopeColumns+` FROM vault_scopes WHERE workspace_id = ?`), scope))
		if err != nil {
			return err
		}
		keks, err = queryAll(ctx, s, q, scanKEK, `SELECT `+vaultKEKColumns+` FROM vault_keks WHERE workspace_id = ? ORDER BY version`, scope)
		return err
	})
	if err != nil {
		return nil, nil, s.fail("vault scope", err)
	}
	return &sc, keks, nil
}

// VaultCreateScope implements vault.KeyStore. A scope that exists (alive
// or shredded) is a conflict.
func (s *Store) VaultCreateScope(ctx context.Context, sc vault.Scope, first vault.KEK) error {
	return s.vaultWrite(ctx, "vault create scope", sc.Scope, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "vault create scope", `INSERT INTO vault_scopes (workspace_id, min_version, blind_wrapped, root_id, created_at)
			VALUES (?, ?, ?, ?, ?)`, sc.Scope, int64(sc.MinVersion), sc.BlindWrapped, sc.RootID, sc.CreatedAt.UnixMicro()); err != nil {
			return err
		}
		return s.insertKEK(ctx, tx, first)
	})
}

func (s *Store) insertKEK(ctx context.Context, tx *sql.Tx, k vault.KEK) error {
	_, err := s.exec(ctx, tx, "vault add kek", `INSERT INTO vault_keks (workspace_id, version, wrapped, root_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.Scope, int64(k.Version), k.Wrapped, k.RootID, k.CreatedAt.UnixMicro())
	return err
}

// VaultAddKEK implements vault.KeyStore. The scope must be alive.
func (s *Store) VaultAddKEK(ctx context.Context, k vault.KEK) error {
	return s.vaultWrite(ctx, "vault add kek", k.Scope, func(tx *sql.Tx) error {
		alive, err := s.exists(ctx, tx, "vault add kek", `SELECT 1 FROM vault_scopes WHERE workspace_id = ? AND shredded_at IS NULL`, k.Scope)
		if err != nil {
			return err
		}
		if !alive {
			return fault.ErrNotFound
		}
		return s.insertKEK(ctx, tx, k)
	})
}

// VaultSetMinVersion implements vault.KeyStore; it only ever raises.
func (s *Store) VaultSetMinVersion(ctx context.Context, scope string, min uint32) error {
	return s.vaultWrite(ctx, "vault set min version", scope, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "vault set min version", `UPDATE vault_scopes SET min_version = ?
			WHERE workspace_id = ? AND shredded_at IS NULL AND min_version < ?`, int64(min), scope, int64(min))
		if err != nil || n > 0 {
			return err
		}
		alive, err := s.exists(ctx, tx, "vault set min version", `SELECT 1 FROM vault_scopes WHERE workspace_id = ? AND shredded_at IS NULL`, scope)
		if err == nil && !alive {
			return fault.ErrNotFound
		}
		return err
	})
}

// VaultAll implements vault.KeyStore: every live scope and its KEKs.
func (s *Store) VaultAll(ctx context.Context) ([]vault.Scope, []vault.KEK, error) {
	var scopes []vault.Scope
	var keks []vault.KEK
	err := s.readGlobal(ctx, "vault all", func(q querier) error {
		var err error
		scopes, err = queryAll(ctx, s, q, scanVaultScope, `SELECT `+vaultScopeColumns+` FROM vault_scopes WHERE shredded_at IS NULL ORDER BY workspace_id`)
		if err != nil {
			return err
		}
		keks, err = queryAll(ctx, s, q, scanKEK, `SELECT `+vaultKEKColumns+` FROM vault_keks ORDER BY workspace_id, version`)
		return err
	})
	return scopes, keks, s.fail("vault all", err)
}

// VaultRewrapRoot implements vault.KeyStore. Each row is replaced only if
// it still holds what was read (compare-and-set on the old root id), and
// the root fingerprint in meta moves in the same transaction, so a crash
// leaves either the old or the new root in charge of every row, never a
// mix.
func (s *Store) VaultRewrapRoot(ctx context.Context, scopes []vault.Scope, keks []vault.KEK, newRootID string, derivation []byte) error {
	return s.withGlobalTx(ctx, "vault rewrap root", func(tx *sql.Tx) error {
		for _, k := range keks {
			if _, err := s.exec(ctx, tx, "vault rewrap root", `UPDATE vault_keks SET wrapped = ?, root_id = ? WHERE workspace_id = ? AND version = ?`,
				k.Wrapped, k.RootID, k.Scope, int64(k.Version)); err != nil {
				return err
			}
		}
		for _, sc := range scopes {
			if _, err := s.exec(ctx, tx, "vault rewrap root", `UPDATE vault_scopes SET blind_wrapped = ?, root_id = ? WHERE workspace_id = ? AND shredded_at IS NULL`,
				sc.BlindWrapped, sc.RootID, sc.Scope); err != nil {
				return err
			}
		}
		var left int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM vault_keks WHERE root_id <> ?`), newRootID).Scan(&left); err != nil {
			return err
		}
		if left > 0 {
			// A KEK was added between the read and this transaction.
			return fault.Conflictf("vault_rewrap_raced", "%d keys were added during the root rotation; run it again", left)
		}
		for k, v := range map[string]string{MetaRootKeyID: newRootID, MetaRootDerivation: base64.StdEncoding.EncodeToString(derivation)} {
			if _, err := s.exec(ctx, tx, "vault rewrap root", `INSERT INTO meta (key, value) VALUES (?, ?)
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`, k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// VaultDestroyScope implements vault.KeyStore: crypto-shredding. The KEK
// rows are deleted and the blind key nulled; the scope row stays as a
// tombstone (shredded_at) so the scope is never given keys again. An
// unknown scope is recorded as shredded too, so nothing can create it
// later. On SQLite, secure_delete overwrites the freed pages.
func (s *Store) VaultDestroyScope(ctx context.Context, scope string, at time.Time) (int, error) {
	var n int64
	err := s.vaultWrite(ctx, "vault destroy scope", scope, func(tx *sql.Tx) error {
		if s.engine == EngineSQLite {
			if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
				return err
			}
		}
		var err error
		if n, err = s.exec(ctx, tx, "vault destroy scope", `DELETE FROM vault_keks WHERE workspace_id = ?`, scope); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "vault destroy scope", `INSERT INTO vault_scopes (workspace_id, min_version, blind_wrapped, root_id, created_at, shredded_at)
			VALUES (?, 1, NULL, '', ?, ?)
			ON CONFLICT (workspace_id) DO UPDATE SET blind_wrapped = NULL, shredded_at = excluded.shredded_at`, scope, at.UnixMicro(), at.UnixMicro())
		return err
	})
	return int(n), err
}

// VaultTOTPSecrets returns up to limit (user id, sealed TOTP secret) pairs
// with ids after after, for the re-wrap job.
func (s *Store) VaultTOTPSecrets(ctx context.Context, after string, limit int) ([]vault.StoredValue, error) {
	out, err := queryAll(ctx, s, s.rdb, func(r rowScanner) (vault.StoredValue, error) {
		var v vault.StoredValue
		err := r.Scan(&v.Row, &v.Ciphertext)
		return v, err
	}, `SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND id > ? ORDER BY id LIMIT ?`, after, limit)
	return out, s.fail("vault totp secrets", err)
}

// VaultReplaceTOTPSecret swaps a user's sealed TOTP secret from old to new,
// only if it still is old (a concurrent re-enrolment wins).
func (s *Store) VaultReplaceTOTPSecret(ctx context.Context, userID string, old, new []byte) (bool, error) {
	var done bool
	err := s.withTx(ctx, "vault replace totp", func(tx *sql.Tx) error {
		var cur []byte
		if err := tx.QueryRowContext(ctx, s.q(`SELECT totp_secret FROM users WHERE id = ?`), userID).Scan(&cur); err != nil {
			return err
		}
		if !bytes.Equal(cur, old) {
			return nil
		}
		_, err := s.exec(ctx, tx, "vault replace totp", `UPDATE users SET totp_secret = ? WHERE id = ?`, new, userID)
		done = err == nil
		return err
	})
	if fault.Is(err, fault.NotFound) {
		return false, nil
	}
	return done, err
}
