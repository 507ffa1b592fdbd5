//! A COMMIT whose answer is lost: the host asks the database what became of
//! it before it answers (and answers the truth); a host that guesses
//! instead (a test-only broken setting) is caught by the history checker.

use std::sync::Arc;

use bookhost::api::ServiceConfig;
use bookhost::{Host, HostSettings};
use bookhost_tests::executors::*;
use bookhost_tests::fleet::{Fleet, FleetOptions};
use bookhost_tests::history::{check, Client, History, Invariant, Operation, Outcome};
use bookhost_tests::http::serve;
use bookhost_tests::proxy::FaultProxy;
use sqlx::postgres::PgConnectOptions;

/// Operations per run, and how many of their COMMITs lose their answer.
const OPERATIONS: usize = 24;
const CUTS: usize = 8;

/// An in-process host whose every connection to the fleet's database goes
/// through `proxy`, served over HTTP.
async fn host_behind(
    proxy: &FaultProxy,
    settings: HostSettings,
) -> bookhost_tests::http::TestServer {
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(proxy.port())
        .username(bookhost::db::APP_ROLE)
        .database("postgres");
    let pool = bookhost::db::pool_options()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("connecting through the proxy");
    serve(
        Host::new(pool, bookhost_tests::executors(), settings),
        ServiceConfig::default(),
    )
    .await
}

/// How an armed cut loses a COMMIT's answer.
#[derive(Clone, Copy, PartialEq)]
enum Loss {
    /// The COMMIT reaches the server, its answer never comes back: committed.
    AfterCommit,
    /// The connection dies as the COMMIT is sent, before the server reads
    /// it: aborted.
    BeforeCommit,
}

/// Run `OPERATIONS` create-service invocations one after another (so each
/// armed cut falls on an invocation's COMMIT) with `CUTS` of their COMMITs
/// cut off from their answers (by `losses`, in turn), and return the history
/// and the host's metrics.
async fn run_with_lost_commits(
    settings: HostSettings,
    losses: &[Loss],
) -> (Fleet, Arc<FaultProxy>, History, String) {
    let fleet = Fleet::new(FleetOptions {
        hosts: 1,
        ..FleetOptions::default()
    })
    .await;
    let upstream = ([127, 0, 0, 1], fleet.postgres_port()).into();
    let proxy = Arc::new(FaultProxy::start(upstream).await.unwrap());
    let server = host_behind(&proxy, settings).await;
    let client = Client::new(vec![server.base().to_owned()], &fleet.tenant().key);
    let mut history = History::default();
    for i in 0..OPERATIONS {
        if i % (OPERATIONS / CUTS) == 1 {
            // The batch that carries an invocation's COMMIT also appends its
            // audit record: only those are cut.
            let cut = i / (OPERATIONS / CUTS);
            match losses[cut % losses.len()] {
                Loss::AfterCommit => proxy.cut_after_commit_containing(1, "bookhost_audit_append"),
                Loss::BeforeCommit => proxy.drop_commit_containing(1, "bookhost_audit_append"),
            }
        }
        let record = client
            .invoke(Operation::create_service(CREATE_SERVICE, 30))
            .await;
        history.records.push(record);
    }
    let metrics = reqwest::get(format!("{}/metrics", server.base()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (fleet, proxy, history, metrics)
}

fn resolved(metrics: &str, truth: &str) -> u64 {
    let prefix = format!("bookhost_commits_resolved_total{{truth=\"{truth}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_commit_is_asked_of_the_database_and_answered_truly() {
    let losses = [Loss::AfterCommit, Loss::BeforeCommit];
    let (fleet, proxy, history, metrics) =
        run_with_lost_commits(HostSettings::default(), &losses).await;
    assert_eq!(
        proxy.commits_cut() as usize,
        CUTS,
        "every armed cut fell on a COMMIT"
    );
    // The host asked each time: half had committed (answered ok), half had
    // not (replayed on another connection, then ok); the client never had
    // to retry, and nothing was applied twice or lost.
    assert_eq!(
        resolved(&metrics, "committed"),
        (CUTS / 2) as u64,
        "{metrics}"
    );
    assert_eq!(
        resolved(&metrics, "aborted"),
        (CUTS / 2) as u64,
        "{metrics}"
    );
    assert_eq!(
        history.count(Outcome::Ok),
        OPERATIONS,
        "{:?}",
        history.tally()
    );
    assert!(
        history.records.iter().all(|r| r.tries.len() == 1),
        "{:?}",
        history.try_labels()
    );
    let report = check(
        &fleet.owner_pool(),
        fleet.tenant().id,
        &history,
        Invariant::SEED,
    )
    .await;
    report.assert_clean();
    assert_eq!(report.ok, OPERATIONS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_checker_catches_a_host_that_answers_before_the_commit_is_known() {
    let broken = HostSettings {
        unsafe_assume_lost_commit_committed: true,
        ..HostSettings::default()
    };
    let (fleet, proxy, history, metrics) =
        run_with_lost_commits(broken, &[Loss::BeforeCommit]).await;
    assert_eq!(proxy.commits_cut() as usize, CUTS);
    assert_eq!(resolved(&metrics, "committed"), CUTS as u64, "{metrics}");
    let report = check(
        &fleet.owner_pool(),
        fleet.tenant().id,
        &history,
        Invariant::SEED,
    )
    .await;
    // Each guess acknowledged a create-service whose COMMIT never reached
    // the server: acknowledged, and lost.
    let lost: Vec<_> = report
        .violations
        .iter()
        .filter(|v| v.contains("acknowledged but took effect 0 times"))
        .collect();
    assert_eq!(lost.len(), CUTS, "{report}");
}
