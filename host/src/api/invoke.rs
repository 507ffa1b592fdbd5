//! Invocations over HTTP: schema validation first, then the runtime, with
//! idempotency keys and dry runs; one status per outcome.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::auth::InvocationTarget;
use super::problem::InputError;
use super::{ApiError, AppState};
use crate::db::idempotency::{self, NextAction, StoredResponse};
use crate::db::sql::Statement;
use crate::runtime::{CommitHook, InvocationOutcome, InvocationReport, InvokeOptions};
use crate::TenantId;

#[derive(serde::Deserialize, utoipa::IntoParams)]
pub struct InvokeQuery {
    /// Run, report the writes, and roll everything back.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a completed invocation answers (200 with `result`; 409/422 with `error`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct InvocationResponse {
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    /// The executor version (SHA-256) that ran.
    pub version: String,
    pub attempts: u32,
    pub duration_ms: f64,
    /// The executor's JSON result (on success).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// The executor's JSON error body (when it refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Rows the dry run wrote (then rolled back).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub writes: Vec<crate::capabilities::transaction::WriteRecord>,
}

/// The HTTP answer for a finished invocation: a JSON body with its status
/// (committed, or the executor's refusal), or a problem for outcomes that
/// are the host's or the executor's fault. A pure function of the report,
/// so a stored answer and the one sent are the same bytes.
fn answer(report: &InvocationReport, version: &str) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let mut body = InvocationResponse {
        invocation_id: report.invocation_id,
        executor: report.executor.clone(),
        version: version.to_owned(),
        attempts: report.attempts,
        duration_ms: report.duration.as_secs_f64() * 1000.0,
        result: None,
        error: None,
        dry_run: report.dry_run,
        writes: report.writes.clone(),
    };
    let invocation_id = report.invocation_id;
    let failed = |status, slug, detail| ApiError::Invocation {
        status,
        slug,
        detail,
        invocation_id,
    };
    let status = match &report.outcome {
        InvocationOutcome::Ok { output } => {
            body.result = Some(output.clone());
            StatusCode::OK
        }
        InvocationOutcome::UserError { body: error } => {
            let invalid_input =
                error.get("error").and_then(|e| e.as_str()) == Some("invalid_input");
            body.error = Some(error.clone());
            if invalid_input {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::CONFLICT
            }
        }
        InvocationOutcome::Trap { message } => {
            return Err(failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "executor-trapped",
                format!("the executor trapped: {message}; nothing was written"),
            ))
        }
        InvocationOutcome::Timeout { timeout_ms } => {
            return Err(failed(
                StatusCode::GATEWAY_TIMEOUT,
                "executor-timeout",
                format!("the executor ran longer than {timeout_ms} ms; nothing was written"),
            ))
        }
        InvocationOutcome::RetriesExhausted {
            attempts,
            last_reason,
        } => {
            return Err(failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "retries-exhausted",
                format!(
                    "{attempts} attempts all conflicted (last: {last_reason}); nothing was \
                     written; retry later"
                ),
            ))
        }
        InvocationOutcome::LimitExceeded { limit, message } => {
            return Err(failed(
                StatusCode::INTERNAL_SERVER_ERROR,
                "limit-exceeded",
                format!("the executor went over its {limit} limit: {message}; nothing was written"),
            ))
        }
        InvocationOutcome::HostFailure { message } => {
            return Err(failed(
                StatusCode::SERVICE_UNAVAILABLE,
                "host-failure",
                format!(
                    "the host could not complete the invocation: {message}; nothing was written"
                ),
            ))
        }
    };
    // A struct of strings, numbers and JSON values always serializes.
    let bytes = serde_json::to_vec(&body).expect("an invocation response serializes");
    Ok((status, bytes))
}

fn json_response(status: StatusCode, body: Vec<u8>, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Stores the answer of a committed invocation in the invocation's own
/// transaction, so it commits exactly when the executor's writes do.
struct StoreAnswer {
    tenant: TenantId,
    key: String,
    request_hash: String,
    version: String,
    ttl: std::time::Duration,
}

impl StoreAnswer {
    fn statement_for(&self, status: StatusCode, bytes: &[u8]) -> Statement {
        idempotency::store_statement(
            self.tenant,
            &self.key,
            &self.request_hash,
            status.as_u16(),
            bytes,
            self.ttl,
        )
    }
}

impl CommitHook for StoreAnswer {
    /// Only committed reports reach a commit hook; their answer is a body.
    fn statement(&self, report: &InvocationReport) -> Statement {
        let (status, bytes) =
            answer(report, &self.version).expect("a committed invocation answers with a body");
        self.statement_for(status, &bytes)
    }
}

fn replay(stored: StoredResponse, request_hash: &str) -> Result<Response, ApiError> {
    if stored.request_hash != request_hash {
        return Err(ApiError::Unprocessable {
            slug: "idempotency-key-reused",
            detail: "this Idempotency-Key was used with a different request".into(),
            errors: None,
        });
    }
    let status = StatusCode::from_u16(stored.status_code as u16).unwrap_or(StatusCode::OK);
    Ok(json_response(status, stored.response, true))
}

/// Run an executor on a JSON input.
#[utoipa::path(post, tag = "executors", path = "/v1/executors/{name}/invoke", params(("name" = String, Path), InvokeQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "replay the first completed response for this key")),
    request_body(content = Object, description = "the executor's input, valid against its JSON Schema"),
    security(("tenant" = [])), responses(
    (status = 200, description = "the executor's result committed", body = InvocationResponse),
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
    let (executor, grant) = state.loaded(tenant, &name, active).await?;
    let input: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request("malformed-json", format!("the body is not JSON: {e}"))
    })?;
    let errors = executor.input_errors(&input);
    if !errors.is_empty() {
        return Err(ApiError::Unprocessable {
            slug: "invalid-input",
            detail: format!("the input does not match {name}'s input schema"),
            errors: Some(
                errors
                    .into_iter()
                    .map(|(path, message)| InputError { path, message })
                    .collect(),
            ),
        });
    }
    let key = idempotency_key(&headers)?;
    let host = &state.host;
    let input_text = input.to_string();
    let (Some(key), false) = (key, query.dry_run) else {
        let options = InvokeOptions {
            dry_run: query.dry_run,
            on_commit: None,
            grant: Some(grant),
        };
        let report = host
            .invoke_executor(tenant, &executor, &input_text, options)
            .await?;
        let (status, bytes) = answer(&report, &executor.digest)?;
        return Ok(json_response(status, bytes, false));
    };

    let request_hash = hex::encode(
        Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update([0])
            .chain_update(&body)
            .finalize(),
    );
    let claim = match idempotency::try_processing(host.pool(), &state.claims, tenant, &key).await? {
        NextAction::ReturnSavedResponse(stored) => return replay(stored, &request_hash),
        NextAction::InProgressElsewhere => {
            return Err(ApiError::Conflict {
                slug: "idempotency-key-in-progress",
                detail: "a request with this Idempotency-Key is still running; retry later".into(),
            })
        }
        NextAction::StartProcessing(claim) => claim,
    };
    let store = Arc::new(StoreAnswer {
        tenant,
        key,
        request_hash,
        version: executor.digest.clone(),
        ttl: state.config.idempotency_ttl,
    });
    let options = InvokeOptions {
        dry_run: false,
        on_commit: Some(store.clone()),
        grant: Some(grant),
    };
    let report = host
        .invoke_executor(tenant, &executor, &input_text, options)
        .await;
    let response = match report {
        Err(e) => Err(ApiError::from(e)),
        Ok(report) => match (&report.outcome, answer(&report, &executor.digest)) {
            // A refusal is a completed answer too (nothing was written):
            // stored now, after its rollback. A committed answer was stored
            // by its own commit, from this very report.
            (InvocationOutcome::UserError { .. }, Ok((status, bytes))) => {
                idempotency::store(host.pool(), store.statement_for(status, &bytes)).await?;
                Ok(json_response(status, bytes, false))
            }
            // Traps, timeouts and host failures are not stored: a retry runs again.
            (_, answered) => answered.map(|(status, bytes)| json_response(status, bytes, false)),
        },
    };
    claim.finish().await;
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
