-- The booking schema. tenant_id leads every primary key and every unique and
-- exclusion constraint so the tables can be distributed by tenant unchanged.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE tenants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE services (
    tenant_id        uuid NOT NULL REFERENCES tenants (id),
    id               uuid NOT NULL DEFAULT gen_random_uuid(),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    duration_minutes bigint NOT NULL CHECK (duration_minutes BETWEEN 1 AND 1440),
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- Active bookings (pending or confirmed) of one service never overlap.
CREATE TABLE bookings (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id uuid NOT NULL,
    customer   text NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    status     text NOT NULL DEFAULT 'confirmed'
               CHECK (status IN ('pending', 'confirmed', 'cancelled', 'completed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT bookings_valid_period CHECK (starts_at < ends_at),
    -- RESTRICT: a service that has bookings cannot be deleted out from under them.
    CONSTRAINT bookings_service_fk FOREIGN KEY (tenant_id, service_id)
        REFERENCES services (tenant_id, id) ON DELETE RESTRICT,
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        tenant_id WITH =,
        service_id WITH =,
        tstzrange(starts_at, ends_at) WITH &&
    ) WHERE (status IN ('pending', 'confirmed'))
);
CREATE INDEX bookings_service_time ON bookings (tenant_id, service_id, starts_at);
-- Overlap checks ask for "ends after my start and starts before my end": with
-- only the start index, every earlier booking of the service is scanned (and
-- predicate-locked under SERIALIZABLE); the end index bounds the scan.
CREATE INDEX bookings_service_end ON bookings (tenant_id, service_id, ends_at);

-- A pet has at most one pending appointment request.
CREATE TABLE booking_requests (
    tenant_id       uuid NOT NULL REFERENCES tenants (id),
    id              uuid NOT NULL DEFAULT gen_random_uuid(),
    customer        text NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    pet             text NOT NULL CHECK (length(pet) BETWEEN 1 AND 200),
    preferred_start timestamptz,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'scheduled', 'declined', 'cancelled')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX booking_requests_one_pending_per_pet
    ON booking_requests (tenant_id, pet) WHERE status = 'pending';

-- Storefront draft pages. config is {"sections": [{"id": ..., ...}, ...]}.
-- Section ids must be unique across a tenant's pages; no constraint can say
-- that about JSON in several rows, so only the host's discipline keeps it.
CREATE TABLE storefront_pages (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    slug       text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    config     jsonb NOT NULL DEFAULT '{"sections": []}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT storefront_pages_unique_slug UNIQUE (tenant_id, slug)
);
