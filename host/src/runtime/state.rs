//! Store data: the invocation's context, its transaction, and its limits.

use crate::capabilities::context::InvocationContext;
use crate::capabilities::transaction::InvocationTransaction;

/// What one attempt's `Store` holds. A fresh one per attempt.
pub struct InvocationState {
    pub context: InvocationContext,
    pub transaction: InvocationTransaction,
    pub limits: InstanceLimits,
}

/// Wasmtime's `StoreLimits`, remembering a refused growth so the attempt
/// can end as `limit_exceeded` (memory) instead of an anonymous trap.
pub struct InstanceLimits {
    limits: wasmtime::StoreLimits,
    /// Bytes of linear memory (or table elements) last asked for and refused.
    pub refused: Option<(&'static str, usize)>,
}

impl InstanceLimits {
    /// At most `max_memory_bytes` of linear memory per instance; growing past
    /// it traps (rather than handing the guest a failed allocation to ignore).
    pub fn new(max_memory_bytes: usize, max_table_elements: usize) -> Self {
        Self {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(max_memory_bytes)
                .table_elements(max_table_elements)
                .trap_on_grow_failure(true)
                .build(),
            refused: None,
        }
    }
}

impl wasmtime::ResourceLimiter for InstanceLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.refused = Some(("memory", desired));
        }
        allowed
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.table_growing(current, desired, maximum);
        if !matches!(allowed, Ok(true)) {
            self.refused = Some(("table", desired));
        }
        allowed
    }
}
