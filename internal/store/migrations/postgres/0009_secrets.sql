-- Secrets store (SEC-1, SEC-2), equivalent to
-- migrations/sqlite/0009_secrets.sql, plus row-level security (AC-3).
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
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    deleted_at          BIGINT,
    destroyed_at        BIGINT,
    rotation_policy     TEXT    NOT NULL DEFAULT '',
    rotation_attempt_at BIGINT,
    rotation_success_at BIGINT,
    rotation_status     TEXT    NOT NULL DEFAULT '',
    rotation_error      TEXT    NOT NULL DEFAULT ''
);
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
    value        BYTEA,
    created_at   BIGINT  NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    destroyed_at BIGINT,
    PRIMARY KEY (secret_id, version)
);
CREATE UNIQUE INDEX secret_versions_stage ON secret_versions (secret_id, stage) WHERE stage <> '';
CREATE INDEX secret_versions_workspace_id ON secret_versions (workspace_id);

-- Row-level security as in 0003: a transaction sees the rows of the scope
-- named by rampart.workspace_id, where '' is the operator level (NULL
-- workspace_id), or every row under the global scope (the rotation job's
-- overview). With neither set, nothing.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['secrets', 'secret_versions'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY workspace_isolation ON %I
            USING (COALESCE(workspace_id, '') = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')
            WITH CHECK (COALESCE(workspace_id, '') = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')$p$, t);
    END LOOP;
END
$$;
GRANT SELECT, INSERT, UPDATE, DELETE ON secrets, secret_versions TO rampart_app;
