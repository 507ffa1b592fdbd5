-- Capability grants per executor version, and the audit of every capability call.

ALTER TABLE executor_versions
    ADD COLUMN capabilities text[] NOT NULL DEFAULT '{}',
    ADD COLUMN granted      text[] NOT NULL DEFAULT '{}',
    -- 'granted' or 'pending-approval'
    ADD COLUMN grant_status text NOT NULL DEFAULT 'granted'
        CHECK (grant_status IN ('granted', 'pending-approval'));

-- One row per capability call of every attempt (each carrying the attempt's
-- final outcome), or one 'attempt' row for an attempt that made no call. Written outside the invocation's
-- transaction, so rolled-back and replayed attempts keep their records.
-- Appending takes no lock and touches no shared row; a chainer links each
-- tenant's records afterwards into a hash chain (chain_seq, prev_hash, hash).
CREATE TABLE audit_records (
    id              bigserial PRIMARY KEY,
    tenant_id       uuid NOT NULL,
    invocation_id   uuid NOT NULL,
    attempt         integer NOT NULL,
    executor        text NOT NULL,
    version         text NOT NULL,
    capability      text NOT NULL,
    table_name      text,
    detail          jsonb NOT NULL,
    rows            bigint NOT NULL,
    outcome         text NOT NULL,
    error           text,
    lock_wait_us    bigint NOT NULL,
    duration_us     bigint NOT NULL,
    attempt_outcome text NOT NULL,
    recorded_at     timestamptz NOT NULL,
    chain_seq       bigint,
    prev_hash       bytea,
    hash            bytea
);
-- Not unique: verification, not the schema, judges the chain, so that a
-- tampered table (duplicated or swapped positions) can still be read and reported.
CREATE INDEX audit_records_chain ON audit_records (tenant_id, chain_seq);
CREATE INDEX audit_records_unchained ON audit_records (id) WHERE chain_seq IS NULL;
CREATE INDEX audit_records_invocation ON audit_records (tenant_id, invocation_id);
