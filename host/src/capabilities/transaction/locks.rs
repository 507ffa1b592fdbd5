//! `lock(key)` and the plans replays queue by: wait before the snapshot when
//! nothing was read yet, otherwise try and, if taken, replay queued on every
//! key in one sorted order; and the exclusion keys writers queue on.

use std::collections::{BTreeSet, HashSet};

use super::session::{lock_timeout_error, Session};
use super::settings::TransactionSettings;
use crate::bindings::{CallError, Field, Value};
use crate::capabilities::{CapabilityError, Doom};
use crate::db::catalog::Table;
use crate::db::errors::RetryReason;
use crate::db::locks::{advisory_lock_id, LockNamespace};
use crate::TenantId;

/// Most bytes of a lock key.
pub const MAX_LOCK_KEY_BYTES: usize = 256;

/// What the previous attempts taught the next one: keys to queue on before
/// the transaction starts, and keys whose wait already timed out.
#[derive(Debug, Clone, Default)]
pub struct LockPlan {
    pub queue_first: BTreeSet<String>,
    pub timed_out: HashSet<String>,
    /// The executor whose replay queue (in this tenant) to wait for first,
    /// once the invocation has collided often enough
    /// (`DisciplineSettings::replay_queue_after`).
    pub replay_queue: Option<String>,
}

/// The keys one attempt holds and asked for, and its plan.
#[derive(Debug, Default)]
pub struct Locks {
    plan: LockPlan,
    held: HashSet<String>,
    /// Keys the executor asked for in this attempt (planned keys it did not
    /// ask for again are not carried to the next attempt).
    requested: BTreeSet<String>,
}

/// `invalid` unless `key` has 1 to [`MAX_LOCK_KEY_BYTES`] bytes.
pub fn check_key(key: &str) -> Result<(), CallError> {
    if key.is_empty() || key.len() > MAX_LOCK_KEY_BYTES {
        return Err(CallError::Invalid(format!(
            "lock keys are 1 to {MAX_LOCK_KEY_BYTES} bytes, got {}",
            key.len()
        )));
    }
    Ok(())
}

impl Locks {
    pub fn new(plan: LockPlan) -> Self {
        Self {
            plan,
            ..Self::default()
        }
    }

    /// What the next attempt should know (keys contended in this one).
    pub fn plan(&self) -> &LockPlan {
        &self.plan
    }

    /// Before the attempt runs: queue on the keys earlier attempts found
    /// contended. The replay queue first, then the keys in sorted order: one
    /// order for every invocation, so these waits cannot deadlock.
    pub async fn acquire_planned(
        &mut self,
        session: &mut Session,
        tenant: TenantId,
    ) -> Result<(), CapabilityError> {
        if let Some(executor) = self.plan.replay_queue.clone() {
            let id = advisory_lock_id(LockNamespace::Replay, tenant, &executor);
            if !session.session_lock(id, false).await? {
                // Waited a whole lock timeout: go on unqueued.
                self.plan.replay_queue = None;
            }
        }
        let keys: Vec<String> = self.plan.queue_first.iter().cloned().collect();
        for key in keys {
            if self.plan.timed_out.contains(&key) {
                continue;
            }
            let id = advisory_lock_id(LockNamespace::Lock, tenant, &key);
            if session.session_lock(id, false).await? {
                self.held.insert(key);
            } else {
                self.plan.timed_out.insert(key);
            }
        }
        Ok(())
    }

    /// `lock(key)` (already checked and granted): serialize with other
    /// invocations of this tenant on `key`.
    pub async fn lock(
        &mut self,
        session: &mut Session,
        tenant: TenantId,
        settings: &TransactionSettings,
        key: &str,
    ) -> Result<(), CapabilityError> {
        self.requested.insert(key.to_owned());
        if self.held.contains(key) {
            return Ok(());
        }
        if self.held.len() >= settings.max_locks {
            return Err(CapabilityError::Abort(Doom::Limit {
                limit: "locks",
                message: format!("more than {} lock keys held at once", settings.max_locks),
            }));
        }
        let timed_out = || lock_timeout_error(&format!("lock {key:?}"), settings.lock_timeout);
        let id = advisory_lock_id(LockNamespace::Lock, tenant, key);
        if !session.begun() {
            // No snapshot yet: waiting here is safe, the transaction starts after.
            if session.session_lock(id, true).await? {
                self.held.insert(key.to_owned());
                return Ok(());
            }
            return Err(timed_out().into());
        }
        if session.try_xact_lock(id).await? {
            self.held.insert(key.to_owned());
            return Ok(());
        }
        if self.plan.timed_out.contains(key) || !settings.replay_conflicts {
            return Err(timed_out().into());
        }
        // Waiting now would leave this attempt deciding on a stale snapshot.
        // Abandon it; the replay queues, before its snapshot exists, on every
        // key this attempt asked for (this one included), all in one sorted
        // order. Rebuilt from this attempt rather than added to, so that
        // keys only an earlier attempt needed do not pile up across replays.
        self.plan.queue_first = self.requested.clone();
        Err(CapabilityError::Abort(Doom::Retry {
            reason: RetryReason::LockContended,
            contended_key: Some(key.to_owned()),
        }))
    }
}

/// The exclusion-key values a write names (for example the service of a
/// booking), which the host queues on before writing.
pub fn exclusion_keys_of(
    table: &Table,
    fields: &[Field],
    settings: &TransactionSettings,
) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    if let (Some(key), true) = (&table.exclusion_key, settings.queue_exclusion_writers) {
        for field in fields
            .iter()
            .filter(|f| key.columns.contains(&f.column.as_str()))
        {
            if let Value::Uuid(id) = &field.value {
                keys.insert(id.clone());
            }
        }
    }
    keys
}
