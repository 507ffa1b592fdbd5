//! The literal batches an invocation's session sends, several statements in
//! one round trip: BEGIN with its settings, a write's savepoint and queue,
//! and COMMIT or ROLLBACK with the audit and the unlock riding along.

use std::time::Duration;

use super::locks::{self, LockNamespace, UNLOCK_ALL};
use crate::TenantId;

/// Transaction isolation of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Serializable,
    /// Test-only: what a naive application gets by default. Used to prove
    /// that the race tests detect the anomalies the discipline prevents.
    ReadCommitted,
}

/// What every transaction of an attempt begins with.
#[derive(Debug, Clone, Copy)]
pub struct BeginSettings {
    pub isolation: Isolation,
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
    pub idle_in_transaction_timeout: Duration,
}

/// BEGIN at the isolation level, the timeouts for this transaction only,
/// and the tenant row-level security admits.
pub fn begin(settings: &BeginSettings, tenant: TenantId) -> String {
    let isolation = match settings.isolation {
        Isolation::Serializable => "SERIALIZABLE",
        Isolation::ReadCommitted => "READ COMMITTED",
    };
    format!(
        "BEGIN ISOLATION LEVEL {isolation}; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; \
         SET LOCAL idle_in_transaction_session_timeout = {}; {}",
        settings.lock_timeout.as_millis(),
        settings.statement_timeout.as_millis(),
        settings.idle_in_transaction_timeout.as_millis(),
        super::set_tenant_sql(tenant),
    )
}

/// The savepoint every write runs in. At most one stays open: nesting one
/// per write would grow the subtransactions every later snapshot has to
/// look through, so the previous one (if open) is released in the same
/// round trip.
const SAVEPOINT: &str = "SAVEPOINT capability_write";
const RELEASE_AND_SAVEPOINT: &str =
    "RELEASE SAVEPOINT capability_write; SAVEPOINT capability_write";

/// Undo a refused write (the savepoint itself stays).
pub const ROLLBACK_TO_SAVEPOINT: &str = "ROLLBACK TO SAVEPOINT capability_write";

/// A write's setup: its savepoint, then a wait for each exclusion key of
/// `table` (in the order given, which callers keep sorted).
pub fn write_setup<'a>(
    savepoint_open: bool,
    tenant: TenantId,
    table: &str,
    exclusion_keys: impl IntoIterator<Item = &'a String>,
) -> String {
    let mut setup = String::from(if savepoint_open {
        RELEASE_AND_SAVEPOINT
    } else {
        SAVEPOINT
    });
    for key in exclusion_keys {
        let id =
            locks::advisory_lock_id(LockNamespace::Exclusion, tenant, &format!("{table}:{key}"));
        locks::push_xact_lock(&mut setup, id);
    }
    setup
}

/// COMMIT, with `audit` just before it (an audit that cannot be written
/// fails the commit rather than going missing) and the session locks
/// released just after (a queue on a hot key moves one round trip sooner
/// per holder). The batch stops at a failed COMMIT.
pub fn commit(audit: Option<&str>, unlock: bool) -> String {
    let mut batch = match audit {
        Some(audit) => format!("{audit}; COMMIT"),
        None => "COMMIT".to_owned(),
    };
    if unlock {
        batch.push_str("; ");
        batch.push_str(UNLOCK_ALL);
    }
    batch
}

/// ROLLBACK (if a transaction is open), then `audit` outside it, then the
/// session locks released; `None` when there is nothing to send.
pub fn rollback(begun: bool, audit: Option<&str>, unlock: bool) -> Option<String> {
    let mut parts = Vec::with_capacity(3);
    if begun {
        parts.push("ROLLBACK");
    }
    if let Some(audit) = audit {
        parts.push(audit);
    }
    if parts.is_empty() {
        return None;
    }
    if unlock {
        parts.push(UNLOCK_ALL);
    }
    Some(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_put_each_statement_where_the_protocol_needs_it() {
        assert_eq!(commit(None, false), "COMMIT");
        assert_eq!(
            commit(Some("EXECUTE a"), true),
            format!("EXECUTE a; COMMIT; {UNLOCK_ALL}")
        );
        assert_eq!(rollback(false, None, true), None);
        assert_eq!(
            rollback(true, Some("EXECUTE a"), true).unwrap(),
            format!("ROLLBACK; EXECUTE a; {UNLOCK_ALL}")
        );
        let tenant = TenantId(uuid::Uuid::nil());
        let keys = ["k".to_owned()];
        assert_eq!(
            write_setup(false, tenant, "bookings", &[]),
            "SAVEPOINT capability_write"
        );
        assert!(write_setup(true, tenant, "bookings", &keys)
            .starts_with("RELEASE SAVEPOINT capability_write; SAVEPOINT capability_write; SELECT pg_advisory_xact_lock("));
    }
}
