//! How the transaction capability behaves: isolation, timeouts, budgets;
//! shared by every attempt of every invocation.

use std::time::Duration;

use crate::db::batch::BeginSettings;
pub use crate::db::batch::Isolation;

/// How the capability behaves; shared by every attempt of every invocation.
#[derive(Debug, Clone)]
pub struct TransactionSettings {
    pub isolation: Isolation,
    /// Trap attempts that hit a serialization failure or deadlock so the
    /// invocation is replayed. Off only in the test-only unsafe discipline.
    pub replay_conflicts: bool,
    /// Queue writers of one exclusion-constraint key on an advisory lock
    /// before they write (DESIGN.md, trap 2).
    pub queue_exclusion_writers: bool,
    /// Bound on any lock wait: `lock`, exclusion queueing, row locks.
    pub lock_timeout: Duration,
    /// Bound on any one statement.
    pub statement_timeout: Duration,
    /// Most rows one query may return; asking for more is `limit-exceeded`.
    pub max_rows_per_query: u32,
    /// Bound on the transaction sitting idle between two statements.
    pub idle_in_transaction_timeout: Duration,
    /// Budgets of one attempt. Going over one abandons the attempt (a trap
    /// the executor cannot catch) and the invocation ends `limit_exceeded`:
    /// capability calls made,
    pub max_calls: u32,
    /// rows returned by all its queries together,
    pub max_rows_read: u64,
    /// rows inserted, updated or deleted together,
    pub max_rows_written: u64,
    /// and distinct `lock` keys held at once.
    pub max_locks: usize,
    /// Add `tenant_id = <tenant>` to every statement. Test-only when off:
    /// proves that row-level security alone keeps tenants apart.
    pub scope_to_tenant: bool,
}

impl Default for TransactionSettings {
    fn default() -> Self {
        Self {
            isolation: Isolation::Serializable,
            replay_conflicts: true,
            queue_exclusion_writers: true,
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
            max_rows_per_query: 1000,
            idle_in_transaction_timeout: Duration::from_secs(30),
            max_calls: 1_000,
            max_rows_read: 100_000,
            max_rows_written: 10_000,
            max_locks: 64,
            scope_to_tenant: true,
        }
    }
}

impl TransactionSettings {
    /// What each transaction begins with.
    pub fn begin(&self) -> BeginSettings {
        BeginSettings {
            isolation: self.isolation,
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            idle_in_transaction_timeout: self.idle_in_transaction_timeout,
        }
    }
}
