//! One tenant's hot key beside another tenant's work: 64 invocations queued
//! on one lock must not take the pool's connections from everyone else.

use std::time::{Duration, Instant};

use bookhost::db::locks::{advisory_lock_id, LockNamespace};
use bookhost::{Host, HostSettings, InvocationOutcome};
use bookhost_tests::executors::*;
use bookhost_tests::{create_service, executors, owner, tenant};
use serde_json::json;

use crate::percentile;

const POOL: u32 = 32;
const QUEUED: usize = 64;
const QUIET_CALLS: usize = 40;
/// How long the hot key stays taken while the quiet tenant is measured.
const HOLD: Duration = Duration::from_secs(4);

/// The quiet tenant's create-service latencies (ms) and failed outcomes.
async fn quiet_run(host: &Host, quiet: bookhost::TenantId) -> (Vec<f64>, Vec<&'static str>) {
    let (mut latencies, mut failed) = (Vec::new(), Vec::new());
    for i in 0..QUIET_CALLS {
        let input =
            json!({"name": format!("quiet-{i}-{}", uuid::Uuid::new_v4()), "duration_minutes": 30});
        let started = Instant::now();
        let report = host
            .invoke(quiet, CREATE_SERVICE, &input.to_string())
            .await
            .unwrap();
        match report.outcome {
            InvocationOutcome::Ok { .. } => {
                latencies.push(started.elapsed().as_secs_f64() * 1000.0)
            }
            other => failed.push(other.kind()),
        }
    }
    latencies.sort_by(f64::total_cmp);
    (latencies, failed)
}

/// `cargo bench -p bookhost-tests --bench bookhost-bench -- tenant-share`
pub async fn tenant_share() {
    let pool = bookhost::db::pool_options()
        .max_connections(POOL)
        .acquire_timeout(bookhost::db::ACQUIRE_TIMEOUT)
        .connect_with(bookhost::db::app_options(&bookhost_tests::database()))
        .await
        .unwrap();
    let hot = tenant(&pool).await;
    let quiet = tenant(&pool).await;
    let setup = Host::new(pool.clone(), executors(), HostSettings::default());
    let service = create_service(&setup, hot, "hot", 30).await;
    let start = "2031-05-05T10:00:00Z";
    // create-booking-locked takes `lock("booking:<service>:<date>")` first.
    let lock = advisory_lock_id(
        LockNamespace::Lock,
        hot,
        &format!("booking:{service}:2031-05-05"),
    );

    let mut rows = Vec::new();
    let alone = quiet_run(&setup, quiet).await;
    rows.push(("alone".to_owned(), alone, 0usize));
    for share in [POOL as usize / 2, POOL as usize] {
        let host = Host::new(
            pool.clone(),
            executors(),
            HostSettings {
                connections_per_tenant: Some(share),
                ..HostSettings::default()
            },
        );
        // Hold the hot key from outside: every hot invocation queues on it.
        let mut holder = owner().acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(lock)
            .execute(&mut *holder)
            .await
            .unwrap();
        let queued: Vec<_> = (0..QUEUED)
            .map(|i| {
                let host = host.clone();
                let input =
                    json!({"service_id": service, "customer": format!("hot-{i}"), "start": start});
                tokio::spawn(async move {
                    host.invoke(hot, CREATE_BOOKING_LOCKED, &input.to_string())
                        .await
                        .unwrap()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let waiting = host.in_flight(hot);
        let measured = tokio::time::timeout(HOLD * 4, quiet_run(&host, quiet));
        let release = async {
            tokio::time::sleep(HOLD).await;
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(lock)
                .execute(&mut *holder)
                .await
                .unwrap();
        };
        let (run, ()) = tokio::join!(measured, release);
        let run = run.expect("the quiet tenant's run finished");
        for q in queued {
            q.await.unwrap();
        }
        sqlx::query("DELETE FROM bookings WHERE tenant_id = $1")
            .bind(hot.0)
            .execute(&owner())
            .await
            .unwrap();
        rows.push((
            format!("beside {QUEUED} queued on one key, tenant share {share} of {POOL}"),
            run,
            waiting,
        ));
    }
    println!("### One tenant's hot key beside another tenant\n");
    println!(
        "A pool of {POOL}. One tenant's hot key is held from outside for {} s while {QUEUED} of \
         its `create-booking-locked` invocations queue on it; another tenant creates services \
         one after the other ({QUIET_CALLS} calls). The tenant share is how many connections one \
         tenant's invocations may hold at once (`connections_per_tenant`, default half the \
         pool); at {POOL} it is the behaviour before the share existed.\n",
        HOLD.as_secs()
    );
    println!("| quiet tenant's create-service | hot invocations in flight | succeeded | failed (outcomes) | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (label, (run, failed), waiting) in &rows {
        let (p50, p99, max) = match run.len() {
            0 => (f64::NAN, f64::NAN, f64::NAN),
            n => (percentile(run, 0.5), percentile(run, 0.99), run[n - 1]),
        };
        let mut kinds = failed.clone();
        kinds.dedup();
        println!(
            "| {label} | {waiting} | {} | {} {kinds:?} | {p50:.1} | {p99:.1} | {max:.1} |",
            run.len(),
            failed.len(),
        );
    }
    println!();
}
