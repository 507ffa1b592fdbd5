//! Liveness and readiness.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};

/// The process is up.
#[utoipa::path(get, tag = "health", path = "/healthz", responses((status = 200, description = "alive")))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers and every migration is applied.
#[utoipa::path(get, tag = "health", path = "/readyz", responses(
    (status = 200, description = "ready"),
    (status = 503, description = "not ready", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.lifecycle.draining() {
        return Err(ApiError::Unavailable("the host is shutting down".into()));
    }
    if let Some(reason) = state.host.health().down() {
        return Err(ApiError::Unavailable(format!(
            "the database is unreachable: {reason}"
        )));
    }
    let pool = state.host.pool();
    let applied: i64 = crate::db::retry::retrying(|| {
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success").fetch_one(pool)
    })
    .await
    .map_err(|e| ApiError::Unavailable(format!("the database does not answer: {e}")))?;
    let expected = crate::db::MIGRATOR.iter().count() as i64;
    if applied < expected {
        return Err(ApiError::Unavailable(format!(
            "{applied} of {expected} migrations applied"
        )));
    }
    Ok(Json(json!({"status": "ready"})))
}
