//! Faults after a write: a trap, an error result and a timeout each leave
//! zero rows behind, and the host answers the next invocation normally.

use std::time::Duration;

use bookhost::{HostSettings, InvocationOutcome};
use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::json;

async fn services_named(pool: &sqlx::PgPool, tenant: bookhost::TenantId, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM services WHERE tenant_id = $1 AND name = $2")
        .bind(tenant.0)
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn host_still_serves(host: &bookhost::Host, tenant: bookhost::TenantId) {
    let id = create_service(host, tenant, "after-the-fault", 45).await;
    assert_eq!(id.len(), 36);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_after_write_leaves_nothing() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_FAULTS,
        json!({"mode": "trap-after-write", "name": "trapped"}),
    )
    .await;
    assert!(
        matches!(&report.outcome, InvocationOutcome::Trap { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(report.attempts, 1);
    assert!(
        report
            .logs
            .iter()
            .any(|l| l.level == "error" && l.message.contains("fixture trap after write")),
        "the panic message reaches the host log: {:?}",
        report.logs
    );
    assert_eq!(services_named(&owner(), tenant, "trapped").await, 0);
    host_still_serves(&host, tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_result_after_write_leaves_nothing() {
    let host = host(4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_FAULTS,
        json!({"mode": "error-after-write", "name": "regretted"}),
    )
    .await;
    assert_eq!(
        user_error_code(&report),
        Some("changed_my_mind"),
        "{:?}",
        report.outcome
    );
    assert_eq!(services_named(&owner(), tenant, "regretted").await, 0);
    host_still_serves(&host, tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_after_write_leaves_nothing() {
    let settings = HostSettings {
        execution_timeout: Duration::from_millis(300),
        ..HostSettings::default()
    };
    let host = host_with(settings, 4).await;
    let tenant = tenant(&owner()).await;
    let report = invoke(
        &host,
        tenant,
        FIXTURE_FAULTS,
        json!({"mode": "loop-after-write", "name": "looped"}),
    )
    .await;
    assert_eq!(
        report.outcome,
        InvocationOutcome::Timeout { timeout_ms: 300 }
    );
    assert_eq!(services_named(&owner(), tenant, "looped").await, 0);
    host_still_serves(&host, tenant).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_before_running() {
    let host = host(2).await;
    let tenant = tenant(&owner()).await;
    let unknown = host
        .invoke(tenant, "no-such-executor", "{}")
        .await
        .unwrap_err();
    assert!(
        matches!(unknown, bookhost::InvokeError::UnknownExecutor(ref n) if n == "no-such-executor")
    );
    let malformed = host
        .invoke(tenant, CREATE_SERVICE, "{not json")
        .await
        .unwrap_err();
    assert!(matches!(malformed, bookhost::InvokeError::InvalidInput(_)));
    // Well-formed JSON the executor rejects: its own typed error, nothing written.
    let report = invoke(&host, tenant, CREATE_SERVICE, json!({"name": 7})).await;
    assert_eq!(
        user_error_code(&report),
        Some("invalid_input"),
        "{:?}",
        report.outcome
    );
}
