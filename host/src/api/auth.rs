//! Bearer-key authentication: a tenant's API key, or the operator key.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::problem::ApiError;
use super::AppState;
use crate::TenantId;

/// The answer to a key that is not (or no longer) a tenant's.
pub(crate) fn unknown_key() -> ApiError {
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

/// The bearer key as sent, not yet looked up: for a handler that looks the
/// key up together with what it needs next (one round trip, not two).
pub struct BearerKey(pub String);

impl FromRequestParts<AppState> for BearerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        bearer(parts).map(|key| BearerKey(key.to_owned()))
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
