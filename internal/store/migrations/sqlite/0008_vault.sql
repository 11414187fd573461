-- Vault key hierarchy (ENC-1, ENC-3, ENC-4): per-workspace key-encryption
-- keys, stored only wrapped by the root key, and each scope's blind-index
-- key and retirement state. workspace_id '' is Rampart's own (operator)
-- scope. There is no foreign key to workspaces: the operator scope has no
-- workspace row, and a shredded scope keeps its tombstone after its
-- workspace is gone so it can never be given keys again.
CREATE TABLE vault_scopes (
    workspace_id  TEXT    NOT NULL PRIMARY KEY,
    min_version   INTEGER NOT NULL DEFAULT 1,
    blind_wrapped BLOB,
    root_id       TEXT    NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    shredded_at   INTEGER
);

CREATE TABLE vault_keks (
    workspace_id TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    wrapped      BLOB    NOT NULL,
    root_id      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workspace_id, version)
);
