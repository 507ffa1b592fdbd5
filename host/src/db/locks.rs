//! Advisory locks as the host uses them: stable ids per tenant and key, and
//! the statements that take, try and release them.

use std::time::Duration;

use crate::TenantId;

/// What an advisory lock id stands for; each namespace hashes apart, so a
/// tenant's `lock("x")` never collides with the host's own locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockNamespace {
    /// An executor's `lock(key)`.
    Lock,
    /// Writers of one exclusion-constraint key (`<table>:<key>`).
    Exclusion,
    /// The replays of one executor that keep colliding.
    Replay,
    /// An Idempotency-Key being processed.
    Idempotency,
    /// The one audit chainer across hosts.
    AuditChainer,
}

impl LockNamespace {
    fn as_str(self) -> &'static str {
        match self {
            LockNamespace::Lock => "lock",
            LockNamespace::Exclusion => "exclusion",
            LockNamespace::Replay => "replay",
            LockNamespace::Idempotency => "idempotency",
            LockNamespace::AuditChainer => "audit-chainer",
        }
    }
}

/// A stable 64-bit advisory-lock id for a namespaced key (FNV-1a): every host
/// process must map a key to the same id, which `DefaultHasher` does not promise.
pub fn advisory_lock_id(namespace: LockNamespace, tenant: TenantId, key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        namespace.as_str().as_bytes(),
        b"\0",
        tenant.0.as_bytes(),
        b"\0",
        key.as_bytes(),
    ] {
        for byte in part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash as i64
}

/// Release every session-level lock and the lock timeout set for them.
pub const UNLOCK_ALL: &str = "SELECT pg_advisory_unlock_all(); RESET lock_timeout";

/// Try a transaction-level lock without waiting (one bound parameter: the id).
pub const TRY_XACT_LOCK: &str = "SELECT pg_try_advisory_xact_lock($1)";

/// Wait (at most `timeout`) for `id` as a session-level lock.
pub fn session_lock_sql(id: i64, timeout: Duration) -> String {
    format!(
        "SET lock_timeout = {}; SELECT pg_advisory_lock({id})",
        timeout.as_millis()
    )
}

/// Wait (at most `timeout`) for `id` as a session-level lock, then run
/// `begin` in the same round trip, so the transaction's snapshot is taken
/// after the wait. The lock's statement runs in an implicit transaction
/// that `BEGIN ISOLATION LEVEL` cannot adopt; COMMIT ends it first (it
/// warns there, hence the local `client_min_messages`).
pub fn session_lock_then_begin_sql(id: i64, timeout: Duration, begin: &str) -> String {
    format!(
        "SET lock_timeout = {}; SET LOCAL client_min_messages = error; \
         SELECT pg_advisory_lock({id}); COMMIT; {begin}",
        timeout.as_millis()
    )
}

/// Append a wait for the transaction-level lock `id` to a batch.
pub fn push_xact_lock(batch: &mut String, id: i64) {
    batch.push_str(&format!("; SELECT pg_advisory_xact_lock({id})"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_namespaced() {
        let tenant = TenantId(uuid::Uuid::nil());
        // The value every host must agree on (FNV-1a of "lock\0<nil uuid bytes>\0k").
        let id = advisory_lock_id(LockNamespace::Lock, tenant, "k");
        assert_eq!(id, advisory_lock_id(LockNamespace::Lock, tenant, "k"));
        assert_ne!(id, advisory_lock_id(LockNamespace::Exclusion, tenant, "k"));
        let other = TenantId(uuid::Uuid::from_u128(1));
        assert_ne!(id, advisory_lock_id(LockNamespace::Lock, other, "k"));
    }
}
