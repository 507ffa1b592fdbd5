//! Hostile executors (plugins/fixture-hostile): each is stopped with its exact
//! typed outcome, writes nothing, and the host answers normally right after.

use std::time::Duration;

use bookhost::db::locks::{advisory_lock_id, LockNamespace};
use bookhost::{HostSettings, InvocationOutcome};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::json;

/// Run the fixture in `mode` on a fresh tenant; check nothing was written and
/// that a normal invocation succeeds right after. Returns the outcome.
async fn hostile(settings: HostSettings, input: serde_json::Value) -> InvocationOutcome {
    let host = host_with(settings, 4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(&host, tenant, FIXTURE_HOSTILE, input).await;
    assert_eq!(services_of(tenant).await, 0, "{:?}", report.outcome);
    let id = create_service(&host, tenant, "after-the-attack", 30).await;
    assert_eq!(id.len(), 36);
    assert_eq!(services_of(tenant).await, 1);
    report.outcome
}

fn limit_of(outcome: &InvocationOutcome) -> &str {
    match outcome {
        InvocationOutcome::LimitExceeded { limit, .. } => limit,
        other => panic!("expected limit_exceeded, got {other:?}"),
    }
}

fn short_deadline() -> HostSettings {
    HostSettings {
        execution_timeout: Duration::from_millis(300),
        ..HostSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infinite_loop_times_out() {
    let outcome = hostile(short_deadline(), json!({"mode": "spin"})).await;
    assert_eq!(outcome, InvocationOutcome::Timeout { timeout_ms: 300 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_then_a_loop_times_out_and_leaves_nothing() {
    let outcome = hostile(short_deadline(), json!({"mode": "write-then-spin"})).await;
    assert_eq!(outcome, InvocationOutcome::Timeout { timeout_ms: 300 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_flood_hits_the_call_budget() {
    let outcome = hostile(HostSettings::default(), json!({"mode": "query-flood"})).await;
    assert_eq!(limit_of(&outcome), "calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_flood_hits_the_write_budget_and_leaves_nothing() {
    let mut settings = HostSettings::default();
    settings.discipline.transaction.max_rows_written = 50;
    let outcome = hostile(settings, json!({"mode": "write-flood"})).await;
    assert_eq!(limit_of(&outcome), "rows_written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_bomb_hits_the_memory_limit() {
    let outcome = hostile(HostSettings::default(), json!({"mode": "memory-bomb"})).await;
    assert_eq!(limit_of(&outcome), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_recursion_hits_the_stack_limit() {
    let outcome = hostile(HostSettings::default(), json!({"mode": "recursion"})).await;
    assert_eq!(limit_of(&outcome), "wasm_stack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_output_hits_the_output_limit() {
    let outcome = hostile(
        HostSettings::default(),
        json!({"mode": "huge-output", "size_mib": 4}),
    )
    .await;
    assert_eq!(limit_of(&outcome), "output_bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_hits_the_log_limit_and_leaves_nothing() {
    let outcome = hostile(HostSettings::default(), json!({"mode": "log-flood"})).await;
    assert_eq!(
        outcome,
        InvocationOutcome::LimitExceeded {
            limit: "log_bytes".into(),
            message: "the executor logged more than 65536 bytes in one attempt".into(),
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoarding_locks_hits_the_lock_limit() {
    let outcome = hostile(
        HostSettings::default(),
        json!({"mode": "many-locks", "count": 1000}),
    )
    .await;
    assert_eq!(limit_of(&outcome), "locks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_while_spinning_is_released_at_the_deadline() {
    let host = host_with(short_deadline(), 4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_HOSTILE,
        json!({"mode": "lock-and-spin"}),
    )
    .await;
    assert_eq!(
        report.outcome,
        InvocationOutcome::Timeout { timeout_ms: 300 }
    );
    let id = advisory_lock_id(LockNamespace::Lock, tenant, "hostile");
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND classid = ($1::bigint)::oid AND objid = ($2::bigint)::oid",
    )
    .bind((id as u64 >> 32) as i64)
    .bind((id as u64 & 0xffff_ffff) as i64)
    .fetch_one(&owner())
    .await
    .unwrap();
    assert_eq!(held, 0, "the spinning attempt's lock must be gone");
    // The same lock is free for the next invocation: it ends the same way,
    // at its own deadline, not waiting behind a leftover holder.
    let again = invoke(
        &host,
        tenant,
        FIXTURE_HOSTILE,
        json!({"mode": "lock-and-spin"}),
    )
    .await;
    assert_eq!(
        again.outcome,
        InvocationOutcome::Timeout { timeout_ms: 300 }
    );
    assert_eq!(services_of(tenant).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_at_its_cap_is_refused_while_another_is_served() {
    let settings = HostSettings {
        execution_timeout: Duration::from_secs(2),
        max_in_flight_per_tenant: 2,
        ..HostSettings::default()
    };
    let host = host_with(settings, 6).await;
    let (noisy, quiet) = (tenant(&owner()).await, tenant(&owner()).await);
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move {
                invoke(&host, noisy, FIXTURE_HOSTILE, json!({"mode": "spin"})).await
            })
        })
        .collect();
    // Wait (bounded) until both spinners hold their slots.
    for _ in 0..400 {
        if host.in_flight(noisy) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(host.in_flight(noisy), 2);
    assert_eq!(host.tenants_in_flight(), 1);
    let refused = host
        .invoke(
            noisy,
            CREATE_SERVICE,
            r#"{"name": "third", "duration_minutes": 30}"#,
        )
        .await;
    assert!(
        matches!(refused, Err(bookhost::InvokeError::TenantBusy(2))),
        "{refused:?}"
    );
    // The other tenant is not affected by the first one's cap.
    create_service(&host, quiet, "served", 30).await;
    for spinner in spinners {
        let report = spinner.await.unwrap();
        assert_eq!(
            report.outcome,
            InvocationOutcome::Timeout { timeout_ms: 2000 }
        );
    }
    assert_eq!(host.in_flight(noisy), 0);
    assert_eq!(services_of(noisy).await, 0);
    create_service(&host, noisy, "after-the-cap", 30).await;
    // Nothing is kept for tenants with nothing running (a host that has
    // served many tenants does not keep an entry for each).
    assert_eq!(host.tenants_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_input_is_refused_before_running() {
    let settings = HostSettings {
        max_input_bytes: 64,
        ..HostSettings::default()
    };
    let host = host_with(settings, 2).await;
    let tenant = tenant(&owner()).await;
    let name = "n".repeat(100);
    let input = json!({"name": name, "duration_minutes": 30}).to_string();
    let refused = host.invoke(tenant, CREATE_SERVICE, &input).await;
    assert!(
        matches!(
            refused,
            Err(bookhost::InvokeError::InputTooLarge { max: 64, .. })
        ),
        "{refused:?}"
    );
    assert_eq!(services_of(tenant).await, 0);
}

/// Executors run on a 64 KiB shadow stack (plugins/.cargo/config.toml). The
/// deepest input the host lets through (JSON nested 127 levels: serde_json's
/// own limit is 128) still fits: the executor answers its usual bad-input
/// error, nothing is written, and the same executor works right after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deepest_input_fits_the_executors_stack() {
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let nested = format!("{}{}", "[".repeat(126), "]".repeat(126));
    let input = format!(r#"{{"name": {nested}, "duration_minutes": 30}}"#);
    let report = host.invoke(tenant, CREATE_SERVICE, &input).await.unwrap();
    assert!(
        matches!(report.outcome, InvocationOutcome::UserError { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(services_of(tenant).await, 0);
    create_service(&host, tenant, "after-deep-input", 30).await;
    assert_eq!(services_of(tenant).await, 1);
}

/// The TypeScript fixture (plugins/ts/fixture-hostile-ts.ts) in `mode`, like
/// [`hostile`]: nothing written, a normal invocation served right after.
async fn hostile_ts(settings: HostSettings, mode: &str) -> bookhost::InvocationReport {
    let host = host_with(settings, 4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(&host, tenant, FIXTURE_HOSTILE_TS, json!({"mode": mode})).await;
    assert_eq!(services_of(tenant).await, 0, "{:?}", report.outcome);
    let input = json!({"page": "home", "section": {"id": "after-the-attack"}});
    let after = invoke(&host, tenant, UPDATE_PAGE_SECTION_TS, input).await;
    assert_eq!(ok_output(&after)["sections"], 1);
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_throw_is_a_trap_with_its_message_in_the_log() {
    let report = hostile_ts(HostSettings::default(), "throw").await;
    assert!(
        matches!(report.outcome, InvocationOutcome::Trap { .. }),
        "{:?}",
        report.outcome
    );
    let logged: Vec<&str> = report.logs.iter().map(|l| l.message.as_str()).collect();
    assert!(
        logged
            .iter()
            .any(|m| m.contains("Error: fixture-hostile-ts threw on purpose")),
        "{logged:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_loop_times_out_within_the_same_bound() {
    let report = hostile_ts(short_deadline(), "spin").await;
    assert_eq!(
        report.outcome,
        InvocationOutcome::Timeout { timeout_ms: 300 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_memory_bomb_hits_the_memory_limit() {
    let report = hostile_ts(HostSettings::default(), "memory-bomb").await;
    assert_eq!(limit_of(&report.outcome), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typescript_write_then_throw_leaves_nothing() {
    let report = hostile_ts(HostSettings::default(), "write-then-throw").await;
    assert!(
        matches!(report.outcome, InvocationOutcome::Trap { .. }),
        "{:?}",
        report.outcome
    );
    assert!(
        report.logs.iter().any(|l| l
            .message
            .contains("TypeError: fixture-hostile-ts threw after writing")),
        "{:?}",
        report.logs
    );
}
