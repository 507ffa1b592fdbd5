//! Statements outside invocations (key lookups, idempotency records, reads)
//! retried on a fresh connection when the one they ran on was found dead,
//! each try bounded in time, so a dead pooled connection never reaches the
//! client as an error.

use std::future::Future;
use std::time::Duration;

use super::errors::is_connectivity;
use super::health::note_fault;

/// Tries of one statement: the first dead connection found marks every
/// connection idle since as suspect (pinged before reuse), so a second try
/// rarely meets another; but a storm of terminated backends can kill a
/// fresh one too, and a read is cheap to run again.
const TRIES: u32 = 5;
/// Bound on one try: a database that stopped answering (a network
/// partition) must not hold a request.
pub const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// Run `op` until it succeeds, fails for a reason other than a lost
/// connection, or has been tried [`TRIES`] times. Only for statements that
/// are safe to run twice (reads, and writes that are no-ops the second time).
pub async fn retrying<T, F, Fut>(mut op: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut tried = 0;
    loop {
        tried += 1;
        let result = match tokio::time::timeout(TRY_TIMEOUT, op()).await {
            Ok(result) => result,
            // Silence is not a dead connection: another try would wait as long.
            Err(_) => {
                note_fault();
                return Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the database did not answer within {} s",
                        TRY_TIMEOUT.as_secs()
                    ),
                )));
            }
        };
        match result {
            Err(error) if is_connectivity(&error) => {
                note_fault();
                if tried >= TRIES {
                    return Err(error);
                }
                tracing::debug!("retrying on a fresh connection: {error}");
            }
            other => return other,
        }
    }
}
