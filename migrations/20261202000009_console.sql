-- What the operator console shows beyond the audit as it was: why an
-- attempt was replayed, versions an operator denied, and the last
-- verification of each tenant's chain.

-- A replayed attempt's reason (serialization_failure, deadlock,
-- lock_contended, connection_lost); NULL for every other outcome and for
-- records made before this column. The chain hashes it only when present,
-- so older records hash as they did.
ALTER TABLE audit_records ADD COLUMN replay_reason text;

-- The console's windows (the last 15 minutes, hour, day) read records by
-- time. Records are appended in time order, so a BRIN index finds a window
-- from a few summary tuples and costs the append almost nothing (a btree
-- would add an index entry to every attempt's record).
CREATE INDEX audit_records_recorded_at ON audit_records USING brin (recorded_at);

-- An operator may deny a version pending approval: it keeps no capability
-- and is never granted unless approved later.
ALTER TABLE executor_versions DROP CONSTRAINT executor_versions_grant_status_check;
ALTER TABLE executor_versions ADD CONSTRAINT executor_versions_grant_status_check
    CHECK (grant_status IN ('granted', 'pending-approval', 'denied'));

-- The last verification of each tenant's chain: how far it held, and the
-- first broken link it found, if any. The host's bookkeeping (like the
-- audit itself, no executor can name it).
CREATE TABLE audit_verifications (
    tenant_id     uuid PRIMARY KEY,
    verified_at   timestamptz NOT NULL,
    -- Positions walked (the chain's length then).
    records       bigint NOT NULL,
    -- The last position that held: the whole chain, or just before the break.
    verified_seq  bigint NOT NULL,
    broken_seq    bigint,
    broken_record bigint,
    broken_reason text
);

GRANT SELECT, INSERT, UPDATE ON audit_verifications TO bookhost_app;
