-- Tenancy: workspaces and everything they own, equivalent to
-- migrations/sqlite/0003_tenancy.sql, plus what only PostgreSQL has:
-- row-level security on every workspace-owned table (AC-3) and the
-- rampart_app role that the application's queries run as.
--
-- Every workspace-owned table has a workspace_id referencing workspaces
-- ON DELETE CASCADE, so deleting a workspace is one DELETE. String lists
-- (permissions, scopes, networks) and review decisions are JSON text.

CREATE TABLE workspaces (
    id         TEXT   NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_by TEXT   NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- App-registered permissions; they apply to every workspace, so this table
-- is not workspace-owned. Built-in permissions live in code.
CREATE TABLE permissions (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    sensitive   BOOLEAN NOT NULL DEFAULT FALSE
);

-- Custom roles. Built-in roles (admin, editor, readonly) have no row.
CREATE TABLE roles (
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           TEXT   NOT NULL,
    name         TEXT   NOT NULL,
    description  TEXT   NOT NULL DEFAULT '',
    permissions  TEXT   NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name)
);

CREATE TABLE members (
    workspace_id     TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at        BIGINT  NOT NULL,
    last_active_at   BIGINT,
    scim_external_id TEXT    NOT NULL DEFAULT '',
    active           BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX members_user_id ON members (user_id);

-- A member's roles. role_id is a built-in id or a custom role's id; it has
-- no foreign key because built-ins have no row (DeleteRole checks use).
CREATE TABLE member_roles (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role_id      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, role_id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES members (workspace_id, user_id) ON DELETE CASCADE
);
CREATE INDEX member_roles_role_id ON member_roles (workspace_id, role_id);

CREATE TABLE invitations (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT   NOT NULL,
    role_id      TEXT   NOT NULL,
    invited_by   TEXT   NOT NULL DEFAULT '',
    token_hash   BYTEA  NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    accepted_at  BIGINT,
    declined_at  BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX invitations_workspace_id ON invitations (workspace_id, created_at);

CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL DEFAULT '',
    created_by   TEXT   NOT NULL DEFAULT '',
    secret_hash  BYTEA  NOT NULL,
    permissions  TEXT   NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    last_used_ip TEXT   NOT NULL DEFAULT '',
    revoked_at   BIGINT
);
CREATE INDEX api_keys_workspace_id_created_by ON api_keys (workspace_id, created_by);

CREATE TABLE scim_tokens (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    secret_hash  BYTEA  NOT NULL,
    created_by   TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX scim_tokens_workspace_id ON scim_tokens (workspace_id);

-- Operator staff: accounts, not workspace-owned.
CREATE TABLE operators (
    user_id          TEXT   NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    allowed_networks TEXT   NOT NULL DEFAULT '[]',
    created_at       BIGINT NOT NULL
);

CREATE TABLE support_grants (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    operator_id  TEXT   NOT NULL DEFAULT '',
    granted_by   TEXT   NOT NULL DEFAULT '',
    scope        TEXT   NOT NULL DEFAULT '[]',
    reason       TEXT   NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX support_grants_workspace_id ON support_grants (workspace_id, expires_at);

CREATE TABLE support_access (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    operator_id  TEXT    NOT NULL,
    grant_id     TEXT    NOT NULL DEFAULT '',
    break_glass  BOOLEAN NOT NULL DEFAULT FALSE,
    reason       TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL DEFAULT '',
    at           BIGINT  NOT NULL
);
CREATE INDEX support_access_workspace_id ON support_access (workspace_id, at);

CREATE TABLE access_reviews (
    id           TEXT   NOT NULL PRIMARY KEY,
    workspace_id TEXT   NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    reviewer_id  TEXT   NOT NULL,
    decisions    TEXT   NOT NULL DEFAULT '[]',
    created_at   BIGINT NOT NULL
);
CREATE INDEX access_reviews_workspace_id ON access_reviews (workspace_id, created_at);

-- Row-level security (AC-3). A transaction sees and writes only the rows of
-- the workspace named by its rampart.workspace_id setting (set with
-- set_config(..., true), so it ends with the transaction), or every row
-- when rampart.scope is 'global' (the few documented cross-workspace
-- lookups). With neither set, a query sees nothing. FORCE applies the
-- policies to the table owner too; only superusers and BYPASSRLS roles
-- escape them, which is why the application runs as rampart_app.
DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['roles', 'members', 'member_roles', 'invitations', 'api_keys',
            'scim_tokens', 'support_grants', 'support_access', 'access_reviews'] LOOP
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
ALTER TABLE workspaces ENABLE ROW LEVEL SECURITY;
ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
CREATE POLICY workspace_isolation ON workspaces
    USING (id = current_setting('rampart.workspace_id', true)
        OR current_setting('rampart.scope', true) = 'global')
    WITH CHECK (id = current_setting('rampart.workspace_id', true)
        OR current_setting('rampart.scope', true) = 'global');

-- The application role. Roles are cluster-wide and several databases (test
-- runs, tenants of one server) may migrate at once, so creating it
-- tolerates losing the race. It may not log in: the DSN user (the owner,
-- who runs migrations) switches to it with SET ROLE on every connection.
DO $$
BEGIN
    CREATE ROLE rampart_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    -- A pre-existing role with the power to escape row-level security
    -- would silently void AC-3: refuse to go on.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rampart_app' AND (rolsuper OR rolbypassrls)) THEN
        RAISE EXCEPTION 'role rampart_app must be NOSUPERUSER NOBYPASSRLS';
    END IF;
    -- The owner must be allowed to SET ROLE rampart_app (superusers
    -- already are). From PostgreSQL 16 membership alone is not enough: a
    -- creator's automatic ADMIN grant lacks the SET option.
    IF NOT pg_has_role(current_user, 'rampart_app',
            CASE WHEN current_setting('server_version_num')::int >= 160000 THEN 'SET' ELSE 'MEMBER' END) THEN
        BEGIN
            GRANT rampart_app TO CURRENT_USER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
    -- Data privileges only: the application cannot change the schema, so
    -- neither can an injected statement. Tables of later migrations get
    -- them through the default privileges.
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO rampart_app', current_schema());
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO rampart_app', current_schema());
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO rampart_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rampart_app', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT ON SEQUENCES TO rampart_app', current_schema());
END
$$;
-- Migrations run as the owner; the application only reads their record.
REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM rampart_app;
