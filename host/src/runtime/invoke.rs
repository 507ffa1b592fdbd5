//! The invocation loop: attempts until one commits or ends the invocation,
//! replaying (with backoff, or queued) on conflicts; every attempt's record
//! written with its COMMIT or ROLLBACK; exactly one outcome per invocation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admission::TenantSlot;
use super::attempt::{self, AttemptPlan, AttemptRun};
use super::host::Host;
use super::outcome::{
    AttemptEnd, AttemptFailure, InvocationOutcome, InvocationReport, InvokeError,
};
use super::registry::LoadedExecutor;
use crate::capabilities::context::LogLine;
use crate::capabilities::grant::Grant;
use crate::capabilities::transaction::{same_writes, InvocationTransaction, LockPlan, WriteRecord};
use crate::capabilities::Doom;
use crate::db::audit::{AttemptAudit, AttemptOutcome, AuditCall};
use crate::db::commit_status::{self, AttemptRecord, TxIdentity, XactStatus};
use crate::db::errors::RetryReason;
use crate::db::sql::Statement;
use crate::TenantId;

/// A statement that must commit exactly when the executor's writes do,
/// built from the report the caller will receive (idempotency records). It
/// must write one row; writing none says its record was made elsewhere
/// meanwhile, and the attempt is rolled back instead of committed.
pub trait CommitHook: Send + Sync {
    fn statement(&self, report: &InvocationReport) -> Statement;
}

/// How to run one invocation.
#[derive(Clone, Default)]
pub struct InvokeOptions {
    /// Run the executor, report its writes, then roll back even on ok.
    pub dry_run: bool,
    /// Run inside the transaction just before COMMIT. The report the hook
    /// is given is the one the invocation returns when it commits.
    pub on_commit: Option<Arc<dyn CommitHook>>,
    /// The capabilities calls may use; default: what the executor declares.
    pub grant: Option<Arc<Grant>>,
    /// The invocation's clock (microseconds since the epoch); default: now.
    /// A proposal's confirmation runs on the proposal's clock.
    pub now_micros: Option<i64>,
    /// Commit only if the successful attempt writes exactly these rows
    /// (modulo generated values; see [`same_writes`]); otherwise roll back
    /// and end `Changed` with the rows it wrote.
    pub expected_writes: Option<Arc<Vec<WriteRecord>>>,
    /// The proposal this invocation proposes or confirms, recorded with each
    /// attempt so the audit links the two.
    pub proposal: Option<uuid::Uuid>,
}

/// What the loop accumulates across the attempts of one invocation.
struct InvocationRun {
    tenant: TenantId,
    invocation_id: uuid::Uuid,
    now_micros: i64,
    executor: String,
    version: String,
    proposal: Option<uuid::Uuid>,
    started: Instant,
    plan: LockPlan,
    logs: Vec<LogLine>,
    replays: Vec<RetryReason>,
    attempts: u32,
    writes: Vec<WriteRecord>,
    attempt_started: Instant,
    /// The current attempt's capability calls, until its outcome is known.
    calls: Vec<AuditCall>,
    /// Attempts whose connection was lost before COMMIT.
    connection_losses: u32,
    /// Why the current attempt is being replayed, once it is.
    replay_reason: Option<RetryReason>,
}

/// What the server says of a COMMIT whose answer was lost.
#[derive(Debug)]
enum CommitTruth {
    Committed,
    Aborted,
    /// It could not be asked in time (or no longer knows).
    Unknown(String),
}

impl InvocationRun {
    fn report(&self, outcome: InvocationOutcome, dry_run: bool) -> InvocationReport {
        InvocationReport {
            invocation_id: self.invocation_id,
            executor: self.executor.clone(),
            version: self.version.clone(),
            tenant: self.tenant.to_string(),
            outcome,
            attempts: self.attempts,
            replays: self.replays.clone(),
            logs: self.logs.clone(),
            dry_run,
            writes: self.writes.clone(),
            duration: self.started.elapsed(),
        }
    }

    fn audit(&self, outcome: AttemptOutcome) -> AttemptAudit<'_> {
        AttemptAudit {
            tenant: self.tenant,
            invocation_id: self.invocation_id,
            attempt: self.attempts,
            executor: &self.executor,
            version: &self.version,
            outcome,
            duration_us: self.attempt_started.elapsed().as_micros() as i64,
            proposal: self.proposal,
            replay_reason: self
                .replay_reason
                .filter(|_| outcome == AttemptOutcome::Replayed),
            calls: &self.calls,
        }
    }

    /// Serialization failures and deadlocks so far (contended locks and lost
    /// connections are not collisions of replays).
    fn collisions(&self) -> usize {
        self.replays
            .iter()
            .filter(|r| matches!(r, RetryReason::SerializationFailure | RetryReason::Deadlock))
            .count()
    }
}

impl Host {
    /// Run the executor registered as `executor` (see
    /// [`super::ExecutorRegistry::get`]) for `tenant` on `input` (JSON text).
    pub async fn invoke(
        &self,
        tenant: TenantId,
        executor: &str,
        input: &str,
    ) -> Result<InvocationReport, InvokeError> {
        let executor = self
            .registry
            .get(executor)
            .ok_or_else(|| InvokeError::UnknownExecutor(executor.to_owned()))?;
        self.invoke_executor(tenant, &executor, input, InvokeOptions::default())
            .await
    }

    /// Run `executor` for `tenant` on `input` (JSON text) under the discipline.
    pub async fn invoke_executor(
        &self,
        tenant: TenantId,
        executor: &LoadedExecutor,
        input: &str,
        options: InvokeOptions,
    ) -> Result<InvocationReport, InvokeError> {
        if input.len() > self.settings.max_input_bytes {
            return Err(InvokeError::InputTooLarge {
                bytes: input.len(),
                max: self.settings.max_input_bytes,
            });
        }
        serde_json::from_str::<serde::de::IgnoredAny>(input)
            .map_err(|e| InvokeError::InvalidInput(e.to_string()))?;
        let slot = self.admission.admit(tenant)?;
        let mut run = InvocationRun {
            tenant,
            // Time-ordered: audit records are indexed by invocation, and
            // ids that grow append to that index instead of scattering.
            invocation_id: uuid::Uuid::now_v7(),
            now_micros: options
                .now_micros
                .unwrap_or_else(|| chrono::Utc::now().timestamp_micros()),
            executor: executor.name.to_string(),
            version: executor.digest.clone(),
            proposal: options.proposal,
            started: Instant::now(),
            plan: LockPlan::default(),
            logs: Vec::new(),
            replays: Vec::new(),
            attempts: 0,
            writes: Vec::new(),
            attempt_started: Instant::now(),
            calls: Vec::new(),
            connection_losses: 0,
            replay_reason: None,
        };
        let grant = options
            .grant
            .clone()
            .unwrap_or_else(|| Arc::new(Grant::new(executor.capabilities.iter().copied())));
        let discipline = &self.settings.discipline;
        let report = loop {
            run.attempts += 1;
            run.attempt_started = Instant::now();
            let ended = self
                .attempt(executor, &mut run, input, &options, &grant, &slot)
                .await;
            let reason = match ended {
                Ok(report) => break report,
                Err(AttemptEnd::Failed(failure)) => {
                    break run.report(failure.into(), options.dry_run)
                }
                Err(AttemptEnd::Replay(reason)) => reason,
            };
            tracing::debug!(invocation = %run.invocation_id, attempt = run.attempts, %reason, "replaying");
            run.replays.push(reason);
            if reason == RetryReason::ConnectionLost {
                crate::db::health::note_fault();
                run.connection_losses += 1;
                if run.connection_losses > self.settings.max_connection_losses {
                    let lost = InvocationOutcome::HostFailure {
                        message: format!(
                            "the connection to the database was lost {} times",
                            run.connection_losses
                        ),
                    };
                    break run.report(lost, options.dry_run);
                }
            }
            if run.attempts >= discipline.max_attempts {
                let exhausted = InvocationOutcome::RetriesExhausted {
                    attempts: run.attempts,
                    last_reason: reason,
                };
                break run.report(exhausted, options.dry_run);
            }
            let queue_after = discipline.replay_queue_after as usize;
            if queue_after > 0 && run.collisions() >= queue_after {
                run.plan.replay_queue = Some(run.executor.clone());
            }
            // A contended lock's replay waits in the lock queue instead.
            if reason != RetryReason::LockContended {
                tokio::time::sleep(self.backoff(run.attempts)).await;
            }
        };
        self.metrics
            .invocation(&report.executor, report.outcome.kind(), &report.replays);
        tracing::info!(
            invocation = %report.invocation_id,
            executor = %report.executor,
            outcome = report.outcome.kind(),
            attempts = report.attempts,
            "invocation finished"
        );
        Ok(report)
    }

    /// One attempt, ended: committed (the report), or rolled back and how.
    async fn attempt(
        &self,
        executor: &LoadedExecutor,
        run: &mut InvocationRun,
        input: &str,
        options: &InvokeOptions,
        grant: &Arc<Grant>,
        slot: &TenantSlot,
    ) -> Result<InvocationReport, AttemptEnd> {
        let plan = AttemptPlan {
            executor,
            input,
            tenant: run.tenant,
            invocation_id: run.invocation_id,
            now_micros: run.now_micros,
            number: run.attempts,
            plan: run.plan.clone(),
            grant: grant.clone(),
            record_writes: options.dry_run || options.expected_writes.is_some(),
            slot,
        };
        let AttemptRun {
            mut transaction,
            // Held until the transaction has ended.
            connection_permit: _permit,
            settled,
            logs,
        } = attempt::run(self, plan).await?;
        run.logs.extend(logs);
        run.calls = transaction.take_audit();
        run.plan = transaction.plan().clone();
        let output = match settled {
            Ok(output) => output,
            Err(end) => {
                run.replay_reason = end.replay_reason();
                self.end_attempt(run, transaction, end.attempt_outcome())
                    .await;
                return Err(end);
            }
        };
        if options.dry_run {
            run.writes = transaction.take_writes();
            self.end_attempt(run, transaction, AttemptOutcome::DryRun)
                .await;
            return Ok(run.report(InvocationOutcome::Ok { output }, true));
        }
        if let Some(expected) = &options.expected_writes {
            let writes = transaction.take_writes();
            if !same_writes(expected, &writes) {
                run.writes = writes;
                self.end_attempt(run, transaction, AttemptOutcome::Changed)
                    .await;
                return Ok(run.report(InvocationOutcome::Changed { output }, false));
            }
        }
        let outcome = InvocationOutcome::Ok { output };
        // With a hook, the report it stores is the one returned: built once,
        // before the commit that stores it.
        let (report, last) = match &options.on_commit {
            Some(hook) => {
                let report = run.report(outcome.clone(), false);
                let last = hook.statement(&report);
                (Some(report), Some(last))
            }
            None => (None, None),
        };
        let audit = self.audit_sql(run, AttemptOutcome::Committed);
        let xid = transaction.xid();
        // A database that stops answering mid-commit must not hold the
        // invocation: past the bound the COMMIT's fate is asked, as when
        // its connection is lost.
        let bound = self.transaction_settings.statement_timeout + Duration::from_secs(5);
        let committed = tokio::time::timeout(bound, transaction.commit_with(last, audit))
            .await
            .unwrap_or_else(|_| {
                Err(Doom::CommitUnknown {
                    xid,
                    message: format!("no answer to COMMIT within {} ms", bound.as_millis()),
                })
            });
        let doom = match committed {
            Ok(()) => {
                self.attempt_metrics(run, AttemptOutcome::Committed);
                return Ok(report.unwrap_or_else(|| run.report(outcome, false)));
            }
            Err(Doom::CommitUnknown { xid, message }) => {
                match self.commit_truth(run, xid).await {
                    // Its audit record committed with it, in the same batch.
                    CommitTruth::Committed => {
                        self.metrics.commit_resolved("committed");
                        self.attempt_metrics(run, AttemptOutcome::Committed);
                        return Ok(report.unwrap_or_else(|| run.report(outcome, false)));
                    }
                    // Nothing of it committed: replay, like a connection
                    // lost before COMMIT.
                    CommitTruth::Aborted => {
                        self.metrics.commit_resolved("aborted");
                        Doom::Retry {
                            reason: RetryReason::ConnectionLost,
                            contended_key: None,
                        }
                    }
                    // Not recorded on its own: the record rode with COMMIT,
                    // so it exists exactly when the attempt committed.
                    CommitTruth::Unknown(why) => {
                        self.metrics.commit_resolved("unknown");
                        let failure = AttemptFailure::CommitUnknown {
                            message: format!("{message}; then {why}"),
                        };
                        self.attempt_metrics(run, AttemptOutcome::CommitUnknown);
                        return Err(failure.into());
                    }
                }
            }
            Err(doom) => doom,
        };
        let end = AttemptEnd::from(doom);
        run.replay_reason = end.replay_reason();
        self.record_attempt(run, end.attempt_outcome()).await;
        Err(end)
    }

    /// Ask the server what became of a COMMIT whose answer was lost, until
    /// it knows or the resolution timeout passes. Without an id the
    /// transaction wrote nothing of the executor's: committed or not, the
    /// data is the same, and it answers as committed.
    async fn commit_truth(&self, run: &InvocationRun, xid: Option<TxIdentity>) -> CommitTruth {
        let Some(identity) = xid else {
            return CommitTruth::Committed;
        };
        let xid = identity.xid;
        tracing::warn!(invocation = %run.invocation_id, xid, "the answer to COMMIT was lost; asking the database");
        // Its audit record rode with COMMIT: after a restart it is what tells.
        let record = self.settings.audit.then_some(AttemptRecord {
            tenant: run.tenant,
            invocation_id: run.invocation_id,
            attempt: run.attempts,
        });
        if self.settings.unsafe_assume_lost_commit_committed {
            return CommitTruth::Committed;
        }
        let deadline = Instant::now() + self.settings.commit_resolution_timeout;
        loop {
            let why = match commit_status::status(&self.pool, &identity, record.as_ref()).await {
                Ok(Some(XactStatus::Committed)) => return CommitTruth::Committed,
                Ok(Some(XactStatus::Aborted)) => return CommitTruth::Aborted,
                Ok(None) => {
                    return CommitTruth::Unknown(format!(
                        "the database no longer knows transaction {xid}"
                    ))
                }
                Ok(Some(XactStatus::InProgress)) => {
                    format!("transaction {xid} is still in progress")
                }
                Err(e) => format!("the database could not be asked: {e}"),
            };
            if Instant::now() >= deadline {
                return CommitTruth::Unknown(why);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The attempt's audit record as literal SQL, to ride along with its
    /// COMMIT or ROLLBACK (None when auditing is off).
    fn audit_sql(&self, run: &InvocationRun, outcome: AttemptOutcome) -> Option<String> {
        self.settings
            .audit
            .then(|| crate::db::audit::append_sql(&run.audit(outcome)))
    }

    fn attempt_metrics(&self, run: &mut InvocationRun, outcome: AttemptOutcome) {
        let calls = std::mem::take(&mut run.calls);
        self.metrics.attempt(
            &run.executor,
            outcome.as_str(),
            &calls,
            run.attempt_started.elapsed(),
        );
    }

    /// Append the attempt's audit record on its own (outside its
    /// transaction, so it survives the rollback). A failure to record is
    /// logged, not fatal: the attempt has already ended.
    async fn record_attempt(&self, run: &mut InvocationRun, outcome: AttemptOutcome) {
        if self.settings.audit {
            if let Err(e) = crate::db::audit::append(&self.pool, &run.audit(outcome)).await {
                tracing::error!(invocation = %run.invocation_id, "recording the audit failed: {e:#}");
            }
        }
        self.attempt_metrics(run, outcome);
    }

    /// Roll an attempt back and record it (in the same round trip when the
    /// connection allows).
    async fn end_attempt(
        &self,
        run: &mut InvocationRun,
        transaction: InvocationTransaction,
        outcome: AttemptOutcome,
    ) {
        match self.audit_sql(run, outcome) {
            Some(audit) => {
                if transaction.rollback_with(audit).await {
                    self.attempt_metrics(run, outcome);
                } else {
                    self.record_attempt(run, outcome).await;
                }
            }
            None => {
                transaction.rollback().await;
                self.attempt_metrics(run, outcome);
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let discipline = &self.settings.discipline;
        let ceiling = discipline
            .backoff_base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(discipline.backoff_cap);
        ceiling.mul_f64(rand::random::<f64>())
    }
}
