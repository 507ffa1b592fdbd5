//! Replays are invisible to executors and visible to the host: a read-modify-
//! write counter under concurrency ends exact, and every attempt is reported.

use bookhost_tests::executors::*;
use bookhost_tests::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replays_are_invisible_and_counted() {
    const N: usize = 32;
    let host = host(N as u32).await;
    let tenant = tenant(&owner()).await;
    // Create the counter first, so all writers race on one existing row.
    assert_eq!(
        ok_output(
            &invoke(
                &host,
                tenant,
                "fixture-faults",
                json!({"mode": "count-attempts"})
            )
            .await
        )["count"],
        1
    );

    let reports = concurrently(
        &host,
        tenant,
        FIXTURE_FAULTS,
        vec![json!({"mode": "count-attempts"}); N],
    )
    .await;
    let mut counts: Vec<i64> = reports
        .iter()
        .map(|r| ok_output(r)["count"].as_i64().unwrap())
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        (2..=N as i64 + 1).collect::<Vec<_>>(),
        "each committed increment saw the one before"
    );

    let mut attempts = 0;
    for report in &reports {
        let started: Vec<u32> = report
            .logs
            .iter()
            .filter(|l| l.message == "attempt started")
            .map(|l| l.attempt)
            .collect();
        assert_eq!(
            started,
            (1..=report.attempts).collect::<Vec<_>>(),
            "one log line per reported attempt"
        );
        assert_eq!(report.replays.len() as u32, report.attempts - 1);
        attempts += report.attempts;
    }
    println!("count-attempts: {N} concurrent increments of one row: final count exact, {attempts} attempts ({} replays)", attempts as usize - N);
    assert!(
        attempts as usize > N,
        "32 concurrent read-modify-writes of one row should have needed replays"
    );
}

/// Pools hand out connections without pinging them first. An attempt that
/// finds its connection closed by the server (here: terminated between two
/// invocations) is replayed on a fresh one before anything ran: the
/// invocation succeeds, once, and reports the replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_closed_by_the_server_is_replaced_by_a_replay() {
    let host = host(1).await;
    let tenant = tenant(&owner()).await;
    create_service(&host, tenant, "before", 30).await;
    close_the_only_connection(host.pool()).await;

    let report = invoke(
        &host,
        tenant,
        CREATE_SERVICE,
        json!({"name": "after", "duration_minutes": 30}),
    )
    .await;
    ok_output(&report);
    assert_eq!(report.attempts, 2, "{:?}", report.replays);
    assert_eq!(
        report.replays,
        [bookhost::db::errors::RetryReason::ConnectionLost]
    );
    let services = services_of(tenant).await;
    assert_eq!(services, 2);
}
