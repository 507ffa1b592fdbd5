//! What executors can call: one module per WIT interface. Each `host.rs`
//! implements the generated trait thinly; the work sits in a plain Rust type
//! that tests drive directly on a real transaction, without wasm.

pub mod audit;
pub mod availability;
pub mod context;
mod error;
pub mod grant;
pub mod transaction;

pub use error::{CapabilityError, Doom};
