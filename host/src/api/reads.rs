//! Read endpoints a tenant dashboard needs, and the agent's tool catalog.
//! Writes stay with executors.

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Tenant;
use super::{ApiError, AppState};
use crate::TenantId;

/// Rows as JSON objects without the tenant column, built by PostgreSQL, read
/// in a transaction where row-level security admits only `tenant`'s rows (the
/// queries scope by tenant themselves too: two walls, as for executors).
async fn rows(
    state: &AppState,
    tenant: TenantId,
    sql: &'static str,
    binds: impl FnOnce(
        sqlx::query::QueryScalar<'static, sqlx::Postgres, Value, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryScalar<
        'static,
        sqlx::Postgres,
        Value,
        sqlx::postgres::PgArguments,
    >,
) -> Result<Value, ApiError> {
    let mut tx = crate::db::begin_as_tenant(state.host.pool(), tenant).await?;
    let query = binds(sqlx::query_scalar(sql));
    Ok(query
        .fetch_one(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?)
}

/// The tenant's active executors as tools, in the function-calling shape
/// agent frameworks hand to a model.
#[utoipa::path(get, tag = "reads", path = "/v1/tools", security(("tenant" = [])), responses(
    (status = 200, description = r#"{"tools": [{"type": "function", "function": {"name", "description", "parameters"}}]}"#),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn tools(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let tools = rows(
        &state,
        tenant,
        "SELECT coalesce(jsonb_agg(jsonb_build_object('type', 'function', 'function', jsonb_build_object(\
             'name', e.name, 'description', v.description, 'parameters', v.input_schema)) ORDER BY e.name), '[]') \
         FROM executors e JOIN executor_versions v \
           ON v.tenant_id = e.tenant_id AND v.name = e.name AND v.digest = e.active_digest \
         WHERE e.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await?;
    Ok(Json(json!({ "tools": tools })))
}

/// The tenant's services.
#[utoipa::path(get, tag = "reads", path = "/v1/services", security(("tenant" = [])), responses(
    (status = 200, description = r#"{"services": [{"id", "name", "duration_minutes", "created_at"}]}"#),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn services(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let services = rows(
        &state,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(s) - 'tenant_id' ORDER BY s.created_at, s.id), '[]') \
         FROM services s WHERE s.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await?;
    Ok(Json(json!({ "services": services })))
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct BookingFilter {
    /// Only this service's bookings.
    pub service_id: Option<String>,
    /// Only bookings ending after this time (RFC 3339).
    pub from: Option<String>,
    /// Only bookings starting before this time (RFC 3339).
    pub to: Option<String>,
}

fn timestamp(
    name: &str,
    value: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    value
        .as_deref()
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.to_utc())
                .map_err(|e| {
                    ApiError::bad_request(
                        "invalid-parameter",
                        format!("{name}={v:?} is not an RFC 3339 time: {e}"),
                    )
                })
        })
        .transpose()
}

/// The tenant's bookings overlapping [from, to), optionally of one service.
#[utoipa::path(get, tag = "reads", path = "/v1/bookings", params(BookingFilter), security(("tenant" = [])), responses(
    (status = 200, description = r#"{"bookings": [{"id", "service_id", "customer", "starts_at", "ends_at", "status", "created_at"}]}"#),
    (status = 400, body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn bookings(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    filter: Result<Query<BookingFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::bad_request("invalid-parameter", e.body_text()))?;
    let service = filter
        .service_id
        .as_deref()
        .map(|s| {
            uuid::Uuid::parse_str(s).map_err(|_| {
                ApiError::bad_request(
                    "invalid-parameter",
                    format!("service_id={s:?} is not a UUID"),
                )
            })
        })
        .transpose()?;
    let (from, to) = (
        timestamp("from", &filter.from)?,
        timestamp("to", &filter.to)?,
    );
    let bookings = rows(
        &state,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(b) - 'tenant_id' ORDER BY b.starts_at, b.id), '[]') FROM bookings b \
         WHERE b.tenant_id = $1 AND ($2::uuid IS NULL OR b.service_id = $2) \
           AND ($3::timestamptz IS NULL OR b.ends_at > $3) AND ($4::timestamptz IS NULL OR b.starts_at < $4)",
        |q| q.bind(tenant.0).bind(service).bind(from).bind(to),
    )
    .await?;
    Ok(Json(json!({ "bookings": bookings })))
}

/// The tenant's appointment requests.
#[utoipa::path(get, tag = "reads", path = "/v1/booking-requests", security(("tenant" = [])), responses(
    (status = 200, description = r#"{"booking_requests": [{"id", "customer", "pet", "preferred_start", "status", "created_at"}]}"#),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn booking_requests(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let requests = rows(
        &state,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(r) - 'tenant_id' ORDER BY r.created_at, r.id), '[]') \
         FROM booking_requests r WHERE r.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await?;
    Ok(Json(json!({ "booking_requests": requests })))
}

/// The tenant's storefront draft pages.
#[utoipa::path(get, tag = "reads", path = "/v1/storefront", security(("tenant" = [])), responses(
    (status = 200, description = r#"{"pages": [{"id", "slug", "config", "updated_at"}]}"#),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn storefront(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<Value>, ApiError> {
    let pages = rows(
        &state,
        tenant,
        "SELECT coalesce(jsonb_agg(to_jsonb(p) - 'tenant_id' ORDER BY p.slug), '[]') \
         FROM storefront_pages p WHERE p.tenant_id = $1",
        |q| q.bind(tenant.0),
    )
    .await?;
    Ok(Json(json!({ "pages": pages })))
}
