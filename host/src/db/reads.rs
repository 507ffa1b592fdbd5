//! What a tenant's dashboard and an agent read: rows as JSON built by
//! PostgreSQL, in transactions where row-level security admits only that
//! tenant's rows (and scoped by tenant in SQL too: two walls, as for
//! executors). Writes stay with executors.

use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgPool, Postgres};

use crate::TenantId;

type JsonQuery = QueryScalar<'static, Postgres, Value, PgArguments>;

async fn rows(
    pool: &PgPool,
    tenant: TenantId,
    sql: &'static str,
    binds: impl Fn(JsonQuery) -> JsonQuery,
) -> anyhow::Result<Value> {
    // Read-only: safe to run again on a fresh connection.
    Ok(super::retry::retrying(|| async {
        let mut tx = pool
            .begin_with(format!("BEGIN; {}", super::set_tenant_sql(tenant)))
            .await?;
        let rows = binds(sqlx::query_scalar(sql)).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    })
    .await?)
}

/// The tenant's active executors: `[{name, description, input_schema, granted}]`.
pub async fn tools(pool: &PgPool, tenant: TenantId) -> anyhow::Result<Value> {
    rows(
        pool,
        tenant,
        "SELECT coalesce(jsonb_agg(jsonb_build_object('name', e.name, 'description', v.description, \
             'input_schema', v.input_schema, 'granted', v.granted) ORDER BY e.name), '[]') \
         FROM executors e JOIN executor_versions v \
           ON v.tenant_id = e.tenant_id AND v.name = e.name AND v.digest = e.active_digest \
         WHERE e.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await
}

/// The tenant's services, oldest first.
pub async fn services(pool: &PgPool, tenant: TenantId) -> anyhow::Result<Value> {
    rows(
        pool,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'tenant_id' ORDER BY s.created_at, s.id), '[]') \
         FROM services s WHERE s.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await
}

/// The tenant's bookings overlapping [from, to), optionally of one service,
/// in start order.
pub async fn bookings(
    pool: &PgPool,
    tenant: TenantId,
    service: Option<uuid::Uuid>,
    from: Option<chrono::DateTime<chrono::Utc>>,
    to: Option<chrono::DateTime<chrono::Utc>>,
) -> anyhow::Result<Value> {
    rows(
        pool,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(b) - 'tenant_id' - 'single_seat' - 'session_key' \
             ORDER BY b.starts_at, b.id), '[]') FROM bookings b \
         WHERE b.tenant_id = $1 AND ($2::uuid IS NULL OR b.service_id = $2) \
           AND ($3::timestamptz IS NULL OR b.ends_at > $3) AND ($4::timestamptz IS NULL OR b.starts_at < $4)",
        |q| q.bind(tenant.0).bind(service).bind(from).bind(to),
    )
    .await
}

/// The tenant's appointment requests, oldest first.
pub async fn booking_requests(pool: &PgPool, tenant: TenantId) -> anyhow::Result<Value> {
    rows(
        pool,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(r) - 'tenant_id' ORDER BY r.created_at, r.id), '[]') \
         FROM booking_requests r WHERE r.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await
}

/// The tenant's storefront draft pages, by slug.
pub async fn storefront(pool: &PgPool, tenant: TenantId) -> anyhow::Result<Value> {
    rows(
        pool,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(p) - 'tenant_id' ORDER BY p.slug), '[]') \
         FROM storefront_pages p WHERE p.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await
}

/// What the slots of `service` starting in `[start, end)` are computed from
/// (None: the tenant has no such service), read in one read-only
/// transaction as the tenant; holds judged live at `now`.
pub async fn schedule(
    pool: &PgPool,
    tenant: TenantId,
    service: uuid::Uuid,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Option<crate::schedule::Rules>> {
    let json: Option<Value> = super::retry::retrying(|| async {
        let mut tx = pool
            .begin_with(format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {}",
                super::set_tenant_sql(tenant)
            ))
            .await?;
        let (sql, values) = super::schedule::rules_statement(tenant, service, start, end, now);
        let json: Option<Value> = sqlx::query_scalar_with(&sql, values)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(json)
    })
    .await?;
    Ok(json.map(serde_json::from_value).transpose()?)
}
