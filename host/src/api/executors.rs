//! Executor uploads (immutable versions by digest), listing and rollback.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::Tenant;
use super::{ApiError, AppState};
use crate::capabilities::grant::GrantDecision;
use crate::db::executors::{ExecutorInfo, NewVersion, RollbackError};
use crate::runtime::RejectedComponent;
use crate::ExecutorName;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Uploaded {
    pub name: String,
    /// SHA-256 of the component bytes (hex): the version's identity.
    pub version: String,
    pub active: bool,
    pub description: String,
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    pub size_bytes: usize,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
    /// What the version declared, and what the operator's policy granted.
    pub grant: GrantDecision,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ExecutorList {
    pub executors: Vec<ExecutorInfo>,
}

#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version to make active; default: the one uploaded before the active one.
    #[serde(default, deserialize_with = "super::body::given")]
    #[schema(nullable = false)]
    pub version: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct RolledBack {
    pub name: String,
    pub active_version: String,
    pub previous_version: String,
}

fn invalid(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid-component", detail)
}

/// Upload a component as a new version of `name` and make it active.
#[utoipa::path(put, tag = "executors", path = "/v1/executors/{name}", params(("name" = String, Path)),
    request_body(content = Vec<u8>, content_type = "application/wasm", description = "the component"),
    security(("tenant" = [])), responses(
    (status = 201, description = "a new version, now active", body = Uploaded),
    (status = 200, description = "an existing version, active again", body = Uploaded),
    (status = 400, description = "not a valid executor; `detail` says why", body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn upload(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let limit = state.config.max_component_bytes;
    let name = ExecutorName::parse(&name)
        .map_err(|e| ApiError::bad_request("invalid-name", e.to_string()))?;
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) => {
            invalid(format!("the upload exceeds the limit of {limit} bytes"))
        }
        other => invalid(format!("cannot read the upload: {}", other.body_text())),
    })?;
    if body.len() > limit {
        return Err(invalid(
            RejectedComponent::TooLarge {
                size: body.len(),
                limit,
            }
            .to_string(),
        ));
    }
    let loaded = state
        .host
        .registry()
        .load(&body)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    if loaded.name != name {
        return Err(ApiError::bad_request(
            "name-mismatch",
            format!(
                "the component describes itself as {:?}, not {:?}",
                loaded.name.as_str(),
                name.as_str()
            ),
        ));
    }
    let decision = state.config.grant_policy.decide(&loaded.capabilities);
    let (new, uploaded_at) = crate::db::executors::store_and_activate(
        state.host.pool(),
        tenant,
        NewVersion {
            name: name.as_str(),
            digest: &loaded.digest,
            component: &body,
            description: &loaded.description,
            input_schema: &loaded.input_schema,
            grant: &decision,
        },
    )
    .await?;
    // A version uploaded before keeps the grant it was given then.
    let (_, grant) = crate::db::executors::grant(
        state.host.pool(),
        tenant,
        name.as_str(),
        Some(&loaded.digest),
    )
    .await?
    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the stored version vanished")))?;
    let status = if new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(Uploaded {
            name: name.to_string(),
            version: loaded.digest.clone(),
            active: true,
            description: loaded.description.clone(),
            input_schema: loaded.input_schema.clone(),
            size_bytes: body.len(),
            uploaded_at,
            grant: state.config.grant_policy.explain(grant),
        }),
    ))
}

/// The tenant's executors and their versions.
#[utoipa::path(get, tag = "executors", path = "/v1/executors", security(("tenant" = [])), responses(
    (status = 200, body = ExecutorList),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn list(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> Result<Json<ExecutorList>, ApiError> {
    let executors = crate::db::executors::list(state.host.pool(), tenant, None).await?;
    Ok(Json(ExecutorList { executors }))
}

/// One executor and its versions.
#[utoipa::path(get, tag = "executors", path = "/v1/executors/{name}", params(("name" = String, Path)), security(("tenant" = [])), responses(
    (status = 200, body = ExecutorInfo),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(name): Path<String>,
) -> Result<Json<ExecutorInfo>, ApiError> {
    let mut found = crate::db::executors::list(state.host.pool(), tenant, Some(&name)).await?;
    found
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no executor named {name:?}")))
}

/// Make an older version active again.
#[utoipa::path(post, tag = "executors", path = "/v1/executors/{name}/rollback", params(("name" = String, Path)),
    request_body(content = Option<RollbackRequest>, description = "optional; without a version, the previous one"),
    security(("tenant" = [])), responses(
    (status = 200, body = RolledBack),
    (status = 400, description = "the body is not a rollback request (`malformed-json`)", body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
    (status = 409, description = "no older version", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn rollback(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<RolledBack>, ApiError> {
    let request: RollbackRequest = super::body::optional_json(&body)?;
    let (previous, active) = crate::db::executors::rollback(
        state.host.pool(),
        tenant,
        &name,
        request.version.as_deref(),
    )
    .await
    .map_err(|e| match e {
        RollbackError::UnknownExecutor(_) | RollbackError::UnknownVersion { .. } => {
            ApiError::NotFound(e.to_string())
        }
        RollbackError::NothingOlder(_) => ApiError::Conflict {
            slug: "nothing-to-roll-back",
            detail: e.to_string(),
        },
        RollbackError::Database(e) => e.into(),
    })?;
    Ok(Json(RolledBack {
        name,
        active_version: active,
        previous_version: previous,
    }))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Grants {
    pub name: String,
    pub version: String,
    #[serde(flatten)]
    pub grant: GrantDecision,
}

/// What the active version declared and was granted.
#[utoipa::path(get, tag = "executors", path = "/v1/executors/{name}/grants", params(("name" = String, Path)),
    security(("tenant" = [])), responses(
    (status = 200, body = Grants),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn grants(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(name): Path<String>,
) -> Result<Json<Grants>, ApiError> {
    let (version, grant) = crate::db::executors::grant(state.host.pool(), tenant, &name, None)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no executor named {name:?}")))?;
    Ok(Json(Grants {
        name,
        version,
        grant: state.config.grant_policy.explain(grant),
    }))
}
