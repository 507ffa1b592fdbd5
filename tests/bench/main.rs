//! `bookhost-bench`: benchmarks against a throw-away PostgreSQL and the real
//! executors, measured side by side in one run. Prints a Markdown report.
//!
//! Run: `cargo run -p bookhost-tests --bin bookhost-bench -- audit`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bookhost::{Host, HostSettings, InvocationOutcome, TenantId};
use bookhost_tests::{create_service, executors, pool, tenant};
use serde_json::json;

/// Invocations per measured round, and concurrent clients.
const ROUND: usize = 1000;
const CLIENTS: usize = 8;
const ROUNDS: usize = 5;

/// Book `count` distinct slots with `clients` concurrent clients; returns
/// invocations per second.
async fn throughput(
    host: &Host,
    tenant: TenantId,
    services: &[String],
    first_slot: usize,
    count: usize,
    clients: usize,
) -> f64 {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (host, services, next) = (host.clone(), services.to_vec(), next.clone());
            tokio::spawn(async move {
                let executor = host.registry().get("create-booking").unwrap();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let slot = first_slot + i;
                    let start = chrono::DateTime::from_timestamp(
                        1_900_000_000 + (slot / services.len()) as i64 * 3600,
                        0,
                    )
                    .unwrap();
                    let input = json!({
                        "service_id": services[slot % services.len()],
                        "customer": "bench",
                        "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    });
                    let report = host
                        .invoke_executor(tenant, &executor, &input.to_string(), Default::default())
                        .await
                        .unwrap();
                    assert!(
                        matches!(report.outcome, InvocationOutcome::Ok { .. }),
                        "{:?}",
                        report.outcome
                    );
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    count as f64 / started.elapsed().as_secs_f64()
}

async fn audit_overhead() {
    let registry = executors();
    let audited = Host::new(pool(16).await, registry.clone(), HostSettings::default());
    let unaudited = Host::new(
        pool(16).await,
        registry,
        HostSettings {
            audit: false,
            ..HostSettings::default()
        },
    );
    let tenant = tenant(audited.pool()).await;
    let mut services = Vec::new();
    for i in 0..100 {
        services.push(create_service(&audited, tenant, &format!("bench-{i}"), 60).await);
    }
    let mut slot = 0;
    throughput(&audited, tenant, &services, slot, 300, CLIENTS).await;
    slot += 300;
    let (mut off, mut appended, mut chained) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        off.push(throughput(&unaudited, tenant, &services, slot, ROUND, CLIENTS).await);
        slot += ROUND;
        // The invocation path alone: records appended, chained after the round.
        appended.push(throughput(&audited, tenant, &services, slot, ROUND, CLIENTS).await);
        slot += ROUND;
        bookhost::db::audit::chain_pending(audited.pool())
            .await
            .unwrap();
        // With the chainer running beside the host, as `bookhost serve` does.
        let chainer =
            bookhost::db::audit::spawn_chainer(audited.pool().clone(), Duration::from_secs(1));
        chained.push(throughput(&audited, tenant, &services, slot, ROUND, CLIENTS).await);
        slot += ROUND;
        chainer.abort();
        bookhost::db::audit::chain_pending(audited.pool())
            .await
            .unwrap();
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let fmt = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let off_mean = mean(&off);
    println!("### Audit overhead\n");
    println!(
        "create-booking on distinct slots (100 services), {CLIENTS} concurrent clients, {ROUNDS} rounds of \
         {ROUND} invocations per series, the series interleaved:\n"
    );
    println!("| audit | throughput per round (inv/s) | mean | with / without |");
    println!("|---|---|---|---|");
    println!("| off | {} | {off_mean:.0} | 1.000 |", fmt(&off));
    for (label, series) in [
        ("on (chained after each round)", &appended),
        ("on, chainer running every 1 s", &chained),
    ] {
        println!(
            "| {label} | {} | {:.0} | {:.3} |",
            fmt(series),
            mean(series),
            mean(series) / off_mean
        );
    }
    println!("\nTarget: with / without ≥ 0.90 (cost ≤ 10 %).");
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "audit".into());
    match which.as_str() {
        "audit" => audit_overhead().await,
        other => {
            eprintln!("unknown benchmark {other:?}; available: audit");
            std::process::exit(2);
        }
    }
}
