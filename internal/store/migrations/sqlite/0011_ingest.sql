-- Event ingestion (APP-9), equivalent to migrations/postgres/0011_ingest.sql.

-- Publishable keys for the client SDK: only the SHA-256 of the secret.
CREATE TABLE ingest_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    class        TEXT    NOT NULL DEFAULT '',
    secret_hash  BLOB    NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX ingest_keys_workspace_id ON ingest_keys (workspace_id, created_at);

-- Subjects who opted out, under a keyed hash of (workspace, kind, id): the
-- list holds no user id in the clear.
CREATE TABLE ingest_opt_outs (
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    subject_hash BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, subject_hash)
) STRICT;

-- Events: the payload is vault.Sealer ciphertext bound to (workspace,
-- ingest_events, payload, id). Ids sort by arrival; the sweep deletes by
-- expires_at.
CREATE TABLE ingest_events (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    received_at  INTEGER NOT NULL,
    class        TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    payload      BLOB    NOT NULL
) STRICT;
CREATE INDEX ingest_events_workspace_id ON ingest_events (workspace_id, id);
CREATE INDEX ingest_events_expires_at ON ingest_events (expires_at);
