//! The invocation's connection as a state machine: begin, savepoints, session
//! locks, the COMMIT and ROLLBACK batches, and the rule that a connection in
//! an unknown state is closed, never returned to the pool.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::Postgres;

use super::settings::TransactionSettings;
use crate::bindings::{CallError, ConflictInfo};
use crate::capabilities::{CapabilityError, Doom};
use crate::db::catalog::Table;
use crate::db::commit_status::{TxIdentity, SELECT_IDENTITY};
use crate::db::errors::{classify, DbFailure, RetryReason};
use crate::db::sql::Statement;
use crate::db::{batch, locks};
use crate::TenantId;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A write statement, by what it gives back.
pub enum Write {
    Returning(Statement),
    Count(Statement),
}

/// What a write gave back.
pub enum Written {
    Rows(Vec<PgRow>),
    Count(u64),
}

/// Why the COMMIT batch failed (the session has rolled back and unlocked,
/// or closed its connection).
#[derive(Debug)]
pub enum CommitFailed {
    /// Nothing was begun; writing the audit alone failed.
    Audit(sqlx::Error),
    /// The server refused the batch with COMMIT: nothing was committed.
    Commit(sqlx::Error),
    /// The connection was lost after the batch with COMMIT was sent: it may
    /// or may not have committed. `xid` is the transaction's id when it had
    /// one before COMMIT (it wrote), to ask the server which it was.
    Unknown {
        xid: Option<TxIdentity>,
        error: sqlx::Error,
    },
}

/// `lock-timeout`, naming what waited.
pub fn lock_timeout_error(what: &str, timeout: Duration) -> CallError {
    CallError::LockTimeout(format!(
        "{what} was not granted within {} ms",
        timeout.as_millis()
    ))
}

/// One attempt's connection and what is known of its state.
pub struct Session {
    conn: Option<PoolConnection<Postgres>>,
    tenant: TenantId,
    settings: Arc<TransactionSettings>,
    /// A transaction is open.
    begun: bool,
    /// A statement was interrupted midway: the connection cannot be reused.
    in_flight: bool,
    /// The last write's savepoint is still open: released at the start of
    /// the next write's round trip (or by COMMIT/ROLLBACK) rather than in a
    /// round trip of its own.
    savepoint_open: bool,
    /// Session-level advisory locks may be held.
    session_locks: bool,
    /// When the last wait on the database ended: a guest that waited since
    /// the last epoch tick has given its worker thread up in that wait.
    last_wait_ended: Option<Instant>,
    /// Time spent waiting for locks since it was last taken.
    lock_wait: Duration,
    /// The transaction's id, fetched in its first write's round trip: what
    /// a COMMIT whose answer was lost is looked up by.
    xid: Option<TxIdentity>,
}

impl Session {
    /// A session on `conn` (None for `describe()`, where nothing may run).
    pub fn new(
        conn: Option<PoolConnection<Postgres>>,
        tenant: TenantId,
        settings: Arc<TransactionSettings>,
    ) -> Self {
        Self {
            conn,
            tenant,
            settings,
            begun: false,
            in_flight: false,
            savepoint_open: false,
            session_locks: false,
            last_wait_ended: None,
            lock_wait: Duration::ZERO,
            xid: None,
        }
    }

    pub fn has_connection(&self) -> bool {
        self.conn.is_some()
    }

    /// The transaction (and so its snapshot) has begun.
    pub fn begun(&self) -> bool {
        self.begun
    }

    /// When this attempt's last wait on the database ended, if it waited.
    pub fn last_wait_ended(&self) -> Option<Instant> {
        self.last_wait_ended
    }

    /// Lock waits since the last call, for that call's record.
    pub fn take_lock_wait(&mut self) -> Duration {
        std::mem::take(&mut self.lock_wait)
    }

    /// The transaction's id, if it has written.
    pub fn xid(&self) -> Option<TxIdentity> {
        self.xid.clone()
    }

    /// Map a failed statement: a retryable failure or one outside a savepoint
    /// dooms the attempt (PostgreSQL has aborted the transaction). A lost
    /// connection (pools skip sqlx's ping before handing one out, so one the
    /// server closed while idle is found here; or the backend was terminated
    /// mid-attempt) is closed and the attempt replayed on another: COMMIT
    /// was not sent, so nothing of it committed and its locks went with it.
    fn failed(&mut self, error: sqlx::Error) -> CapabilityError {
        CapabilityError::Abort(match classify(&error) {
            DbFailure::Retry(reason) if self.settings.replay_conflicts => Doom::Retry {
                reason,
                contended_key: None,
            },
            DbFailure::ConnectionLost => {
                self.discard();
                Doom::Retry {
                    reason: RetryReason::ConnectionLost,
                    contended_key: None,
                }
            }
            DbFailure::Canceled => Doom::Fatal(format!(
                "a statement exceeded the statement timeout of {} ms",
                self.settings.statement_timeout.as_millis()
            )),
            _ => Doom::Fatal(format!("database error: {error}")),
        })
    }

    /// A statement's answer arrived: the connection is in a known state
    /// again, and the invocation has just waited (see `last_wait_ended`).
    fn wait_ended(&mut self) {
        self.in_flight = false;
        self.last_wait_ended = Some(Instant::now());
    }

    // The statement helpers return boxed futures: sqlx's `Executor` for
    // `&mut PgConnection` trips rustc's higher-ranked Send check when awaited
    // directly inside the generated (Send) host-trait futures.
    fn raw(&mut self, sql: String) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
            self.in_flight = true;
            // A plain string runs as a simple query: several statements, one round trip.
            let done = sqlx::Executor::execute(&mut **conn, sql.as_str()).await;
            self.wait_ended();
            done.map(drop)
        })
    }

    /// A batch whose first statement selects the transaction's id.
    fn raw_xid(&mut self, sql: String) -> BoxFuture<'_, Result<Option<TxIdentity>, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
            self.in_flight = true;
            let rows = sqlx::Executor::fetch_all(&mut **conn, sql.as_str()).await;
            self.wait_ended();
            Ok(rows?.first().and_then(TxIdentity::from_row))
        })
    }

    fn fetch_all_raw(
        &mut self,
        (sql, values): Statement,
    ) -> BoxFuture<'_, Result<Vec<PgRow>, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
            self.in_flight = true;
            let rows = sqlx::query_with(&sql, values).fetch_all(&mut **conn).await;
            self.wait_ended();
            rows
        })
    }

    fn execute_raw(
        &mut self,
        (sql, values): Statement,
    ) -> BoxFuture<'_, Result<PgQueryResult, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
            self.in_flight = true;
            let done = sqlx::query_with(&sql, values).execute(&mut **conn).await;
            self.wait_ended();
            done
        })
    }

    fn try_xact_lock_raw(&mut self, id: i64) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().ok_or(sqlx::Error::PoolClosed)?;
            self.in_flight = true;
            let got = sqlx::query_scalar(locks::TRY_XACT_LOCK)
                .bind(id)
                .fetch_one(&mut **conn)
                .await;
            self.wait_ended();
            got
        })
    }

    /// Begin the transaction if it has not begun.
    pub async fn begin(&mut self) -> Result<(), CapabilityError> {
        if self.begun {
            return Ok(());
        }
        let sql = batch::begin(&self.settings.begin(), self.tenant);
        if let Err(error) = self.raw(sql).await {
            return Err(self.failed(error));
        }
        self.begun = true;
        Ok(())
    }

    pub async fn fetch_all(&mut self, statement: Statement) -> Result<Vec<PgRow>, CapabilityError> {
        match self.fetch_all_raw(statement).await {
            Ok(rows) => Ok(rows),
            Err(error) => Err(self.failed(error)),
        }
    }

    pub async fn execute(
        &mut self,
        statement: Statement,
    ) -> Result<PgQueryResult, CapabilityError> {
        match self.execute_raw(statement).await {
            Ok(done) => Ok(done),
            Err(error) => Err(self.failed(error)),
        }
    }

    /// Try the transaction-level lock `id` without waiting.
    pub async fn try_xact_lock(&mut self, id: i64) -> Result<bool, CapabilityError> {
        let started = Instant::now();
        let got = self.try_xact_lock_raw(id).await;
        self.lock_wait += started.elapsed();
        got.map_err(|e| self.failed(e))
    }

    /// Wait for `id` as a session-level lock, before any snapshot exists.
    /// Ok(false) when the wait exceeded the lock timeout. With `then_begin`,
    /// the transaction begins in the same round trip, right after the grant,
    /// so its snapshot is still taken after the wait.
    pub async fn session_lock(
        &mut self,
        id: i64,
        then_begin: bool,
    ) -> Result<bool, CapabilityError> {
        let timeout = self.settings.lock_timeout;
        let sql = if then_begin {
            let begin = batch::begin(&self.settings.begin(), self.tenant);
            locks::session_lock_then_begin_sql(id, timeout, &begin)
        } else {
            locks::session_lock_sql(id, timeout)
        };
        // Set before the round trip: an error after the grant leaves the
        // lock held, and releasing none is harmless.
        self.session_locks = true;
        let started = Instant::now();
        let waited = self.raw(sql).await;
        self.lock_wait += started.elapsed();
        match waited {
            Ok(()) => {
                self.begun |= then_begin;
                Ok(true)
            }
            Err(e) if matches!(classify(&e), DbFailure::LockTimeout) => Ok(false),
            Err(e) => {
                // The batch may have stopped after its BEGIN (in an aborted
                // transaction) or before it: end it as if begun, since a
                // ROLLBACK outside a transaction only warns.
                self.begun |= then_begin;
                Err(self.failed(e))
            }
        }
    }

    /// Run a write inside a savepoint, so a refused write (conflict, invalid
    /// value, lock timeout) leaves the transaction usable for the executor's
    /// next call; queue on the exclusion keys first, in sorted order.
    pub async fn write(
        &mut self,
        table: &Table,
        exclusion_keys: &BTreeSet<String>,
        write: Write,
    ) -> Result<Written, CapabilityError> {
        let savepoint_open = std::mem::take(&mut self.savepoint_open);
        let setup = batch::write_setup(savepoint_open, self.tenant, table.name, exclusion_keys);
        let started = Instant::now();
        let queued = if self.xid.is_none() {
            // The first write: learn the transaction's id in the same round trip.
            match self.raw_xid(format!("{SELECT_IDENTITY}; {setup}")).await {
                Ok(xid) => {
                    self.xid = xid;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        } else {
            self.raw(setup).await
        };
        if !exclusion_keys.is_empty() {
            self.lock_wait += started.elapsed();
        }
        let outcome = match queued {
            Ok(()) => match write {
                Write::Returning(statement) => {
                    self.fetch_all_raw(statement).await.map(Written::Rows)
                }
                Write::Count(statement) => self
                    .execute_raw(statement)
                    .await
                    .map(|done| Written::Count(done.rows_affected())),
            },
            Err(e) => Err(e),
        };
        let error = match outcome {
            Ok(written) => {
                self.savepoint_open = true;
                return Ok(written);
            }
            Err(error) => error,
        };
        let refusal = match classify(&error) {
            DbFailure::Conflict {
                constraint,
                message,
            } => CallError::Conflict(ConflictInfo {
                constraint,
                message,
            }),
            DbFailure::Invalid(message) => CallError::Invalid(message),
            DbFailure::LockTimeout => lock_timeout_error(
                &format!("a write to {}", table.name),
                self.settings.lock_timeout,
            ),
            _ => return Err(self.failed(error)),
        };
        if let Err(e) = self.raw(batch::ROLLBACK_TO_SAVEPOINT.into()).await {
            return Err(self.failed(e));
        }
        // ROLLBACK TO keeps the savepoint itself.
        self.savepoint_open = true;
        Err(refusal.into())
    }

    /// The transaction's id, when it has none yet (it has not written): for
    /// what must commit with the executor's writes, written outside
    /// [`Self::write`] (idempotency records).
    pub async fn learn_xid(&mut self) -> Result<(), CapabilityError> {
        if self.xid.is_none() {
            match self.raw_xid(SELECT_IDENTITY.to_owned()).await {
                Ok(xid) => self.xid = xid,
                Err(e) => return Err(self.failed(e)),
            }
        }
        Ok(())
    }

    /// COMMIT, with `audit` (literal SQL) in the same round trip just before
    /// it and the session locks released just after. When the connection is
    /// lost once the batch is sent, the COMMIT may have gone through: the
    /// connection is closed and the caller told it is unknown, with the
    /// transaction's id to ask the server (never replayed blind: that could
    /// write twice).
    pub async fn commit(&mut self, audit: Option<String>) -> Result<(), CommitFailed> {
        if !self.begun {
            if let Some(audit) = audit {
                // Nothing to commit; the audit alone, in a transaction of its own.
                self.raw(audit).await.map_err(CommitFailed::Audit)?;
            }
        } else {
            let unlock = self.session_locks;
            if let Err(error) = self.raw(batch::commit(audit.as_deref(), unlock)).await {
                if matches!(classify(&error), DbFailure::ConnectionLost) {
                    self.discard();
                    self.begun = false;
                    self.session_locks = false;
                    return Err(CommitFailed::Unknown {
                        xid: self.xid.clone(),
                        error,
                    });
                }
                // The audit statement may have failed before COMMIT ran,
                // leaving the transaction open: always roll back (a no-op
                // warning when COMMIT itself ended it).
                self.rollback(None).await;
                return Err(CommitFailed::Commit(error));
            }
            self.begun = false;
            self.savepoint_open = false;
            self.session_locks &= !unlock;
        }
        self.release_session_locks().await;
        Ok(())
    }

    /// Roll back, then write `audit` (literal SQL) in the same round trip,
    /// outside the rolled-back transaction, and release the session locks.
    /// Returns whether the audit was written.
    pub async fn rollback(&mut self, audit: Option<String>) -> bool {
        if self.conn.is_none() {
            return false;
        }
        if self.in_flight {
            // The statement future was dropped midway (timeout): the protocol
            // state is unknown. Closing the session rolls back and unlocks.
            self.discard();
            return false;
        }
        let mut written = false;
        let unlock = self.session_locks;
        if let Some(sql) = batch::rollback(self.begun, audit.as_deref(), unlock) {
            match self.raw(sql).await {
                Ok(()) => {
                    written = audit.is_some();
                    self.session_locks &= !unlock;
                }
                Err(_) if self.begun => {
                    self.discard();
                    return false;
                }
                // The rollback happened; only the audit failed: the caller retries it.
                Err(_) => {}
            }
            self.begun = false;
            self.savepoint_open = false;
        }
        self.release_session_locks().await;
        written
    }

    async fn release_session_locks(&mut self) {
        if self.session_locks && self.conn.is_some() {
            if self.raw(locks::UNLOCK_ALL.into()).await.is_err() {
                self.discard();
                return;
            }
            self.session_locks = false;
        }
    }

    /// Close the connection instead of returning it to the pool.
    fn discard(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Drop for Session {
    /// A session dropped without commit or rollback (a cancelled
    /// invocation) must never return its connection to the pool
    /// mid-transaction or holding a lock.
    fn drop(&mut self) {
        if self.begun || self.in_flight || self.session_locks {
            self.discard();
        }
    }
}
