//! Whether the database can be reached: connection faults noted as they are
//! seen (so pooled connections idle since are tested before reuse), and a
//! probe that tells requests to fail fast while the database is down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`] of the last connection fault seen in this
/// process (0: none). Process-wide: a restart or a storm of terminated
/// backends concerns every pool on that server.
static LAST_FAULT_MS: AtomicU64 = AtomicU64::new(0);

/// A connection was found dead: pooled connections idle since before now
/// may be dead too, and are pinged before they are handed out again.
pub fn note_fault() {
    let now = epoch().elapsed().as_millis() as u64;
    LAST_FAULT_MS.fetch_max(now.max(1), Ordering::Relaxed);
}

/// Whether a connection idle for `idle_for` has been idle since a fault (and
/// so must be tested before use). Pools skip sqlx's ping otherwise: a round
/// trip per acquire, for a rare connection the server closed meanwhile.
pub fn idle_since_fault(idle_for: Duration) -> bool {
    let fault = LAST_FAULT_MS.load(Ordering::Relaxed);
    if fault == 0 {
        return false;
    }
    let now = epoch().elapsed().as_millis() as u64;
    let idle_from = now.saturating_sub(idle_for.as_millis() as u64);
    // A margin: a fault seen just after a connection went idle may be its own.
    idle_from <= fault + 50
}

/// The database's reachability as the probe last found it.
#[derive(Clone)]
pub struct DbHealth {
    inner: Arc<HealthState>,
}

struct HealthState {
    down: AtomicBool,
    /// Why it is down, for `/readyz`.
    reason: Mutex<String>,
}

/// How often the probe asks, and how long an answer may take.
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// Consecutive failed probes before requests fail fast: one slow answer on
/// a busy machine is not an outage.
const FAILURES_TO_DOWN: u32 = 2;

impl Default for DbHealth {
    fn default() -> Self {
        Self {
            inner: Arc::new(HealthState {
                down: AtomicBool::new(false),
                reason: Mutex::new(String::new()),
            }),
        }
    }
}

impl DbHealth {
    /// Up until a probe says otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// Why the database is down, or None while it answers.
    pub fn down(&self) -> Option<String> {
        self.inner
            .down
            .load(Ordering::Relaxed)
            .then(|| self.inner.reason.lock().expect("not poisoned").clone())
    }

    fn set(&self, down: Option<String>) {
        let was = self.inner.down.swap(down.is_some(), Ordering::Relaxed);
        match down {
            Some(reason) => {
                if !was {
                    tracing::warn!("the database is unreachable: {reason}");
                }
                *self.inner.reason.lock().expect("not poisoned") = reason;
            }
            None if was => tracing::info!("the database answers again"),
            None => {}
        }
    }

    /// Probe the database at `options` (a connection of its own, so a full
    /// pool does not read as an outage) until the task is aborted.
    pub fn spawn_probe(&self, options: PgConnectOptions) -> tokio::task::JoinHandle<()> {
        let health = self.clone();
        tokio::spawn(async move {
            let options = options.log_statements(tracing::log::LevelFilter::Off);
            let mut conn: Option<PgConnection> = None;
            let mut failures = 0;
            loop {
                let answered = tokio::time::timeout(PROBE_TIMEOUT, async {
                    if let Some(existing) = conn.as_mut() {
                        // A connection killed since the last probe (an
                        // administrator's pg_terminate_backend, a pooler)
                        // says nothing of the database: ask again at once on
                        // a fresh one, and count only that answer.
                        if existing.ping().await.is_ok() {
                            return Ok(());
                        }
                        conn = None;
                    }
                    let fresh = conn.insert(PgConnection::connect_with(&options).await?);
                    fresh.ping().await
                })
                .await
                .unwrap_or_else(|_| {
                    Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer within {} ms", PROBE_TIMEOUT.as_millis()),
                    )))
                });
                match answered {
                    Ok(()) => {
                        failures = 0;
                        health.set(None);
                    }
                    Err(error) => {
                        conn = None;
                        failures += 1;
                        note_fault();
                        if failures >= FAILURES_TO_DOWN {
                            health.set(Some(error.to_string()));
                        }
                    }
                }
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_idle_since_a_fault_are_suspect() {
        std::thread::sleep(Duration::from_millis(120));
        note_fault();
        assert!(idle_since_fault(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!idle_since_fault(Duration::from_millis(10)));
    }
}
