-- OAuth 2.0 / OpenID Connect provider (SES-3, SES-4), equivalent to
-- migrations/postgres/0007_oauth.sql. String lists are JSON text.

-- Registered clients. workspace_id is NULL for operator-level clients;
-- service clients (client credentials) belong to a workspace and carry a
-- subset of its permissions. Only the SHA-256 of a confidential client's
-- secret is stored (the secret is 256 random bits, shown once).
CREATE TABLE oauth_clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    workspace_id              TEXT    REFERENCES workspaces (id) ON DELETE CASCADE,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               BLOB,
    public                    INTEGER NOT NULL DEFAULT 0 CHECK (public IN (0, 1)),
    first_party               INTEGER NOT NULL DEFAULT 0 CHECK (first_party IN (0, 1)),
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    audience                  TEXT    NOT NULL DEFAULT '[]',
    permissions               TEXT    NOT NULL DEFAULT '[]',
    created_by                TEXT    NOT NULL DEFAULT '',
    created_at                INTEGER NOT NULL
) STRICT;
CREATE INDEX oauth_clients_workspace_id ON oauth_clients (workspace_id);

-- Authorization requests kept between the authorize and token endpoints:
-- the code itself, its PKCE challenge and its OpenID Connect request, each
-- keyed by kind and the SHA-256 of the code. active turns false when the
-- code is spent, so a replay is recognised (and its grant revoked).
CREATE TABLE oauth_requests (
    kind       TEXT    NOT NULL,
    signature  TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (kind, signature)
) STRICT;
CREATE INDEX oauth_requests_expires_at ON oauth_requests (expires_at);

-- Refresh tokens, stored as SHA-256 only, grouped in families (one per
-- grant). Each use rotates: the used row gets rotated_at and its successor
-- sealed with the vault, so a concurrent use inside the grace window gets
-- the same successor; a later reuse revokes the whole family.
CREATE TABLE oauth_refresh_tokens (
    signature  TEXT    NOT NULL PRIMARY KEY,
    family_id  TEXT    NOT NULL,
    client_id  TEXT    NOT NULL,
    subject    TEXT    NOT NULL DEFAULT '',
    session_id TEXT    NOT NULL DEFAULT '',
    data       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated_at INTEGER,
    successor  BLOB,
    revoked_at INTEGER
) STRICT;
CREATE INDEX oauth_refresh_tokens_family_id ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_tokens_expires_at ON oauth_refresh_tokens (expires_at);

-- Remembered consent per account and client: the scopes granted.
CREATE TABLE oauth_consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]',
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;
CREATE INDEX oauth_consents_client_id ON oauth_consents (client_id);

-- Revoked access tokens (by jti) and grants (by request id) until the
-- tokens they cover have expired by themselves.
CREATE TABLE oauth_revocations (
    key        TEXT    NOT NULL PRIMARY KEY,
    expires_at INTEGER NOT NULL
) STRICT;
