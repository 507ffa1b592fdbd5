//! One tenant's hot key beside another tenant's work: 64 invocations queued
//! on one lock must not take the pool's connections from everyone else.

use std::time::Duration;

use bookhost::db::locks::{advisory_lock_id, LockNamespace};
use bookhost::{Host, HostSettings};
use bookhost_tests::executors::*;
use bookhost_tests::{create_service, executors, owner, tenant};
use serde_json::json;

use crate::{latency_cells, quiet_creates};

const POOL: u32 = 32;
const QUEUED: usize = 64;
const QUIET_CALLS: usize = 40;
/// How long the hot key stays taken while the quiet tenant is measured.
const HOLD: Duration = Duration::from_secs(4);

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
    let alone = quiet_creates(&setup, quiet, QUIET_CALLS).await;
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
        let measured = tokio::time::timeout(HOLD * 4, quiet_creates(&host, quiet, QUIET_CALLS));
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
        println!("| {label} | {waiting} | {} |", latency_cells(run, failed));
    }
    println!();
}
