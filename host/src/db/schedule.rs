//! The one statement that reads what availability is computed from: a service's rules, its resources, hours, exceptions, and the active bookings and live holds around a range, for one tenant.

use chrono::{DateTime, Duration, Utc};
use sea_query::Values;
use sea_query_binder::SqlxValues;

use super::sql::Statement;
use crate::TenantId;

/// Exceptions this many days either side of the range (in UTC) cover every
/// local date the range touches, whatever the zone.
const MARGIN_DAYS: i64 = 2;

/// The statement, one row of one `jsonb` column (NULL when the tenant has no
/// such service), bound for `tenant`'s `service` and the slots starting in
/// `[start, end)`, with holds judged live at `now` (and not yet taken up by a booking). Its reads run inside the caller's
/// transaction, so under SERIALIZABLE what it saw is what commits.
pub fn rules_statement(
    tenant: TenantId,
    service: uuid::Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Statement {
    let margin = Duration::days(MARGIN_DAYS);
    let day = |t: DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let values = Values(vec![
        tenant.0.into(),
        service.into(),
        start.into(),
        end.into(),
        now.into(),
        day(start - margin).into(),
        day(end + margin).into(),
    ]);
    (RULES_SQL.to_owned(), SqlxValues(values))
}

const RULES_SQL: &str = r#"
WITH svc AS (
    SELECT id, duration_minutes, buffer_before_minutes, buffer_after_minutes, capacity,
           min_notice_minutes, booking_window_days, slot_increment_minutes, requires_confirmation
    FROM services WHERE tenant_id = $1 AND id = $2
), span AS (
    -- What a slot starting in [$3, $4) can collide with, buffers included.
    -- Bookings are found by the end of the span they block: an index range
    -- bounded on both sides (a span is at most three days: a day's
    -- duration and a day of buffer either side), so the predicate locks
    -- SERIALIZABLE takes cover those pages only, not the table.
    SELECT $3 - make_interval(mins => buffer_before_minutes::int) AS lo,
           $4 + make_interval(mins => (duration_minutes + buffer_after_minutes)::int) AS hi
    FROM svc
), res AS (
    SELECT r.id, r.name, r.time_zone
    FROM service_resources sr JOIN resources r ON r.tenant_id = sr.tenant_id AND r.id = sr.resource_id
    WHERE sr.tenant_id = $1 AND sr.service_id = $2
)
SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM svc) THEN NULL ELSE jsonb_build_object(
    'time_zone', (SELECT time_zone FROM tenants WHERE id = $1),
    'service', (SELECT to_jsonb(svc) || jsonb_build_object('id', svc.id::text) FROM svc),
    'resources', coalesce((SELECT jsonb_agg(jsonb_build_object('id', id::text, 'name', name, 'time_zone', time_zone) ORDER BY name) FROM res), '[]'),
    'hours', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'service_id', h.service_id::text, 'resource_id', h.resource_id::text, 'weekday', h.weekday,
            'opens_minute', h.opens_minute, 'closes_minute', h.closes_minute))
        FROM opening_hours h
        WHERE h.tenant_id = $1 AND (h.service_id = $2 OR h.resource_id IN (SELECT id FROM res)
              OR (h.service_id IS NULL AND h.resource_id IS NULL))), '[]'),
    'exceptions', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'service_id', x.service_id::text, 'resource_id', x.resource_id::text, 'day', x.day,
            'opens_minute', x.opens_minute, 'closes_minute', x.closes_minute))
        FROM hours_exceptions x
        WHERE x.tenant_id = $1 AND x.day BETWEEN $6 AND $7
          AND (x.service_id = $2 OR x.resource_id IN (SELECT id FROM res)
               OR (x.service_id IS NULL AND x.resource_id IS NULL))), '[]'),
    'bookings', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'id', b.id::text, 'service_id', b.service_id::text, 'resource_id', b.resource_id::text,
            'starts_at', (extract(epoch FROM b.starts_at) * 1000000)::bigint,
            'ends_at', (extract(epoch FROM b.ends_at) * 1000000)::bigint,
            'blocked_from', (extract(epoch FROM b.blocked_from) * 1000000)::bigint,
            'blocked_until', (extract(epoch FROM b.blocked_until) * 1000000)::bigint,
            'status', b.status))
        FROM (
            -- No status condition: it would let the planner pick the
            -- exclusion constraints' GiST indexes (partial on the active
            -- statuses), whose scans lock every page of the service; Rust
            -- skips the inactive. And bounds on every time column, so that
            -- whichever btree the planner picks, it scans a range of it.
            SELECT id, service_id, resource_id, starts_at, ends_at, blocked_from, blocked_until, status
            FROM bookings
            WHERE tenant_id = $1 AND service_id = $2
              AND blocked_until > (SELECT lo FROM span)
              AND blocked_until < (SELECT hi FROM span) + interval '3 days'
              AND blocked_from < (SELECT hi FROM span)
              AND ends_at > (SELECT lo FROM span) - interval '1 day'
              AND ends_at < (SELECT hi FROM span) + interval '3 days'
              AND starts_at > (SELECT lo FROM span) - interval '2 days'
              AND starts_at < (SELECT hi FROM span) + interval '1 day'
            UNION
            -- Per resource (a join, not `IN`: each one an index range).
            SELECT b.id, b.service_id, b.resource_id, b.starts_at, b.ends_at, b.blocked_from,
                   b.blocked_until, b.status
            FROM res, LATERAL (
                SELECT * FROM bookings
                WHERE tenant_id = $1 AND resource_id = res.id
                  AND blocked_until > (SELECT lo FROM span)
                  AND blocked_until < (SELECT hi FROM span) + interval '3 days'
                  AND blocked_from < (SELECT hi FROM span)
            ) b
        ) b), '[]'),
    'holds', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
            'id', h.id::text, 'service_id', h.service_id::text, 'resource_id', h.resource_id::text,
            'starts_at', (extract(epoch FROM h.starts_at) * 1000000)::bigint,
            'ends_at', (extract(epoch FROM h.ends_at) * 1000000)::bigint,
            'expires_at', (extract(epoch FROM h.expires_at) * 1000000)::bigint))
        FROM holds h
        WHERE h.tenant_id = $1 AND h.expires_at > $5
          -- Taken up by a booking (even one cancelled since): used once.
          AND NOT EXISTS (SELECT 1 FROM bookings t WHERE t.tenant_id = $1 AND t.hold_id IS NOT NULL
                          AND t.hold_id = h.id)
          AND (h.service_id = $2 OR h.resource_id IN (SELECT id FROM res))
          AND h.ends_at > $3 AND h.starts_at < (SELECT hi FROM span)), '[]')
) END
"#;
