//! Read endpoints a tenant dashboard needs, and the agent's tool catalog.
//! Writes stay with executors.

use axum::extract::{Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Tenant;
use super::{ApiError, AppState};

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
    let active = crate::db::reads::tools(state.host.pool(), tenant).await?;
    let tools: Vec<Value> = active
        .as_array()
        .into_iter()
        .flatten()
        .map(|tool| {
            json!({"type": "function", "function": {
                "name": tool["name"], "description": tool["description"], "parameters": tool["input_schema"],
            }})
        })
        .collect();
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
    let services = crate::db::reads::services(state.host.pool(), tenant).await?;
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
    let bookings = crate::db::reads::bookings(state.host.pool(), tenant, service, from, to).await?;
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
    let requests = crate::db::reads::booking_requests(state.host.pool(), tenant).await?;
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
    let pages = crate::db::reads::storefront(state.host.pool(), tenant).await?;
    Ok(Json(json!({ "pages": pages })))
}
