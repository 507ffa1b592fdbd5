-- Capability grants per executor version, and the audit of every capability call.

ALTER TABLE executor_versions
    ADD COLUMN capabilities text[] NOT NULL DEFAULT '{}',
    ADD COLUMN granted      text[] NOT NULL DEFAULT '{}',
    -- 'granted' or 'pending-approval'
    ADD COLUMN grant_status text NOT NULL DEFAULT 'granted'
        CHECK (grant_status IN ('granted', 'pending-approval'));

-- One row per attempt of every invocation: the attempt's final outcome and
-- every capability call it made (a JSON array, in order). Written outside the
-- invocation's transaction's fate, so rolled-back and replayed attempts keep
-- their records. Appending takes no lock and touches no shared row; a
-- chainer links each tenant's records afterwards into a hash chain
-- (chain_seq, prev_hash, hash).
CREATE TABLE audit_records (
    id            bigserial PRIMARY KEY,
    tenant_id     uuid NOT NULL,
    invocation_id uuid NOT NULL,
    attempt       integer NOT NULL,
    executor      text NOT NULL,
    version       text NOT NULL,
    -- committed, rolled_back, replayed, trapped, timed_out, host_failure, dry_run
    outcome       text NOT NULL,
    -- [{capability, table, detail, rows, outcome, error, lock_wait_us, duration_us, at}]
    calls         jsonb NOT NULL,
    lock_wait_us  bigint NOT NULL,
    duration_us   bigint NOT NULL,
    recorded_at   timestamptz NOT NULL,
    chain_seq     bigint,
    prev_hash     bytea,
    hash          bytea
);
-- Not unique: verification, not the schema, judges the chain, so that a
-- tampered table (duplicated or swapped positions) can still be read and reported.
CREATE INDEX audit_records_chain ON audit_records (tenant_id, chain_seq);
CREATE INDEX audit_records_unchained ON audit_records (id) WHERE chain_seq IS NULL;
CREATE INDEX audit_records_invocation ON audit_records (tenant_id, invocation_id);
