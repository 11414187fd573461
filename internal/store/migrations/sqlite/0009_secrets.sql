-- Secrets store (SEC-1, SEC-2), equivalent to
-- migrations/postgres/0009_secrets.sql.
--
-- workspace_id is NULL for operator-level secrets (Rampart's own scope) and
-- otherwise references the owning workspace, so deleting a workspace
-- deletes its secrets. A name is unique among the live (not destroyed)
-- secrets of a scope; a destroyed secret keeps its row, with every value
-- wiped, as the record of what existed.

CREATE TABLE secrets (
    id                  TEXT    NOT NULL PRIMARY KEY,
    workspace_id        TEXT    REFERENCES workspaces (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    current_version     INTEGER NOT NULL DEFAULT 0,
    latest_version      INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER,
    destroyed_at        INTEGER,
    rotation_policy     TEXT    NOT NULL DEFAULT '',
    rotation_attempt_at INTEGER,
    rotation_success_at INTEGER,
    rotation_status     TEXT    NOT NULL DEFAULT '',
    rotation_error      TEXT    NOT NULL DEFAULT ''
) STRICT;
CREATE UNIQUE INDEX secrets_live_name ON secrets (COALESCE(workspace_id, ''), name) WHERE destroyed_at IS NULL;
CREATE INDEX secrets_workspace_id ON secrets (workspace_id);

-- value is sealed (vault.Sealer, associated data workspace /
-- secret_versions / value / "<secret id>/<version>"); NULL once wiped.
-- At most one version of a secret holds each stage.
CREATE TABLE secret_versions (
    secret_id    TEXT    NOT NULL REFERENCES secrets (id) ON DELETE CASCADE,
    workspace_id TEXT    REFERENCES workspaces (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    stage        TEXT    NOT NULL DEFAULT '' CHECK (stage IN ('', 'current', 'previous', 'pending')),
    value        BLOB,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    destroyed_at INTEGER,
    PRIMARY KEY (secret_id, version)
) STRICT;
CREATE UNIQUE INDEX secret_versions_stage ON secret_versions (secret_id, stage) WHERE stage <> '';
CREATE INDEX secret_versions_workspace_id ON secret_versions (workspace_id);
