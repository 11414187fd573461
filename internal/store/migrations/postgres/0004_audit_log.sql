-- The Merkle audit log (package audit, LogStore), equivalent to
-- migrations/sqlite/0004_audit_log.sql. It replaces audit_events once the
-- callers switch over; that table stays until then.
--
-- audit_log holds one row per leaf; idx is the leaf index, contiguous from
-- 0. Keyed values (HMACs of sensitive values) are kept twice: as a JSON
-- object name -> base64 in the row, which is what the leaf covers and what
-- reads return, and in audit_keyed, which only serves exact searches
-- through its primary key.
--
-- Not a workspace table: operators query across workspaces and the audit
-- package scopes queries itself, so there is no row-level security here.

CREATE TABLE audit_log (
    idx        BIGINT NOT NULL PRIMARY KEY CHECK (idx >= 0),
    time       BIGINT NOT NULL,
    actor_type TEXT   NOT NULL DEFAULT '',
    actor_id   TEXT   NOT NULL DEFAULT '',
    workspace  TEXT   NOT NULL DEFAULT '',
    -- Byte order, as on SQLite: an action prefix search ("auth.") is the
    -- range [prefix, prefix with its last byte + 1), which a locale's
    -- collation would not keep contiguous.
    action     TEXT   COLLATE "C" NOT NULL,
    target     TEXT   NOT NULL DEFAULT '',
    outcome    TEXT   NOT NULL,
    ip         TEXT   NOT NULL DEFAULT '',
    user_agent TEXT   NOT NULL DEFAULT '',
    request_id TEXT   NOT NULL DEFAULT '',
    trace_id   TEXT   NOT NULL DEFAULT '',
    sealed     BYTEA,
    keyed      TEXT
);
CREATE INDEX audit_log_workspace ON audit_log (workspace, idx);
CREATE INDEX audit_log_action ON audit_log (action, idx);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, idx);
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE audit_keyed (
    name  TEXT   NOT NULL,
    value BYTEA  NOT NULL,
    idx   BIGINT NOT NULL,
    PRIMARY KEY (name, value, idx)
);

-- The tlog stored-hash layout (tlog.StoredHashIndex), so proofs and tree
-- heads are read, not recomputed.
CREATE TABLE audit_hashes (
    idx  BIGINT NOT NULL PRIMARY KEY CHECK (idx >= 0),
    hash BYTEA  NOT NULL CHECK (octet_length(hash) = 32)
);

-- Signed tree heads (C2SP signed notes).
CREATE TABLE audit_checkpoints (
    size       BIGINT NOT NULL PRIMARY KEY CHECK (size >= 0),
    root       BYTEA  NOT NULL CHECK (octet_length(root) = 32),
    note       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- The last index each sink delivered; the only audit table that changes.
CREATE TABLE audit_sink_cursors (
    sink TEXT   NOT NULL PRIMARY KEY,
    idx  BIGINT NOT NULL
);

-- History is append-only for the application: rampart_app may read and add
-- but not change or remove (nor truncate), so neither a bug nor an injected
-- statement can rewrite the log. The default privileges of migration 0003
-- would grant UPDATE and DELETE: replace them explicitly. The owner (the
-- DSN user, which runs migrations) keeps full rights; a deliberate tamper
-- (tests of the verifier) connects as the owner.
REVOKE ALL ON audit_log, audit_keyed, audit_hashes, audit_checkpoints, audit_sink_cursors FROM rampart_app;
GRANT SELECT, INSERT ON audit_log, audit_keyed, audit_hashes, audit_checkpoints TO rampart_app;
GRANT SELECT, INSERT, UPDATE ON audit_sink_cursors TO rampart_app;
