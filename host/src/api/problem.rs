//! The API's one error type and its one mapping to HTTP: RFC 7807 problem+json.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::invocations::{Failure, InvocationError};

/// A problem document (RFC 7807). `type` is `urn:bookhost:problem:<slug>`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on invocation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation_id: Option<uuid::Uuid>,
    /// Present on input validation problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<InputError>>,
}

/// Where an input breaks the executor's JSON Schema.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct InputError {
    /// JSON pointer into the input.
    pub path: String,
    pub message: String,
}

/// Everything an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{detail}")]
    BadRequest { slug: &'static str, detail: String },
    #[error("{detail}")]
    Conflict { slug: &'static str, detail: String },
    #[error("{detail}")]
    Unprocessable {
        slug: &'static str,
        detail: String,
        errors: Option<Vec<InputError>>,
    },
    #[error("{detail}")]
    Invocation {
        status: StatusCode,
        slug: &'static str,
        detail: String,
        invocation_id: uuid::Uuid,
    },
    #[error("{0}")]
    Unavailable(String),
    /// It existed and is no more (an expired proposal).
    #[error("{detail}")]
    Gone { slug: &'static str, detail: String },
    /// The tenant is at its cap of invocations in flight (429, Retry-After).
    #[error("{0}")]
    TooManyRequests(String),
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for ApiError {
    /// A lost database is `Unavailable` (503 with Retry-After), never a 500.
    fn from(error: anyhow::Error) -> Self {
        if crate::db::errors::is_unavailable(&error) {
            ApiError::Unavailable(format!(
                "the database is unreachable: {error:#}; retry shortly"
            ))
        } else {
            ApiError::Internal(error)
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        anyhow::Error::from(error).into()
    }
}

impl ApiError {
    pub fn bad_request(slug: &'static str, detail: impl Into<String>) -> Self {
        ApiError::BadRequest {
            slug,
            detail: detail.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::BadRequest { slug, .. } => (StatusCode::BAD_REQUEST, slug, "Bad request"),
            ApiError::Conflict { slug, .. } => (StatusCode::CONFLICT, slug, "Conflict"),
            ApiError::Unprocessable { slug, .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                slug,
                "Unprocessable input",
            ),
            ApiError::Invocation { status, slug, .. } => (*status, slug, "Invocation failed"),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Gone { slug, .. } => (StatusCode::GONE, slug, "Gone"),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "tenant-busy",
                "Too many requests",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        if let ApiError::Internal(error) = &self {
            tracing::error!("request failed: {error:#}");
        }
        let (invocation_id, errors) = match &self {
            ApiError::Invocation { invocation_id, .. } => (Some(*invocation_id), None),
            ApiError::Unprocessable { errors, .. } => (
                None,
                errors.as_ref().map(|e| {
                    e.iter()
                        .map(|e| InputError {
                            path: e.path.clone(),
                            message: e.message.clone(),
                        })
                        .collect()
                }),
            ),
            _ => (None, None),
        };
        let problem = Problem {
            kind: format!("urn:bookhost:problem:{slug}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.to_string(),
            invocation_id,
            errors,
        };
        let mut response = (status, json!(problem).to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

impl From<InvocationError> for ApiError {
    fn from(error: InvocationError) -> Self {
        let detail = error.to_string();
        match error {
            InvocationError::UnknownExecutor(_) | InvocationError::ProposalNotFound(_) => {
                ApiError::NotFound(detail)
            }
            InvocationError::MalformedInput(_) => ApiError::bad_request("malformed-json", detail),
            InvocationError::InputTooLarge { .. } => {
                ApiError::bad_request("input-too-large", detail)
            }
            InvocationError::InvalidInput { errors, .. } => ApiError::Unprocessable {
                slug: "invalid-input",
                detail,
                errors: Some(
                    errors
                        .into_iter()
                        .map(|(path, message)| InputError { path, message })
                        .collect(),
                ),
            },
            InvocationError::TenantBusy(_) => ApiError::TooManyRequests(detail),
            InvocationError::KeyInProgress => ApiError::Conflict {
                slug: "idempotency-key-in-progress",
                detail,
            },
            InvocationError::KeyReused => ApiError::Unprocessable {
                slug: "idempotency-key-reused",
                detail,
                errors: None,
            },
            InvocationError::Failed {
                failure,
                detail,
                invocation_id,
            } => ApiError::Invocation {
                status: match failure {
                    Failure::Trapped | Failure::LimitExceeded => StatusCode::INTERNAL_SERVER_ERROR,
                    Failure::TimedOut => StatusCode::GATEWAY_TIMEOUT,
                    Failure::RetriesExhausted | Failure::HostFailure | Failure::CommitUnknown => {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                },
                slug: failure.slug(),
                detail,
                invocation_id,
            },
            InvocationError::ProposalExpired { .. } => ApiError::Gone {
                slug: "proposal-expired",
                detail,
            },
            InvocationError::Unavailable(_) => ApiError::Unavailable(detail),
            InvocationError::Internal(error) => error.into(),
        }
    }
}
