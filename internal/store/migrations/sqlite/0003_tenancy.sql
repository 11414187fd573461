-- Tenancy: workspaces and everything they own, equivalent to
-- migrations/postgres/0003_tenancy.sql. SQLite has no row-level security:
-- here every workspace-scoped query filters on workspace_id itself.
--
-- Every workspace-owned table has a workspace_id referencing workspaces
-- ON DELETE CASCADE, so deleting a workspace is one DELETE. String lists
-- (permissions, scopes, networks) and review decisions are JSON text.

CREATE TABLE workspaces (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_by TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- App-registered permissions; they apply to every workspace, so this table
-- is not workspace-owned. Built-in permissions live in code.
CREATE TABLE permissions (
    name        TEXT    NOT NULL PRIMARY KEY,
    description TEXT    NOT NULL DEFAULT '',
    sensitive   INTEGER NOT NULL DEFAULT 0 CHECK (sensitive IN (0, 1))
) STRICT;

-- Custom roles. Built-in roles (admin, editor, readonly) have no row.
CREATE TABLE roles (
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    permissions  TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, id),
    UNIQUE (workspace_id, name)
) STRICT;

CREATE TABLE members (
    workspace_id     TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at        INTEGER NOT NULL,
    last_active_at   INTEGER,
    scim_external_id TEXT    NOT NULL DEFAULT '',
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    PRIMARY KEY (workspace_id, user_id)
) STRICT;
CREATE INDEX members_user_id ON members (user_id);

-- A member's roles. role_id is a built-in id or a custom role's id; it has
-- no foreign key because built-ins have no row (DeleteRole checks use).
CREATE TABLE member_roles (
    workspace_id TEXT NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL,
    role_id      TEXT NOT NULL,
    PRIMARY KEY (workspace_id, user_id, role_id),
    FOREIGN KEY (workspace_id, user_id) REFERENCES members (workspace_id, user_id) ON DELETE CASCADE
) STRICT;
CREATE INDEX member_roles_role_id ON member_roles (workspace_id, role_id);

CREATE TABLE invitations (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    role_id      TEXT    NOT NULL,
    invited_by   TEXT    NOT NULL DEFAULT '',
    token_hash   BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    accepted_at  INTEGER,
    declined_at  INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX invitations_workspace_id ON invitations (workspace_id, created_at);

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL DEFAULT '',
    created_by   TEXT    NOT NULL DEFAULT '',
    secret_hash  BLOB    NOT NULL,
    permissions  TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    last_used_ip TEXT    NOT NULL DEFAULT '',
    revoked_at   INTEGER
) STRICT;
CREATE INDEX api_keys_workspace_id_created_by ON api_keys (workspace_id, created_by);

CREATE TABLE scim_tokens (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    secret_hash  BLOB    NOT NULL,
    created_by   TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX scim_tokens_workspace_id ON scim_tokens (workspace_id);

-- Operator staff: accounts, not workspace-owned.
CREATE TABLE operators (
    user_id          TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    allowed_networks TEXT    NOT NULL DEFAULT '[]',
    created_at       INTEGER NOT NULL
) STRICT;

CREATE TABLE support_grants (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    operator_id  TEXT    NOT NULL DEFAULT '',
    granted_by   TEXT    NOT NULL DEFAULT '',
    scope        TEXT    NOT NULL DEFAULT '[]',
    reason       TEXT    NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
) STRICT;
CREATE INDEX support_grants_workspace_id ON support_grants (workspace_id, expires_at);

CREATE TABLE support_access (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    operator_id  TEXT    NOT NULL,
    grant_id     TEXT    NOT NULL DEFAULT '',
    break_glass  INTEGER NOT NULL DEFAULT 0 CHECK (break_glass IN (0, 1)),
    reason       TEXT    NOT NULL DEFAULT '',
    action       TEXT    NOT NULL DEFAULT '',
    at           INTEGER NOT NULL
) STRICT;
CREATE INDEX support_access_workspace_id ON support_access (workspace_id, at);

CREATE TABLE access_reviews (
    id           TEXT    NOT NULL PRIMARY KEY,
    workspace_id TEXT    NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    reviewer_id  TEXT    NOT NULL,
    decisions    TEXT    NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX access_reviews_workspace_id ON access_reviews (workspace_id, created_at);
