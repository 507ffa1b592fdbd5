//! `GET /v1/services/{id}/availability`: a service's bookable slots, computed by the host as executors see them, for agents and dashboards.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};

use super::auth::Tenant;
use super::{ApiError, AppState};
use crate::schedule::{Calendar, MAX_RANGE_DAYS};

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct Range {
    /// First start to offer (RFC 3339).
    pub from: String,
    /// Offer starts before this (RFC 3339); at most 62 days after `from`.
    pub to: String,
}

fn instant(name: &str, value: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.to_utc())
        .map_err(|e| {
            ApiError::bad_request(
                "invalid-parameter",
                format!("{name}={value:?} is not an RFC 3339 time: {e}"),
            )
        })
}

fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The bookable slots of a service starting in `[from, to)`: opening hours in
/// the business's time zone (with exceptions and clock changes), buffers,
/// notice, window, seats, resources and live holds — what `create-booking`
/// would accept right now.
#[utoipa::path(get, tag = "reads", path = "/v1/services/{id}/availability", params(("id" = String, Path, description = "The service's id"), Range), security(("tenant" = [])), responses(
    (status = 200, description = r#"{"service_id", "time_zone", "slots": [{"starts_at", "ends_at", "seats_left", "resources"}]}"#),
    (status = 400, body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn availability(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
    range: Result<Query<Range>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(range) =
        range.map_err(|e| ApiError::bad_request("invalid-parameter", e.body_text()))?;
    let service = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request("invalid-parameter", format!("{id:?} is not a UUID")))?;
    let (from, to) = (instant("from", &range.from)?, instant("to", &range.to)?);
    if to <= from || to - from > chrono::Duration::days(MAX_RANGE_DAYS) {
        return Err(ApiError::bad_request(
            "invalid-parameter",
            format!("to must be after from, and at most {MAX_RANGE_DAYS} days after it"),
        ));
    }
    let now = chrono::Utc::now();
    let rules = crate::db::reads::schedule(state.host.pool(), tenant, service, from, to, now)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no service with id {id}")))?;
    let calendar = Calendar::new(&rules, now.timestamp_micros())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
    let slots = calendar
        .free_slots(from.timestamp_micros(), to.timestamp_micros())
        .map_err(|e| ApiError::bad_request("invalid-parameter", e.0))?;
    let slots: Vec<Value> = slots
        .iter()
        .map(|s| {
            json!({"starts_at": rfc3339(s.starts_at), "ends_at": rfc3339(s.ends_at),
                   "seats_left": s.seats_left, "resources": s.resources})
        })
        .collect();
    Ok(Json(json!({
        "service_id": service,
        "time_zone": rules.time_zone,
        "slots": slots,
    })))
}
