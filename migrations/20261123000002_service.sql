-- What the HTTP service keeps: API keys, executor versions, idempotency records.

-- Keys are random 256-bit secrets; only their SHA-256 is stored, so a leaked
-- table does not leak keys (no slow hash needed at that entropy).
CREATE TABLE api_keys (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    key_hash   bytea NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Every upload is an immutable version named by the SHA-256 of its bytes.
CREATE TABLE executor_versions (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    name         text NOT NULL,
    digest       text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    component    bytea NOT NULL,
    description  text NOT NULL,
    input_schema jsonb NOT NULL,
    size_bytes   bigint NOT NULL,
    uploaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name, digest)
);

-- The version each executor name runs now.
CREATE TABLE executors (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    name          text NOT NULL,
    active_digest text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name),
    FOREIGN KEY (tenant_id, name, active_digest) REFERENCES executor_versions (tenant_id, name, digest)
);

-- The first completed response for (tenant, Idempotency-Key), replayed verbatim.
CREATE TABLE idempotency_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    key          text NOT NULL,
    request_hash text NOT NULL,
    status_code  integer NOT NULL,
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
