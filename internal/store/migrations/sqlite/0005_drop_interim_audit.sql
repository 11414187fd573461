-- The foundation's plain audit table is replaced by the tamper-evident log
-- of migration 0004 (audit_log, audit_hashes, audit_checkpoints).
DROP TABLE IF EXISTS audit_events;
