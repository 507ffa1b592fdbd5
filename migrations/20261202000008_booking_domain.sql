-- The booking domain a business runs on: time zones, service rules (buffers,
-- seats, notice, window, slot grid, confirmation), resources (staff, rooms)
-- and the services they serve, weekly opening hours with dated exceptions,
-- and holds. Every new table is tenant-scoped (tenant_id leads its keys) and
-- under row-level security like the rest of the catalog.
--
-- Wall-clock times are minutes after local midnight (0..1440) and dates are
-- ISO text (YYYY-MM-DD): the executor contract has no time-of-day or date
-- value, and both compare correctly as they are stored.

-- Whether `name` is a time zone PostgreSQL knows (NULL passes: "none set").
-- The host checks names against its own IANA database first; this is the
-- last wall. IMMUTABLE for CHECK's sake: a zone never stops existing.
CREATE FUNCTION bookhost_is_time_zone(name text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF name IS NULL THEN
        RETURN true;
    END IF;
    -- Region/City names only: PostgreSQL would also take POSIX strings
    -- such as 'UTC+3', whose sign is the opposite of what people expect.
    IF name !~ '^(UTC|[A-Z][A-Za-z_+-]*(/[A-Za-z0-9_+-]+){1,2})$' THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE name;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;

-- Whether `day` is a real calendar date written YYYY-MM-DD.
CREATE FUNCTION bookhost_is_date(day text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' AND to_char(day::date, 'YYYY-MM-DD') = day;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN
    RETURN false;
END
$$;

ALTER TABLE tenants
    ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT tenants_time_zone_known CHECK (bookhost_is_time_zone(time_zone));

ALTER TABLE services
    ADD COLUMN buffer_before_minutes bigint NOT NULL DEFAULT 0
        CONSTRAINT services_buffer_before_range CHECK (buffer_before_minutes BETWEEN 0 AND 1440),
    ADD COLUMN buffer_after_minutes bigint NOT NULL DEFAULT 0
        CONSTRAINT services_buffer_after_range CHECK (buffer_after_minutes BETWEEN 0 AND 1440),
    ADD COLUMN capacity bigint NOT NULL DEFAULT 1
        CONSTRAINT services_capacity_range CHECK (capacity BETWEEN 1 AND 1000),
    ADD COLUMN min_notice_minutes bigint NOT NULL DEFAULT 0
        CONSTRAINT services_min_notice_range CHECK (min_notice_minutes BETWEEN 0 AND 525600),
    -- NULL: no limit on how far ahead one can book.
    ADD COLUMN booking_window_days bigint
        CONSTRAINT services_booking_window_range CHECK (booking_window_days BETWEEN 1 AND 3650),
    -- NULL: slots start every `duration_minutes`.
    ADD COLUMN slot_increment_minutes bigint
        CONSTRAINT services_slot_increment_range CHECK (slot_increment_minutes BETWEEN 1 AND 1440),
    ADD COLUMN requires_confirmation boolean NOT NULL DEFAULT false;

-- Staff, rooms, equipment: what a booking may need besides its service.
CREATE TABLE resources (
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    kind       text NOT NULL DEFAULT 'staff' CHECK (kind IN ('staff', 'room', 'equipment')),
    -- NULL: the tenant's time zone.
    time_zone  text CONSTRAINT resources_time_zone_known CHECK (bookhost_is_time_zone(time_zone)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT resources_unique_name UNIQUE (tenant_id, name)
);

-- Which resources can serve a service. A service with none needs none; a
-- service with some takes exactly one of them per booking.
CREATE TABLE service_resources (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id  uuid NOT NULL,
    resource_id uuid NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT service_resources_unique UNIQUE (tenant_id, service_id, resource_id),
    CONSTRAINT service_resources_service_fk FOREIGN KEY (tenant_id, service_id)
        REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT service_resources_resource_fk FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE
);

-- Weekly opening hours in local wall-clock minutes: of a service, of a
-- resource, or (neither named) of the whole business. A service without
-- hours of its own follows the business's; with neither, it is always open.
CREATE TABLE opening_hours (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id    uuid,
    resource_id   uuid,
    -- ISO weekday: 1 is Monday, 7 Sunday.
    weekday       bigint NOT NULL CONSTRAINT opening_hours_weekday_range CHECK (weekday BETWEEN 1 AND 7),
    opens_minute  bigint NOT NULL,
    closes_minute bigint NOT NULL,
    scope         uuid GENERATED ALWAYS AS (coalesce(service_id, resource_id, tenant_id)) STORED,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT opening_hours_one_scope CHECK (service_id IS NULL OR resource_id IS NULL),
    CONSTRAINT opening_hours_end_after_start
        CHECK (opens_minute >= 0 AND closes_minute <= 1440 AND opens_minute < closes_minute),
    CONSTRAINT opening_hours_service_fk FOREIGN KEY (tenant_id, service_id)
        REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT opening_hours_resource_fk FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT opening_hours_no_overlap EXCLUDE USING gist (
        tenant_id WITH =,
        scope WITH =,
        weekday WITH =,
        int8range(opens_minute, closes_minute) WITH &&
    )
);

-- Dated exceptions to the weekly hours: a day closed (no minutes) or open
-- at other hours (one row per interval). A day with exceptions ignores the
-- weekly hours of the same scope.
CREATE TABLE hours_exceptions (
    tenant_id     uuid NOT NULL REFERENCES tenants (id),
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id    uuid,
    resource_id   uuid,
    day           text NOT NULL CONSTRAINT hours_exceptions_day_is_date CHECK (bookhost_is_date(day)),
    opens_minute  bigint,
    closes_minute bigint,
    scope         uuid GENERATED ALWAYS AS (coalesce(service_id, resource_id, tenant_id)) STORED,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT hours_exceptions_one_scope CHECK (service_id IS NULL OR resource_id IS NULL),
    CONSTRAINT hours_exceptions_end_after_start CHECK (
        (opens_minute IS NULL AND closes_minute IS NULL)
        OR (opens_minute >= 0 AND closes_minute <= 1440 AND opens_minute < closes_minute)
    ),
    CONSTRAINT hours_exceptions_service_fk FOREIGN KEY (tenant_id, service_id)
        REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT hours_exceptions_resource_fk FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE,
    -- A closed day (the whole day) overlaps every other interval that day.
    CONSTRAINT hours_exceptions_no_overlap EXCLUDE USING gist (
        tenant_id WITH =,
        scope WITH =,
        day WITH =,
        int8range(coalesce(opens_minute, 0), coalesce(closes_minute, 1440)) WITH &&
    )
);

-- A slot held for a customer while they decide. Nothing in the database can
-- say "until it expires" (now() is not a constraint's to read): only the
-- discipline keeps holds from colliding, and an expired hold blocks nothing.
CREATE TABLE holds (
    tenant_id   uuid NOT NULL REFERENCES tenants (id),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id  uuid NOT NULL,
    resource_id uuid,
    customer    text NOT NULL CHECK (length(customer) BETWEEN 1 AND 200),
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT holds_valid_period CHECK (starts_at < ends_at),
    CONSTRAINT holds_service_fk FOREIGN KEY (tenant_id, service_id)
        REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT holds_resource_fk FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX holds_service_time ON holds (tenant_id, service_id, starts_at);

-- Bookings: the resource they hold, and what the database derives from the
-- service when a booking is written — the span it blocks (buffers included),
-- whether its service has one seat, and its session (service and start:
-- the bookings of one group session share their slot and their resource).
ALTER TABLE bookings
    ADD COLUMN resource_id uuid,
    -- The hold this booking took up: a hold books once, and a hold taken up
    -- blocks nothing more than its booking does.
    ADD COLUMN hold_id uuid,
    ADD COLUMN blocked_from timestamptz,
    ADD COLUMN blocked_until timestamptz,
    ADD COLUMN single_seat boolean,
    ADD COLUMN session_key text,
    ADD CONSTRAINT bookings_resource_fk FOREIGN KEY (tenant_id, resource_id)
        REFERENCES resources (tenant_id, id) ON DELETE RESTRICT;

UPDATE bookings
SET blocked_from = starts_at,
    blocked_until = ends_at,
    single_seat = true,
    session_key = service_id::text || '@' || (extract(epoch FROM starts_at) * 1000000)::bigint;

ALTER TABLE bookings
    ALTER COLUMN blocked_from SET NOT NULL,
    ALTER COLUMN blocked_until SET NOT NULL,
    ALTER COLUMN single_seat SET NOT NULL,
    ALTER COLUMN session_key SET NOT NULL;

CREATE FUNCTION bookhost_booking_derived() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rules record;
BEGIN
    SELECT buffer_before_minutes, buffer_after_minutes, capacity INTO rules
    FROM services WHERE tenant_id = NEW.tenant_id AND id = NEW.service_id;
    IF NOT FOUND THEN
        -- The foreign key names the problem.
        NEW.blocked_from := NEW.starts_at;
        NEW.blocked_until := NEW.ends_at;
        NEW.single_seat := true;
    ELSE
        NEW.blocked_from := NEW.starts_at - make_interval(mins => rules.buffer_before_minutes::int);
        NEW.blocked_until := NEW.ends_at + make_interval(mins => rules.buffer_after_minutes::int);
        NEW.single_seat := rules.capacity = 1;
    END IF;
    NEW.session_key := NEW.service_id::text || '@'
        || (extract(epoch FROM NEW.starts_at) * 1000000)::bigint;
    RETURN NEW;
END
$$;

CREATE TRIGGER bookings_derived
    BEFORE INSERT OR UPDATE OF service_id, starts_at, ends_at ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookhost_booking_derived();

ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
-- One seat: active bookings of the service never overlap, buffers included.
ALTER TABLE bookings ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
    tenant_id WITH =,
    service_id WITH =,
    tstzrange(blocked_from, blocked_until) WITH &&
) WHERE (status IN ('pending', 'confirmed') AND single_seat);
-- Several seats: bookings of one session share it; another session of the
-- service never overlaps it. How many seats a session fills is a count no
-- constraint can express: only the discipline keeps it.
ALTER TABLE bookings ADD CONSTRAINT bookings_one_session_at_a_time EXCLUDE USING gist (
    tenant_id WITH =,
    service_id WITH =,
    tstzrange(blocked_from, blocked_until) WITH &&,
    starts_at WITH <>
) WHERE (status IN ('pending', 'confirmed'));
-- A resource is never in two overlapping active bookings (buffers included),
-- whichever services they are of, unless both are seats of one session.
ALTER TABLE bookings ADD CONSTRAINT bookings_resource_no_overlap EXCLUDE USING gist (
    tenant_id WITH =,
    resource_id WITH =,
    tstzrange(blocked_from, blocked_until) WITH &&,
    session_key WITH <>
) WHERE (status IN ('pending', 'confirmed') AND resource_id IS NOT NULL);
CREATE UNIQUE INDEX bookings_one_per_hold ON bookings (tenant_id, hold_id)
    WHERE hold_id IS NOT NULL;
-- Availability reads bookings by the span they block: these bound its scans
-- (and the predicate locks SERIALIZABLE takes) to what is in the way.
CREATE INDEX bookings_service_blocked ON bookings (tenant_id, service_id, blocked_until);
CREATE INDEX bookings_resource_blocked ON bookings (tenant_id, resource_id, blocked_until)
    WHERE resource_id IS NOT NULL;

-- A service's capacity may not drop below the seats an upcoming session
-- already fills.
CREATE FUNCTION bookhost_capacity_held() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    fullest record;
BEGIN
    IF NEW.capacity >= OLD.capacity THEN
        RETURN NEW;
    END IF;
    SELECT starts_at, count(*) AS seats INTO fullest
    FROM bookings
    WHERE tenant_id = NEW.tenant_id AND service_id = NEW.id
      AND status IN ('pending', 'confirmed') AND ends_at > now()
    GROUP BY starts_at ORDER BY count(*) DESC, starts_at LIMIT 1;
    IF FOUND AND fullest.seats > NEW.capacity THEN
        RAISE EXCEPTION 'capacity % is below the % seats already booked for the session at %',
            NEW.capacity, fullest.seats, fullest.starts_at
            USING ERRCODE = 'check_violation', CONSTRAINT = 'services_capacity_held',
                  TABLE = 'services';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER services_capacity_held
    BEFORE UPDATE OF capacity ON services
    FOR EACH ROW EXECUTE FUNCTION bookhost_capacity_held();

GRANT SELECT, INSERT, UPDATE, DELETE
    ON resources, service_resources, opening_hours, hours_exceptions, holds TO bookhost_app;

-- The same policy as every catalog table (migration 0005), on each new one.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['resources', 'service_resources', 'opening_hours',
                                 'hours_exceptions', 'holds'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', name);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I '
            'USING (tenant_id = nullif(current_setting(''bookhost.tenant'', true), '''')::uuid) '
            'WITH CHECK (tenant_id = nullif(current_setting(''bookhost.tenant'', true), '''')::uuid)',
            name);
    END LOOP;
END
$$;
