-- Proposals: an invocation run as a dry run whose write set is kept, so that
-- confirming it later commits only if the same executor version, run on the
-- same input with the same clock, writes the same rows.
--
-- A tenant table of the host's (executors cannot name it: it is not in the
-- catalog), keyed by tenant first, with row-level security as for the
-- catalog's tables: the host reads and writes it only in transactions where
-- `bookhost.tenant` names the tenant.
CREATE TABLE proposals (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    id uuid NOT NULL,
    executor text NOT NULL,
    -- The executor version (SHA-256 of its component) the proposal ran.
    version text NOT NULL,
    input jsonb NOT NULL,
    -- The rows the dry run wrote: [{table, operation, row}], in order.
    writes jsonb NOT NULL,
    -- The invocation's clock (microseconds since the epoch), given again to
    -- the confirmation so the executor decides as it did.
    now_micros bigint NOT NULL,
    proposed_by uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX proposals_expiry ON proposals (expires_at);

ALTER TABLE proposals ENABLE ROW LEVEL SECURITY;
ALTER TABLE proposals FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON proposals
    USING (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid);

GRANT SELECT, INSERT, DELETE ON proposals TO bookhost_app;

-- The audit links a proposal's dry run and its confirmation: both attempts'
-- records carry the proposal's id (and the chain hashes it, when present).
ALTER TABLE audit_records ADD COLUMN proposal_id uuid;
CREATE INDEX audit_records_proposal ON audit_records (proposal_id) WHERE proposal_id IS NOT NULL;
