//! One attempt: a fresh Store and transaction, the executor run under its
//! deadline, and the pure settling of how the attempt ended.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::Store;

use super::admission::TenantSlot;
use super::host::Host;
use super::outcome::{AttemptEnd, AttemptFailure};
use super::registry::LoadedExecutor;
use super::state::{InstanceLimits, InvocationState};
use crate::capabilities::context::{InvocationContext, LogLine};
use crate::capabilities::grant::Grant;
use crate::capabilities::transaction::{InvocationTransaction, LockPlan};
use crate::capabilities::Doom;
use crate::TenantId;

/// What one attempt runs: the same in every attempt of an invocation, but
/// its number and the lock plan earlier attempts left.
pub struct AttemptPlan<'a> {
    pub executor: &'a LoadedExecutor,
    pub input: &'a str,
    pub tenant: TenantId,
    pub invocation_id: uuid::Uuid,
    pub now_micros: i64,
    pub number: u32,
    pub plan: LockPlan,
    pub grant: Arc<Grant>,
    /// Keep every row written (dry runs, confirmations of proposals).
    pub record_writes: bool,
    /// The invocation's place among its tenant's: whose connection share
    /// the attempt waits for.
    pub slot: &'a TenantSlot,
}

/// What an attempt left behind: its transaction (to commit or roll back),
/// how it settled (the executor's JSON result to commit, or how it ended
/// otherwise) and its log lines.
pub struct AttemptRun {
    pub transaction: InvocationTransaction,
    /// One of the tenant's connection permits, held as long as the
    /// transaction's connection.
    pub connection_permit: tokio::sync::OwnedSemaphorePermit,
    pub settled: Result<serde_json::Value, AttemptEnd>,
    pub logs: Vec<LogLine>,
}

/// How the wasm side of an attempt came back.
#[derive(Debug)]
pub enum Returned {
    /// The wall-clock bound around the whole call expired.
    TimedOut,
    /// The host could not instantiate the executor (resources).
    InstantiateFailed(wasmtime::Error),
    /// The executor trapped (or a capability trapped it).
    Trapped(wasmtime::Error),
    /// `execute` returned: ok or error, each with its text.
    Execute(Result<String, String>),
}

/// The limits the settling of an attempt reports by name.
#[derive(Debug, Clone, Copy)]
pub struct SettleLimits {
    pub timeout: Duration,
    pub max_wasm_stack: usize,
    pub max_memory_bytes: usize,
    pub max_table_elements: usize,
    pub max_output_bytes: usize,
}

/// How an attempt ended, from what its call returned, the doom its
/// transaction recorded and the growth its limiter refused: the executor's
/// JSON result when it may commit, or its end otherwise.
pub fn settle(
    returned: Returned,
    doom: Option<Doom>,
    refused: Option<(&'static str, usize)>,
    limits: &SettleLimits,
) -> Result<serde_json::Value, AttemptEnd> {
    let timed_out = || AttemptFailure::Timeout {
        timeout_ms: limits.timeout.as_millis() as u64,
    };
    let failure = match returned {
        Returned::TimedOut => timed_out(),
        Returned::InstantiateFailed(error) => AttemptFailure::HostFailure {
            message: format!("instantiation failed: {error}"),
        },
        Returned::Trapped(trap) => {
            if let Some(doom) = doom.or_else(|| trap.downcast_ref::<Doom>().cloned()) {
                return Err(doom.into());
            }
            match (trap.downcast_ref::<wasmtime::Trap>(), refused) {
                (Some(wasmtime::Trap::Interrupt), _) => timed_out(),
                (Some(wasmtime::Trap::StackOverflow), _) => AttemptFailure::LimitExceeded {
                    limit: "wasm_stack".into(),
                    message: format!(
                        "the executor recursed past the {} byte wasm stack",
                        limits.max_wasm_stack
                    ),
                },
                (_, Some((what, desired))) => AttemptFailure::LimitExceeded {
                    limit: what.into(),
                    message: match what {
                        "memory" => format!(
                            "the executor asked for {desired} bytes of linear memory; at most {} are allowed",
                            limits.max_memory_bytes
                        ),
                        _ => format!(
                            "the executor asked for a table of {desired} elements; at most {} are allowed",
                            limits.max_table_elements
                        ),
                    },
                },
                _ => AttemptFailure::Trap {
                    message: trap_message(&trap),
                },
            }
        }
        Returned::Execute(Ok(body) | Err(body)) if body.len() > limits.max_output_bytes => {
            AttemptFailure::LimitExceeded {
                limit: "output_bytes".into(),
                message: format!(
                    "the executor returned {} bytes; at most {} are allowed",
                    body.len(),
                    limits.max_output_bytes
                ),
            }
        }
        Returned::Execute(Err(body)) => AttemptFailure::UserError {
            body: serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        },
        Returned::Execute(Ok(output)) => match serde_json::from_str(&output) {
            Ok(output) => return Ok(output),
            Err(e) => AttemptFailure::Trap {
                message: format!("execute returned ok with a result that is not JSON: {e}"),
            },
        },
    };
    Err(failure.into())
}

fn trap_message(trap: &wasmtime::Error) -> String {
    match trap.downcast_ref::<wasmtime::Trap>() {
        Some(code) => format!("{code}"),
        None => format!("{trap}"),
    }
}

/// Run one attempt: a connection, the lock plan's queues, a fresh Store,
/// the executor under its deadline; then settle how it ended. `Err` when
/// no connection could be had: nothing ran.
pub async fn run(host: &Host, attempt: AttemptPlan<'_>) -> Result<AttemptRun, AttemptEnd> {
    let engine = host.registry.engine();
    let _slot = engine.instance_slot().await;
    if let Some(reason) = host.health.down() {
        // Fail fast rather than wait for a connection that cannot come.
        return Err(AttemptFailure::HostFailure {
            message: format!("the database is unreachable ({reason})"),
        }
        .into());
    }
    let connection_permit = attempt.slot.connection_permit().await;
    let conn = match host.pool.acquire().await {
        Ok(conn) => conn,
        Err(e) => {
            if crate::db::errors::is_connectivity(&e) {
                crate::db::health::note_fault();
            }
            return Err(AttemptFailure::HostFailure {
                message: format!("no database connection: {e}"),
            }
            .into());
        }
    };
    let mut transaction = InvocationTransaction::new(
        Some(conn),
        attempt.tenant,
        host.transaction_settings.clone(),
        attempt.plan,
    )
    .with_grant(attempt.grant);
    if !host.settings.audit {
        transaction = transaction.without_audit_details();
    }
    if attempt.record_writes {
        transaction = transaction.record_writes();
    }
    if let Err(doom) = transaction.acquire_planned_locks().await {
        return Ok(AttemptRun {
            transaction,
            connection_permit,
            settled: Err(doom.into()),
            logs: Vec::new(),
        });
    }

    let state = InvocationState {
        context: InvocationContext::new(
            attempt.tenant,
            attempt.invocation_id,
            attempt.now_micros,
            attempt.number,
            host.settings.max_log_bytes,
        ),
        transaction,
        limits: InstanceLimits::new(
            engine.settings.max_memory_bytes,
            engine.settings.max_table_elements,
        ),
    };
    let mut store = Store::new(&engine.engine, state);
    store.limiter(|s| &mut s.limits);
    let timeout = host.settings.execution_timeout;
    // A guest that kept its worker thread for a whole epoch tick yields it
    // (so a spinning executor cannot starve other invocations on the same
    // workers), and every guest is interrupted once its deadline has passed.
    // One whose last wait on the database ended less than a tick ago gave
    // its thread up in that wait: yielding it again would only send it,
    // transaction open, to the back of the run queue.
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

    let executor = attempt.executor;
    let call = async {
        let instantiating = Instant::now();
        let instance = match executor.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(error) => return Returned::InstantiateFailed(error),
        };
        host.metrics
            .instantiated(executor.name.as_str(), instantiating.elapsed());
        match instance.call_execute(&mut store, attempt.input).await {
            Ok(result) => Returned::Execute(result),
            Err(trap) => Returned::Trapped(trap),
        }
    };
    // The epoch deadline stops guest code; this bound also covers time
    // spent inside host calls, where epochs are not checked.
    let returned = tokio::time::timeout(timeout + Duration::from_millis(50), call)
        .await
        .unwrap_or(Returned::TimedOut);

    let InvocationState {
        context,
        transaction,
        limits,
    } = store.into_data();
    let settle_limits = SettleLimits {
        timeout,
        max_wasm_stack: engine.settings.max_wasm_stack,
        max_memory_bytes: engine.settings.max_memory_bytes,
        max_table_elements: engine.settings.max_table_elements,
        max_output_bytes: host.settings.max_output_bytes,
    };
    let settled = settle(
        returned,
        transaction.doom().cloned(),
        limits.refused,
        &settle_limits,
    );
    Ok(AttemptRun {
        transaction,
        connection_permit,
        settled,
        logs: context.logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::errors::RetryReason;

    const LIMITS: SettleLimits = SettleLimits {
        timeout: Duration::from_millis(100),
        max_wasm_stack: 1024,
        max_memory_bytes: 4096,
        max_table_elements: 10,
        max_output_bytes: 8,
    };

    fn failure(settled: Result<serde_json::Value, AttemptEnd>) -> AttemptFailure {
        match settled {
            Err(AttemptEnd::Failed(failure)) => failure,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    fn trap(code: wasmtime::Trap) -> Returned {
        Returned::Trapped(wasmtime::Error::new(code))
    }

    #[test]
    fn ok_with_json_may_commit() {
        let settled = settle(
            Returned::Execute(Ok("{\"a\":1}".into())),
            None,
            None,
            &LIMITS,
        );
        assert_eq!(settled, Ok(serde_json::json!({"a": 1})));
    }

    #[test]
    fn ok_without_json_is_a_trap() {
        let settled = settle(Returned::Execute(Ok("nope".into())), None, None, &LIMITS);
        assert!(
            matches!(failure(settled), AttemptFailure::Trap { message } if message.contains("not JSON"))
        );
    }

    #[test]
    fn an_error_result_is_the_executors_body() {
        let json = settle(
            Returned::Execute(Err("{\"e\":1}".into())),
            None,
            None,
            &LIMITS,
        );
        assert_eq!(
            failure(json),
            AttemptFailure::UserError {
                body: serde_json::json!({"e": 1})
            }
        );
        let text = settle(Returned::Execute(Err("plain".into())), None, None, &LIMITS);
        assert_eq!(
            failure(text),
            AttemptFailure::UserError {
                body: "plain".into()
            }
        );
    }

    #[test]
    fn results_over_the_output_limit_are_refused_either_way() {
        for returned in [Ok("\"123456789\"".to_owned()), Err("123456789".to_owned())] {
            let settled = settle(Returned::Execute(returned), None, None, &LIMITS);
            assert!(
                matches!(failure(settled), AttemptFailure::LimitExceeded { limit, .. } if limit == "output_bytes")
            );
        }
    }

    #[test]
    fn a_doom_decides_over_the_trap_it_caused() {
        let doom = Doom::Retry {
            reason: RetryReason::SerializationFailure,
            contended_key: None,
        };
        let settled = settle(
            trap(wasmtime::Trap::UnreachableCodeReached),
            Some(doom.clone()),
            None,
            &LIMITS,
        );
        assert_eq!(
            settled,
            Err(AttemptEnd::Replay(RetryReason::SerializationFailure))
        );
        // The doom carried by the trap itself counts as well.
        let carried = settle(
            Returned::Trapped(wasmtime::Error::new(doom)),
            None,
            None,
            &LIMITS,
        );
        assert_eq!(
            carried,
            Err(AttemptEnd::Replay(RetryReason::SerializationFailure))
        );
    }

    #[test]
    fn interrupts_and_the_outer_bound_are_timeouts() {
        for returned in [trap(wasmtime::Trap::Interrupt), Returned::TimedOut] {
            let settled = settle(returned, None, None, &LIMITS);
            assert_eq!(
                failure(settled),
                AttemptFailure::Timeout { timeout_ms: 100 }
            );
        }
    }

    #[test]
    fn refused_growth_and_stack_overflow_name_their_limit() {
        let stack = settle(trap(wasmtime::Trap::StackOverflow), None, None, &LIMITS);
        assert!(
            matches!(failure(stack), AttemptFailure::LimitExceeded { limit, .. } if limit == "wasm_stack")
        );
        let memory = settle(
            trap(wasmtime::Trap::UnreachableCodeReached),
            None,
            Some(("memory", 1 << 20)),
            &LIMITS,
        );
        assert!(
            matches!(failure(memory), AttemptFailure::LimitExceeded { limit, message } if limit == "memory" && message.contains("4096"))
        );
        let table = settle(
            trap(wasmtime::Trap::UnreachableCodeReached),
            None,
            Some(("table", 11)),
            &LIMITS,
        );
        assert!(
            matches!(failure(table), AttemptFailure::LimitExceeded { limit, .. } if limit == "table")
        );
    }

    #[test]
    fn other_traps_say_what_trapped() {
        let settled = settle(
            trap(wasmtime::Trap::UnreachableCodeReached),
            None,
            None,
            &LIMITS,
        );
        assert!(
            matches!(failure(settled), AttemptFailure::Trap { message } if message.contains("unreachable"))
        );
        let instantiate = settle(
            Returned::InstantiateFailed(wasmtime::Error::msg("no slots")),
            None,
            None,
            &LIMITS,
        );
        assert!(
            matches!(failure(instantiate), AttemptFailure::HostFailure { message } if message.contains("no slots"))
        );
    }
}
