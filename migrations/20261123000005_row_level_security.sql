-- Row-level security: the second wall between tenants, behind the host's own
-- scoping. The running host connects as bookhost_app, a role that owns no
-- table and cannot bypass RLS; the migrations run as the tables' owner.
--
-- Every table an executor can reach (the host's catalog) has RLS enabled and
-- forced, with one policy: a row is visible and writable only when its
-- tenant_id equals the tenant the host set for the transaction with
-- `SET LOCAL bookhost.tenant = '<uuid>'`. Without that setting (or with it
-- empty, as a session shows it after an earlier SET LOCAL ended) the policy
-- compares with NULL: nothing is visible and every write is refused.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bookhost_app') THEN
        -- LOGIN without a password: trust or peer authentication (tests,
        -- `bookhost dev`) lets it in; elsewhere the operator sets a password
        -- (ALTER ROLE bookhost_app PASSWORD ...) or creates the role first.
        CREATE ROLE bookhost_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO bookhost_app;

-- The tenants' data, reachable by executors through the catalog.
GRANT SELECT, INSERT, UPDATE, DELETE
    ON services, bookings, booking_requests, storefront_pages TO bookhost_app;

ALTER TABLE services ENABLE ROW LEVEL SECURITY;
ALTER TABLE services FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON services
    USING (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid);

ALTER TABLE bookings ENABLE ROW LEVEL SECURITY;
ALTER TABLE bookings FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON bookings
    USING (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid);

ALTER TABLE booking_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE booking_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON booking_requests
    USING (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid);

ALTER TABLE storefront_pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE storefront_pages FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON storefront_pages
    USING (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid)
    WITH CHECK (tenant_id = nullif(current_setting('bookhost.tenant', true), '')::uuid);

-- The host's own bookkeeping. No executor can name these tables (they are not
-- in the catalog); the host reads them across tenants (API-key lookup before
-- the tenant is known, the operator's audit), so grants, not policies, bound
-- them. The audit is append-only for the host: it may link records into the
-- chain but neither rewrite what a record says nor delete one.
GRANT SELECT, INSERT, UPDATE, DELETE
    ON tenants, api_keys, executor_versions, executors, idempotency_keys TO bookhost_app;
GRANT SELECT, INSERT ON audit_records TO bookhost_app;
GRANT UPDATE (chain_seq, prev_hash, hash) ON audit_records TO bookhost_app;
GRANT USAGE ON SEQUENCE audit_records_id_seq TO bookhost_app;
-- /readyz compares the applied migrations with the ones the binary carries.
GRANT SELECT ON _sqlx_migrations TO bookhost_app;
