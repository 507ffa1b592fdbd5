//! The invocation loop: one transaction per attempt, commit only on `ok`,
//! replay (in a fresh Store) on serialization failures, deadlocks and
//! contended locks, and exactly one outcome per invocation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;
use wasmtime::Store;

use super::metrics::Metrics;
use super::registry::{ExecutorRegistry, LoadedExecutor};
use super::state::{InstanceLimits, InvocationState};
use super::HostSettings;
use crate::capabilities::audit::AuditCall;
use crate::capabilities::context::{InvocationContext, LogLine};
use crate::capabilities::grant::Grant;
use crate::capabilities::transaction::{
    CommitError, InvocationTransaction, LockPlan, TransactionSettings, WriteRecord,
};
use crate::capabilities::{CapabilityError, Doom};
use crate::db::audit::AttemptAudit;
use crate::db::errors::RetryReason;
use crate::db::sql::Statement;
use crate::TenantId;

/// Why an invocation could not start. Nothing ran and nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("no executor named {0:?}")]
    UnknownExecutor(String),
    #[error("input is not valid JSON: {0}")]
    InvalidInput(String),
    #[error("the input is {bytes} bytes; at most {max} are accepted")]
    InputTooLarge { bytes: usize, max: usize },
    /// The tenant already has its cap of invocations running: one tenant
    /// cannot take every worker, instance and connection.
    #[error("the tenant already has {0} invocations in flight; retry shortly")]
    TenantBusy(usize),
}

impl InvokeError {
    /// The problem slug the API answers with.
    pub fn slug(&self) -> &'static str {
        match self {
            InvokeError::UnknownExecutor(_) => "unknown-executor",
            InvokeError::InvalidInput(_) => "malformed-json",
            InvokeError::InputTooLarge { .. } => "input-too-large",
            InvokeError::TenantBusy(_) => "tenant-busy",
        }
    }
}

/// How an invocation ended: exactly one of these. Only `Ok` committed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum InvocationOutcome {
    /// `execute` returned ok and the transaction committed.
    Ok { output: serde_json::Value },
    /// `execute` returned an error result; everything was rolled back.
    UserError { body: serde_json::Value },
    /// The executor trapped (panic, bad output, ...); rolled back.
    Trap { message: String },
    /// The attempt exceeded the execution timeout; rolled back.
    Timeout { timeout_ms: u64 },
    /// Every attempt hit a serialization failure, deadlock or contended
    /// lock. Nothing was written; retrying later may succeed.
    RetriesExhausted {
        attempts: u32,
        last_reason: RetryReason,
    },
    /// The database failed in a way a replay would not fix; rolled back.
    HostFailure { message: String },
    /// The executor went over a limit (memory, wasm stack, capability
    /// calls, rows read or written, locks held, output size); rolled back.
    /// `limit` names it: memory, table, wasm_stack, calls, rows_read,
    /// rows_written, locks, output_bytes.
    LimitExceeded { limit: String, message: String },
}

impl InvocationOutcome {
    /// The short kind name (`ok`, `user_error`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            InvocationOutcome::Ok { .. } => "ok",
            InvocationOutcome::UserError { .. } => "user_error",
            InvocationOutcome::Trap { .. } => "trap",
            InvocationOutcome::Timeout { .. } => "timeout",
            InvocationOutcome::RetriesExhausted { .. } => "retries_exhausted",
            InvocationOutcome::HostFailure { .. } => "host_failure",
            InvocationOutcome::LimitExceeded { .. } => "limit_exceeded",
        }
    }
}

/// What the host reports about one invocation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InvocationReport {
    pub invocation_id: uuid::Uuid,
    pub executor: String,
    pub tenant: String,
    #[serde(flatten)]
    pub outcome: InvocationOutcome,
    /// Attempts made (1 + replays).
    pub attempts: u32,
    /// Why each replay happened, in order.
    pub replays: Vec<RetryReason>,
    /// Every line the executor logged, in every attempt.
    pub logs: Vec<LogLine>,
    /// A dry run: the transaction was rolled back whatever the outcome.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// In a dry run, every row the successful attempt wrote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WriteRecord>,
    #[serde(serialize_with = "as_millis")]
    pub duration: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

enum AttemptEnd {
    Done(InvocationOutcome),
    Replay(RetryReason),
    /// `execute` returned ok with JSON; the loop commits (or, for a dry run,
    /// rolls back) once it has the report.
    Succeeded {
        transaction: Box<InvocationTransaction>,
        output: serde_json::Value,
    },
}

/// A statement that must commit exactly when the executor's writes do,
/// built from the report the caller will receive (idempotency records).
pub trait CommitHook: Send + Sync {
    fn statement(&self, report: &InvocationReport) -> Statement;
}

/// How to run one invocation.
#[derive(Clone, Default)]
pub struct InvokeOptions {
    /// Run the executor, report its writes, then roll back even on ok.
    pub dry_run: bool,
    /// Run inside the transaction just before COMMIT.
    pub on_commit: Option<Arc<dyn CommitHook>>,
    /// The capabilities calls may use; default: what the executor declares.
    pub grant: Option<Arc<Grant>>,
}

/// What the loop accumulates across the attempts of one invocation.
struct InvocationRun {
    identity: InvocationIdentity,
    executor: String,
    started: Instant,
    plan: LockPlan,
    logs: Vec<LogLine>,
    replays: Vec<RetryReason>,
    attempts: u32,
    writes: Vec<WriteRecord>,
    version: String,
    attempt_started: Instant,
    /// The current attempt's capability calls, until its outcome is known.
    calls: Vec<AuditCall>,
}

impl InvocationRun {
    fn report(&self, outcome: InvocationOutcome, dry_run: bool) -> InvocationReport {
        InvocationReport {
            invocation_id: self.identity.id,
            executor: self.executor.clone(),
            tenant: self.identity.tenant.to_string(),
            outcome,
            attempts: self.attempts,
            replays: self.replays.clone(),
            logs: self.logs.clone(),
            dry_run,
            writes: self.writes.clone(),
            duration: self.started.elapsed(),
        }
    }
}

/// The host: a pool, the executors, the discipline.
#[derive(Clone)]
pub struct Host {
    pool: PgPool,
    registry: Arc<ExecutorRegistry>,
    settings: Arc<HostSettings>,
    transaction_settings: Arc<TransactionSettings>,
    metrics: Arc<Metrics>,
    /// In-flight invocations per tenant with any running (an entry leaves
    /// with its tenant's last invocation, so idle tenants cost nothing).
    tenant_slots: Arc<std::sync::Mutex<HashMap<TenantId, usize>>>,
}

/// One invocation's place among its tenant's `max_in_flight_per_tenant`,
/// given back when dropped.
struct TenantSlot {
    slots: Arc<std::sync::Mutex<HashMap<TenantId, usize>>>,
    tenant: TenantId,
}

impl Drop for TenantSlot {
    fn drop(&mut self) {
        let mut slots = self.slots.lock().expect("not poisoned");
        if let std::collections::hash_map::Entry::Occupied(mut running) = slots.entry(self.tenant) {
            *running.get_mut() -= 1;
            if *running.get() == 0 {
                running.remove();
            }
        }
    }
}

impl Host {
    pub fn new(pool: PgPool, registry: Arc<ExecutorRegistry>, settings: HostSettings) -> Self {
        let transaction_settings = Arc::new(settings.discipline.transaction.clone());
        Self {
            pool,
            registry,
            settings: Arc::new(settings),
            transaction_settings,
            metrics: Arc::new(Metrics::new()),
            tenant_slots: Default::default(),
        }
    }

    /// How many of `tenant`'s invocations are running now.
    pub fn in_flight(&self, tenant: TenantId) -> usize {
        let slots = self.tenant_slots.lock().expect("not poisoned");
        slots.get(&tenant).copied().unwrap_or(0)
    }

    /// How many tenants have invocations running now (what the host keeps
    /// per tenant).
    pub fn tenants_in_flight(&self) -> usize {
        self.tenant_slots.lock().expect("not poisoned").len()
    }

    /// A slot among the tenant's `max_in_flight_per_tenant`, or `TenantBusy`.
    fn tenant_slot(&self, tenant: TenantId) -> Result<TenantSlot, InvokeError> {
        let cap = self.settings.max_in_flight_per_tenant;
        let mut slots = self.tenant_slots.lock().expect("not poisoned");
        let running = slots.get(&tenant).copied().unwrap_or(0);
        if running >= cap {
            return Err(InvokeError::TenantBusy(cap));
        }
        slots.insert(tenant, running + 1);
        Ok(TenantSlot {
            slots: self.tenant_slots.clone(),
            tenant,
        })
    }

    /// The host's Prometheus metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub fn registry(&self) -> &ExecutorRegistry {
        &self.registry
    }

    /// Run the executor registered as `executor` (see
    /// [`ExecutorRegistry::get`]) for `tenant` on `input` (JSON text).
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
        let _slot = self.tenant_slot(tenant)?;
        let mut run = InvocationRun {
            identity: InvocationIdentity {
                tenant,
                // Time-ordered: audit records are indexed by invocation, and
                // ids that grow append to that index instead of scattering.
                id: uuid::Uuid::now_v7(),
                now_micros: chrono::Utc::now().timestamp_micros(),
            },
            executor: executor.name.to_string(),
            started: Instant::now(),
            plan: LockPlan::default(),
            logs: Vec::new(),
            replays: Vec::new(),
            attempts: 0,
            writes: Vec::new(),
            version: executor.digest.clone(),
            attempt_started: Instant::now(),
            calls: Vec::new(),
        };
        let grant = options
            .grant
            .clone()
            .unwrap_or_else(|| Arc::new(Grant::new(executor.capabilities.iter().copied())));
        let discipline = &self.settings.discipline;
        let outcome = loop {
            run.attempts += 1;
            run.attempt_started = Instant::now();
            let end = match self
                .attempt(executor, &mut run, input, options.dry_run, &grant)
                .await
            {
                AttemptEnd::Succeeded {
                    mut transaction,
                    output,
                } if options.dry_run => {
                    run.writes = transaction.take_writes();
                    self.end_attempt(&mut run, *transaction, "dry_run").await;
                    AttemptEnd::Done(InvocationOutcome::Ok { output })
                }
                AttemptEnd::Succeeded {
                    transaction,
                    output,
                } => {
                    let outcome = InvocationOutcome::Ok { output };
                    let last = options
                        .on_commit
                        .as_ref()
                        .map(|hook| hook.statement(&run.report(outcome.clone(), false)));
                    let audit = self.audit_sql(&run, "committed");
                    match transaction.commit_with(last, audit).await {
                        Ok(()) => {
                            self.attempt_metrics(&mut run, "committed");
                            AttemptEnd::Done(outcome)
                        }
                        Err(CommitError::Retry(reason)) => {
                            self.record_attempt(&mut run, "replayed").await;
                            AttemptEnd::Replay(reason)
                        }
                        Err(CommitError::Fatal(message)) => {
                            self.record_attempt(&mut run, "host_failure").await;
                            AttemptEnd::Done(InvocationOutcome::HostFailure { message })
                        }
                    }
                }
                other => other,
            };
            match end {
                AttemptEnd::Done(outcome) => break outcome,
                AttemptEnd::Replay(reason) => {
                    tracing::debug!(invocation = %run.identity.id, attempt = run.attempts, %reason, "replaying");
                    run.replays.push(reason);
                    if run.attempts >= discipline.max_attempts {
                        break InvocationOutcome::RetriesExhausted {
                            attempts: run.attempts,
                            last_reason: reason,
                        };
                    }
                    let collisions = run
                        .replays
                        .iter()
                        .filter(|r| {
                            matches!(r, RetryReason::SerializationFailure | RetryReason::Deadlock)
                        })
                        .count();
                    let queue_after = discipline.replay_queue_after as usize;
                    if queue_after > 0 && collisions >= queue_after {
                        run.plan.replay_queue = Some(run.executor.clone());
                    }
                    // A contended lock's replay waits in the lock queue instead.
                    if reason != RetryReason::LockContended {
                        tokio::time::sleep(self.backoff(run.attempts)).await;
                    }
                }
                AttemptEnd::Succeeded { .. } => unreachable!("settled above"),
            }
        };
        let report = run.report(outcome, options.dry_run);
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

    fn audit_of<'a>(&self, run: &'a InvocationRun, outcome: &'static str) -> AttemptAudit<'a> {
        AttemptAudit {
            tenant: run.identity.tenant,
            invocation_id: run.identity.id,
            attempt: run.attempts,
            executor: &run.executor,
            version: &run.version,
            outcome,
            duration_us: run.attempt_started.elapsed().as_micros() as i64,
            calls: &run.calls,
        }
    }

    /// The attempt's audit records as literal SQL, to ride along with its
    /// COMMIT or ROLLBACK (None when auditing is off).
    fn audit_sql(&self, run: &InvocationRun, outcome: &'static str) -> Option<String> {
        self.settings
            .audit
            .then(|| crate::db::audit::append_sql(&self.audit_of(run, outcome)))
    }

    fn attempt_metrics(&self, run: &mut InvocationRun, outcome: &'static str) {
        let calls = std::mem::take(&mut run.calls);
        self.metrics.attempt(
            &run.executor,
            outcome,
            &calls,
            run.attempt_started.elapsed(),
        );
    }

    /// Append the attempt's audit records on their own (outside its
    /// transaction, so they survive its rollback). A failure to record is
    /// logged, not fatal: the attempt has already ended.
    async fn record_attempt(&self, run: &mut InvocationRun, outcome: &'static str) {
        if self.settings.audit {
            if let Err(e) = crate::db::audit::append(&self.pool, &self.audit_of(run, outcome)).await
            {
                tracing::error!(invocation = %run.identity.id, "recording the audit failed: {e:#}");
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
        outcome: &'static str,
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

    async fn attempt(
        &self,
        executor: &LoadedExecutor,
        run: &mut InvocationRun,
        input: &str,
        dry_run: bool,
        grant: &Arc<Grant>,
    ) -> AttemptEnd {
        let (invocation, attempt) = (&run.identity, run.attempts);
        let engine = self.registry.engine();
        let _slot = engine.instance_slot().await;
        let conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                return AttemptEnd::Done(InvocationOutcome::HostFailure {
                    message: format!("no database connection: {e}"),
                })
            }
        };
        let mut transaction = InvocationTransaction::new(
            Some(conn),
            invocation.tenant,
            self.transaction_settings.clone(),
            run.plan.clone(),
        );
        transaction = transaction.with_grant(grant.clone());
        if !self.settings.audit {
            transaction = transaction.without_audit_details();
        }
        if dry_run {
            transaction = transaction.record_writes();
        }
        if let Err(error) = transaction.acquire_planned_locks().await {
            run.plan = transaction.plan().clone();
            run.calls = transaction.take_audit();
            let end = match error {
                CapabilityError::Abort(doom) => doom_end(doom),
                CapabilityError::Call(call) => AttemptEnd::Done(InvocationOutcome::HostFailure {
                    message: format!("queueing on contended locks failed: {call:?}"),
                }),
            };
            self.end_attempt(run, transaction, end.label()).await;
            return end;
        }

        let state = InvocationState {
            context: InvocationContext::new(
                invocation.tenant,
                invocation.id,
                invocation.now_micros,
                attempt,
                self.settings.max_log_bytes,
            ),
            transaction,
            limits: InstanceLimits::new(
                engine.settings.max_memory_bytes,
                engine.settings.max_table_elements,
            ),
        };
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|s| &mut s.limits);
        let timeout = self.settings.execution_timeout;
        // A guest that kept its worker thread for a whole epoch tick yields
        // it (so a spinning executor cannot starve other invocations on the
        // same workers), and every guest is interrupted once its deadline has
        // passed. One whose last wait on the database ended less than a tick
        // ago gave its thread up in that wait: yielding it again would only
        // send it, transaction open, to the back of the run queue.
        let deadline = Instant::now() + timeout;
        let tick = engine.settings.epoch_tick;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |store| {
            let now = Instant::now();
            if now >= deadline {
                return Ok(wasmtime::UpdateDeadline::Interrupt);
            }
            let waited_lately = store
                .data()
                .transaction
                .last_wait_ended()
                .is_some_and(|ended| now.duration_since(ended) < tick);
            Ok(if waited_lately {
                wasmtime::UpdateDeadline::Continue(1)
            } else {
                wasmtime::UpdateDeadline::Yield(1)
            })
        });

        let call = async {
            let instantiating = Instant::now();
            let instance = executor
                .pre
                .instantiate_async(&mut store)
                .await
                .map_err(Failure::Instantiate)?;
            self.metrics
                .instantiated(&run.executor, instantiating.elapsed());
            instance
                .call_execute(&mut store, input)
                .await
                .map_err(Failure::Trap)
        };
        // The epoch deadline stops guest code; this bound also covers time
        // spent inside host calls, where epochs are not checked.
        let result = tokio::time::timeout(timeout + Duration::from_millis(50), call).await;

        let InvocationState {
            context,
            mut transaction,
            limits,
        } = store.into_data();
        run.calls = transaction.take_audit();
        run.logs.extend(context.logs);
        run.plan = transaction.plan().clone();
        let timed_out = InvocationOutcome::Timeout {
            timeout_ms: timeout.as_millis() as u64,
        };
        let end = match result {
            Err(_elapsed) => AttemptEnd::Done(timed_out),
            Ok(Err(Failure::Instantiate(error))) => {
                AttemptEnd::Done(InvocationOutcome::HostFailure {
                    message: format!("instantiation failed: {error}"),
                })
            }
            Ok(Err(Failure::Trap(trap))) => match transaction
                .doom()
                .or_else(|| trap.downcast_ref::<Doom>())
                .cloned()
            {
                Some(doom) => doom_end(doom),
                None => match (trap.downcast_ref::<wasmtime::Trap>(), limits.refused) {
                    (Some(wasmtime::Trap::Interrupt), _) => AttemptEnd::Done(timed_out),
                    (Some(wasmtime::Trap::StackOverflow), _) => {
                        AttemptEnd::Done(InvocationOutcome::LimitExceeded {
                            limit: "wasm_stack".into(),
                            message: format!(
                                "the executor recursed past the {} byte wasm stack",
                                engine.settings.max_wasm_stack
                            ),
                        })
                    }
                    (_, Some((what, desired))) => {
                        AttemptEnd::Done(InvocationOutcome::LimitExceeded {
                            limit: what.into(),
                            message: match what {
                                "memory" => format!(
                                    "the executor asked for {desired} bytes of linear memory; at most {} are allowed",
                                    engine.settings.max_memory_bytes
                                ),
                                _ => format!(
                                    "the executor asked for a table of {desired} elements; at most {} are allowed",
                                    engine.settings.max_table_elements
                                ),
                            },
                        })
                    }
                    _ => AttemptEnd::Done(InvocationOutcome::Trap {
                        message: trap_message(&trap),
                    }),
                },
            },
            Ok(Ok(Err(body))) | Ok(Ok(Ok(body))) if body.len() > self.settings.max_output_bytes => {
                AttemptEnd::Done(InvocationOutcome::LimitExceeded {
                    limit: "output_bytes".into(),
                    message: format!(
                        "the executor returned {} bytes; at most {} are allowed",
                        body.len(),
                        self.settings.max_output_bytes
                    ),
                })
            }
            Ok(Ok(Err(body))) => {
                let body = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
                AttemptEnd::Done(InvocationOutcome::UserError { body })
            }
            Ok(Ok(Ok(output))) => match serde_json::from_str(&output) {
                Err(e) => AttemptEnd::Done(InvocationOutcome::Trap {
                    message: format!("execute returned ok with a result that is not JSON: {e}"),
                }),
                Ok(output) => {
                    return AttemptEnd::Succeeded {
                        transaction: Box::new(transaction),
                        output,
                    }
                }
            },
        };
        self.end_attempt(run, transaction, end.label()).await;
        end
    }
}

impl AttemptEnd {
    /// The attempt outcome the audit records for an attempt that ends here.
    fn label(&self) -> &'static str {
        match self {
            AttemptEnd::Done(InvocationOutcome::Ok { .. }) => "committed",
            AttemptEnd::Done(InvocationOutcome::UserError { .. }) => "rolled_back",
            AttemptEnd::Done(InvocationOutcome::Trap { .. }) => "trapped",
            AttemptEnd::Done(InvocationOutcome::Timeout { .. }) => "timed_out",
            AttemptEnd::Done(InvocationOutcome::LimitExceeded { .. }) => "limit_exceeded",
            AttemptEnd::Done(_) => "host_failure",
            AttemptEnd::Replay(_) => "replayed",
            AttemptEnd::Succeeded { .. } => "succeeded",
        }
    }
}

/// Where an attempt's wasm side failed: the host could not instantiate
/// (resources), or the executor trapped.
enum Failure {
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
}

struct InvocationIdentity {
    tenant: TenantId,
    id: uuid::Uuid,
    now_micros: i64,
}

fn doom_end(doom: Doom) -> AttemptEnd {
    match doom {
        Doom::Retry { reason, .. } => AttemptEnd::Replay(reason),
        Doom::Fatal(message) => AttemptEnd::Done(InvocationOutcome::HostFailure { message }),
        Doom::Limit { limit, message } => AttemptEnd::Done(InvocationOutcome::LimitExceeded {
            limit: limit.into(),
            message,
        }),
    }
}

fn trap_message(trap: &wasmtime::Error) -> String {
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(code) => format!("{code}"),
        None => format!("{trap}"),
    }
}
