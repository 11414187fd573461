-- Third-party integrations (INT-1 to INT-4), equivalent to
-- migrations/sqlite/0010_integrations.sql, plus
-- row-level security on every table (AC-3). Every token column holds
-- vault.Sealer ciphertext bound to (workspace, table, column, row).

-- A workspace's connection to a provider; no credentials here.
CREATE TABLE integrations (
    id                 TEXT    NOT NULL PRIMARY KEY,
    workspace_id       TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider           TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    scopes             TEXT    NOT NULL DEFAULT '[]',
    created_by         TEXT    NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT,
    refreshed_at       BIGINT,
    last_used_at       BIGINT,
    refresh_failures   INTEGER NOT NULL DEFAULT 0,
    last_refresh_error TEXT    NOT NULL DEFAULT '',
    version            BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX integrations_workspace_id ON integrations (workspace_id, created_at);
CREATE INDEX integrations_expires_at ON integrations (expires_at);

-- The sealed credentials, deleted with their connection.
CREATE TABLE integration_tokens (
    integration_id TEXT    NOT NULL PRIMARY KEY REFERENCES integrations (id) ON DELETE CASCADE,
    workspace_id   TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    access         BYTEA   NOT NULL,
    refresh        BYTEA,
    token_type     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX integration_tokens_workspace_id ON integration_tokens (workspace_id);

-- Started connect flows: the state parameter only as a hash, the PKCE
-- verifier sealed, bound to the initiating session by a hash.
CREATE TABLE integration_states (
    state_hash   BYTEA   NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider     TEXT    NOT NULL,
    session_hash BYTEA   NOT NULL,
    verifier     BYTEA   NOT NULL,
    scopes       TEXT    NOT NULL DEFAULT '[]',
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX integration_states_expires_at ON integration_states (expires_at);

-- Tokens of disconnected integrations waiting for revocation at the
-- provider (RFC 7009), retried with backoff; the only place they live on.
CREATE TABLE integration_revocations (
    id              TEXT    NOT NULL PRIMARY KEY,
    workspace_id    TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    provider        TEXT    NOT NULL,
    token           BYTEA   NOT NULL,
    token_type_hint TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    queued_at       BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX integration_revocations_next ON integration_revocations (next_attempt_at);

-- Row-level security (AC-3), as migration 0003 sets it up. The background
-- job reads the revocation queue and expiring tokens with the global scope.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['integrations', 'integration_tokens', 'integration_states', 'integration_revocations'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY workspace_isolation ON %I
            USING (workspace_id = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')
            WITH CHECK (workspace_id = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')$p$, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO rampart_app', t);
    END LOOP;
END
$$;
