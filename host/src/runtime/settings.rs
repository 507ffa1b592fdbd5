//! What the host is configured with: the discipline of DESIGN.md (and the
//! one test-only way to switch it off) and the limits of every invocation.

use std::time::Duration;

use super::engine::EngineSettings;
use crate::capabilities::transaction::{Isolation, TransactionSettings};

/// The discipline of DESIGN.md. `Default` is the real thing; the one other
/// constructor exists for tests that must show the anomalies it prevents.
#[derive(Debug, Clone)]
pub struct DisciplineSettings {
    pub transaction: TransactionSettings,
    /// Attempts per invocation before giving up with `retries-exhausted`.
    pub max_attempts: u32,
    /// Backoff before a replay after a serialization failure or deadlock:
    /// a random wait in [0, min(cap, base * 2^(attempt-1))] ("full jitter").
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// After this many serialization failures or deadlocks in one
    /// invocation, its further attempts take turns: each waits for the
    /// executor's replay queue (one per tenant and executor) before it
    /// begins, so replays that keep colliding stop colliding with each
    /// other. First attempts never wait there. 0: never queue.
    pub replay_queue_after: u32,
}

impl Default for DisciplineSettings {
    fn default() -> Self {
        Self {
            transaction: TransactionSettings::default(),
            max_attempts: 16,
            backoff_base: Duration::from_millis(2),
            backoff_cap: Duration::from_millis(100),
            replay_queue_after: 2,
        }
    }
}

impl DisciplineSettings {
    /// TEST-ONLY: the discipline switched off. READ COMMITTED, no replay, no
    /// queueing of exclusion-constraint writers: what a naive application
    /// does. Exists so race tests can prove they detect the anomaly.
    pub fn unsafe_for_tests() -> Self {
        Self {
            transaction: TransactionSettings {
                isolation: Isolation::ReadCommitted,
                replay_conflicts: false,
                queue_exclusion_writers: false,
                ..TransactionSettings::default()
            },
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Everything the host is configured with.
#[derive(Debug, Clone)]
pub struct HostSettings {
    pub discipline: DisciplineSettings,
    pub engine: EngineSettings,
    /// Wall-clock bound on one attempt, including time inside host calls.
    pub execution_timeout: Duration,
    /// Most bytes one attempt may log; more ends the invocation
    /// `limit_exceeded` (`log_bytes`).
    pub max_log_bytes: usize,
    /// Most bytes of an executor's result (ok or error); more ends the
    /// invocation `limit_exceeded`.
    pub max_output_bytes: usize,
    /// Most bytes of an invocation's input (refused before anything runs).
    pub max_input_bytes: usize,
    /// Most invocations of one tenant running at once; more are refused
    /// (`TenantBusy`, HTTP 429) rather than queued, so one tenant cannot
    /// take every worker, instance and connection.
    pub max_in_flight_per_tenant: usize,
    /// Record every capability call in the audit log (off only to measure
    /// what auditing costs).
    pub audit: bool,
    /// Most connections one tenant's invocations hold at once (its others
    /// wait without one); default: half the pool, so a hot key of one
    /// tenant leaves the other half to everyone else.
    pub connections_per_tenant: Option<usize>,
    /// Replays of one invocation after its connection was lost before
    /// COMMIT; more and the invocation ends `host_failure` (503).
    pub max_connection_losses: u32,
    /// How long to keep asking the server whether a COMMIT whose answer was
    /// lost committed, before answering `commit_unknown` (503).
    pub commit_resolution_timeout: Duration,
    /// TEST-ONLY, broken on purpose: answer before a COMMIT's fate is
    /// known, taking one whose answer was lost as committed without asking
    /// the server. Exists so the reliability checker can show it catches
    /// the acknowledged-but-lost invocations this makes.
    pub unsafe_assume_lost_commit_committed: bool,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            discipline: DisciplineSettings::default(),
            engine: EngineSettings::default(),
            execution_timeout: Duration::from_secs(10),
            max_log_bytes: 64 * 1024,
            max_output_bytes: 1 << 20,
            max_input_bytes: 1 << 20,
            max_in_flight_per_tenant: 64,
            audit: true,
            connections_per_tenant: None,
            max_connection_losses: 5,
            commit_resolution_timeout: Duration::from_secs(10),
            unsafe_assume_lost_commit_committed: false,
        }
    }
}
