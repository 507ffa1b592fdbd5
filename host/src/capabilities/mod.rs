//! What executors can call: one module per WIT interface. Each `host.rs`
//! implements the generated trait thinly; the work sits in a plain Rust type
//! that tests drive directly on a real transaction, without wasm.

pub mod audit;
pub mod context;
pub mod grant;
pub mod transaction;

use crate::bindings::CallError;
use crate::db::errors::RetryReason;

/// How a capability call failed.
#[derive(Debug)]
pub enum CapabilityError {
    /// A typed error the executor receives and may handle.
    Call(CallError),
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
}

impl std::fmt::Display for Doom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Doom::Retry { reason, .. } => write!(f, "attempt abandoned for replay: {reason}"),
            Doom::Fatal(message) => write!(f, "attempt abandoned: {message}"),
            Doom::Limit { limit, message } => {
                write!(f, "attempt abandoned: limit {limit} exceeded: {message}")
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
