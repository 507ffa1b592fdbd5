//! Faults under load through three `bookhost serve` processes: terminated
//! backends, PostgreSQL stopped with `-m immediate`, a host killed with
//! SIGKILL, the database unreachable, a host stopped with SIGTERM. After
//! each the history checker finds nothing lost, nothing applied twice or by
//! half, no lock or transaction left behind, and no answer was a 500.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bookhost_tests::executors::*;
use bookhost_tests::fleet::{Fleet, FleetOptions};
use bookhost_tests::history::{check, CheckReport, Client, History, Invariant, Operation, Outcome};

/// Concurrent clients of a run.
const CLIENTS: usize = 12;

/// Services the load books, made before it starts.
async fn services(client: &Client, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..count {
        let record = client
            .invoke(Operation::create_service(CREATE_SERVICE, 30))
            .await;
        assert_eq!(record.outcome, Outcome::Ok, "{record:?}");
        ids.push(
            record.result().unwrap()["service"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids
}

/// The n-th operation of a run: mostly bookings of slots of their own, and
/// every fourth one a contended slot (one of ten per service), so conflicts
/// and replays happen while the faults do.
fn booking(services: &[String], n: u64) -> Operation {
    let service = &services[n as usize % services.len()];
    let hour = if n.is_multiple_of(4) { n % 10 } else { 10 + n };
    let start = chrono::DateTime::from_timestamp(2_000_000_000 + hour as i64 * 3600, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Operation::create_booking(CREATE_BOOKING, service, &start)
}

/// One row of docs/RELIABILITY.md, printed for `--nocapture`.
fn summary(fault: &str, history: &History, report: &CheckReport, recovery: Option<Duration>) {
    println!(
        "| {fault} | {} | {} / {} / {} | {} | {} / {} | {:.1} % | {} | {} |",
        report.operations,
        report.ok,
        report.fail,
        report.unknown,
        report.violations.len(),
        report.advisory_locks,
        report.idle_in_transaction,
        report.retried_share() * 100.0,
        history.tries_with_status(500),
        recovery.map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
    );
    println!(
        "  tries: {:?}; outcomes: {:?}",
        history.try_labels(),
        history.tally()
    );
}

/// A fleet of three built with `options`, its client, and four services.
async fn fleet_with(options: FleetOptions) -> (Arc<Fleet>, Client, Vec<String>) {
    let fleet = Arc::new(Fleet::new(options).await);
    let client = fleet.client();
    let services = services(&client, 4).await;
    (fleet, client, services)
}

/// What every fault test ends with: the checker finds nothing (lost,
/// twice, by half, left behind), no answer was a 500, every operation got a
/// definite answer; the run's row of docs/RELIABILITY.md is printed.
async fn assert_survived(
    fleet: &Fleet,
    fault: &str,
    history: &History,
    recovery: Option<Duration>,
) -> CheckReport {
    let report = check(
        &fleet.owner_pool(),
        fleet.tenant().id,
        history,
        Invariant::SEED,
    )
    .await;
    summary(fault, history, &report, recovery);
    report.assert_clean();
    assert_no_spurious_errors(history);
    report
}

/// No answer a 500, no operation left without a definite answer.
#[track_caller]
fn assert_no_spurious_errors(history: &History) {
    assert_eq!(
        history.tries_with_status(500),
        0,
        "no answer may be a 500: {:#?}",
        history.server_errors()
    );
    assert_eq!(history.count(Outcome::Unknown), 0, "{:?}", history.tally());
}

/// Replays after a connection lost before COMMIT, over every host.
async fn connection_lost_replays(fleet: &Fleet, hosts: &[usize]) -> u64 {
    let mut total = 0;
    for &i in hosts {
        let metrics = reqwest::get(format!("{}/metrics", fleet.host(i)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += metrics
            .lines()
            .filter(|l| l.starts_with("bookhost_replays_total") && l.contains("connection lost"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn terminated_backends_lose_nothing_and_apply_nothing_twice() {
    let (fleet, client, services) = fleet_with(FleetOptions::default()).await;
    let kills = Arc::new(AtomicUsize::new(0));
    let storm = {
        let (fleet, kills) = (fleet.clone(), kills.clone());
        tokio::spawn(async move {
            let began = Instant::now();
            let mut n = 0usize;
            // At least 200 terminations, bounded in time.
            while kills.load(Ordering::Relaxed) < 220 && began.elapsed() < Duration::from_secs(40) {
                let backends = fleet.app_backends().await;
                if !backends.is_empty() {
                    n = n.wrapping_mul(31).wrapping_add(7);
                    if fleet.terminate_backend(backends[n % backends.len()]).await {
                        kills.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let load = {
        let kills = kills.clone();
        let services = services.clone();
        async move {
            let mut history = History::default();
            // Load until the storm has done its 200 (bounded).
            let began = Instant::now();
            while kills.load(Ordering::Relaxed) < 200 && began.elapsed() < Duration::from_secs(40) {
                // Numbered on from the last round: every round books slots of its own.
                let (services, first) = (services.clone(), history.len() as u64 * 2);
                history.extend(
                    client
                        .run_load(CLIENTS, Duration::from_secs(2), move |n| {
                            booking(&services, first + n)
                        })
                        .await,
                );
            }
            history
        }
    };
    // Reads beside the load: every answer a 200, whatever the storm kills.
    let reads = {
        let (fleet, kills) = (fleet.clone(), kills.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let mut i = 0;
            while kills.load(Ordering::Relaxed) < 200 {
                let answer = http
                    .get(format!("{}/v1/services", fleet.host(i % 3)))
                    .bearer_auth(&fleet.tenant().key)
                    .send()
                    .await
                    .unwrap();
                *statuses.entry(answer.status().as_u16()).or_default() += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            statuses
        })
    };
    let history = load.await;
    storm.await.unwrap();
    let reads = reads.await.unwrap();
    println!("reads during the storm: {reads:?}");
    assert_eq!(
        reads.keys().copied().collect::<Vec<_>>(),
        vec![200],
        "{reads:?}"
    );
    let killed = kills.load(Ordering::Relaxed);
    assert!(killed >= 200, "only {killed} backends were terminated");
    let replays = connection_lost_replays(&fleet, &[0, 1, 2]).await;
    println!("{killed} backends terminated; {replays} attempts replayed inside their invocation after losing their connection");
    assert_survived(&fleet, "pg_terminate_backend x200", &history, None).await;
    assert!(
        replays > 0,
        "some invocation lost its connection mid-attempt and was replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_immediately_and_restarted_mid_run() {
    let (fleet, client, services) = fleet_with(FleetOptions::default()).await;
    let restarted = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            fleet.stop_immediate();
            tokio::time::sleep(Duration::from_secs(2)).await;
            fleet.restart().await;
            Instant::now()
        })
    };
    let history = client
        .run_load(CLIENTS, Duration::from_secs(8), move |n| {
            booking(&services, n)
        })
        .await;
    let back = restarted.await.unwrap();
    // Recovery: from the restart to every host ready again.
    for i in 0..3 {
        assert!(
            fleet.wait_ready(i, Duration::from_secs(20)).await,
            "host {i} recovers by itself"
        );
    }
    let recovery = back.elapsed();
    assert_survived(
        &fleet,
        "PostgreSQL -m immediate, restarted",
        &history,
        Some(recovery),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_killed_mid_run_loses_nothing() {
    let (fleet, client, services) = fleet_with(FleetOptions::default()).await;
    let killer = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            fleet.kill9(1);
        })
    };
    let history = client
        .run_load(CLIENTS, Duration::from_secs(6), move |n| {
            booking(&services, n)
        })
        .await;
    killer.await.unwrap();
    assert!(!fleet.is_running(1));
    // Operations whose try on the killed host broke were finished by
    // another host, under the same key.
    let moved = history
        .records
        .iter()
        .filter(|r| r.tries.len() > 1 && r.tries[0].host == 1 && r.tries.last().unwrap().host != 1)
        .count();
    println!("{moved} operations moved from the killed host to another with their key");
    assert_survived(&fleet, "kill -9 of one host", &history, None).await;
    assert!(
        moved > 0,
        "some operation was retried elsewhere: {:?}",
        history.try_labels()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_database_is_answered_503_and_recovered_from() {
    let (fleet, client, services) = fleet_with(FleetOptions {
        proxied: true,
        ..FleetOptions::default()
    })
    .await;
    let load = {
        let (client, services) = (client.clone(), services.clone());
        tokio::spawn(async move {
            client
                .run_load(CLIENTS / 2, Duration::from_secs(10), move |n| {
                    booking(&services, n)
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        fleet.proxy(i).unwrap().blackhole(true);
    }
    let cut = Instant::now();
    // Each host finds out by itself and says so on /readyz.
    let mut not_ready = Vec::new();
    for i in 0..3 {
        let began = Instant::now();
        loop {
            if fleet.readyz(i).await == Some(503) {
                break;
            }
            assert!(
                began.elapsed() < Duration::from_secs(15),
                "host {i} never said not ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        not_ready.push(cut.elapsed());
    }
    // An invocation now is refused at once, with Retry-After, not left hanging.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let op = booking(&services, 1_000_000);
    let asked = Instant::now();
    let answer = http
        .post(format!(
            "{}/v1/executors/{CREATE_BOOKING}/invoke",
            fleet.host(0)
        ))
        .bearer_auth(&fleet.tenant().key)
        .header("Idempotency-Key", &op.idempotency_key)
        .json(&op.input)
        .send()
        .await
        .expect("an answer, not a hang");
    let refused_in = asked.elapsed();
    assert_eq!(answer.status(), 503);
    assert!(answer.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for i in 0..3 {
        fleet.proxy(i).unwrap().blackhole(false);
    }
    let healed = Instant::now();
    for i in 0..3 {
        assert!(
            fleet.wait_ready(i, Duration::from_secs(20)).await,
            "host {i} recovers by itself"
        );
    }
    let recovery = healed.elapsed();
    let history = load.await.unwrap();
    println!(
        "not ready after {:?}; an invocation refused in {refused_in:?}; ready again {recovery:?} after the database came back",
        not_ready
    );
    assert_survived(
        &fleet,
        "database unreachable (blackhole), 3 s+",
        &history,
        Some(recovery),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_finishes_in_flight_and_refuses_new() {
    let (fleet, client, services) = fleet_with(FleetOptions::default()).await;
    let stopper = {
        let fleet = fleet.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            fleet.sigterm(0);
            fleet.wait_exit(0, Duration::from_secs(30)).await
        })
    };
    let history = client
        .run_load(CLIENTS, Duration::from_secs(5), move |n| {
            booking(&services, n)
        })
        .await;
    let exit = stopper
        .await
        .unwrap()
        .expect("the host stopped within its grace");
    assert!(exit.success(), "a clean exit: {exit:?}");
    let refused = history
        .tries()
        .filter(|t| t.host == 0 && t.status == Some(503))
        .count();
    println!("{refused} tries refused 503 by the stopping host");
    assert_survived(&fleet, "SIGTERM of one host", &history, None).await;
}
