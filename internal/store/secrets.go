package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault/secrets"
)

var _ secrets.Store = (*Store)(nil)

// Secrets (migration 0009). A secret's scope is its workspace, or "" for
// the operator level (workspace_id NULL). Every method runs in a
// transaction bound to that scope: on PostgreSQL rampart.workspace_id is
// set to the workspace id, or to '' for the operator level, which the
// policies of 0009 compare with COALESCE(workspace_id, ''); on both engines
// each query filters on the scope itself.

// wsArg is the stored form of a scope: NULL for the operator level.
func wsArg(ws string) any {
	if ws == "" {
		return nil
	}
	return ws
}

// secretsTx runs fn in a write transaction bound to the secrets scope ws.
func (s *Store) secretsTx(ctx context.Context, op, ws string, fn func(tx *sql.Tx) error) error {
	return s.inTx(ctx, op, nil, "", func(tx *sql.Tx) error {
		if err := s.bindScope(ctx, tx, ws); err != nil {
			return err
		}
		return fn(tx)
	})
}

// secretsRead runs fn's reads in the secrets scope ws.
func (s *Store) secretsRead(ctx context.Context, op, ws string, fn func(q querier) error) error {
	return s.read(ctx, op, "", func(q querier) error {
		if err := s.bindScope(ctx, q, ws); err != nil {
			return err
		}
		return fn(q)
	})
}

func (s *Store) bindScope(ctx context.Context, q querier, ws string) error {
	if s.engine != EnginePostgres {
		return nil
	}
	_, err := q.ExecContext(ctx, "SELECT set_config($1, $2, true)", settingWorkspace, ws)
	return err
}

const secretColumns = `id, COALESCE(workspace_id, ''), name, current_version, latest_version, created_at, updated_at, deleted_at, destroyed_at,
	rotation_policy, rotation_attempt_at, rotation_success_at, rotation_status, rotation_error`

func scanSecret(r rowScanner) (secrets.Secret, error) {
	var sec secrets.Secret
	var created, updated int64
	var deleted, destroyed, attempt, success sql.NullInt64
	err := r.Scan(&sec.ID, &sec.Workspace, &sec.Name, &sec.Current, &sec.Latest, &created, &updated, &deleted, &destroyed,
		&sec.Rotation.Policy, &attempt, &success, &sec.Rotation.Status, &sec.Rotation.Error)
	sec.CreatedAt, sec.UpdatedAt = timeOf(created), timeOf(updated)
	sec.DeletedAt, sec.DestroyedAt = fromMicros(deleted), fromMicros(destroyed)
	sec.Rotation.LastAttempt, sec.Rotation.LastSuccess = fromMicros(attempt), fromMicros(success)
	return sec, err
}

// CreateSecret inserts sec; fault.Conflict when a live secret of the scope
// has the name.
func (s *Store) CreateSecret(ctx context.Context, sec *secrets.Secret) error {
	if sec.ID == "" || sec.Name == "" {
		return fault.Invalidf("invalid_secret", "a secret needs an id and a name")
	}
	return s.secretsTx(ctx, "create secret", sec.Workspace, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create secret", `INSERT INTO secrets (id, workspace_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			sec.ID, wsArg(sec.Workspace), sec.Name, sec.CreatedAt.UnixMicro(), sec.UpdatedAt.UnixMicro())
		return err
	})
}

// SecretByName returns the live secret ws/name, soft-deleted included.
func (s *Store) SecretByName(ctx context.Context, ws, name string) (*secrets.Secret, error) {
	var sec secrets.Secret
	err := s.secretsRead(ctx, "secret by name", ws, func(q querier) (err error) {
		sec, err = scanSecret(q.QueryRowContext(ctx, s.q(`SELECT `+secretColumns+` FROM secrets
			WHERE COALESCE(workspace_id, '') = ? AND name = ? AND destroyed_at IS NULL`), ws, name))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &sec, nil
}

// ListSecrets lists the scope's live secrets by name: the soft-deleted ones
// when deleted, else the others.
func (s *Store) ListSecrets(ctx context.Context, ws string, deleted bool) ([]secrets.Secret, error) {
	cond := `deleted_at IS NULL`
	if deleted {
		cond = `deleted_at IS NOT NULL`
	}
	var out []secrets.Secret
	err := s.secretsRead(ctx, "list secrets", ws, func(q querier) (err error) {
		out, err = queryAll(ctx, s, q, scanSecret, `SELECT `+secretColumns+` FROM secrets
			WHERE COALESCE(workspace_id, '') = ? AND destroyed_at IS NULL AND `+cond+` ORDER BY name`, ws)
		return err
	})
	return out, err
}

func scanVersion(r rowScanner) (secrets.Version, error) {
	var v secrets.Version
	var created int64
	var destroyed sql.NullInt64
	var stage string
	err := r.Scan(&v.Version, &stage, &created, &v.CreatedBy, &destroyed)
	v.Stage, v.CreatedAt, v.Destroyed = secrets.Stage(stage), timeOf(created), destroyed.Valid
	return v, err
}

const versionColumns = `version, stage, created_at, created_by, destroyed_at`

// SecretVersions lists a secret's versions, newest first.
func (s *Store) SecretVersions(ctx context.Context, ws, secretID string) ([]secrets.Version, error) {
	var out []secrets.Version
	err := s.secretsRead(ctx, "secret versions", ws, func(q querier) (err error) {
		out, err = queryAll(ctx, s, q, scanVersion, `SELECT `+versionColumns+` FROM secret_versions
			WHERE COALESCE(workspace_id, '') = ? AND secret_id = ? ORDER BY version DESC`, ws, secretID)
		return err
	})
	return out, err
}

// SecretVersion returns a version (0 = the current one) and its sealed
// value, nil once wiped.
func (s *Store) SecretVersion(ctx context.Context, ws, secretID string, version int) (secrets.Version, []byte, error) {
	var v secrets.Version
	var sealed []byte
	err := s.secretsRead(ctx, "secret version", ws, func(q querier) error {
		query := `SELECT ` + versionColumns + `, value FROM secret_versions WHERE COALESCE(workspace_id, '') = ? AND secret_id = ? AND version = ?`
		args := []any{ws, secretID, version}
		if version <= 0 {
			query = `SELECT ` + versionColumns + `, value FROM secret_versions WHERE COALESCE(workspace_id, '') = ? AND secret_id = ? AND stage = 'current'`
			args = args[:2]
		}
		var created int64
		var destroyed sql.NullInt64
		var stage string
		err := q.QueryRowContext(ctx, s.q(query), args...).Scan(&v.Version, &stage, &created, &v.CreatedBy, &destroyed, &sealed)
		v.Stage, v.CreatedAt, v.Destroyed = secrets.Stage(stage), timeOf(created), destroyed.Valid
		return err
	})
	return v, sealed, err
}

// lockSecret reads the secret's versions and state for update (PostgreSQL
// row lock; SQLite's single writer serializes already) and refuses a
// deleted or destroyed secret.
func (s *Store) lockSecret(ctx context.Context, tx *sql.Tx, ws, secretID string) (latest, current int, err error) {
	query := `SELECT latest_version, current_version, deleted_at, destroyed_at FROM secrets WHERE COALESCE(workspace_id, '') = ? AND id = ?`
	if s.engine == EnginePostgres {
		query += ` FOR UPDATE`
	}
	var deleted, destroyed sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.q(query), ws, secretID).Scan(&latest, &current, &deleted, &destroyed); err != nil {
		return 0, 0, err
	}
	if destroyed.Valid {
		return 0, 0, fault.ErrNotFound
	}
	if deleted.Valid {
		return 0, 0, fault.New(fault.Conflict, "secret_deleted", "the secret is deleted; restore it first")
	}
	return latest, current, nil
}

// setStage moves the version holding stage from (if any) to stage to.
func (s *Store) setStage(ctx context.Context, tx *sql.Tx, secretID string, from, to secrets.Stage) error {
	_, err := s.exec(ctx, tx, "secret stage", `UPDATE secret_versions SET stage = ? WHERE secret_id = ? AND stage = ?`, string(to), secretID, string(from))
	return err
}

// AddSecretVersion appends a version under check-and-set on latest.
func (s *Store) AddSecretVersion(ctx context.Context, ws, secretID string, expectLatest int, v secrets.Version, sealed []byte, now time.Time) error {
	if v.Stage != secrets.StageCurrent && v.Stage != secrets.StagePending {
		return fault.Invalidf("secret_stage_invalid", "a new version is current or pending")
	}
	if len(sealed) == 0 || v.Version != expectLatest+1 {
		return fault.Invalidf("invalid_secret_version", "a new version needs a value and the next number")
	}
	return s.secretsTx(ctx, "add secret version", ws, func(tx *sql.Tx) error {
		latest, current, err := s.lockSecret(ctx, tx, ws, secretID)
		if err != nil {
			return err
		}
		if latest != expectLatest {
			return fault.New(fault.Conflict, "cas_mismatch", "the secret changed since the version given in cas; read it again")
		}
		// A pending version that was never promoted is superseded.
		if err := s.setStage(ctx, tx, secretID, secrets.StagePending, secrets.StageNone); err != nil {
			return err
		}
		if v.Stage == secrets.StageCurrent {
			if err := s.demote(ctx, tx, secretID); err != nil {
				return err
			}
			current = v.Version
		}
		if _, err := s.exec(ctx, tx, "add secret version", `INSERT INTO secret_versions (secret_id, workspace_id, version, stage, value, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, secretID, wsArg(ws), v.Version, string(v.Stage), sealed, v.CreatedAt.UnixMicro(), v.CreatedBy); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "add secret version", `UPDATE secrets SET latest_version = ?, current_version = ?, updated_at = ? WHERE id = ?`,
			v.Version, current, now.UnixMicro(), secretID)
		return err
	})
}

// demote moves previous → none and current → previous, in that order so
// the one-version-per-stage index holds after every statement.
func (s *Store) demote(ctx context.Context, tx *sql.Tx, secretID string) error {
	if err := s.setStage(ctx, tx, secretID, secrets.StagePrevious, secrets.StageNone); err != nil {
		return err
	}
	return s.setStage(ctx, tx, secretID, secrets.StageCurrent, secrets.StagePrevious)
}

// PromoteSecretVersion makes the pending version current; the current
// version again is a no-op.
func (s *Store) PromoteSecretVersion(ctx context.Context, ws, secretID string, version int, now time.Time) error {
	return s.secretsTx(ctx, "promote secret version", ws, func(tx *sql.Tx) error {
		_, current, err := s.lockSecret(ctx, tx, ws, secretID)
		if err != nil {
			return err
		}
		if current == version {
			return nil
		}
		var stage string
		var destroyed sql.NullInt64
		err = tx.QueryRowContext(ctx, s.q(`SELECT stage, destroyed_at FROM secret_versions WHERE secret_id = ? AND version = ?`), secretID, version).Scan(&stage, &destroyed)
		if err != nil {
			return err
		}
		if secrets.Stage(stage) != secrets.StagePending || destroyed.Valid {
			return fault.New(fault.Conflict, "secret_not_pending", "only the pending version can be promoted")
		}
		if err := s.setStage(ctx, tx, secretID, secrets.StagePending, secrets.StageNone); err != nil {
			return err
		}
		if err := s.demote(ctx, tx, secretID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, "promote secret version", `UPDATE secret_versions SET stage = 'current' WHERE secret_id = ? AND version = ?`, secretID, version); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "promote secret version", `UPDATE secrets SET current_version = ?, updated_at = ? WHERE id = ?`, version, now.UnixMicro(), secretID)
		return err
	})
}

// DiscardPendingVersion wipes a pending version that will not be promoted.
// A version no longer pending is left alone.
func (s *Store) DiscardPendingVersion(ctx context.Context, ws, secretID string, version int, now time.Time) error {
	return s.secretsTx(ctx, "discard secret version", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "discard secret version", `UPDATE secret_versions SET stage = '', value = NULL, destroyed_at = ?
			WHERE COALESCE(workspace_id, '') = ? AND secret_id = ? AND version = ? AND stage = 'pending'`, now.UnixMicro(), ws, secretID, version)
		return err
	})
}

// SetSecretDeleted soft-deletes (at set) or restores (at zero) a secret.
func (s *Store) SetSecretDeleted(ctx context.Context, ws, secretID string, at time.Time) error {
	return s.secretsTx(ctx, "delete secret", ws, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "delete secret", `UPDATE secrets SET deleted_at = ? WHERE COALESCE(workspace_id, '') = ? AND id = ? AND destroyed_at IS NULL`,
			micros(at), ws, secretID)
		if err == nil && n == 0 {
			return fault.ErrNotFound
		}
		return err
	})
}

// DestroySecret wipes every value of the secret and marks it destroyed.
func (s *Store) DestroySecret(ctx context.Context, ws, secretID string, at time.Time) error {
	return s.secretsTx(ctx, "destroy secret", ws, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "destroy secret", `UPDATE secrets SET destroyed_at = ?, current_version = 0, updated_at = ?
			WHERE COALESCE(workspace_id, '') = ? AND id = ? AND destroyed_at IS NULL`, at.UnixMicro(), at.UnixMicro(), ws, secretID)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		_, err = s.exec(ctx, tx, "destroy secret", `UPDATE secret_versions SET value = NULL, stage = '', destroyed_at = COALESCE(destroyed_at, ?)
			WHERE COALESCE(workspace_id, '') = ? AND secret_id = ?`, at.UnixMicro(), ws, secretID)
		return err
	})
}

// SetRotationState stores the outcome of a rotation attempt.
func (s *Store) SetRotationState(ctx context.Context, ws, secretID string, r secrets.RotationState) error {
	return s.secretsTx(ctx, "secret rotation state", ws, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "secret rotation state", `UPDATE secrets SET rotation_policy = ?, rotation_attempt_at = ?, rotation_success_at = ?,
			rotation_status = ?, rotation_error = ? WHERE COALESCE(workspace_id, '') = ? AND id = ?`,
			r.Policy, micros(r.LastAttempt), micros(r.LastSuccess), r.Status, r.Error, ws, secretID)
		if err == nil && n == 0 {
			return fault.ErrNotFound
		}
		return err
	})
}
