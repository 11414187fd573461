-- The time of a session's last second-factor check, for step-up on
-- sensitive actions.
ALTER TABLE sessions ADD COLUMN mfa_at BIGINT;
