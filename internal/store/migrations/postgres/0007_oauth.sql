-- OAuth 2.0 / OpenID Connect provider (SES-3, SES-4), equivalent to
-- migrations/sqlite/0007_oauth.sql. String lists are JSON text.

-- Registered clients. workspace_id is NULL for operator-level clients;
-- service clients (client credentials) belong to a workspace and carry a
-- subset of its permissions. Only the SHA-256 of a confidential client's
-- secret is stored (the secret is 256 random bits, shown once).
CREATE TABLE oauth_clients (
    id                        TEXT    NOT NULL PRIMARY KEY,
    workspace_id              TEXT    REFERENCES workspaces (id) ON DELETE CASCADE,
    name                      TEXT    NOT NULL DEFAULT '',
    secret_hash               BYTEA,
    public                    BOOLEAN NOT NULL DEFAULT FALSE,
    first_party               BOOLEAN NOT NULL DEFAULT FALSE,
    redirect_uris             TEXT    NOT NULL DEFAULT '[]',
    post_logout_redirect_uris TEXT    NOT NULL DEFAULT '[]',
    grant_types               TEXT    NOT NULL DEFAULT '[]',
    scopes                    TEXT    NOT NULL DEFAULT '[]',
    audience                  TEXT    NOT NULL DEFAULT '[]',
    permissions               TEXT    NOT NULL DEFAULT '[]',
    created_by                TEXT    NOT NULL DEFAULT '',
    created_at                BIGINT NOT NULL
);
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
    active     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, signature)
);
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
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    rotated_at BIGINT,
    successor  BYTEA,
    revoked_at BIGINT
);
CREATE INDEX oauth_refresh_tokens_family_id ON oauth_refresh_tokens (family_id);
CREATE INDEX oauth_refresh_tokens_expires_at ON oauth_refresh_tokens (expires_at);

-- Remembered consent per account and client: the scopes granted.
CREATE TABLE oauth_consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '[]',
    granted_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oauth_consents_client_id ON oauth_consents (client_id);

-- Revoked access tokens (by jti) and grants (by request id) until the
-- tokens they cover have expired by themselves.
CREATE TABLE oauth_revocations (
    key        TEXT    NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

-- Row-level security (AC-3) on the one workspace-owned table. Operator
-- clients (workspace_id NULL) are seen only in the global scope, which is
-- also how the token endpoint finds a client by id before knowing its
-- workspace. The other tables belong to accounts and clients, not
-- workspaces. Privileges come from 0003's default privileges.
ALTER TABLE oauth_clients ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_clients FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON oauth_clients
    USING (workspace_id = current_setting('rampart.workspace_id', true)
        OR current_setting('rampart.scope', true) = 'global')
    WITH CHECK (workspace_id = current_setting('rampart.workspace_id', true)
        OR current_setting('rampart.scope', true) = 'global');
