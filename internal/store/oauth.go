package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/rampartsec/rampart/internal/fault"
	"github.com/rampartsec/rampart/internal/oauth"
)

var _ oauth.Store = (*Store)(nil)

// OAuth storage (migration 0007). oauth_clients is workspace-owned (row-level
// security on PostgreSQL); a client is found by id in the global scope,
// because the token endpoint knows only the id, and operator-level clients
// (workspace_id NULL) are always handled in the global scope. The other
// tables belong to accounts and grants, not workspaces.

const oauthClientColumns = `id, workspace_id, name, secret_hash, public, first_party, redirect_uris, post_logout_redirect_uris,
	grant_types, scopes, audience, permissions, created_by, created_at`

func nullText(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func scanOAuthClient(r rowScanner) (oauth.Client, error) {
	var c oauth.Client
	var ws sql.NullString
	var redirects, logouts, grants, scopes, aud, perms string
	var created int64
	if err := r.Scan(&c.ID, &ws, &c.Name, &c.SecretHash, &c.Public, &c.FirstParty, &redirects, &logouts, &grants, &scopes, &aud, &perms,
		&c.CreatedBy, &created); err != nil {
		return c, err
	}
	c.Workspace = ws.String
	c.CreatedAt = timeOf(created)
	var err error
	for _, f := range []struct {
		dst *[]string
		src string
	}{{&c.RedirectURIs, redirects}, {&c.PostLogoutRedirectURIs, logouts}, {&c.GrantTypes, grants}, {&c.Scopes, scopes}, {&c.Audience, aud}, {&c.Permissions, perms}} {
		if *f.dst, err = decodeList(f.src); err != nil {
			return c, err
		}
	}
	return c, nil
}

// CreateOAuthClient stores a new client.
func (s *Store) CreateOAuthClient(ctx context.Context, c *oauth.Client) error {
	if c.ID == "" {
		return fault.Invalidf("invalid_client", "a client needs an id")
	}
	insert := func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, "create oauth client", `INSERT INTO oauth_clients (`+oauthClientColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, nullText(c.Workspace), c.Name, blob(c.SecretHash), c.Public, c.FirstParty, encodeList(c.RedirectURIs),
			encodeList(c.PostLogoutRedirectURIs), encodeList(c.GrantTypes), encodeList(c.Scopes), encodeList(c.Audience),
			encodeList(c.Permissions), c.CreatedBy, c.CreatedAt.UnixMicro())
		return err
	}
	if c.Workspace == "" {
		return s.withGlobalTx(ctx, "create oauth client", insert)
	}
	return s.withWorkspaceTx(ctx, "create oauth client", c.Workspace, insert)
}

// OAuthClient finds a client by id (global scope: the id is all the token
// endpoint has).
func (s *Store) OAuthClient(ctx context.Context, id string) (*oauth.Client, error) {
	var c oauth.Client
	err := s.readGlobal(ctx, "oauth client", func(x querier) (err error) {
		c, err = scanOAuthClient(x.QueryRowContext(ctx, s.q(`SELECT `+oauthClientColumns+` FROM oauth_clients WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ListOAuthClients lists a workspace's clients, the operator-level ones
// (workspace ""), or every client (all).
func (s *Store) ListOAuthClients(ctx context.Context, workspace string, all bool) ([]oauth.Client, error) {
	var out []oauth.Client
	sel := `SELECT ` + oauthClientColumns + ` FROM oauth_clients `
	var err error
	switch {
	case all:
		err = s.readGlobal(ctx, "list oauth clients", func(x querier) (err error) {
			out, err = queryAll(ctx, s, x, scanOAuthClient, sel+`ORDER BY created_at, id`)
			return err
		})
	case workspace == "":
		err = s.readGlobal(ctx, "list oauth clients", func(x querier) (err error) {
			out, err = queryAll(ctx, s, x, scanOAuthClient, sel+`WHERE workspace_id IS NULL ORDER BY created_at, id`)
			return err
		})
	default:
		err = s.readWorkspace(ctx, "list oauth clients", workspace, func(x querier) (err error) {
			out, err = queryAll(ctx, s, x, scanOAuthClient, sel+`WHERE workspace_id = ? ORDER BY created_at, id`, workspace)
			return err
		})
	}
	return out, err
}

// DeleteOAuthClient deletes a client with its consents (cascade) and
// refresh tokens. workspace "" (the operator) may delete any client.
func (s *Store) DeleteOAuthClient(ctx context.Context, workspace, id string) error {
	del := func(tx *sql.Tx) error {
		q, args := `DELETE FROM oauth_clients WHERE id = ? AND workspace_id = ?`, []any{id, workspace}
		if workspace == "" {
			q, args = `DELETE FROM oauth_clients WHERE id = ?`, []any{id}
		}
		n, err := s.exec(ctx, tx, "delete oauth client", q, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return fault.ErrNotFound
		}
		if _, err := s.exec(ctx, tx, "delete oauth client tokens", `DELETE FROM oauth_refresh_tokens WHERE client_id = ?`, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, "delete oauth client requests", `DELETE FROM oauth_requests WHERE client_id = ?`, id)
		return err
	}
	if workspace == "" {
		return s.withGlobalTx(ctx, "delete oauth client", del)
	}
	return s.withWorkspaceTx(ctx, "delete oauth client", workspace, del)
}

// PutOAuthRequest stores an authorization request.
func (s *Store) PutOAuthRequest(ctx context.Context, r *oauth.StoredRequest) error {
	_, err := s.exec(ctx, s.db, "put oauth request", `INSERT INTO oauth_requests (kind, signature, request_id, client_id, data, active, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Kind, r.Signature, r.RequestID, r.ClientID, string(r.Data), r.Active,
		r.CreatedAt.UnixMicro(), r.ExpiresAt.UnixMicro())
	return err
}

// OAuthRequest finds a stored request (spent ones too: Active says).
func (s *Store) OAuthRequest(ctx context.Context, kind, signature string) (*oauth.StoredRequest, error) {
	r := oauth.StoredRequest{Kind: kind, Signature: signature}
	var data string
	var created, expires int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT request_id, client_id, data, active, created_at, expires_at FROM oauth_requests
		WHERE kind = ? AND signature = ?`), kind, signature).Scan(&r.RequestID, &r.ClientID, &data, &r.Active, &created, &expires)
	if err != nil {
		return nil, s.fail("oauth request", err)
	}
	r.Data, r.CreatedAt, r.ExpiresAt = []byte(data), timeOf(created), timeOf(expires)
	return &r, nil
}

// DeactivateOAuthRequest marks a request spent; false when it already was
// (a replayed code), fault.ErrNotFound when there is none.
func (s *Store) DeactivateOAuthRequest(ctx context.Context, kind, signature string) (bool, error) {
	n, err := s.exec(ctx, s.db, "deactivate oauth request", `UPDATE oauth_requests SET active = ? WHERE kind = ? AND signature = ? AND active = ?`,
		false, kind, signature, true)
	if err != nil {
		return false, err
	}
	if n == 1 {
		return true, nil
	}
	found, err := s.exists(ctx, s.db, "oauth request exists", `SELECT 1 FROM oauth_requests WHERE kind = ? AND signature = ?`, kind, signature)
	if err != nil {
		return false, err
	}
	if !found {
		return false, fault.ErrNotFound
	}
	return false, nil
}

// DeleteOAuthRequest deletes a stored request; deleting none is fine.
func (s *Store) DeleteOAuthRequest(ctx context.Context, kind, signature string) error {
	_, err := s.exec(ctx, s.db, "delete oauth request", `DELETE FROM oauth_requests WHERE kind = ? AND signature = ?`, kind, signature)
	return err
}

const refreshColumns = `signature, family_id, client_id, subject, session_id, data, created_at, expires_at, rotated_at, successor, revoked_at`

// CreateRefreshToken stores a family's first token.
func (s *Store) CreateRefreshToken(ctx context.Context, t *oauth.RefreshToken) error {
	_, err := s.exec(ctx, s.db, "create refresh token", `INSERT INTO oauth_refresh_tokens (`+refreshColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.Signature, t.FamilyID, t.ClientID, t.Subject, t.SessionID, string(t.Data),
		t.CreatedAt.UnixMicro(), t.ExpiresAt.UnixMicro(), micros(t.RotatedAt), blob(t.Successor), micros(t.RevokedAt))
	return err
}

// RefreshTokenBySignature finds a token, rotated or revoked ones too.
func (s *Store) RefreshTokenBySignature(ctx context.Context, signature string) (*oauth.RefreshToken, error) {
	var t oauth.RefreshToken
	var data string
	var created, expires int64
	var rotated, revoked sql.NullInt64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT `+refreshColumns+` FROM oauth_refresh_tokens WHERE signature = ?`), signature).
		Scan(&t.Signature, &t.FamilyID, &t.ClientID, &t.Subject, &t.SessionID, &data, &created, &expires, &rotated, &t.Successor, &revoked)
	if err != nil {
		return nil, s.fail("refresh token", err)
	}
	t.Data, t.CreatedAt, t.ExpiresAt, t.RotatedAt, t.RevokedAt = []byte(data), timeOf(created), timeOf(expires), fromMicros(rotated), fromMicros(revoked)
	return &t, nil
}

// RotateRefreshToken is the compare-and-swap of a rotation: the old token
// is marked rotated (with its sealed successor) only if still current and
// unrevoked, and the successor inserted in the same transaction.
func (s *Store) RotateRefreshToken(ctx context.Context, oldSignature string, sealedSuccessor []byte, next *oauth.RefreshToken, now time.Time) (bool, error) {
	ok := false
	err := s.withTx(ctx, "rotate refresh token", func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, "rotate refresh token", `UPDATE oauth_refresh_tokens SET rotated_at = ?, successor = ?
			WHERE signature = ? AND rotated_at IS NULL AND revoked_at IS NULL`, now.UnixMicro(), sealedSuccessor, oldSignature)
		if err != nil || n == 0 {
			return err
		}
		if _, err := s.exec(ctx, tx, "insert refresh successor", `INSERT INTO oauth_refresh_tokens (`+refreshColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, next.Signature, next.FamilyID, next.ClientID, next.Subject, next.SessionID, string(next.Data),
			next.CreatedAt.UnixMicro(), next.ExpiresAt.UnixMicro(), nil, nil, nil); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return ok, err
}

// RevokeRefreshFamily revokes every live token of the family.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string, now time.Time) (int, error) {
	n, err := s.exec(ctx, s.db, "revoke refresh family", `UPDATE oauth_refresh_tokens SET revoked_at = ?
		WHERE family_id = ? AND revoked_at IS NULL`, now.UnixMicro(), familyID)
	return int(n), err
}

// OAuthConsent returns the remembered consent of an account to a client.
func (s *Store) OAuthConsent(ctx context.Context, userID, clientID string) (*oauth.Consent, error) {
	c := oauth.Consent{UserID: userID, ClientID: clientID}
	var scopes string
	var granted, expires int64
	err := s.rdb.QueryRowContext(ctx, s.q(`SELECT scopes, granted_at, expires_at FROM oauth_consents WHERE user_id = ? AND client_id = ?`),
		userID, clientID).Scan(&scopes, &granted, &expires)
	if err != nil {
		return nil, s.fail("oauth consent", err)
	}
	if c.Scopes, err = decodeList(scopes); err != nil {
		return nil, err
	}
	c.GrantedAt, c.ExpiresAt = timeOf(granted), timeOf(expires)
	return &c, nil
}

// SaveOAuthConsent records or replaces a consent.
func (s *Store) SaveOAuthConsent(ctx context.Context, c *oauth.Consent) error {
	_, err := s.exec(ctx, s.db, "save oauth consent", `INSERT INTO oauth_consents (user_id, client_id, scopes, granted_at, expires_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes,
		granted_at = excluded.granted_at, expires_at = excluded.expires_at`,
		c.UserID, c.ClientID, encodeList(c.Scopes), c.GrantedAt.UnixMicro(), c.ExpiresAt.UnixMicro())
	return err
}

// RevokeOAuthKey records a revoked token or grant until until.
func (s *Store) RevokeOAuthKey(ctx context.Context, key string, until time.Time) error {
	_, err := s.exec(ctx, s.db, "revoke oauth key", `INSERT INTO oauth_revocations (key, expires_at) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET expires_at = CASE WHEN excluded.expires_at > oauth_revocations.expires_at
			THEN excluded.expires_at ELSE oauth_revocations.expires_at END`, key, until.UnixMicro())
	return err
}

// OAuthKeyRevoked reports whether key is revoked at now.
func (s *Store) OAuthKeyRevoked(ctx context.Context, key string, now time.Time) (bool, error) {
	return s.exists(ctx, s.rdb, "oauth key revoked", `SELECT 1 FROM oauth_revocations WHERE key = ? AND expires_at > ?`, key, now.UnixMicro())
}

// PurgeOAuth deletes expired requests, refresh tokens and revocations.
func (s *Store) PurgeOAuth(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, q := range []string{
		`DELETE FROM oauth_requests WHERE expires_at <= ?`,
		`DELETE FROM oauth_refresh_tokens WHERE expires_at <= ?`,
		`DELETE FROM oauth_revocations WHERE expires_at <= ?`,
		`DELETE FROM oauth_consents WHERE expires_at <= ?`,
	} {
		n, err := s.exec(ctx, s.db, "purge oauth", q, now.UnixMicro())
		if err != nil {
			return total, err
		}
		total += int(n)
	}
	return total, nil
}

// OAuthStats counts clients, live refresh families and revocations.
func (s *Store) OAuthStats(ctx context.Context, now time.Time) (oauth.Stats, error) {
	var st oauth.Stats
	err := s.readGlobal(ctx, "oauth stats", func(x querier) error {
		if err := x.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_clients`).Scan(&st.Clients); err != nil {
			return err
		}
		if err := x.QueryRowContext(ctx, s.q(`SELECT COUNT(DISTINCT family_id) FROM oauth_refresh_tokens
			WHERE revoked_at IS NULL AND rotated_at IS NULL AND expires_at > ?`), now.UnixMicro()).Scan(&st.ActiveFamilies); err != nil {
			return err
		}
		return x.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM oauth_revocations WHERE expires_at > ?`), now.UnixMicro()).Scan(&st.RevokedTokens)
	})
	return st, err
}
