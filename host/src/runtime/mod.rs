//! The executor runtime: the wasmtime engine, the registry of compiled
//! executors, the per-invocation Store state, admission, one attempt and
//! the invocation loop that keeps the transactional discipline. It knows
//! nothing of HTTP.

mod admission;
mod attempt;
mod engine;
mod host;
pub mod imports;
mod invoke;
mod metrics;
mod outcome;
mod registry;
mod settings;
mod state;

pub use crate::capabilities::context::LogLine;
pub use crate::capabilities::transaction::{Isolation, TransactionSettings};
pub use engine::{EngineSettings, ExecutorEngine};
pub use host::Host;
pub use invoke::{CommitHook, InvokeOptions};
pub use metrics::Metrics;
pub use outcome::{InvocationOutcome, InvocationReport, InvokeError};
pub use registry::{digest, CompileLimits, ExecutorRegistry, LoadedExecutor, RejectedComponent};
pub use settings::{DisciplineSettings, HostSettings};
pub use state::InvocationState;
