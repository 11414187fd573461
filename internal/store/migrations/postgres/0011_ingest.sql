-- Event ingestion (APP-9), equivalent to migrations/sqlite/0011_ingest.sql,
-- plus row-level security on every table (AC-3).

-- Publishable keys for the client SDK: only the SHA-256 of the secret.
CREATE TABLE ingest_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    class        TEXT   NOT NULL DEFAULT '',
    secret_hash  BYTEA  NOT NULL,
    created_by   TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX ingest_keys_workspace_id ON ingest_keys (workspace_id, created_at);

-- Subjects who opted out, under a keyed hash of (workspace, kind, id): the
-- list holds no user id in the clear.
CREATE TABLE ingest_opt_outs (
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject_hash BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, subject_hash)
);

-- Events: the payload is vault.Sealer ciphertext bound to (workspace,
-- ingest_events, payload, id). Ids sort by arrival; the sweep deletes by
-- expires_at.
CREATE TABLE ingest_events (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    received_at  BIGINT NOT NULL,
    class        TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL,
    payload      BYTEA  NOT NULL
);
CREATE INDEX ingest_events_workspace_id ON ingest_events (workspace_id, id);
CREATE INDEX ingest_events_expires_at ON ingest_events (expires_at);

-- Row-level security (AC-3), as migration 0003 sets it up. Key lookup by
-- id (the key text carries only its id) and the retention sweep use the
-- global scope.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['ingest_keys', 'ingest_opt_outs', 'ingest_events'] LOOP
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
