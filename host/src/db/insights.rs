//! Reads of the audit for the operator console: invocations newest first,
//! and conflict insights (replays and lock waits over time, invocations
//! that gave up, the slowest calls). Every read is bounded by a row limit
//! or a time window (the BRIN index of migration 0009).

use sqlx::PgPool;

use crate::TenantId;

/// Which invocations a list shows; all optional.
#[derive(Debug, Clone, Default)]
pub struct InvocationFilter {
    pub tenant: Option<TenantId>,
    pub executor: Option<String>,
    /// A final attempt's outcome (`committed`, `rolled_back`, ...), or
    /// `replayed` (any attempt replayed), or `gave_up` (every attempt did).
    pub outcome: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
}

/// One invocation as its audit records summarize it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvocationSummary {
    pub tenant_id: uuid::Uuid,
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    pub attempts: i64,
    /// The outcome of its newest attempt.
    pub last_outcome: String,
    pub replays: i64,
    pub duration_us: i64,
    pub lock_wait_us: i64,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
}

/// How many of the newest records a list looks through: enough for the
/// list's invocations even when each replayed many times, and a bound on
/// what a live console costs the database per refresh.
const RECENT_RECORDS: i64 = 4000;

/// Invocations matching `filter`, newest first.
pub async fn invocations(
    pool: &PgPool,
    filter: &InvocationFilter,
) -> anyhow::Result<Vec<InvocationSummary>> {
    Ok(sqlx::query_as(
        "WITH recent AS (SELECT id, tenant_id, invocation_id, attempt, executor, outcome, \
         duration_us, lock_wait_us, recorded_at FROM audit_records \
         WHERE ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR executor = $2) \
         AND ($3::timestamptz IS NULL OR recorded_at >= $3) ORDER BY id DESC LIMIT $6) \
         SELECT tenant_id, invocation_id, min(executor) AS executor, count(*) AS attempts, \
         (array_agg(outcome ORDER BY attempt DESC))[1] AS last_outcome, \
         count(*) FILTER (WHERE outcome = 'replayed') AS replays, \
         sum(duration_us)::bigint AS duration_us, sum(lock_wait_us)::bigint AS lock_wait_us, \
         max(recorded_at) AS recorded_at \
         FROM recent GROUP BY tenant_id, invocation_id \
         HAVING $4::text IS NULL \
         OR ($4 = 'replayed' AND count(*) FILTER (WHERE outcome = 'replayed') > 0) \
         OR ($4 = 'gave_up' AND bool_and(outcome = 'replayed')) \
         OR (array_agg(outcome ORDER BY attempt DESC))[1] = $4 \
         ORDER BY max(id) DESC LIMIT $5",
    )
    .bind(filter.tenant.map(|t| t.0))
    .bind(&filter.executor)
    .bind(filter.since)
    .bind(&filter.outcome)
    .bind(filter.limit.unwrap_or(100).clamp(1, 500))
    .bind(RECENT_RECORDS)
    .fetch_all(pool)
    .await?)
}

/// One line of a chart: a name and a value per time bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// Replayed attempts per bucket.
    pub replays: Vec<i64>,
    /// Microseconds waited for locks per bucket.
    pub lock_wait_us: Vec<i64>,
}

impl Series {
    pub fn total_replays(&self) -> i64 {
        self.replays.iter().sum()
    }

    pub fn total_lock_wait_us(&self) -> i64 {
        self.lock_wait_us.iter().sum()
    }
}

/// A window of time cut into equal buckets.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub from: chrono::DateTime<chrono::Utc>,
    pub to: chrono::DateTime<chrono::Utc>,
    pub buckets: i32,
}

/// What an insights page shows for one window.
#[derive(Debug, Clone)]
pub struct Insights {
    pub window: Window,
    pub attempts: i64,
    pub replays: i64,
    pub by_executor: Vec<Series>,
    pub by_table: Vec<Series>,
    pub by_lock_key: Vec<Series>,
    pub gave_up: Vec<InvocationSummary>,
    pub slowest: Vec<SlowCall>,
}

/// One of the slowest capability calls of a window.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SlowCall {
    pub tenant_id: uuid::Uuid,
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    pub attempt: i32,
    pub capability: String,
    pub target: Option<String>,
    pub duration_us: i64,
    pub lock_wait_us: i64,
    pub outcome: String,
}

/// The calls of a record `w` as rows `c`. A record whose calls are not an
/// array (a tampered one) has none, and `\u0000` (which `json` stores but
/// `->>` cannot turn into text) reads as U+FFFD: no executor can make its
/// own records fail the page.
macro_rules! calls_of_w {
    () => {
        " CROSS JOIN LATERAL json_array_elements(CASE WHEN json_typeof(w.calls) = 'array' \
         THEN replace(w.calls::text, '\\u0000', '\\ufffd')::json ELSE '[]'::json END) c "
    };
}

/// A call's integer field as bigint (0 when missing or not a number).
macro_rules! call_int {
    ($field:literal) => {
        concat!(
            "(CASE WHEN c->>'",
            $field,
            "' ~ '^[0-9]{1,18}$' THEN (c->>'",
            $field,
            "')::bigint ELSE 0 END)"
        )
    };
}

/// The window's records, bucketed: `$1` from, `$2` to, `$3` buckets, `$4`
/// tenant. Buckets are 0-based.
macro_rules! windowed {
    () => {
        "(SELECT r.*, least(width_bucket(extract(epoch FROM r.recorded_at), \
         extract(epoch FROM $1::timestamptz), extract(epoch FROM $2::timestamptz), $3), $3) - 1 AS bucket \
         FROM audit_records r WHERE r.recorded_at >= $1 AND r.recorded_at < $2 \
         AND ($4::uuid IS NULL OR r.tenant_id = $4))"
    };
}

/// Replays and lock waits over `window` (of one tenant, or all), per
/// executor, per table and per lock key; the invocations that gave up
/// after `max_attempts`; the slowest calls.
pub async fn insights(
    pool: &PgPool,
    tenant: Option<TenantId>,
    window: Window,
    max_attempts: u32,
) -> anyhow::Result<Insights> {
    let tenant = tenant.map(|t| t.0);
    let bucketed = |sql: &'static str| {
        sqlx::query_as::<_, (String, i32, i64, i64)>(sql)
            .bind(window.from)
            .bind(window.to)
            .bind(window.buckets)
            .bind(tenant)
    };
    let by_executor = bucketed(concat!(
        "SELECT executor, bucket, count(*) FILTER (WHERE outcome = 'replayed'), \
         sum(lock_wait_us)::bigint FROM ",
        windowed!(),
        " w GROUP BY executor, bucket"
    ))
    .fetch_all(pool)
    .await?;
    // A replayed attempt counts once for each table it touched.
    let by_table =
        bucketed(concat!(
        "SELECT c->>'table', bucket, count(DISTINCT w.id) FILTER (WHERE w.outcome = 'replayed'), \
         coalesce(sum(", call_int!("lock_wait_us"), "), 0)::bigint FROM ",
        windowed!(),
        " w",
        calls_of_w!(),
        "WHERE c->>'table' IS NOT NULL GROUP BY 1, bucket"
    ))
        .fetch_all(pool)
        .await?;
    let by_lock_key = bucketed(concat!(
        "SELECT c->'detail'->>'key', bucket, count(DISTINCT w.id) FILTER (WHERE w.outcome = 'replayed'), \
         coalesce(sum(", call_int!("lock_wait_us"), "), 0)::bigint FROM ",
        windowed!(),
        " w",
        calls_of_w!(),
        "WHERE c->>'capability' = 'lock' AND c->'detail'->>'key' IS NOT NULL GROUP BY 1, bucket"
    ))
    .fetch_all(pool)
    .await?;
    let (attempts, replays): (i64, i64) = sqlx::query_as(concat!(
        "SELECT count(*), count(*) FILTER (WHERE outcome = 'replayed') FROM ",
        windowed!(),
        " w"
    ))
    .bind(window.from)
    .bind(window.to)
    .bind(window.buckets)
    .bind(tenant)
    .fetch_one(pool)
    .await?;
    let gave_up = sqlx::query_as(concat!(
        "SELECT tenant_id, invocation_id, min(executor) AS executor, count(*) AS attempts, \
         'replayed' AS last_outcome, count(*) AS replays, sum(duration_us)::bigint AS duration_us, \
         sum(lock_wait_us)::bigint AS lock_wait_us, max(recorded_at) AS recorded_at FROM ",
        windowed!(),
        " w GROUP BY tenant_id, invocation_id \
         HAVING bool_and(outcome = 'replayed') AND count(*) >= $5 \
         ORDER BY max(recorded_at) DESC LIMIT 20"
    ))
    .bind(window.from)
    .bind(window.to)
    .bind(window.buckets)
    .bind(tenant)
    .bind(max_attempts as i64)
    .fetch_all(pool)
    .await?;
    let slowest = sqlx::query_as(concat!(
        "SELECT w.tenant_id, w.invocation_id, w.executor, w.attempt, \
         coalesce(c->>'capability', '?') AS capability, \
         coalesce(c->>'table', c->'detail'->>'key') AS target, ",
        call_int!("duration_us"),
        " AS duration_us, ",
        call_int!("lock_wait_us"),
        " AS lock_wait_us, coalesce(c->>'outcome', '?') AS outcome FROM ",
        windowed!(),
        " w",
        calls_of_w!(),
        "ORDER BY 7 DESC LIMIT 10"
    ))
    .bind(window.from)
    .bind(window.to)
    .bind(window.buckets)
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Ok(Insights {
        window,
        attempts,
        replays,
        by_executor: series(by_executor, window.buckets),
        by_table: series(by_table, window.buckets),
        by_lock_key: series(by_lock_key, window.buckets),
        gave_up,
        slowest,
    })
}

/// Rows of (name, bucket, replays, lock wait) as one series per name, the
/// most replayed first (then the longest waits), at most 12.
fn series(rows: Vec<(String, i32, i64, i64)>, buckets: i32) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for (name, bucket, replays, lock_wait_us) in rows {
        let at = match all.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                all.push(Series {
                    name,
                    replays: vec![0; buckets as usize],
                    lock_wait_us: vec![0; buckets as usize],
                });
                all.len() - 1
            }
        };
        if let Some(slot) = usize::try_from(bucket)
            .ok()
            .filter(|b| *b < buckets as usize)
        {
            all[at].replays[slot] += replays;
            all[at].lock_wait_us[slot] += lock_wait_us;
        }
    }
    all.sort_by(|a, b| {
        (b.total_replays(), b.total_lock_wait_us(), &a.name).cmp(&(
            a.total_replays(),
            a.total_lock_wait_us(),
            &b.name,
        ))
    });
    all.truncate(12);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_gathers_buckets_by_name_most_replayed_first() {
        let rows = vec![
            ("quiet".to_owned(), 0, 0, 5),
            ("hot".to_owned(), 1, 3, 0),
            ("hot".to_owned(), 2, 4, 10),
            // Outside the window's buckets: ignored, not a panic.
            ("hot".to_owned(), 7, 100, 0),
        ];
        let series = series(rows, 3);
        assert_eq!(series[0].name, "hot");
        assert_eq!(series[0].replays, vec![0, 3, 4]);
        assert_eq!(series[0].lock_wait_us, vec![0, 0, 10]);
        assert_eq!(series[1].name, "quiet");
        assert_eq!(series[1].total_lock_wait_us(), 5);
    }
}
