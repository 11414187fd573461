-- The Merkle audit log (package audit, LogStore), equivalent to
-- migrations/postgres/0004_audit_log.sql. It replaces audit_events once the
-- callers switch over; that table stays until then.
--
-- audit_log holds one row per leaf; idx is the leaf index, contiguous from
-- 0, and doubles as the rowid. Keyed values (HMACs of sensitive values) are
-- kept twice: as a JSON object name -> base64 in the row, which is what the
-- leaf covers and what reads return, and in audit_keyed, which only serves
-- exact searches through its primary key.

CREATE TABLE audit_log (
    idx        INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    time       INTEGER NOT NULL,
    actor_type TEXT    NOT NULL DEFAULT '',
    actor_id   TEXT    NOT NULL DEFAULT '',
    workspace  TEXT    NOT NULL DEFAULT '',
    action     TEXT    NOT NULL,
    target     TEXT    NOT NULL DEFAULT '',
    outcome    TEXT    NOT NULL,
    ip         TEXT    NOT NULL DEFAULT '',
    user_agent TEXT    NOT NULL DEFAULT '',
    request_id TEXT    NOT NULL DEFAULT '',
    trace_id   TEXT    NOT NULL DEFAULT '',
    sealed     BLOB,
    keyed      TEXT
) STRICT;
CREATE INDEX audit_log_workspace ON audit_log (workspace, idx);
CREATE INDEX audit_log_action ON audit_log (action, idx);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, idx);
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE audit_keyed (
    name  TEXT    NOT NULL,
    value BLOB    NOT NULL,
    idx   INTEGER NOT NULL,
    PRIMARY KEY (name, value, idx)
) STRICT, WITHOUT ROWID;

-- The tlog stored-hash layout (tlog.StoredHashIndex), so proofs and tree
-- heads are read, not recomputed.
CREATE TABLE audit_hashes (
    idx  INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    hash BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- Signed tree heads (C2SP signed notes).
CREATE TABLE audit_checkpoints (
    size       INTEGER NOT NULL PRIMARY KEY CHECK (size >= 0),
    root       BLOB    NOT NULL CHECK (length(root) = 32),
    note       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- The last index each sink delivered; the only audit table that changes.
CREATE TABLE audit_sink_cursors (
    sink TEXT    NOT NULL PRIMARY KEY,
    idx  INTEGER NOT NULL
) STRICT;

-- History is append-only: the database refuses to change or remove it, so
-- a bug or an injected statement cannot quietly rewrite the log (the
-- Merkle tree would still expose it, but refusing is better). SQLite has
-- no roles, hence triggers; a deliberate tamper (tests of the verifier)
-- drops them first: DROP TRIGGER audit_log_no_update, and so on.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_keyed_no_update BEFORE UPDATE ON audit_keyed
BEGIN SELECT RAISE(ABORT, 'audit_keyed is append-only'); END;
CREATE TRIGGER audit_keyed_no_delete BEFORE DELETE ON audit_keyed
BEGIN SELECT RAISE(ABORT, 'audit_keyed is append-only'); END;
CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit_hashes is append-only'); END;
CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit_hashes is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END;
