-- Signing keys of access tokens, ID tokens and gateway assertions (SES-2),
-- equivalent to migrations/postgres/0006_signing_keys.sql. Operator-level:
-- not workspace-owned. A key is published (in the JWKS) from created_at
-- until delete_after, signs from active_from until retired_at. The private
-- key is sealed through vault.Sealer (PKCS #8 inside), never stored plain.
CREATE TABLE signing_keys (
    id           TEXT    NOT NULL PRIMARY KEY, -- RFC 7638 thumbprint (the kid)
    algorithm    TEXT    NOT NULL,
    public_key   BLOB    NOT NULL,             -- PKIX DER
    private_key  BLOB    NOT NULL,             -- sealed PKCS #8 DER
    created_at   INTEGER NOT NULL,
    active_from  INTEGER NOT NULL,
    retired_at   INTEGER,
    delete_after INTEGER
) STRICT;
CREATE INDEX signing_keys_active_from ON signing_keys (active_from);
