//! The transaction capability: lock, query, insert, update, delete on the
//! invocation's one database transaction, which the host owns.

mod host;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow};
use sqlx::Postgres;

use super::audit::{self, AuditCall};
use super::grant::{Capability, Grant};
use super::{CapabilityError, Doom};
use std::time::Instant;

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
use crate::bindings::{CallError, Condition, ConflictInfo, Field, OrderBy, Row, Value};
use crate::db::catalog::Table;
use crate::db::errors::{classify, DbFailure, RetryReason};
use crate::db::sql::{self, Statement};
use crate::TenantId;

/// Transaction isolation of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Serializable,
    /// Test-only: what a naive application gets by default. Used to prove
    /// that the race tests detect the anomalies the discipline prevents.
    ReadCommitted,
}

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

/// Most bytes of a lock key.
pub const MAX_LOCK_KEY_BYTES: usize = 256;

/// A stable 64-bit advisory-lock id for a namespaced key (FNV-1a): every host
/// process must map a key to the same id, which `DefaultHasher` does not promise.
pub fn advisory_lock_id(namespace: &str, tenant: TenantId, key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [
        namespace.as_bytes(),
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
const UNLOCK_ALL: &str = "SELECT pg_advisory_unlock_all(); RESET lock_timeout";

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

/// The invocation's transaction as the executor sees it. Starts lazily, at
/// the first call that needs a snapshot, so that `lock` called first can
/// wait for its key before the snapshot exists (DESIGN.md, the snapshot trap).
pub struct InvocationTransaction {
    conn: Option<PoolConnection<Postgres>>,
    tenant: TenantId,
    settings: Arc<TransactionSettings>,
    plan: LockPlan,
    begun: bool,
    /// A statement was interrupted midway: the connection cannot be reused.
    in_flight: bool,
    /// The last write's savepoint is still open: released at the start of
    /// the next write's round trip (or by COMMIT/ROLLBACK) rather than in a
    /// round trip of its own.
    savepoint_open: bool,
    held: HashSet<String>,
    /// Keys the executor asked for in this attempt (planned keys it did not
    /// ask for again are not carried to the next attempt).
    requested: BTreeSet<String>,
    session_locks: bool,
    doom: Option<Doom>,
    /// Capability calls made in this attempt.
    pub calls: u32,
    /// When the last wait on the database ended: a guest that waited since
    /// the last epoch tick has given its worker thread up in that wait.
    last_wait_ended: Option<Instant>,
    rows_read: u64,
    rows_written: u64,
    /// Keep every row written (dry runs report them).
    record_writes: bool,
    writes: Vec<WriteRecord>,
    grant: Option<Arc<Grant>>,
    audit: Vec<AuditCall>,
    /// Whether calls keep their redacted detail (off when nothing is audited).
    audit_details: bool,
    /// Time spent waiting for locks in the current call.
    lock_wait: Duration,
}

/// One row an attempt wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WriteRecord {
    pub table: String,
    /// `insert`, `update` or `delete`.
    pub operation: &'static str,
    /// The row as stored (after the write; before it, for deletes).
    pub row: serde_json::Value,
}

/// A write statement, by what it gives back.
enum Write {
    Returning(Statement),
    Count(Statement),
}

enum Written {
    Rows(Vec<PgRow>),
    Count(u64),
}

/// How an attempt's transaction ended when the host tried to commit it.
#[derive(Debug)]
pub enum CommitError {
    Retry(RetryReason),
    Fatal(String),
}

fn lock_timeout_error(what: &str, timeout: Duration) -> CallError {
    CallError::LockTimeout(format!(
        "{what} was not granted within {} ms",
        timeout.as_millis()
    ))
}

impl InvocationTransaction {
    /// A transaction for one attempt on `conn` (None for `describe()`, where
    /// capabilities are unavailable).
    pub fn new(
        conn: Option<PoolConnection<Postgres>>,
        tenant: TenantId,
        settings: Arc<TransactionSettings>,
        plan: LockPlan,
    ) -> Self {
        Self {
            conn,
            tenant,
            settings,
            plan,
            begun: false,
            in_flight: false,
            savepoint_open: false,
            held: HashSet::new(),
            requested: BTreeSet::new(),
            session_locks: false,
            doom: None,
            calls: 0,
            last_wait_ended: None,
            rows_read: 0,
            rows_written: 0,
            record_writes: false,
            writes: Vec::new(),
            grant: None,
            audit: Vec::new(),
            audit_details: true,
            lock_wait: Duration::ZERO,
        }
    }

    /// Keep only each call's kind and outcome, not its redacted detail (when
    /// the host writes no audit log).
    pub fn without_audit_details(mut self) -> Self {
        self.audit_details = false;
        self
    }

    /// Only `grant`'s capabilities may be used (without one, all may).
    pub fn with_grant(mut self, grant: Arc<Grant>) -> Self {
        self.grant = Some(grant);
        self
    }

    fn check_grant(&self, capability: Capability) -> Result<(), CapabilityError> {
        match &self.grant {
            Some(grant) => grant.check(capability).map_err(CapabilityError::Call),
            None => Ok(()),
        }
    }

    /// Abandon the attempt: it went over one of its budgets.
    fn over_limit(&mut self, limit: &'static str, message: String) -> CapabilityError {
        self.abort(Doom::Limit { limit, message })
    }

    fn charge_call(&mut self) -> Result<(), CapabilityError> {
        if let Some(doom) = &self.doom {
            // Once abandoned, every further call fails the same way.
            return Err(CapabilityError::Abort(doom.clone()));
        }
        if self.calls >= self.settings.max_calls {
            let message = format!("more than {} capability calls", self.settings.max_calls);
            return Err(self.over_limit("calls", message));
        }
        Ok(())
    }

    /// Count `rows` read (`written` false) or written against their budget.
    fn charge_rows(&mut self, written: bool, rows: u64) -> Result<(), CapabilityError> {
        let (used, max, limit, what) = if written {
            (
                &mut self.rows_written,
                self.settings.max_rows_written,
                "rows_written",
                "writes touched",
            )
        } else {
            (
                &mut self.rows_read,
                self.settings.max_rows_read,
                "rows_read",
                "queries returned",
            )
        };
        *used += rows;
        if *used > max {
            let message = format!("{what} more than {max} rows in all");
            return Err(self.over_limit(limit, message));
        }
        Ok(())
    }

    /// The audit of every call this attempt made so far.
    pub fn take_audit(&mut self) -> Vec<AuditCall> {
        std::mem::take(&mut self.audit)
    }

    fn audited<T>(
        &mut self,
        capability: &'static str,
        table: Option<&str>,
        detail: impl FnOnce() -> Box<serde_json::value::RawValue>,
        started: Instant,
        result: &Result<T, CapabilityError>,
        rows: impl FnOnce(&T) -> i64,
    ) {
        self.calls += 1;
        // Without an audit log only the call's kind and outcome are kept (for
        // metrics): the redacted detail is work the audit alone needs.
        let detail = if self.audit_details {
            detail()
        } else {
            audit::no_detail()
        };
        let (outcome, error, rows) = match result {
            Ok(value) => ("ok".to_owned(), None, rows(value)),
            Err(CapabilityError::Call(CallError::Forbidden(m)))
                if m.starts_with("missing grant") =>
            {
                ("denied".to_owned(), Some(m.clone()), 0)
            }
            Err(CapabilityError::Call(e)) => (
                format!("error:{}", audit::error_kind(e)),
                Some(audit::error_message(e)),
                0,
            ),
            Err(CapabilityError::Abort(doom)) => ("aborted".to_owned(), Some(doom.to_string()), 0),
        };
        self.audit.push(AuditCall {
            capability,
            table: table.map(str::to_owned),
            detail,
            rows,
            outcome,
            error,
            lock_wait_us: std::mem::take(&mut self.lock_wait).as_micros() as i64,
            duration_us: started.elapsed().as_micros() as i64,
            at: chrono::Utc::now(),
        });
    }

    /// `lock(key)`: serialize with other invocations of this tenant on `key`.
    pub async fn lock(&mut self, key: &str) -> Result<(), CapabilityError> {
        let started = Instant::now();
        let result = self.lock_inner(key).await;
        self.audited(
            "lock",
            None,
            || audit::lock_detail(key),
            started,
            &result,
            |_| 0,
        );
        result
    }

    /// `query`: rows of the tenant that match every condition.
    pub async fn query(
        &mut self,
        table: &str,
        conditions: &[Condition],
        order: &[OrderBy],
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CapabilityError> {
        let started = Instant::now();
        let result = self.query_inner(table, conditions, order, limit).await;
        let result = result.and_then(|rows| {
            self.charge_rows(false, rows.len() as u64)?;
            Ok(rows)
        });
        let detail = || audit::query_detail(table, conditions, limit);
        self.audited("query", Some(table), detail, started, &result, |rows| {
            rows.len() as i64
        });
        result
    }

    /// `insert`: one row, returned as stored.
    pub async fn insert(&mut self, table: &str, values: &[Field]) -> Result<Row, CapabilityError> {
        let started = Instant::now();
        let result = self.insert_inner(table, values).await;
        let result = result.and_then(|row| {
            self.charge_rows(true, 1)?;
            Ok(row)
        });
        let detail = || audit::insert_detail(table, values);
        self.audited("insert", Some(table), detail, started, &result, |_| 1);
        result
    }

    /// `update`: set `changes` on the tenant's matching rows.
    pub async fn update(
        &mut self,
        table: &str,
        conditions: &[Condition],
        changes: &[Field],
    ) -> Result<u64, CapabilityError> {
        let started = Instant::now();
        let result = self.update_inner(table, conditions, changes).await;
        let result = result.and_then(|n| {
            self.charge_rows(true, n)?;
            Ok(n)
        });
        let detail = || audit::update_detail(table, conditions, changes);
        self.audited("update", Some(table), detail, started, &result, |n| {
            *n as i64
        });
        result
    }

    /// `delete`: remove the tenant's matching rows (conditions required).
    pub async fn delete(
        &mut self,
        table: &str,
        conditions: &[Condition],
    ) -> Result<u64, CapabilityError> {
        let started = Instant::now();
        let result = self.delete_inner(table, conditions).await;
        let result = result.and_then(|n| {
            self.charge_rows(true, n)?;
            Ok(n)
        });
        let detail = || audit::delete_detail(table, conditions);
        self.audited("delete", Some(table), detail, started, &result, |n| {
            *n as i64
        });
        result
    }

    /// Record the rows every write touches (for dry runs).
    pub fn record_writes(mut self) -> Self {
        self.record_writes = true;
        self
    }

    /// The rows written so far, if recording.
    pub fn take_writes(&mut self) -> Vec<WriteRecord> {
        std::mem::take(&mut self.writes)
    }

    fn decode(&mut self, table: &Table, row: &PgRow) -> Result<Row, CapabilityError> {
        sql::decode_row(table, row).map_err(|e| {
            self.abort(Doom::Fatal(format!(
                "decoding a row of {}: {e}",
                table.name
            )))
        })
    }

    fn recorded(&mut self, table: &Table, operation: &'static str, row: &[Field]) {
        if self.record_writes {
            self.writes.push(WriteRecord {
                table: table.name.to_owned(),
                operation,
                row: sql::row_to_json(row),
            });
        }
    }

    /// When this attempt's last wait on the database ended, if it waited.
    pub fn last_wait_ended(&self) -> Option<Instant> {
        self.last_wait_ended
    }

    /// Why this attempt was abandoned, if it was.
    pub fn doom(&self) -> Option<&Doom> {
        self.doom.as_ref()
    }

    fn abort(&mut self, doom: Doom) -> CapabilityError {
        self.doom.get_or_insert(doom.clone());
        CapabilityError::Abort(doom)
    }

    fn conn(&mut self) -> Result<&mut PoolConnection<Postgres>, CapabilityError> {
        if let Some(doom) = &self.doom {
            return Err(CapabilityError::Abort(doom.clone()));
        }
        self.conn.as_mut().ok_or_else(|| {
            CapabilityError::Abort(Doom::Fatal(
                "capabilities are not available in describe()".into(),
            ))
        })
    }

    /// Map a failed statement: a retryable failure or one outside a savepoint
    /// dooms the attempt (PostgreSQL has aborted the transaction).
    fn statement_failed(&mut self, error: sqlx::Error) -> CapabilityError {
        match classify(&error) {
            DbFailure::Retry(reason) if self.settings.replay_conflicts => self.abort(Doom::Retry {
                reason,
                contended_key: None,
            }),
            DbFailure::Canceled => self.abort(Doom::Fatal(format!(
                "a statement exceeded the statement timeout of {} ms",
                self.settings.statement_timeout.as_millis()
            ))),
            _ => self.abort(Doom::Fatal(format!("database error: {error}"))),
        }
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
            let conn = self.conn.as_mut().expect("checked by conn()");
            self.in_flight = true;
            // A plain string runs as a simple query: several statements, one round trip.
            let done = sqlx::Executor::execute(&mut **conn, sql.as_str()).await;
            self.wait_ended();
            done.map(drop)
        })
    }

    fn fetch_all(
        &mut self,
        (sql, values): Statement,
    ) -> BoxFuture<'_, Result<Vec<PgRow>, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().expect("checked by conn()");
            self.in_flight = true;
            let rows = sqlx::query_with(&sql, values).fetch_all(&mut **conn).await;
            self.wait_ended();
            rows
        })
    }

    fn execute(
        &mut self,
        (sql, values): Statement,
    ) -> BoxFuture<'_, Result<PgQueryResult, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().expect("checked by conn()");
            self.in_flight = true;
            let done = sqlx::query_with(&sql, values).execute(&mut **conn).await;
            self.wait_ended();
            done
        })
    }

    fn try_xact_lock(&mut self, id: i64) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
        Box::pin(async move {
            let conn = self.conn.as_mut().expect("checked by conn()");
            self.in_flight = true;
            let got = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
                .bind(id)
                .fetch_one(&mut **conn)
                .await;
            self.wait_ended();
            got
        })
    }

    /// Wait for `id` as a session-level lock, before any snapshot exists.
    /// Ok(false) when the wait exceeded the lock timeout.
    ///
    /// With `then_begin`, the invocation's transaction begins in the same
    /// round trip, right after the grant, so its snapshot is still taken
    /// after the wait. The lock's statement runs in an implicit transaction
    /// that `BEGIN ISOLATION LEVEL` cannot adopt; COMMIT ends it first (it
    /// warns there, hence the local `client_min_messages`).
    async fn session_lock(&mut self, id: i64, then_begin: bool) -> Result<bool, CapabilityError> {
        self.conn()?;
        let timeout = self.settings.lock_timeout.as_millis();
        let sql = if then_begin {
            format!(
                "SET lock_timeout = {timeout}; SET LOCAL client_min_messages = error; \
                 SELECT pg_advisory_lock({id}); COMMIT; {}",
                self.begin_sql()
            )
        } else {
            format!("SET lock_timeout = {timeout}; SELECT pg_advisory_lock({id})")
        };
        let unused = self.unused();
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
                Err(self.first_statement_failed(e, unused))
            }
        }
    }

    /// Before the attempt runs: queue on the keys earlier attempts found
    /// contended, in sorted order so two invocations cannot deadlock here.
    pub async fn acquire_planned_locks(&mut self) -> Result<(), CapabilityError> {
        // The replay queue first, then the keys in sorted order: one order
        // for every invocation, so these waits cannot deadlock.
        if let Some(executor) = self.plan.replay_queue.clone() {
            let id = advisory_lock_id("replay", self.tenant, &executor);
            if !self.session_lock(id, false).await? {
                // Waited a whole lock timeout: go on unqueued.
                self.plan.replay_queue = None;
            }
        }
        let keys: Vec<String> = self.plan.queue_first.iter().cloned().collect();
        for key in keys {
            if self.plan.timed_out.contains(&key) {
                continue;
            }
            let id = advisory_lock_id("lock", self.tenant, &key);
            if self.session_lock(id, false).await? {
                self.held.insert(key);
            } else {
                self.plan.timed_out.insert(key);
            }
        }
        Ok(())
    }

    /// What the next attempt should know (keys contended in this one).
    pub fn plan(&self) -> &LockPlan {
        &self.plan
    }

    /// The tenant every statement is scoped to (`None` only in the test-only
    /// setting that leaves isolation to row-level security).
    fn scope(&self) -> Option<TenantId> {
        self.settings.scope_to_tenant.then_some(self.tenant)
    }

    fn begin_sql(&self) -> String {
        let isolation = match self.settings.isolation {
            Isolation::Serializable => "SERIALIZABLE",
            Isolation::ReadCommitted => "READ COMMITTED",
        };
        format!(
            "BEGIN ISOLATION LEVEL {isolation}; SET LOCAL lock_timeout = {}; SET LOCAL statement_timeout = {}; \
             SET LOCAL idle_in_transaction_session_timeout = {}; {}",
            self.settings.lock_timeout.as_millis(),
            self.settings.statement_timeout.as_millis(),
            self.settings.idle_in_transaction_timeout.as_millis(),
            crate::db::set_tenant_sql(self.tenant),
        )
    }

    /// Nothing has run on the connection in this attempt: no lock taken.
    fn unused(&self) -> bool {
        !self.begun && !self.session_locks && self.held.is_empty()
    }

    /// The attempt's first statement failed. Pools skip sqlx's ping before
    /// handing out a connection (a round trip per invocation;
    /// db::pool_options), so a connection the server closed since is found
    /// here; nothing has run on it in this attempt, so replaying on another
    /// connection is safe.
    fn first_statement_failed(&mut self, error: sqlx::Error, unused: bool) -> CapabilityError {
        if unused && !matches!(error, sqlx::Error::Database(_)) {
            self.discard_connection();
            return self.abort(Doom::Retry {
                reason: RetryReason::ConnectionLost,
                contended_key: None,
            });
        }
        self.statement_failed(error)
    }

    async fn ensure_begun(&mut self) -> Result<(), CapabilityError> {
        self.conn()?;
        if self.begun {
            return Ok(());
        }
        let unused = self.unused();
        if let Err(error) = self.raw(self.begin_sql()).await {
            return Err(self.first_statement_failed(error, unused));
        }
        self.begun = true;
        Ok(())
    }

    /// `lock(key)`: serialize with other invocations of this tenant on `key`.
    async fn lock_inner(&mut self, key: &str) -> Result<(), CapabilityError> {
        self.charge_call()?;
        self.conn()?;
        if key.is_empty() || key.len() > MAX_LOCK_KEY_BYTES {
            return Err(CallError::Invalid(format!(
                "lock keys are 1 to {MAX_LOCK_KEY_BYTES} bytes, got {}",
                key.len()
            ))
            .into());
        }
        self.check_grant(Capability::Lock)?;
        self.requested.insert(key.to_owned());
        if self.held.contains(key) {
            return Ok(());
        }
        if self.held.len() >= self.settings.max_locks {
            return Err(self.over_limit(
                "locks",
                format!(
                    "more than {} lock keys held at once",
                    self.settings.max_locks
                ),
            ));
        }
        let id = advisory_lock_id("lock", self.tenant, key);
        if !self.begun {
            // No snapshot yet: waiting here is safe, the transaction starts after.
            if self.session_lock(id, true).await? {
                self.held.insert(key.to_owned());
                return Ok(());
            }
            return Err(
                lock_timeout_error(&format!("lock {key:?}"), self.settings.lock_timeout).into(),
            );
        }
        let started = Instant::now();
        let got = self.try_xact_lock(id).await;
        self.lock_wait += started.elapsed();
        let got = got.map_err(|e| self.statement_failed(e))?;
        if got {
            self.held.insert(key.to_owned());
            return Ok(());
        }
        if self.plan.timed_out.contains(key) || !self.settings.replay_conflicts {
            return Err(
                lock_timeout_error(&format!("lock {key:?}"), self.settings.lock_timeout).into(),
            );
        }
        // Waiting now would leave this attempt deciding on a stale snapshot.
        // Abandon it; the replay queues, before its snapshot exists, on every
        // key this attempt asked for (this one included), all in one sorted
        // order. Rebuilt from this attempt rather than added to, so that
        // keys only an earlier attempt needed do not pile up across replays.
        self.plan.queue_first = self.requested.clone();
        Err(self.abort(Doom::Retry {
            reason: RetryReason::LockContended,
            contended_key: Some(key.to_owned()),
        }))
    }

    /// `query`: rows of the tenant that match every condition.
    async fn query_inner(
        &mut self,
        table: &str,
        conditions: &[Condition],
        order: &[OrderBy],
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CapabilityError> {
        self.charge_call()?;
        self.conn()?;
        let table = sql::resolve_table(table)?;
        self.check_grant(Capability::Query(table.name))?;
        let cap = self.settings.max_rows_per_query;
        let (fetch, capped) = match limit {
            Some(n) if n <= cap => (u64::from(n), false),
            _ => (u64::from(cap) + 1, true),
        };
        let statement = sql::select(table, self.scope(), conditions, order, fetch)?;
        self.ensure_begun().await?;
        let rows = self
            .fetch_all(statement)
            .await
            .map_err(|e| self.statement_failed(e))?;
        if capped && rows.len() > cap as usize {
            return Err(CallError::LimitExceeded(format!(
                "query on {} matches more than {cap} rows; narrow the conditions or set a limit",
                table.name
            ))
            .into());
        }
        rows.iter()
            .map(|row| sql::decode_row(table, row))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                self.abort(Doom::Fatal(format!(
                    "decoding a row of {}: {e}",
                    table.name
                )))
            })
    }

    /// `insert`: one row, returned as stored.
    async fn insert_inner(
        &mut self,
        table: &str,
        values: &[Field],
    ) -> Result<Row, CapabilityError> {
        self.charge_call()?;
        self.conn()?;
        let table = sql::resolve_table(table)?;
        self.check_grant(Capability::Insert(table.name))?;
        let writes = sql::writes(table, values)?;
        let keys = self.exclusion_keys_of(table, values);
        let statement = sql::insert(table, self.tenant, writes)?;
        self.ensure_begun().await?;
        let row = match self
            .write_guarded(table, keys, Write::Returning(statement))
            .await?
        {
            Written::Rows(mut rows) if rows.len() == 1 => rows.remove(0),
            _ => return Err(self.abort(Doom::Fatal("an insert returned no row".into()))),
        };
        let row = self.decode(table, &row)?;
        self.recorded(table, "insert", &row);
        Ok(row)
    }

    /// `update`: set `changes` on the tenant's matching rows.
    async fn update_inner(
        &mut self,
        table: &str,
        conditions: &[Condition],
        changes: &[Field],
    ) -> Result<u64, CapabilityError> {
        self.charge_call()?;
        self.conn()?;
        let table = sql::resolve_table(table)?;
        self.check_grant(Capability::Update(table.name))?;
        let writes = sql::writes(table, changes)?;
        let mut key_lookup = None;
        if let (Some(key), true) = (&table.exclusion_key, self.settings.queue_exclusion_writers) {
            key_lookup = Some(sql::select_exclusion_keys(
                table,
                key.column,
                self.scope(),
                conditions,
            )?);
        }
        let statement = sql::update(table, self.scope(), conditions, writes, self.record_writes)?;
        self.ensure_begun().await?;
        let mut keys = self.exclusion_keys_of(table, changes);
        if let Some(lookup) = key_lookup {
            let rows = self
                .fetch_all(lookup)
                .await
                .map_err(|e| self.statement_failed(e))?;
            for row in rows {
                let id: uuid::Uuid = sqlx::Row::try_get(&row, 0)
                    .map_err(|e| self.abort(Doom::Fatal(format!("reading exclusion keys: {e}"))))?;
                keys.insert(id.to_string());
            }
        }
        self.write_count(table, keys, statement, "update").await
    }

    /// `delete`: remove the tenant's matching rows (conditions required).
    async fn delete_inner(
        &mut self,
        table: &str,
        conditions: &[Condition],
    ) -> Result<u64, CapabilityError> {
        self.charge_call()?;
        self.conn()?;
        let table = sql::resolve_table(table)?;
        self.check_grant(Capability::Delete(table.name))?;
        let statement = sql::delete(table, self.scope(), conditions, self.record_writes)?;
        self.ensure_begun().await?;
        self.write_count(table, BTreeSet::new(), statement, "delete")
            .await
    }

    async fn write_count(
        &mut self,
        table: &Table,
        keys: BTreeSet<String>,
        statement: Statement,
        operation: &'static str,
    ) -> Result<u64, CapabilityError> {
        let write = if self.record_writes {
            Write::Returning(statement)
        } else {
            Write::Count(statement)
        };
        match self.write_guarded(table, keys, write).await? {
            Written::Count(count) => Ok(count),
            Written::Rows(rows) => {
                for row in &rows {
                    let row = self.decode(table, row)?;
                    self.recorded(table, operation, &row);
                }
                Ok(rows.len() as u64)
            }
        }
    }

    /// The exclusion-key values a write names (for example the service of a
    /// booking), which the host queues on before writing.
    fn exclusion_keys_of(&self, table: &Table, fields: &[Field]) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        if let (Some(key), true) = (&table.exclusion_key, self.settings.queue_exclusion_writers) {
            for field in fields.iter().filter(|f| f.column == key.column) {
                if let Value::Uuid(id) = &field.value {
                    keys.insert(id.clone());
                }
            }
        }
        keys
    }

    /// Run a write inside a savepoint, so a refused write (conflict, invalid
    /// value, lock timeout) leaves the transaction usable for the executor's
    /// next call; queue on the exclusion keys first, in sorted order.
    async fn write_guarded(
        &mut self,
        table: &Table,
        exclusion_keys: BTreeSet<String>,
        write: Write,
    ) -> Result<Written, CapabilityError> {
        // At most one savepoint stays open: nesting one per write would grow
        // the subtransactions every later snapshot has to look through.
        let mut setup = if std::mem::take(&mut self.savepoint_open) {
            String::from("RELEASE SAVEPOINT capability_write; SAVEPOINT capability_write")
        } else {
            String::from("SAVEPOINT capability_write")
        };
        for key in &exclusion_keys {
            let id = advisory_lock_id("exclusion", self.tenant, &format!("{}:{key}", table.name));
            setup.push_str(&format!("; SELECT pg_advisory_xact_lock({id})"));
        }
        let started = Instant::now();
        let queued = self.raw(setup).await;
        if !exclusion_keys.is_empty() {
            self.lock_wait += started.elapsed();
        }
        let outcome = match queued {
            Ok(()) => match write {
                Write::Returning(statement) => self.fetch_all(statement).await.map(Written::Rows),
                Write::Count(statement) => self
                    .execute(statement)
                    .await
                    .map(|done| Written::Count(done.rows_affected())),
            },
            Err(e) => Err(e),
        };
        match outcome {
            Ok(value) => {
                self.savepoint_open = true;
                Ok(value)
            }
            Err(error) => {
                let call_error = match classify(&error) {
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
                    _ => return Err(self.statement_failed(error)),
                };
                self.raw("ROLLBACK TO SAVEPOINT capability_write".into())
                    .await
                    .map_err(|e| self.statement_failed(e))?;
                // ROLLBACK TO keeps the savepoint itself.
                self.savepoint_open = true;
                Err(call_error.into())
            }
        }
    }

    /// Commit (only when the executor returned `ok`) and release session locks.
    pub async fn commit(self) -> Result<(), CommitError> {
        self.commit_with(None, None).await
    }

    /// Run `last` inside the transaction, then commit: for what must commit
    /// exactly when the executor's writes do (idempotency records).
    ///
    /// `audit` (literal SQL) is sent in the same round trip, just before
    /// COMMIT: the audit costs no extra round trip, and an audit that cannot
    /// be written fails the commit rather than going missing. On `Err` the
    /// audit was not written (the caller records the attempt another way).
    pub async fn commit_with(
        mut self,
        last: Option<Statement>,
        audit: Option<String>,
    ) -> Result<(), CommitError> {
        if let Some(statement) = last {
            let ran = match self.ensure_begun().await {
                Ok(()) => self
                    .execute(statement)
                    .await
                    .map_err(|e| self.statement_failed(e)),
                Err(e) => Err(e),
            };
            if let Err(CapabilityError::Call(e)) = ran {
                self.doom.get_or_insert(Doom::Fatal(format!("{e:?}")));
            }
        }
        if let Some(doom) = self.doom.take() {
            self.finish_failed(None).await;
            return Err(match doom {
                Doom::Retry { reason, .. } => CommitError::Retry(reason),
                Doom::Fatal(message) => CommitError::Fatal(message),
                Doom::Limit { limit, message } => {
                    CommitError::Fatal(format!("limit {limit} exceeded: {message}"))
                }
            });
        }
        let mut commit = match &audit {
            Some(audit) => format!("{audit}; COMMIT"),
            None => "COMMIT".to_owned(),
        };
        // Session locks go in COMMIT's round trip: a queue on a hot key moves
        // one round trip sooner per holder. The batch stops at a failed
        // COMMIT, which then unlocks in finish_failed. An error after a
        // COMMIT that went through (the connection lost in between) is read
        // as a failed commit and not replayed: the same doubt a lost answer
        // to COMMIT alone leaves, never a second write.
        let unlock = self.session_locks;
        if unlock {
            commit.push_str("; ");
            commit.push_str(UNLOCK_ALL);
        }
        if !self.begun {
            if let Some(audit) = audit {
                // Nothing to commit; the audit alone, in a transaction of its own.
                self.raw(audit)
                    .await
                    .map_err(|e| CommitError::Fatal(format!("recording the audit failed: {e}")))?;
            }
        } else {
            if let Err(error) = self.raw(commit).await {
                let failure = classify(&error);
                // The audit statement may have failed before COMMIT ran,
                // leaving the transaction open: always roll back (a no-op
                // warning when COMMIT itself ended it).
                self.finish_failed(None).await;
                return Err(match failure {
                    DbFailure::Retry(reason) if self.settings.replay_conflicts => {
                        CommitError::Retry(reason)
                    }
                    _ if crate::db::errors::sqlstate(&error).as_deref() == Some("26000") => {
                        CommitError::Fatal(format!(
                            "recording the audit failed ({error}): the host's pool must come \
                             from bookhost::db::pool_options(), which prepares the audit's append"
                        ))
                    }
                    _ => CommitError::Fatal(format!("COMMIT failed: {error}")),
                });
            }
            self.begun = false;
            self.savepoint_open = false;
            self.session_locks &= !unlock;
        }
        self.release_session_locks().await;
        Ok(())
    }

    /// Roll back everything this attempt did and release its locks.
    pub async fn rollback(mut self) {
        self.finish_failed(None).await;
    }

    /// Roll back, then write `audit` (literal SQL) in the same round trip,
    /// outside the rolled-back transaction. Returns whether it was written.
    pub async fn rollback_with(mut self, audit: String) -> bool {
        self.finish_failed(Some(audit)).await
    }

    async fn finish_failed(&mut self, audit: Option<String>) -> bool {
        if self.conn.is_none() {
            return false;
        }
        if self.in_flight {
            // The statement future was dropped midway (timeout): the protocol
            // state is unknown. Closing the session rolls back and unlocks.
            self.discard_connection();
            return false;
        }
        let mut written = false;
        if self.begun || audit.is_some() {
            let mut parts = Vec::with_capacity(3);
            if self.begun {
                parts.push("ROLLBACK");
            }
            if let Some(audit) = &audit {
                parts.push(audit);
            }
            let unlock = self.session_locks;
            if unlock {
                parts.push(UNLOCK_ALL);
            }
            match self.raw(parts.join("; ")).await {
                Ok(()) => {
                    written = audit.is_some();
                    self.session_locks &= !unlock;
                }
                Err(_) if self.begun => {
                    self.discard_connection();
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
            if self.raw(UNLOCK_ALL.into()).await.is_err() {
                self.discard_connection();
                return;
            }
            self.session_locks = false;
        }
    }

    fn discard_connection(&mut self) {
        if let Some(conn) = self.conn.take() {
            drop(conn.detach());
        }
    }
}

impl Drop for InvocationTransaction {
    /// A transaction dropped without commit or rollback (a cancelled
    /// invocation) must never return its connection to the pool mid-transaction.
    fn drop(&mut self) {
        if self.begun || self.in_flight || self.session_locks {
            self.discard_connection();
        }
    }
}
