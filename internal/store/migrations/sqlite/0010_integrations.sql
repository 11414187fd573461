-- Third-party integrations (INT-1 to INT-4), equivalent to
-- migrations/postgres/0010_integrations.sql. Every token column holds
-- vault.Sealer ciphertext bound to (workspace, table, column, row).

-- A workspace's connection to a provider; no credentials here.
CREATE TABLE integrations (
    id                 TEXT    NOT NULL PRIMARY KEY,
    workspace_id       TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider           TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    scopes             TEXT    NOT NULL DEFAULT '[]',
    created_by         TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER,
    refreshed_at       INTEGER,
    last_used_at       INTEGER,
    refresh_failures   INTEGER NOT NULL DEFAULT 0,
    last_refresh_error TEXT    NOT NULL DEFAULT '',
    version            INTEGER NOT NULL DEFAULT 1
) STRICT;
CREATE INDEX integrations_workspace_id ON integrations (workspace_id, created_at);
CREATE INDEX integrations_expires_at ON integrations (expires_at);

-- The sealed credentials, deleted with their connection.
CREATE TABLE integration_tokens (
    integration_id TEXT    NOT NULL PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id   TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    access         BLOB    NOT NULL,
    refresh        BLOB,
    token_type     TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX integration_tokens_workspace_id ON integration_tokens (workspace_id);

-- Started connect flows: the state parameter only as a hash, the PKCE
-- verifier sealed, bound to the initiating session by a hash.
CREATE TABLE integration_states (
    state_hash   BLOB    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider     TEXT    NOT NULL,
    session_hash BLOB    NOT NULL,
    verifier     BLOB    NOT NULL,
    scopes       TEXT    NOT NULL DEFAULT '[]',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX integration_states_expires_at ON integration_states (expires_at);

-- Tokens of disconnected integrations waiting for revocation at the
-- provider (RFC 7009), retried with backoff; the only place they live on.
CREATE TABLE integration_revocations (
    id              TEXT    NOT NULL PRIMARY KEY,
    workspace_id    TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider        TEXT    NOT NULL,
    token           BLOB    NOT NULL,
    token_type_hint TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    queued_at       INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX integration_revocations_next ON integration_revocations (next_attempt_at);
