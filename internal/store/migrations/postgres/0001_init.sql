-- Initial schema, equivalent to migrations/sqlite/0001_init.sql. Every
-- timestamp is BIGINT unix microseconds (NULL for "never") so both engines
-- store and compare times identically.

CREATE TABLE users (
    id                   TEXT    NOT NULL PRIMARY KEY,
    email                TEXT    NOT NULL UNIQUE,
    email_verified_at    BIGINT,
    password_hash        TEXT    NOT NULL DEFAULT '',
    password_compromised BOOLEAN NOT NULL DEFAULT FALSE,
    totp_secret          BYTEA,
    totp_enabled         BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step       BIGINT  NOT NULL DEFAULT 0,
    failed_signins       INTEGER NOT NULL DEFAULT 0,
    locked_until         BIGINT,
    created_at           BIGINT  NOT NULL,
    updated_at           BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash       BYTEA   NOT NULL UNIQUE,
    prev_token_hash  BYTEA,
    prev_valid_until BIGINT,
    pending          BOOLEAN NOT NULL DEFAULT FALSE,
    mfa              BOOLEAN NOT NULL DEFAULT FALSE,
    ip               TEXT    NOT NULL DEFAULT '',
    user_agent       TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    last_seen_at     BIGINT,
    rotated_at       BIGINT,
    expires_at       BIGINT  NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_prev_token_hash ON sessions (prev_token_hash);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE tokens (
    hash       BYTEA  NOT NULL PRIMARY KEY,
    kind       TEXT   NOT NULL,
    user_id    TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX tokens_user_id_kind ON tokens (user_id, kind);

CREATE TABLE recovery_codes (
    user_id TEXT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash    BYTEA NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE known_devices (
    user_id       TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_hash   BYTEA  NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, device_hash)
);

CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time       BIGINT NOT NULL,
    actor_type TEXT   NOT NULL DEFAULT '',
    actor_id   TEXT   NOT NULL DEFAULT '',
    workspace  TEXT   NOT NULL DEFAULT '',
    action     TEXT   NOT NULL,
    target     TEXT   NOT NULL DEFAULT '',
    outcome    TEXT   NOT NULL,
    ip         TEXT   NOT NULL DEFAULT '',
    user_agent TEXT   NOT NULL DEFAULT '',
    request_id TEXT   NOT NULL DEFAULT '',
    details    TEXT
);
CREATE INDEX audit_events_action ON audit_events (action);
CREATE INDEX audit_events_actor_id ON audit_events (actor_id);
CREATE INDEX audit_events_time ON audit_events (time);

CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);
