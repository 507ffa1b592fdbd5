//! What an invocation answers, whatever carries it: a completed answer (a
//! status and a JSON body, stored under an Idempotency-Key and replayed as
//! it was), or a typed failure that says whether a retry can help.

use crate::capabilities::transaction::WriteRecord;
use crate::runtime::{InvocationOutcome, InvocationReport, InvokeError};

/// A proposal made by an invocation, to confirm before it expires.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ProposalRef {
    pub id: uuid::Uuid,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The body of a completed invocation: `result` when the executor returned
/// ok, `error` when it refused (nothing written).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct InvocationResponse {
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    /// The executor version (SHA-256) that ran.
    pub version: String,
    pub attempts: u32,
    pub duration_ms: f64,
    /// The executor's JSON result (on success, and the preview of a dry run
    /// or proposal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// The executor's JSON error body (when it refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<serde_json::Value>,
    /// Nothing was committed: a dry run, or a proposal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Rows the dry run or proposal wrote (then rolled back).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub writes: Vec<WriteRecord>,
    /// The proposal to confirm (`POST /v1/proposals/{id}/confirm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<ProposalRef>,
    /// A confirmation that found the world changed: nothing was written;
    /// `result`/`error` and `writes` are the fresh preview, and `proposal`
    /// (when the executor still succeeds) a new proposal to confirm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
    /// The proposal this invocation confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<uuid::Uuid>,
}

/// A completed answer: its status and body, as first sent (and stored, with
/// an Idempotency-Key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 200: committed (or a dry run, or a proposal made); 409: refused by
    /// the executor, or a confirmation that found the world changed; 422:
    /// the executor refused its input (`invalid_input`).
    pub status: u16,
    pub body: Vec<u8>,
    /// A stored answer sent again for a retried Idempotency-Key.
    pub replayed: bool,
}

impl Answer {
    fn of(status: u16, body: &InvocationResponse) -> Self {
        Self {
            status,
            // A struct of strings, numbers and JSON values always serializes.
            body: serde_json::to_vec(body).expect("an invocation response serializes"),
            replayed: false,
        }
    }

    /// Whether the executor's result stands (committed, previewed or proposed).
    pub fn succeeded(&self) -> bool {
        self.status == 200
    }

    /// The body as a response (stored answers included).
    pub fn response(&self) -> Result<InvocationResponse, InvocationError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| InvocationError::Internal(anyhow::anyhow!("a stored answer: {e}")))
    }
}

/// Why an executor's attempt failed, as a caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Trapped,
    TimedOut,
    RetriesExhausted,
    LimitExceeded,
    HostFailure,
    /// COMMIT was sent and its answer lost, and the server could not be
    /// asked: all or nothing happened; the same Idempotency-Key tells which.
    CommitUnknown,
}

impl Failure {
    /// Whether the same call, retried later, can succeed: contention and
    /// host trouble pass; a trap, a limit or a timeout of the executor's
    /// own code happen again.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            Failure::RetriesExhausted | Failure::HostFailure | Failure::CommitUnknown
        )
    }

    /// Its name for callers (problem slugs, tool errors).
    pub fn slug(self) -> &'static str {
        match self {
            Failure::Trapped => "executor-trapped",
            Failure::TimedOut => "executor-timeout",
            Failure::RetriesExhausted => "retries-exhausted",
            Failure::LimitExceeded => "limit-exceeded",
            Failure::HostFailure => "host-failure",
            Failure::CommitUnknown => "commit-unknown",
        }
    }
}

/// Everything an invocation request can fail with; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    #[error("no executor named {0:?}")]
    UnknownExecutor(String),
    #[error("the input is not JSON: {0}")]
    MalformedInput(String),
    /// The input breaks the executor's JSON Schema; nothing ran.
    #[error("the input does not match {executor}'s input schema")]
    InvalidInput {
        executor: String,
        /// (JSON pointer, message) for each violation.
        errors: Vec<(String, String)>,
    },
    #[error("the input is {bytes} bytes; at most {max} are accepted")]
    InputTooLarge { bytes: usize, max: usize },
    #[error("the tenant already has {0} invocations in flight; retry shortly")]
    TenantBusy(usize),
    #[error("a request with this Idempotency-Key is still running; retry later")]
    KeyInProgress,
    #[error("this Idempotency-Key was used with a different request")]
    KeyReused,
    /// The executor's attempt failed (not a refusal of its own).
    #[error("{detail}")]
    Failed {
        failure: Failure,
        detail: String,
        invocation_id: uuid::Uuid,
    },
    #[error("no proposal {0} (or not this tenant's)")]
    ProposalNotFound(uuid::Uuid),
    #[error("proposal {id} expired at {expired_at}; propose again")]
    ProposalExpired {
        id: uuid::Uuid,
        expired_at: chrono::DateTime<chrono::Utc>,
    },
    /// The database could not be reached; nothing was written.
    #[error("the database is unreachable: {0}; retry shortly")]
    Unavailable(String),
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for InvocationError {
    /// A lost database is `Unavailable` (503), never an internal error.
    fn from(error: anyhow::Error) -> Self {
        if crate::db::errors::is_unavailable(&error) {
            InvocationError::Unavailable(format!("{error:#}"))
        } else {
            InvocationError::Internal(error)
        }
    }
}

impl From<InvokeError> for InvocationError {
    fn from(error: InvokeError) -> Self {
        match error {
            InvokeError::UnknownExecutor(name) => InvocationError::UnknownExecutor(name),
            InvokeError::InvalidInput(detail) => InvocationError::MalformedInput(detail),
            InvokeError::InputTooLarge { bytes, max } => {
                InvocationError::InputTooLarge { bytes, max }
            }
            InvokeError::TenantBusy(cap) => InvocationError::TenantBusy(cap),
        }
    }
}

impl From<sqlx::Error> for InvocationError {
    fn from(error: sqlx::Error) -> Self {
        anyhow::Error::from(error).into()
    }
}

/// How a finished invocation answers: a pure function of its report (and
/// what the caller adds: a proposal, a confirmation), so that an answer
/// stored in the invocation's own transaction and the one sent are the
/// same bytes.
pub fn answer(
    report: &InvocationReport,
    extra: impl FnOnce(&mut InvocationResponse),
) -> Result<Answer, InvocationError> {
    let mut body = InvocationResponse {
        invocation_id: report.invocation_id,
        executor: report.executor.clone(),
        version: report.version.clone(),
        attempts: report.attempts,
        duration_ms: report.duration.as_secs_f64() * 1000.0,
        result: None,
        error: None,
        dry_run: report.dry_run,
        writes: report.writes.clone(),
        proposal: None,
        changed: false,
        confirmed: None,
    };
    let failed = |failure: Failure, detail: String| InvocationError::Failed {
        failure,
        detail,
        invocation_id: report.invocation_id,
    };
    let status = match &report.outcome {
        InvocationOutcome::Ok { output } => {
            body.result = Some(output.clone());
            200
        }
        InvocationOutcome::Changed { output } => {
            body.result = Some(output.clone());
            body.changed = true;
            409
        }
        InvocationOutcome::UserError { body: error } => {
            let invalid_input =
                error.get("error").and_then(|e| e.as_str()) == Some("invalid_input");
            body.error = Some(error.clone());
            if invalid_input {
                422
            } else {
                409
            }
        }
        InvocationOutcome::Trap { message } => {
            return Err(failed(
                Failure::Trapped,
                format!("the executor trapped: {message}; nothing was written"),
            ))
        }
        InvocationOutcome::Timeout { timeout_ms } => {
            return Err(failed(
                Failure::TimedOut,
                format!("the executor ran longer than {timeout_ms} ms; nothing was written"),
            ))
        }
        InvocationOutcome::RetriesExhausted {
            attempts,
            last_reason,
        } => {
            return Err(failed(
                Failure::RetriesExhausted,
                format!(
                    "{attempts} attempts all conflicted (last: {last_reason}); nothing was \
                     written; retry later"
                ),
            ))
        }
        InvocationOutcome::LimitExceeded { limit, message } => {
            return Err(failed(
                Failure::LimitExceeded,
                format!("the executor went over its {limit} limit: {message}; nothing was written"),
            ))
        }
        InvocationOutcome::CommitUnknown { message } => {
            return Err(failed(
                Failure::CommitUnknown,
                format!(
                    "the connection to the database was lost after COMMIT was sent and the \
                     database could not be asked whether it committed ({message}): all or \
                     nothing of it was written; retry with the same Idempotency-Key to learn which"
                ),
            ))
        }
        InvocationOutcome::HostFailure { message } => {
            return Err(failed(
                Failure::HostFailure,
                format!(
                    "the host could not complete the invocation: {message}; nothing was written"
                ),
            ))
        }
    };
    extra(&mut body);
    Ok(Answer::of(status, &body))
}
