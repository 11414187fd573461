-- Initial schema. Every timestamp is INTEGER unix microseconds (NULL for
-- "never"), booleans are 0/1, hashes and sealed secrets are BLOBs. Tables are
-- STRICT so a type mistake fails here as it would on PostgreSQL.

CREATE TABLE users (
    id                   TEXT    NOT NULL PRIMARY KEY,
    email                TEXT    NOT NULL UNIQUE,
    email_verified_at    INTEGER,
    password_hash        TEXT    NOT NULL DEFAULT '',
    password_compromised INTEGER NOT NULL DEFAULT 0 CHECK (password_compromised IN (0, 1)),
    totp_secret          BLOB,
    totp_enabled         INTEGER NOT NULL DEFAULT 0 CHECK (totp_enabled IN (0, 1)),
    totp_last_step       INTEGER NOT NULL DEFAULT 0,
    failed_signins       INTEGER NOT NULL DEFAULT 0,
    locked_until         INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash       BLOB    NOT NULL UNIQUE,
    prev_token_hash  BLOB,
    prev_valid_until INTEGER,
    pending          INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1)),
    mfa              INTEGER NOT NULL DEFAULT 0 CHECK (mfa IN (0, 1)),
    ip               TEXT    NOT NULL DEFAULT '',
    user_agent       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_seen_at     INTEGER,
    rotated_at       INTEGER,
    expires_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_prev_token_hash ON sessions (prev_token_hash);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE tokens (
    hash       BLOB    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
) STRICT;
CREATE INDEX tokens_user_id_kind ON tokens (user_id, kind);

CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    BLOB NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE known_devices (
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash   BLOB    NOT NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, device_hash)
) STRICT;

CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
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
    details    TEXT
) STRICT;
CREATE INDEX audit_events_action ON audit_events (action);
CREATE INDEX audit_events_actor_id ON audit_events (actor_id);
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
