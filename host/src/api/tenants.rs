//! Operator endpoints: tenants and their API keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::auth::Operator;
use super::{ApiError, AppState};
use crate::TenantId;

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    /// Unique among tenants, 1 to 200 characters.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// The business's IANA time zone (opening hours are read in it);
    /// default `UTC`.
    #[schema(example = "Europe/Paris")]
    pub time_zone: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CreatedTenant {
    pub id: uuid::Uuid,
    pub name: String,
    pub time_zone: String,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct IssuedKey {
    pub tenant_id: uuid::Uuid,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

/// Create a tenant and its first API key.
#[utoipa::path(post, tag = "operator", path = "/v1/tenants", request_body = NewTenant, security(("operator" = [])), responses(
    (status = 201, body = CreatedTenant),
    (status = 400, body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 409, description = "a tenant with that name exists", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn create(
    State(state): State<AppState>,
    _: Operator,
    body: Result<Json<NewTenant>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedTenant>), ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request("malformed-json", e.body_text()))?;
    let pool = state.host.pool();
    let zone = body.time_zone.as_deref().unwrap_or("UTC");
    crate::schedule::time_zone(zone)
        .map_err(|e| ApiError::bad_request("unknown-time-zone", e.0))?;
    let tenant = crate::db::create_tenant_in(pool, &body.name, zone)
        .await
        .map_err(|e| {
            let detail = e.to_string();
            if detail.contains("already exists") {
                ApiError::Conflict {
                    slug: "tenant-exists",
                    detail,
                }
            } else {
                ApiError::bad_request("invalid-tenant", detail)
            }
        })?;
    let api_key = crate::db::keys::issue(pool, tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTenant {
            id: tenant.0,
            name: body.name,
            time_zone: zone.to_owned(),
            api_key,
        }),
    ))
}

/// Issue another API key for a tenant.
#[utoipa::path(post, tag = "operator", path = "/v1/tenants/{id}/keys", params(("id" = uuid::Uuid, Path)), security(("operator" = [])), responses(
    (status = 201, body = IssuedKey),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn issue_key(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IssuedKey>), ApiError> {
    let not_found = || ApiError::NotFound(format!("no tenant {id:?}"));
    let tenant: TenantId = id.parse().map_err(|_| not_found())?;
    if !crate::db::tenant_exists(state.host.pool(), tenant).await? {
        return Err(not_found());
    }
    let api_key = crate::db::keys::issue(state.host.pool(), tenant).await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedKey {
            tenant_id: tenant.0,
            api_key,
        }),
    ))
}

#[derive(serde::Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The version to approve; default: the active one.
    #[serde(default, deserialize_with = "super::body::given")]
    #[schema(nullable = false)]
    pub version: Option<String>,
}

/// Approve a version's declared capabilities (minus the deny list), for
/// the `require-approval` policy.
#[utoipa::path(post, tag = "operator", path = "/v1/tenants/{id}/executors/{name}/approve",
    params(("id" = uuid::Uuid, Path), ("name" = String, Path)),
    request_body(content = Option<ApproveRequest>), security(("operator" = [])), responses(
    (status = 200, body = crate::capabilities::grant::GrantDecision),
    (status = 400, description = "the body is not an approval (`malformed-json`)", body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn approve(
    State(state): State<AppState>,
    _: Operator,
    Path((id, name)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Json<crate::capabilities::grant::GrantDecision>, ApiError> {
    let not_found = || ApiError::NotFound(format!("no executor {name:?} for tenant {id:?}"));
    let tenant: TenantId = id.parse().map_err(|_| not_found())?;
    let request: ApproveRequest = super::body::optional_json(&body)?;
    let pool = state.host.pool();
    let (version, decision) =
        crate::db::executors::grant(pool, tenant, &name, request.version.as_deref())
            .await?
            .ok_or_else(not_found)?;
    let requested = crate::capabilities::grant::parse_all(&decision.requested)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored capabilities: {e}")))?;
    let granted = state.config.grant_policy.approve(&requested);
    crate::db::executors::approve(pool, tenant, &name, &version, &granted, None).await?;
    let (_, decision) = crate::db::executors::grant(pool, tenant, &name, Some(&version))
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(state.config.grant_policy.explain(decision)))
}
