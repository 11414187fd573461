-- Vault key hierarchy (ENC-1, ENC-3, ENC-4), equivalent to
-- migrations/sqlite/0008_vault.sql, with row-level security like every
-- workspace table (AC-3). workspace_id '' is Rampart's own (operator)
-- scope, visible only to the global scope. There is no foreign key to
-- workspaces: the operator scope has no workspace row, and a shredded
-- scope keeps its tombstone after its workspace is gone.
CREATE TABLE vault_scopes (
    workspace_id  TEXT   NOT NULL PRIMARY KEY,
    min_version   BIGINT NOT NULL DEFAULT 1,
    blind_wrapped BYTEA,
    root_id       TEXT   NOT NULL DEFAULT '',
    created_at    BIGINT NOT NULL,
    shredded_at   BIGINT
);

CREATE TABLE vault_keks (
    workspace_id TEXT   NOT NULL,
    version      BIGINT NOT NULL,
    wrapped      BYTEA  NOT NULL,
    root_id      TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, version)
);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['vault_scopes', 'vault_keks'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY workspace_isolation ON %I
            USING (workspace_id = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')
            WITH CHECK (workspace_id = current_setting('rampart.workspace_id', true)
                OR current_setting('rampart.scope', true) = 'global')$p$, t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON vault_scopes, vault_keks TO rampart_app;
