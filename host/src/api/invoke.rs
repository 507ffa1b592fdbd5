//! Invocations over HTTP: the query and headers read, the rest to
//! `invocations`; one status per answer. Proposals are confirmed here too.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{InvocationTarget, Tenant};
use super::{ApiError, AppState};
use crate::invocations::{Answer, InvocationResponse, Mode};

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct InvokeQuery {
    /// Run, report the writes, and roll everything back.
    #[serde(default)]
    pub dry_run: bool,
    /// Run as a dry run and keep its writes as a proposal to confirm
    /// (`POST /v1/proposals/{id}/confirm`) within 10 minutes.
    #[serde(default)]
    pub propose: bool,
}

/// A completed answer as HTTP: its status and JSON body, exactly as stored.
pub fn json_response(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if answer.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// The Idempotency-Key header, if any: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid-idempotency-key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })
}

/// Run an executor on a JSON input.
#[utoipa::path(post, tag = "executors", path = "/v1/executors/{name}/invoke", params(("name" = String, Path), InvokeQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "replay the first completed response for this key")),
    request_body(content = Object, description = "the executor's input, valid against its JSON Schema"),
    security(("tenant" = [])), responses(
    (status = 200, description = "the executor's result committed (or previewed: a dry run, a proposal)", body = InvocationResponse),
    (status = 400, description = "malformed JSON, or an input over the size limit (`input-too-large`)", body = super::Problem, content_type = "application/problem+json"),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, body = super::Problem, content_type = "application/problem+json"),
    (status = 409, description = "the executor refused (its `error` body, JSON), or the Idempotency-Key is in use (a problem)", content(
        (InvocationResponse = "application/json"), (super::Problem = "application/problem+json"))),
    (status = 429, description = "the tenant already has its cap of invocations in flight (`tenant-busy`); see Retry-After", body = super::Problem, content_type = "application/problem+json"),
    (status = 422, description = "input breaks the executor's schema (a problem with `errors`), the Idempotency-Key was used with another request (a problem), or the executor refused the input (`invalid_input` in its `error` body, JSON)", content(
        (InvocationResponse = "application/json"), (super::Problem = "application/problem+json"))),
    (status = 500, description = "the executor trapped, or went over a limit (`limit-exceeded`, naming it)", body = super::Problem, content_type = "application/problem+json"),
    (status = 503, description = "replays exhausted or host failure; see Retry-After", body = super::Problem, content_type = "application/problem+json"),
    (status = 504, description = "the executor timed out", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn invoke(
    State(state): State<AppState>,
    target: InvocationTarget,
    Query(query): Query<InvokeQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let InvocationTarget {
        tenant,
        name,
        active,
    } = target;
    let invocations = &state.invocations;
    let target = invocations.target(tenant, &name, active).await?;
    let input: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("malformed-json", format!("the body is not JSON: {e}"))
    })?;
    let mode = match (query.dry_run, query.propose) {
        (false, false) => Mode::Run,
        (true, false) => Mode::DryRun,
        (false, true) => Mode::Propose,
        (true, true) => {
            return Err(ApiError::bad_request(
                "invalid-parameter",
                "dry_run and propose exclude each other (a proposal is a dry run)",
            ))
        }
    };
    let key = idempotency_key(&headers)?;
    let answer = invocations
        .invoke(tenant, &target, input, mode, key)
        .await?;
    Ok(json_response(answer))
}

/// Confirm a proposal: run the proposed executor version on the proposed
/// input for real, and commit only if it writes the proposal's rows.
#[utoipa::path(post, tag = "executors", path = "/v1/proposals/{id}/confirm", params(("id" = uuid::Uuid, Path)),
    security(("tenant" = [])), responses(
    (status = 200, description = "committed: `result` and `confirmed` (the proposal's id); confirming again answers the same", body = InvocationResponse),
    (status = 401, body = super::Problem, content_type = "application/problem+json"),
    (status = 404, description = "no such proposal for this tenant", body = super::Problem, content_type = "application/problem+json"),
    (status = 409, description = "`changed`: the executor no longer writes the proposal's rows; nothing was written, and the body is the fresh preview (with a new `proposal` when the executor still succeeds); or another confirmation of it is running (a problem)", content(
        (InvocationResponse = "application/json"), (super::Problem = "application/problem+json"))),
    (status = 410, description = "the proposal expired", body = super::Problem, content_type = "application/problem+json"),
    (status = 422, description = "`changed`: the executor now refuses its input (`invalid_input`)", body = InvocationResponse),
    (status = 429, description = "the tenant already has its cap of invocations in flight", body = super::Problem, content_type = "application/problem+json"),
    (status = 500, description = "the executor trapped, or went over a limit", body = super::Problem, content_type = "application/problem+json"),
    (status = 503, description = "replays exhausted or host failure; see Retry-After", body = super::Problem, content_type = "application/problem+json"),
    (status = 504, description = "the executor timed out", body = super::Problem, content_type = "application/problem+json"),
))]
pub async fn confirm(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::NotFound(format!("no proposal {id:?}")))?;
    let answer = state.invocations.confirm(tenant, id).await?;
    Ok(json_response(answer))
}
