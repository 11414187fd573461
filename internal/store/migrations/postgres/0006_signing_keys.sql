-- Signing keys of access tokens, ID tokens and gateway assertions (SES-2),
-- equivalent to migrations/sqlite/0006_signing_keys.sql. Operator-level:
-- not workspace-owned, so no row-level security. A key is published (in the
-- JWKS) from created_at until delete_after, signs from active_from until
-- retired_at. The private key is sealed through vault.Sealer (PKCS #8
-- inside), never stored plain.
CREATE TABLE signing_keys (
    id           TEXT   NOT NULL PRIMARY KEY, -- RFC 7638 thumbprint (the kid)
    algorithm    TEXT   NOT NULL,
    public_key   BYTEA  NOT NULL,             -- PKIX DER
    private_key  BYTEA  NOT NULL,             -- sealed PKCS #8 DER
    created_at   BIGINT NOT NULL,
    active_from  BIGINT NOT NULL,
    retired_at   BIGINT,
    delete_after BIGINT
);
CREATE INDEX signing_keys_active_from ON signing_keys (active_from);

-- The default privileges of migration 0003 already cover a new table;
-- stated here so the grant does not depend on which role ran 0003.
GRANT SELECT, INSERT, UPDATE, DELETE ON signing_keys TO rampart_app;
