//! Store data: the invocation's context, its transaction, and its limits.

use crate::capabilities::context::InvocationContext;
use crate::capabilities::transaction::InvocationTransaction;

/// What one attempt's `Store` holds. A fresh one per attempt.
pub struct InvocationState {
    pub context: InvocationContext,
    pub transaction: InvocationTransaction,
    pub limits: wasmtime::StoreLimits,
}
