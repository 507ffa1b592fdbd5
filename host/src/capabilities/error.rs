//! How a capability call fails: a typed error the executor handles, a
//! denied grant, or a doomed attempt the executor cannot catch.

use super::grant::Denied;
use crate::bindings::{CallError, CallFailure};
use crate::db::errors::RetryReason;

/// How a capability call failed.
#[derive(Debug)]
pub enum CapabilityError {
    /// A typed error the executor receives and may handle.
    Call(CallError),
    /// The executor's grant does not hold the capability: the executor
    /// receives `forbidden` naming it, and the audit records `denied`.
    Denied(Denied),
    /// The attempt is doomed: the executor must not go on. The host traps
    /// the guest (it cannot catch a trap) and decides whether to replay.
    Abort(Doom),
}

/// Why an attempt was abandoned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doom {
    /// Replay the invocation (serialization failure, deadlock, contended lock).
    Retry {
        reason: RetryReason,
        contended_key: Option<String>,
    },
    /// Give up: the database failed in a way a replay would not fix.
    Fatal(String),
    /// Give up: the executor went over one of the attempt's budgets (calls,
    /// rows read or written, locks held). A replay would do the same.
    Limit {
        limit: &'static str,
        message: String,
    },
    /// The connection was lost after COMMIT was sent: whether it committed
    /// is for the invocation loop to find out (by `xid`, the transaction's
    /// id, when it wrote) before it answers or replays.
    CommitUnknown {
        xid: Option<crate::db::commit_status::TxIdentity>,
        message: String,
    },
}

impl std::fmt::Display for Doom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Doom::Retry { reason, .. } => write!(f, "attempt abandoned for replay: {reason}"),
            Doom::Fatal(message) => write!(f, "attempt abandoned: {message}"),
            Doom::Limit { limit, message } => {
                write!(f, "attempt abandoned: limit {limit} exceeded: {message}")
            }
            Doom::CommitUnknown { message, .. } => {
                write!(
                    f,
                    "the connection was lost after COMMIT was sent: {message}"
                )
            }
        }
    }
}

impl std::error::Error for Doom {}

impl From<CallError> for CapabilityError {
    fn from(error: CallError) -> Self {
        CapabilityError::Call(error)
    }
}

impl From<Denied> for CapabilityError {
    fn from(denied: Denied) -> Self {
        CapabilityError::Denied(denied)
    }
}

impl From<Doom> for CapabilityError {
    fn from(doom: Doom) -> Self {
        CapabilityError::Abort(doom)
    }
}

/// What the generated traits return: a doomed attempt becomes a trap the
/// executor cannot catch, so it cannot swallow a serialization failure.
impl From<CapabilityError> for CallFailure {
    fn from(error: CapabilityError) -> Self {
        match error {
            CapabilityError::Call(call) => CallFailure::Error(call),
            CapabilityError::Denied(denied) => {
                CallFailure::Error(CallError::Forbidden(denied.to_string()))
            }
            CapabilityError::Abort(doom) => CallFailure::Trap(wasmtime::Error::new(doom)),
        }
    }
}
