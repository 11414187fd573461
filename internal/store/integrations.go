package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/vault/integration"
)

var _ integration.Store = (*Store)(nil)

// Integrations (INT-1 to INT-4). Workspace methods run bound to their
// workspace (row-level security on PostgreSQL). These run with the global
// scope, because the workspace is not known before the row is found or they
// serve the background job across workspaces:
//
//   - TakeIntegrationState: the state parameter is all the callback holds;
//   - DeleteExpiredIntegrationStates, DueIntegrationRevocations,
//     ExpiringIntegrations, IntegrationStats, SampleIntegrationTokens:
//     the job and the live checks.

// --- connect flows ---

// CreateIntegrationState stores a started connect flow.
func (s *Store) CreateIntegrationState(ctx context.Context, st *integration.State) error {
	return s.withWorkspaceTx(ctx, "create integration state", st.Workspace, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create integration state", `INSERT INTO integration_states
			(state_hash, workspace_id, provider, session_hash, verifier, scopes, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Hash, st.Workspace, st.Provider, st.SessionHash, st.Verifier, encodeList(st.Scopes), st.CreatedBy,
			st.CreatedAt.UnixMicro(), st.ExpiresAt.UnixMicro())
		return err
	})
}

// TakeIntegrationState deletes and returns the flow with this state hash, so
// a state is used at most once, even by two callbacks racing.
func (s *Store) TakeIntegrationState(ctx context.Context, hash []byte) (*integration.State, error) {
	var st integration.State
	err := s.withGlobalTx(ctx, "take integration state", func(tx *sql.Tx) error {
		var scopes string
		var created, expires int64
		err := tx.QueryRowContext(ctx, s.q(`DELETE FROM integration_states WHERE state_hash = ?
			RETURNING state_hash, workspace_id, provider, session_hash, verifier, scopes, created_by, created_at, expires_at`), hash).
			Scan(&st.Hash, &st.Workspace, &st.Provider, &st.SessionHash, &st.Verifier, &scopes, &st.CreatedBy, &created, &expires)
		if err != nil {
			return err
		}
		st.CreatedAt, st.ExpiresAt = timeOf(created), timeOf(expires)
		st.Scopes, err = decodeList(scopes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &st, nil
}

// DeleteExpiredIntegrationStates sweeps flows that were never completed.
func (s *Store) DeleteExpiredIntegrationStates(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.withGlobalTx(ctx, "sweep integration states", func(tx *sql.Tx) error {
		var err error
		n, err = s.exec(ctx, tx, "sweep integration states", `DELETE FROM integration_states WHERE expires_at <= ?`, now.UnixMicro())
		return err
	})
	return int(n), err
}

// --- connections ---

const integrationColumns = `i.id, i.workspace_id, i.provider, i.kind, i.scopes, i.created_by, i.created_at, i.expires_at,
	i.refreshed_at, i.last_used_at, i.refresh_failures, i.last_refresh_error, i.version,
	CASE WHEN t.refresh IS NULL THEN 0 ELSE 1 END`

const integrationFrom = ` FROM integrations i LEFT JOIN integration_tokens t ON t.integration_id = i.id`

func scanIntegration(r rowScanner, extra ...any) (integration.Connection, error) {
	var c integration.Connection
	var kind, scopes string
	var created int64
	var expires, refreshed, used sql.NullInt64
	var hasRefresh int
	dest := append([]any{&c.ID, &c.Workspace, &c.Provider, &kind, &scopes, &c.CreatedBy, &created, &expires,
		&refreshed, &used, &c.RefreshFailures, &c.LastRefreshError, &c.Version, &hasRefresh}, extra...)
	if err := r.Scan(dest...); err != nil {
		return c, err
	}
	c.Kind = integration.Kind(kind)
	c.CreatedAt = timeOf(created)
	c.ExpiresAt, c.RefreshedAt, c.LastUsedAt = fromMicros(expires), fromMicros(refreshed), fromMicros(used)
	c.HasRefresh = hasRefresh == 1
	var err error
	c.Scopes, err = decodeList(scopes)
	return c, err
}

// CreateIntegration stores a connection and its sealed credentials.
func (s *Store) CreateIntegration(ctx context.Context, c *integration.Connection, cr integration.Credentials) error {
	return s.withWorkspaceTx(ctx, "create integration", c.Workspace, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "create integration", `INSERT INTO integrations
			(id, workspace_id, provider, kind, scopes, created_by, created_at, expires_at, refreshed_at, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
			c.ID, c.Workspace, c.Provider, string(c.Kind), encodeList(c.Scopes), c.CreatedBy, c.CreatedAt.UnixMicro(),
			micros(c.ExpiresAt), micros(c.RefreshedAt)); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, "create integration", `INSERT INTO integration_tokens (integration_id, workspace_id, access, refresh, token_type)
			VALUES (?, ?, ?, ?, ?)`, c.ID, c.Workspace, cr.Access, blob(cr.Refresh), cr.TokenType)
		return err
	})
}

// Integration returns one connection of ws.
func (s *Store) Integration(ctx context.Context, ws, id string) (*integration.Connection, error) {
	var c integration.Connection
	err := s.readWorkspace(ctx, "get integration", ws, func(q querier) error {
		var err error
		c, err = scanIntegration(q.QueryRowContext(ctx, s.q(`SELECT `+integrationColumns+integrationFrom+
			` WHERE i.workspace_id = ? AND i.id = ?`), ws, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// Integrations lists ws's connections, oldest first.
func (s *Store) Integrations(ctx context.Context, ws string) ([]integration.Connection, error) {
	var out []integration.Connection
	err := s.readWorkspace(ctx, "list integrations", ws, func(q querier) error {
		var err error
		out, err = queryAll(ctx, s, q, func(r rowScanner) (integration.Connection, error) { return scanIntegration(r) },
			`SELECT `+integrationColumns+integrationFrom+` WHERE i.workspace_id = ? ORDER BY i.created_at, i.id`, ws)
		return err
	})
	return out, err
}

// IntegrationCredentials returns a connection with its sealed credentials.
func (s *Store) IntegrationCredentials(ctx context.Context, ws, id string) (*integration.Connection, *integration.Credentials, error) {
	var c integration.Connection
	var cr integration.Credentials
	err := s.readWorkspace(ctx, "get integration credentials", ws, func(q querier) error {
		var err error
		c, err = scanIntegration(q.QueryRowContext(ctx, s.q(`SELECT `+integrationColumns+`, t.access, t.refresh, t.token_type
			FROM integrations i JOIN integration_tokens t ON t.integration_id = i.id
			WHERE i.workspace_id = ? AND i.id = ?`), ws, id), &cr.Access, &cr.Refresh, &cr.TokenType)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(cr.Refresh) == 0 {
		cr.Refresh = nil
	}
	return &c, &cr, nil
}

// UpdateIntegrationTokens replaces the credentials if the connection is
// still at version (fault Conflict otherwise), clearing refresh failures.
func (s *Store) UpdateIntegrationTokens(ctx context.Context, ws, id string, version int64, cr integration.Credentials, scopes []string, expires, at time.Time) error {
	return s.withWorkspaceTx(ctx, "update integration tokens", ws, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "update integration tokens", `UPDATE integrations SET version = version + 1, expires_at = ?, refreshed_at = ?,
			scopes = ?, refresh_failures = 0, last_refresh_error = '' WHERE workspace_id = ? AND id = ? AND version = ?`,
			micros(expires), at.UnixMicro(), encodeList(scopes), ws, id, version)
		if err != nil {
			return err
		}
		if n == 0 {
			found, err := s.exists(ctx, tx, "update integration tokens", `SELECT 1 FROM integrations WHERE workspace_id = ? AND id = ?`, ws, id)
			if err != nil {
				return err
			}
			if !found {
				return fault.ErrNotFound
			}
			return fault.Conflictf("integration_changed", "the integration changed meanwhile")
		}
		_, err = s.exec(ctx, tx, "update integration tokens", `UPDATE integration_tokens SET access = ?, refresh = ?, token_type = ?
			WHERE workspace_id = ? AND integration_id = ?`, cr.Access, blob(cr.Refresh), cr.TokenType, ws, id)
		return err
	})
}

// RecordIntegrationRefreshFailure counts a failed refresh.
func (s *Store) RecordIntegrationRefreshFailure(ctx context.Context, ws, id, code string, at time.Time) error {
	return s.withWorkspaceTx(ctx, "integration refresh failure", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "integration refresh failure", `UPDATE integrations SET refresh_failures = refresh_failures + 1,
			last_refresh_error = ? WHERE workspace_id = ? AND id = ?`, code, ws, id)
		return err
	})
}

// TouchIntegration records the last use.
func (s *Store) TouchIntegration(ctx context.Context, ws, id string, at time.Time) error {
	return s.withWorkspaceTx(ctx, "touch integration", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "touch integration", `UPDATE integrations SET last_used_at = ? WHERE workspace_id = ? AND id = ?`,
			at.UnixMicro(), ws, id)
		return err
	})
}

// DeleteIntegration deletes a connection with its credentials and queues
// revs in the same transaction (INT-3): the credentials are gone the moment
// it commits, and the revocation cannot be lost.
func (s *Store) DeleteIntegration(ctx context.Context, ws, id string, revs []integration.Revocation) error {
	return s.withWorkspaceTx(ctx, "delete integration", ws, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, "delete integration", `DELETE FROM integration_tokens WHERE workspace_id = ? AND integration_id = ?`, ws, id); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, "delete integration", `DELETE FROM integrations WHERE workspace_id = ? AND id = ?`, ws, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		for _, r := range revs {
			if r.Workspace != ws {
				return fault.Invalidf("invalid_revocation", "a revocation belongs to another workspace")
			}
		}
		return s.insertRevocations(ctx, tx, revs)
	})
}

// QueueIntegrationRevocations queues revocations (a refused grant's tokens).
func (s *Store) QueueIntegrationRevocations(ctx context.Context, revs []integration.Revocation) error {
	for _, r := range revs {
		err := s.withWorkspaceTx(ctx, "queue integration revocation", r.Workspace, func(tx *sql.Tx) error {
			return s.insertRevocations(ctx, tx, []integration.Revocation{r})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertRevocations(ctx context.Context, tx *sql.Tx, revs []integration.Revocation) error {
	for _, r := range revs {
		if _, err := s.exec(ctx, tx, "queue integration revocation", `INSERT INTO integration_revocations
			(id, workspace_id, provider, token, token_type_hint, attempts, queued_at, next_attempt_at, last_error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.Workspace, r.Provider, r.Token, r.TokenTypeHint, r.Attempts, r.QueuedAt.UnixMicro(), r.NextAttemptAt.UnixMicro(), r.LastError); err != nil {
			return err
		}
	}
	return nil
}

// --- revocation queue ---

// DueIntegrationRevocations returns queued revocations whose next attempt
// is due, across workspaces, oldest first.
func (s *Store) DueIntegrationRevocations(ctx context.Context, now time.Time, limit int) ([]integration.Revocation, error) {
	var out []integration.Revocation
	err := s.readGlobal(ctx, "due integration revocations", func(q querier) error {
		var err error
		out, err = queryAll(ctx, s, q, func(r rowScanner) (integration.Revocation, error) {
			var v integration.Revocation
			var queued, next int64
			err := r.Scan(&v.ID, &v.Workspace, &v.Provider, &v.Token, &v.TokenTypeHint, &v.Attempts, &queued, &next, &v.LastError)
			v.QueuedAt, v.NextAttemptAt = timeOf(queued), timeOf(next)
			return v, err
		}, `SELECT id, workspace_id, provider, token, token_type_hint, attempts, queued_at, next_attempt_at, last_error
			FROM integration_revocations WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`, now.UnixMicro(), limit)
		return err
	})
	return out, err
}

// DeleteIntegrationRevocation removes a done (or abandoned) revocation.
func (s *Store) DeleteIntegrationRevocation(ctx context.Context, ws, id string) error {
	return s.withWorkspaceTx(ctx, "delete integration revocation", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "delete integration revocation", `DELETE FROM integration_revocations WHERE workspace_id = ? AND id = ?`, ws, id)
		return err
	})
}

// RetryIntegrationRevocation records a failed attempt and the next one.
func (s *Store) RetryIntegrationRevocation(ctx context.Context, ws, id string, attempts int, next time.Time, lastErr string) error {
	return s.withWorkspaceTx(ctx, "retry integration revocation", ws, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "retry integration revocation", `UPDATE integration_revocations SET attempts = ?, next_attempt_at = ?,
			last_error = ? WHERE workspace_id = ? AND id = ?`, attempts, next.UnixMicro(), lastErr, ws, id)
		return err
	})
}

// --- job and live checks ---

// ExpiringIntegrations returns OAuth connections holding a refresh token
// whose access token expires before before, soonest first.
func (s *Store) ExpiringIntegrations(ctx context.Context, before time.Time, limit int) ([]integration.Connection, error) {
	var out []integration.Connection
	err := s.readGlobal(ctx, "expiring integrations", func(q querier) error {
		var err error
		out, err = queryAll(ctx, s, q, func(r rowScanner) (integration.Connection, error) { return scanIntegration(r) },
			`SELECT `+integrationColumns+integrationFrom+` WHERE i.kind = 'oauth2' AND t.refresh IS NOT NULL
			AND i.expires_at IS NOT NULL AND i.expires_at < ? ORDER BY i.expires_at, i.id LIMIT ?`, before.UnixMicro(), limit)
		return err
	})
	return out, err
}

// IntegrationStats counts connections, pending revocations and tokens that
// expired although they could have been refreshed.
func (s *Store) IntegrationStats(ctx context.Context, now time.Time) (integration.Stats, error) {
	var st integration.Stats
	err := s.readGlobal(ctx, "integration stats", func(q querier) error {
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM integrations`).Scan(&st.Connections); err != nil {
			return err
		}
		var oldest sql.NullInt64
		if err := q.QueryRowContext(ctx, `SELECT COUNT(*), MIN(queued_at) FROM integration_revocations`).Scan(&st.PendingRevocations, &oldest); err != nil {
			return err
		}
		st.OldestRevocation = fromMicros(oldest)
		return q.QueryRowContext(ctx, s.q(`SELECT COUNT(*)`+integrationFrom+` WHERE i.kind = 'oauth2' AND t.refresh IS NOT NULL
			AND i.expires_at IS NOT NULL AND i.expires_at <= ?`), now.UnixMicro()).Scan(&st.ExpiredUnrefreshed)
	})
	return st, err
}

// SampleIntegrationTokens returns up to n stored access tokens (sealed),
// the most recently created first.
func (s *Store) SampleIntegrationTokens(ctx context.Context, n int) ([]integration.Sample, error) {
	var out []integration.Sample
	err := s.readGlobal(ctx, "sample integration tokens", func(q querier) error {
		var err error
		out, err = queryAll(ctx, s, q, func(r rowScanner) (integration.Sample, error) {
			var v integration.Sample
			err := r.Scan(&v.Workspace, &v.ID, &v.Access)
			return v, err
		}, `SELECT t.workspace_id, t.integration_id, t.access FROM integration_tokens t JOIN integrations i ON i.id = t.integration_id
			ORDER BY i.created_at DESC, i.id LIMIT ?`, n)
		return err
	})
	return out, err
}
