//! Bearer-key authentication: a tenant's API key, or the operator key.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::problem::ApiError;
use super::AppState;
use crate::TenantId;

/// The answer to a key that is not (or no longer) a tenant's.
fn unknown_key() -> ApiError {
    ApiError::Unauthorized("unknown or revoked API key".into())
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <key>".into()))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <key>`".into())
        })
}

/// The tenant whose API key the request carries.
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        match crate::db::keys::tenant_of(state.host.pool(), key).await? {
            Some(tenant) => Ok(Tenant(tenant)),
            None => Err(unknown_key()),
        }
    }
}

/// An invocation's tenant (from its key) and what that tenant has under
/// the path's executor name (`active`: digest and granted capabilities),
/// looked up in one round trip, before the query string or the body is
/// read: a request with a bad key is refused 401 whatever else is wrong.
pub struct InvocationTarget {
    pub tenant: TenantId,
    pub name: String,
    pub active: Option<(String, Vec<String>)>,
}

impl FromRequestParts<AppState> for InvocationTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?.to_owned();
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request("invalid-path", e.body_text()))?;
        let (tenant, active) = crate::db::keys::tenant_and_executor(state.host.pool(), &key, &name)
            .await?
            .ok_or_else(unknown_key)?;
        Ok(InvocationTarget {
            tenant,
            name,
            active,
        })
    }
}

/// The request carries the operator key from the configuration.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = bearer(parts)?;
        let expected = state.config.operator_key.as_deref();
        // Compare digests so the comparison time says nothing about the key.
        use sha2::{Digest, Sha256};
        match expected {
            Some(expected) if Sha256::digest(expected) == Sha256::digest(key) => Ok(Operator),
            _ => Err(ApiError::Unauthorized(
                "this endpoint needs the operator key".into(),
            )),
        }
    }
}
