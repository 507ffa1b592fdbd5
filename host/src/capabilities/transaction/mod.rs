//! The transaction capability: lock, query, insert, update, delete on the
//! invocation's one database transaction, which the host owns; each call
//! timed, charged, checked against the grant and recorded in one place.

mod budget;
mod capture;
mod host;
mod locks;
mod session;
mod settings;
mod targets;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgRow;
use sqlx::Postgres;

use self::budget::Budget;
use self::capture::WriteCapture;
use self::locks::Locks;
use self::session::{CommitFailed, Session, Write, Written};
use self::targets::{CatalogTable, LockTarget, ScheduleTarget, TableTarget, Target};
use super::audit::{self, AuditCall, CallRecorder, EndedCall};
use super::grant::{Grant, Operation};
use super::{CapabilityError, Doom};
use crate::bindings::{CallError, Condition, Field, OrderBy, Row};
use crate::db::catalog::Table;
use crate::db::errors::{classify, is_connectivity, sqlstate, DbFailure, RetryReason};
use crate::db::schedule;
use crate::db::sql::{self, Statement};
use crate::schedule::Rules;
use crate::TenantId;

pub use self::capture::{same_writes, WriteRecord};
pub use self::locks::{LockPlan, MAX_LOCK_KEY_BYTES};
pub use self::settings::{Isolation, TransactionSettings};

/// Why a commit hook's statement that wrote nothing dooms the attempt.
pub const ANSWERED_MEANWHILE: &str =
    "the Idempotency-Key was answered by another request meanwhile; these writes were rolled back";

/// The invocation's transaction as the executor sees it. Starts lazily, at
/// the first call that needs a snapshot, so that `lock` called first can
/// wait for its key before the snapshot exists (DESIGN.md, the snapshot trap).
pub struct InvocationTransaction {
    tenant: TenantId,
    settings: Arc<TransactionSettings>,
    session: Session,
    locks: Locks,
    budget: Budget,
    recorder: CallRecorder,
    capture: WriteCapture,
    /// Only these capabilities may be used (without one, all may).
    grant: Option<Arc<Grant>>,
    /// Why the attempt was abandoned, once it is: every later call fails so.
    doom: Option<Doom>,
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
            tenant,
            session: Session::new(conn, tenant, settings.clone()),
            settings,
            locks: Locks::new(plan),
            budget: Budget::default(),
            recorder: CallRecorder::new(true),
            capture: WriteCapture::default(),
            grant: None,
            doom: None,
        }
    }

    /// Keep only each call's kind and outcome, not its redacted detail (when
    /// the host writes no audit log).
    pub fn without_audit_details(mut self) -> Self {
        self.recorder = CallRecorder::new(false);
        self
    }

    /// Only `grant`'s capabilities may be used (without one, all may).
    pub fn with_grant(mut self, grant: Arc<Grant>) -> Self {
        self.grant = Some(grant);
        self
    }

    /// Record the rows every write touches (for dry runs).
    pub fn record_writes(mut self) -> Self {
        self.capture.enable();
        self
    }

    /// The audit of every call this attempt made so far.
    pub fn take_audit(&mut self) -> Vec<AuditCall> {
        self.recorder.take()
    }

    /// The rows written so far, if recording.
    pub fn take_writes(&mut self) -> Vec<WriteRecord> {
        self.capture.take()
    }

    /// When this attempt's last wait on the database ended, if it waited.
    pub fn last_wait_ended(&self) -> Option<Instant> {
        self.session.last_wait_ended()
    }

    /// Why this attempt was abandoned, if it was.
    pub fn doom(&self) -> Option<&Doom> {
        self.doom.as_ref()
    }

    /// What the next attempt should know (keys contended in this one).
    /// The transaction's id once it has written (see [`Session::xid`]).
    pub fn xid(&self) -> Option<crate::db::commit_status::TxIdentity> {
        self.session.xid()
    }

    pub fn plan(&self) -> &LockPlan {
        self.locks.plan()
    }

    /// Keep the first reason the attempt was abandoned.
    fn note_doom<T>(&mut self, result: &Result<T, CapabilityError>) {
        if let Err(CapabilityError::Abort(doom)) = result {
            self.doom.get_or_insert_with(|| doom.clone());
        }
    }

    /// Every call goes through here: refused once the attempt is doomed or
    /// over its call budget, its target resolved and checked against the
    /// grant, then run, its rows charged, and recorded for the audit.
    async fn call<R: Target, T>(
        &mut self,
        target: R,
        detail: impl FnOnce() -> Box<serde_json::value::RawValue>,
        rows: impl FnOnce(&T) -> u64,
        run: impl AsyncFnOnce(&mut Self, R::Resolved) -> Result<T, CapabilityError>,
    ) -> Result<T, CapabilityError> {
        let started = Instant::now();
        let mut result = match self.admit(target) {
            Ok(resolved) => run(self, resolved).await,
            Err(error) => Err(error),
        };
        let counted = result.as_ref().map_or(0, rows);
        if let (Ok(_), Some(charge)) = (&result, target.charge(counted)) {
            if let Err(doom) = self.budget.charge_rows(&self.settings, charge) {
                result = Err(doom.into());
            }
        }
        self.note_doom(&result);
        self.budget.count_call();
        let ended = EndedCall {
            capability: target.name(),
            table: target.table(),
            started,
            lock_wait: self.session.take_lock_wait(),
            result: &result,
            rows: counted,
        };
        self.recorder.record(ended, detail);
        result
    }

    /// Whether a call may run at all, and on what.
    fn admit<R: Target>(&self, target: R) -> Result<R::Resolved, CapabilityError> {
        if let Some(doom) = &self.doom {
            // Once abandoned, every further call fails the same way.
            return Err(doom.clone().into());
        }
        self.budget.admit_call(&self.settings)?;
        if !self.session.has_connection() {
            return Err(Doom::Fatal("capabilities are not available in describe()".into()).into());
        }
        let (capability, resolved) = target.resolve()?;
        if let Some(grant) = &self.grant {
            grant.check(capability)?;
        }
        Ok(resolved)
    }

    /// The tenant every statement is scoped to (`None` only in the test-only
    /// setting that leaves isolation to row-level security).
    fn scope(&self) -> Option<TenantId> {
        self.settings.scope_to_tenant.then_some(self.tenant)
    }

    /// `lock(key)`: serialize with other invocations of this tenant on `key`.
    pub async fn lock(&mut self, key: &str) -> Result<(), CapabilityError> {
        let detail = || audit::lock_detail(key);
        self.call(
            LockTarget(key),
            detail,
            |_| 0,
            async |tx: &mut Self, ()| {
                let settings = tx.settings.clone();
                tx.locks
                    .lock(&mut tx.session, tx.tenant, &settings, key)
                    .await
            },
        )
        .await
    }

    /// `query`: rows of the tenant that match every condition.
    pub async fn query(
        &mut self,
        table: &str,
        conditions: &[Condition],
        order: &[OrderBy],
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CapabilityError> {
        let target = TableTarget(Operation::Query, table);
        let detail = || audit::query_detail(table, conditions, limit);
        let rows = |rows: &Vec<Row>| rows.len() as u64;
        self.call(
            target,
            detail,
            rows,
            async |tx: &mut Self, CatalogTable(table)| {
                tx.run_query(table, conditions, order, limit).await
            },
        )
        .await
    }

    /// `availability`: what the slots of `service` starting in `[start,
    /// end)` are computed from, read inside this transaction (None: the
    /// tenant has no such service). Audited as one call.
    pub async fn schedule(
        &mut self,
        service: uuid::Uuid,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Rules>, CapabilityError> {
        let detail = || audit::schedule_detail(service, start, end);
        let rows = |rules: &Option<Rules>| {
            rules
                .as_ref()
                .map_or(0, |r| (r.bookings.len() + r.holds.len() + 1) as u64)
        };
        self.call(ScheduleTarget, detail, rows, async |tx: &mut Self, ()| {
            let statement = schedule::rules_statement(tx.tenant, service, start, end, now);
            tx.session.begin().await?;
            let rows = tx.session.fetch_all(statement).await?;
            let json: Option<serde_json::Value> = match rows.first() {
                Some(row) => sqlx::Row::try_get(row, 0)
                    .map_err(|e| Doom::Fatal(format!("reading the schedule: {e}")))?,
                None => None,
            };
            json.map(serde_json::from_value)
                .transpose()
                .map_err(|e| Doom::Fatal(format!("decoding the schedule: {e}")).into())
        })
        .await
    }

    /// `insert`: one row, returned as stored.
    pub async fn insert(&mut self, table: &str, values: &[Field]) -> Result<Row, CapabilityError> {
        let target = TableTarget(Operation::Insert, table);
        let detail = || audit::insert_detail(table, values);
        self.call(
            target,
            detail,
            |_| 1,
            async |tx: &mut Self, CatalogTable(table)| tx.run_insert(table, values).await,
        )
        .await
    }

    /// `update`: set `changes` on the tenant's matching rows.
    pub async fn update(
        &mut self,
        table: &str,
        conditions: &[Condition],
        changes: &[Field],
    ) -> Result<u64, CapabilityError> {
        let target = TableTarget(Operation::Update, table);
        let detail = || audit::update_detail(table, conditions, changes);
        self.call(
            target,
            detail,
            |n| *n,
            async |tx: &mut Self, CatalogTable(table)| {
                tx.run_update(table, conditions, changes).await
            },
        )
        .await
    }

    /// `delete`: remove the tenant's matching rows (conditions required).
    pub async fn delete(
        &mut self,
        table: &str,
        conditions: &[Condition],
    ) -> Result<u64, CapabilityError> {
        let target = TableTarget(Operation::Delete, table);
        let detail = || audit::delete_detail(table, conditions);
        self.call(
            target,
            detail,
            |n| *n,
            async |tx: &mut Self, CatalogTable(table)| tx.run_delete(table, conditions).await,
        )
        .await
    }
}

/// The bodies of the calls, once admitted; and the attempt's end.
impl InvocationTransaction {
    async fn run_query(
        &mut self,
        table: &'static Table,
        conditions: &[Condition],
        order: &[OrderBy],
        limit: Option<u32>,
    ) -> Result<Vec<Row>, CapabilityError> {
        let cap = self.settings.max_rows_per_query;
        let (fetch, capped) = match limit {
            Some(n) if n <= cap => (u64::from(n), false),
            _ => (u64::from(cap) + 1, true),
        };
        let statement = sql::select(table, self.scope(), conditions, order, fetch)?;
        self.session.begin().await?;
        let rows = self.session.fetch_all(statement).await?;
        if capped && rows.len() > cap as usize {
            return Err(CallError::LimitExceeded(format!(
                "query on {} matches more than {cap} rows; narrow the conditions or set a limit",
                table.name
            ))
            .into());
        }
        rows.iter().map(|row| decode(table, row)).collect()
    }

    async fn run_insert(
        &mut self,
        table: &'static Table,
        values: &[Field],
    ) -> Result<Row, CapabilityError> {
        let writes = sql::writes(table, values)?;
        let keys = locks::exclusion_keys_of(table, values, &self.settings);
        let statement = sql::insert(table, self.tenant, writes)?;
        self.session.begin().await?;
        let row = match self
            .session
            .write(table, &keys, Write::Returning(statement))
            .await?
        {
            Written::Rows(rows) if rows.len() == 1 => decode(table, &rows[0])?,
            _ => return Err(Doom::Fatal("an insert returned no row".into()).into()),
        };
        self.capture.record(table, "insert", &row);
        Ok(row)
    }

    async fn run_update(
        &mut self,
        table: &'static Table,
        conditions: &[Condition],
        changes: &[Field],
    ) -> Result<u64, CapabilityError> {
        let writes = sql::writes(table, changes)?;
        let mut key_lookup = None;
        if let (Some(key), true) = (&table.exclusion_key, self.settings.queue_exclusion_writers) {
            key_lookup = Some(sql::select_exclusion_keys(
                table,
                key.columns,
                self.scope(),
                conditions,
            )?);
        }
        let statement = sql::update(
            table,
            self.scope(),
            conditions,
            writes,
            self.capture.enabled(),
        )?;
        self.session.begin().await?;
        let mut keys = locks::exclusion_keys_of(table, changes, &self.settings);
        if let Some(lookup) = key_lookup {
            for row in self.session.fetch_all(lookup).await? {
                for index in 0..sqlx::Row::len(&row) {
                    let id: Option<uuid::Uuid> = sqlx::Row::try_get(&row, index)
                        .map_err(|e| Doom::Fatal(format!("reading exclusion keys: {e}")))?;
                    keys.extend(id.map(|id| id.to_string()));
                }
            }
        }
        self.write_count(table, keys, statement, "update").await
    }

    async fn run_delete(
        &mut self,
        table: &'static Table,
        conditions: &[Condition],
    ) -> Result<u64, CapabilityError> {
        let statement = sql::delete(table, self.scope(), conditions, self.capture.enabled())?;
        self.session.begin().await?;
        self.write_count(table, BTreeSet::new(), statement, "delete")
            .await
    }

    /// Run an update or delete: a count, or (capturing) the rows themselves.
    async fn write_count(
        &mut self,
        table: &'static Table,
        keys: BTreeSet<String>,
        statement: Statement,
        operation: &'static str,
    ) -> Result<u64, CapabilityError> {
        let write = if self.capture.enabled() {
            Write::Returning(statement)
        } else {
            Write::Count(statement)
        };
        match self.session.write(table, &keys, write).await? {
            Written::Count(count) => Ok(count),
            Written::Rows(rows) => {
                for row in &rows {
                    let row = decode(table, row)?;
                    self.capture.record(table, operation, &row);
                }
                Ok(rows.len() as u64)
            }
        }
    }

    /// Before the attempt runs: queue on the keys earlier attempts found
    /// contended (see [`LockPlan`]).
    pub async fn acquire_planned_locks(&mut self) -> Result<(), Doom> {
        let result = self
            .locks
            .acquire_planned(&mut self.session, self.tenant)
            .await;
        self.note_doom(&result);
        result.map_err(|error| match error {
            CapabilityError::Abort(doom) => doom,
            other => Doom::Fatal(format!("queueing on contended locks failed: {other:?}")),
        })
    }

    /// Commit (only when the executor returned `ok`) and release session locks.
    pub async fn commit(self) -> Result<(), Doom> {
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
    ) -> Result<(), Doom> {
        if let Some(statement) = last {
            // It commits with the writes: the transaction needs its id too,
            // should the answer to COMMIT be lost.
            let ran = match self.session.begin().await {
                Ok(()) => match self.session.learn_xid().await {
                    Ok(()) => self.session.execute(statement).await,
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            let ran = match ran {
                // A hook that wrote nothing found its record already there:
                // another request completed it meanwhile (a claim lost with
                // its connection); these writes must not commit beside it.
                Ok(done) if done.rows_affected() == 0 => Err(CapabilityError::Abort(Doom::Fatal(
                    ANSWERED_MEANWHILE.to_owned(),
                ))),
                Ok(_) => Ok(()),
                Err(e) => Err(e),
            };
            match ran {
                Ok(()) => {}
                Err(CapabilityError::Abort(doom)) => {
                    self.doom.get_or_insert(doom);
                }
                Err(CapabilityError::Call(e)) => {
                    self.doom.get_or_insert(Doom::Fatal(format!("{e:?}")));
                }
                Err(CapabilityError::Denied(denied)) => {
                    self.doom.get_or_insert(Doom::Fatal(denied.to_string()));
                }
            }
        }
        if let Some(doom) = self.doom.take() {
            self.session.rollback(None).await;
            return Err(doom);
        }
        self.session
            .commit(audit)
            .await
            .map_err(|failed| match failed {
                // Nothing was begun: the executor's run touched no data, and
                // running it again on another connection is harmless.
                CommitFailed::Audit(e) if is_connectivity(&e) => Doom::Retry {
                    reason: RetryReason::ConnectionLost,
                    contended_key: None,
                },
                CommitFailed::Audit(e) => Doom::Fatal(format!("recording the audit failed: {e}")),
                CommitFailed::Unknown { xid, error } => Doom::CommitUnknown {
                    xid,
                    message: error.to_string(),
                },
                CommitFailed::Commit(error) => match classify(&error) {
                    DbFailure::Retry(reason) if self.settings.replay_conflicts => Doom::Retry {
                        reason,
                        contended_key: None,
                    },
                    _ if sqlstate(&error).as_deref() == Some("26000") => Doom::Fatal(format!(
                        "recording the audit failed ({error}): the host's pool must come \
                     from bookhost::db::pool_options(), which prepares the audit's append"
                    )),
                    _ => Doom::Fatal(format!("COMMIT failed: {error}")),
                },
            })
    }

    /// Roll back everything this attempt did and release its locks.
    pub async fn rollback(mut self) {
        self.session.rollback(None).await;
    }

    /// Roll back, then write `audit` (literal SQL) in the same round trip,
    /// outside the rolled-back transaction. Returns whether it was written.
    pub async fn rollback_with(mut self, audit: String) -> bool {
        self.session.rollback(Some(audit)).await
    }
}

/// A stored row as the executor sees it; a row that does not decode dooms
/// the attempt (the catalog and the schema disagree).
fn decode(table: &Table, row: &PgRow) -> Result<Row, CapabilityError> {
    sql::decode_row(table, row)
        .map_err(|e| Doom::Fatal(format!("decoding a row of {}: {e}", table.name)).into())
}
