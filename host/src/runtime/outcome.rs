//! How invocations and their attempts end, as a chain of enums joined by
//! `From`: a doomed call becomes an attempt's end, an attempt's failure
//! becomes the invocation's outcome, which the report carries.

use std::time::Duration;

use crate::capabilities::context::LogLine;
use crate::capabilities::transaction::WriteRecord;
use crate::capabilities::Doom;
use crate::db::audit::AttemptOutcome;
use crate::db::errors::RetryReason;

/// Why an invocation could not start. Nothing ran and nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no executor named {0:?}")]
    UnknownExecutor(String),
    #[error("input is not valid JSON: {0}")]
    InvalidInput(String),
    #[error("the input is {bytes} bytes; at most {max} are accepted")]
    InputTooLarge { bytes: usize, max: usize },
    /// The tenant already has its cap of invocations running: one tenant
    /// cannot take every worker, instance and connection.
    #[error("the tenant already has {0} invocations in flight; retry shortly")]
    TenantBusy(usize),
}

/// How an invocation ended: exactly one of these. Only `Ok` committed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InvocationOutcome {
    /// `execute` returned ok and the transaction committed.
    Ok { output: serde_json::Value },
    /// `execute` returned an error result; everything was rolled back.
    UserError { body: serde_json::Value },
    /// The executor trapped (panic, bad output, ...); rolled back.
    Trap { message: String },
    /// The attempt exceeded the execution timeout; rolled back.
    Timeout { timeout_ms: u64 },
    /// Every attempt hit a serialization failure, deadlock or contended
    /// lock. Nothing was written; retrying later may succeed.
    RetriesExhausted {
        attempts: u32,
        last_reason: RetryReason,
    },
    /// The database failed in a way a replay would not fix; rolled back.
    HostFailure { message: String },
    /// The executor went over a limit (memory, wasm stack, capability
    /// calls, rows read or written, locks held, output size); rolled back.
    /// `limit` names it: memory, table, wasm_stack, calls, rows_read,
    /// rows_written, locks, output_bytes.
    LimitExceeded { limit: String, message: String },
    /// A proposal's confirmation: `execute` returned ok, but its write set
    /// (in the report's `writes`) was not the proposal's; rolled back.
    Changed { output: serde_json::Value },
    /// The connection was lost after COMMIT was sent and the server could
    /// not be asked whether it committed (it stayed unreachable): it did
    /// all or nothing. A retry with the same Idempotency-Key answers which.
    CommitUnknown { message: String },
}

impl InvocationOutcome {
    /// The short kind name (`ok`, `user_error`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            InvocationOutcome::Ok { .. } => "ok",
            InvocationOutcome::UserError { .. } => "user_error",
            InvocationOutcome::Trap { .. } => "trap",
            InvocationOutcome::Timeout { .. } => "timeout",
            InvocationOutcome::RetriesExhausted { .. } => "retries_exhausted",
            InvocationOutcome::HostFailure { .. } => "host_failure",
            InvocationOutcome::LimitExceeded { .. } => "limit_exceeded",
            InvocationOutcome::Changed { .. } => "changed",
            InvocationOutcome::CommitUnknown { .. } => "commit_unknown",
        }
    }
}

/// What the host reports about one invocation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InvocationReport {
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    /// The executor version (SHA-256 of its component) that ran.
    pub version: String,
    pub tenant: String,
    #[serde(flatten)]
    pub outcome: InvocationOutcome,
    /// Attempts made (1 + replays).
    pub attempts: u32,
    /// Why each replay happened, in order.
    pub replays: Vec<RetryReason>,
    /// Every line the executor logged, in every attempt.
    pub logs: Vec<LogLine>,
    /// A dry run: the transaction was rolled back whatever the outcome.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// In a dry run (and a changed confirmation), every row the successful
    /// attempt wrote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WriteRecord>,
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// An attempt that ends the invocation without a result to commit; it was
/// rolled back.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptFailure {
    UserError { body: serde_json::Value },
    Trap { message: String },
    Timeout { timeout_ms: u64 },
    HostFailure { message: String },
    LimitExceeded { limit: String, message: String },
    CommitUnknown { message: String },
}

impl From<AttemptFailure> for InvocationOutcome {
    fn from(failure: AttemptFailure) -> Self {
        match failure {
            AttemptFailure::UserError { body } => InvocationOutcome::UserError { body },
            AttemptFailure::Trap { message } => InvocationOutcome::Trap { message },
            AttemptFailure::Timeout { timeout_ms } => InvocationOutcome::Timeout { timeout_ms },
            AttemptFailure::HostFailure { message } => InvocationOutcome::HostFailure { message },
            AttemptFailure::LimitExceeded { limit, message } => {
                InvocationOutcome::LimitExceeded { limit, message }
            }
            AttemptFailure::CommitUnknown { message } => {
                InvocationOutcome::CommitUnknown { message }
            }
        }
    }
}

/// How an attempt ended when it did not end with a result to commit.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptEnd {
    /// Run the invocation again (serialization failure, deadlock, contended
    /// lock, lost connection).
    Replay(RetryReason),
    /// The invocation ends here.
    Failed(AttemptFailure),
}

impl From<AttemptFailure> for AttemptEnd {
    fn from(failure: AttemptFailure) -> Self {
        AttemptEnd::Failed(failure)
    }
}

impl From<Doom> for AttemptEnd {
    fn from(doom: Doom) -> Self {
        match doom {
            Doom::Retry { reason, .. } => AttemptEnd::Replay(reason),
            Doom::Fatal(message) => AttemptFailure::HostFailure { message }.into(),
            Doom::Limit { limit, message } => AttemptFailure::LimitExceeded {
                limit: limit.into(),
                message,
            }
            .into(),
            Doom::CommitUnknown { message, .. } => AttemptFailure::CommitUnknown { message }.into(),
        }
    }
}

impl AttemptEnd {
    /// Why the attempt is replayed, if it is.
    pub fn replay_reason(&self) -> Option<RetryReason> {
        match self {
            AttemptEnd::Replay(reason) => Some(*reason),
            AttemptEnd::Failed(_) => None,
        }
    }

    /// What the audit records for an attempt that ended so.
    pub fn attempt_outcome(&self) -> AttemptOutcome {
        match self {
            AttemptEnd::Replay(_) => AttemptOutcome::Replayed,
            AttemptEnd::Failed(AttemptFailure::UserError { .. }) => AttemptOutcome::RolledBack,
            AttemptEnd::Failed(AttemptFailure::Trap { .. }) => AttemptOutcome::Trapped,
            AttemptEnd::Failed(AttemptFailure::Timeout { .. }) => AttemptOutcome::TimedOut,
            AttemptEnd::Failed(AttemptFailure::HostFailure { .. }) => AttemptOutcome::HostFailure,
            AttemptEnd::Failed(AttemptFailure::LimitExceeded { .. }) => {
                AttemptOutcome::LimitExceeded
            }
            AttemptEnd::Failed(AttemptFailure::CommitUnknown { .. }) => {
                AttemptOutcome::CommitUnknown
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dooms_end_attempts_and_failures_end_invocations() {
        let retry = Doom::Retry {
            reason: RetryReason::Deadlock,
            contended_key: None,
        };
        assert_eq!(
            AttemptEnd::from(retry),
            AttemptEnd::Replay(RetryReason::Deadlock)
        );
        let fatal = AttemptEnd::from(Doom::Fatal("gone".into()));
        assert_eq!(fatal.attempt_outcome(), AttemptOutcome::HostFailure);
        let limit = AttemptEnd::from(Doom::Limit {
            limit: "calls",
            message: "too many".into(),
        });
        assert_eq!(limit.attempt_outcome(), AttemptOutcome::LimitExceeded);
        let AttemptEnd::Failed(failure) = limit else {
            panic!("a limit ends the invocation")
        };
        assert_eq!(InvocationOutcome::from(failure).kind(), "limit_exceeded");
    }
}
