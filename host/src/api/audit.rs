//! Audit endpoints: one invocation with its attempts and calls (tenants see
//! their own), search, chain verification and checkpoints (operators), and
//! the Prometheus metrics.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;

use super::auth::{Operator, Tenant};
use super::{ApiError, AppState};
use crate::db::audit::{self, AuditFilter, AuditRecord, Checkpoint, Verification};
use crate::TenantId;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    pub attempt: i32,
    /// committed, rolled_back, replayed, trapped, timed_out, host_failure, dry_run
    pub outcome: String,
    pub duration_us: i64,
    pub lock_wait_us: i64,
    /// Why a replayed attempt was replayed: serialization_failure,
    /// deadlock, lock_contended or connection_lost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_reason: Option<String>,
    /// Its capability calls, in order.
    #[schema(value_type = Vec<Object>)]
    pub calls: serde_json::Value,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct InvocationView {
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    pub version: String,
    pub attempts: Vec<AttemptView>,
}

/// One invocation: every attempt, with every capability call it made.
#[utoipa::path(get, tag = "audit", path = "/v1/invocations/{id}", params(("id" = uuid::Uuid, Path)),
    security(("tenant" = [])), responses(
    (status = 200, body = InvocationView),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn invocation(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Json<InvocationView>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no invocation {id:?}"));
    let invocation_id = uuid::Uuid::parse_str(&id).map_err(|_| not_found())?;
    let filter = AuditFilter::invocation(tenant.0, invocation_id);
    let records = audit::search(state.host.pool(), &filter).await?;
    let first = records.first().ok_or_else(not_found)?;
    let (executor, version) = (first.executor.clone(), first.version.clone());
    let attempts = records
        .into_iter()
        .map(|r| AttemptView {
            attempt: r.attempt,
            outcome: r.outcome,
            duration_us: r.duration_us,
            lock_wait_us: r.lock_wait_us,
            replay_reason: r.replay_reason,
            calls: r.calls,
        })
        .collect();
    Ok(Json(InvocationView {
        invocation_id,
        executor,
        version,
        attempts,
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuditRecords {
    pub records: Vec<AuditRecord>,
}

/// Search the audit log (operators): by tenant, executor, capability,
/// table, outcome, time range, invocation; `after_id` to follow it.
#[utoipa::path(get, tag = "audit", path = "/v1/audit", params(AuditFilter), security(("operator" = [])), responses(
    (status = 200, body = AuditRecords),
    (status = 400, body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn search(
    State(state): State<AppState>,
    _: Operator,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditRecords>, ApiError> {
    let Query(filter) =
        filter.map_err(|e| ApiError::bad_request("invalid-parameter", e.body_text()))?;
    Ok(Json(AuditRecords {
        records: audit::search(state.host.pool(), &filter).await?,
    }))
}

#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// Only this tenant's chain.
    #[serde(default, deserialize_with = "super::body::given")]
    #[schema(nullable = false)]
    pub tenant: Option<uuid::Uuid>,
    /// Heads exported earlier by `/v1/audit/checkpoint`.
    #[serde(default)]
    pub checkpoints: Vec<Checkpoint>,
}

/// Chain pending records, then walk the chains and report the first broken
/// link of each tenant (operators).
#[utoipa::path(post, tag = "audit", path = "/v1/audit/verify", request_body(content = Option<VerifyRequest>),
    security(("operator" = [])), responses(
    (status = 200, description = "`broken` is empty when every chain holds", body = Verification),
    (status = 400, description = "the body is not a verification request (`malformed-json`)", body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn verify(
    State(state): State<AppState>,
    _: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Verification>, ApiError> {
    let request: VerifyRequest = super::body::optional_json(&body)?;
    let pool = state.host.pool();
    audit::chain_pending(pool).await?;
    Ok(Json(
        audit::verify(pool, request.tenant.map(TenantId), &request.checkpoints).await?,
    ))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Checkpoints {
    pub checkpoints: Vec<Checkpoint>,
}

/// Every tenant's chain head, to keep where the database's writers cannot reach.
#[utoipa::path(get, tag = "audit", path = "/v1/audit/checkpoint", security(("operator" = [])), responses(
    (status = 200, body = Checkpoints),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn checkpoint(
    State(state): State<AppState>,
    _: Operator,
) -> Result<Json<Checkpoints>, ApiError> {
    let pool = state.host.pool();
    audit::chain_pending(pool).await?;
    Ok(Json(Checkpoints {
        checkpoints: audit::checkpoint(pool).await?,
    }))
}

/// Prometheus metrics of this host (expose to your monitoring network only).
#[utoipa::path(get, tag = "health", path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.host.metrics().render(),
    )
}
