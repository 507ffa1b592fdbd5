//! `bookhost-bench suite`: every figure of the benchmark issue in one run,
//! written as Markdown to docs/bench-results.md (BENCHMARKS.md links it).

mod booking;
mod hot_slot;
mod sandbox;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bookhost::capabilities::transaction::{InvocationTransaction, LockPlan, TransactionSettings};
use bookhost::capabilities::{CapabilityError, Doom};
use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost::{Host, HostSettings, InvocationOutcome, TenantId};
use bookhost_tests::values::{eq, field, get, gt, is_in, lt, text};
use bookhost_tests::{components_dir, create_service, executors, owner, pool, tenant};
use serde_json::json;

use crate::cpu_seconds;
use bookhost_tests::executors::*;
use booking::*;
use hot_slot::*;
use sandbox::*;

/// The report, printed as it grows and written at the end.
struct Report(String);

impl Report {
    fn line(&mut self, text: impl AsRef<str>) {
        println!("{}", text.as_ref());
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }
}

/// The host's settings with auditing off: to price the sandbox alone.
pub fn unaudited() -> HostSettings {
    HostSettings {
        audit: false,
        ..HostSettings::default()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank]
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

fn machine(report: &mut Report) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    report.line("## Machine and versions\n");
    report.line(format!(
        "- {cores} cores ({model}), {memory_gib:.1} GiB memory; run {}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    ));
    report.line(format!(
        "- {rustc}; wasmtime 48.0.8 (pooling allocator, epoch interruption); sqlx 0.8.6; release build"
    ));
}

async fn postgres_version(report: &mut Report) {
    let version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&owner())
        .await
        .unwrap();
    report.line(format!(
        "- PostgreSQL {version}, a throw-away cluster started by the bench (fsync off, as the tests)\n"
    ));
}

/// Only the instantiation figures, printed.
pub async fn instantiation_only() {
    instantiation(&mut Report(String::new())).await;
}

/// Only the sandbox comparison, printed (for `perf record`).
pub async fn sandbox_only() {
    sandbox_overhead(&mut Report(String::new())).await;
}

/// One way of the sandbox part alone, for a profile of just that path:
/// `way` is `wasm` or `native`.
pub async fn one_way(way: &str, clients: usize, count: usize) {
    let host = Host::new(pool(40).await, executors(), unaudited());
    let (tenant, services) = tenant_with_services(&host).await;
    let way = match way {
        "wasm" => Way::Wasm,
        "native" => Way::Capabilities,
        other => panic!("unknown way {other:?}: wasm or native"),
    };
    let run = book(way, &host, tenant, &services, 0, count, clients).await;
    println!("{:.0} inv/s, {} replays", run.per_second, run.replays);
}

pub async fn hot_slot_only() {
    hot_slot(&mut Report(String::new())).await;
}

/// Where one invocation's time goes, from the host's own histograms.
pub async fn phases() {
    for test_before_acquire in [true, false, true, false] {
        let pool = bookhost::db::pool_options()
            .max_connections(4)
            .test_before_acquire(test_before_acquire)
            .connect_with(bookhost::db::app_options(&bookhost_tests::database()))
            .await
            .unwrap();
        let host = Host::new(pool, executors(), unaudited());
        let tenant = tenant(&owner()).await;
        let executor = host.registry().get(FIXTURE_BENCH).unwrap();
        let mut empty = Vec::new();
        for _ in 0..1000 {
            let report = host
                .invoke_executor(tenant, &executor, "{}", Default::default())
                .await
                .unwrap();
            empty.push(report.duration);
        }
        empty.sort();
        println!(
            "test_before_acquire {test_before_acquire}: empty invocation p50 {} µs",
            us(percentile(&empty, 0.5))
        );
    }
    let host = Host::new(pool(4).await, executors(), unaudited());
    let tenant = tenant(&owner()).await;
    let service = create_service(&host, tenant, "phases", 60).await;
    let executor = host.registry().get(CREATE_BOOKING).unwrap();
    let mut total = Duration::ZERO;
    for i in 0..1000 {
        let input =
            json!({"service_id": service, "customer": "p", "start": slot_start(i * 100, 100)});
        let report = host
            .invoke_executor(tenant, &executor, &input.to_string(), Default::default())
            .await
            .unwrap();
        total += report.duration;
    }
    println!("mean invocation {} µs", us(total / 1000));
    for line in host.metrics().render().lines() {
        if (line.contains("_sum") || line.contains("_count")) && !line.starts_with('#') {
            println!("{line}");
        }
    }
}

/// Run everything; write the report to `out`.
pub async fn run(out: &std::path::Path) {
    let started = Instant::now();
    let mut report = Report(String::new());
    report.line("# Benchmark results\n");
    report.line(
        "Written by `cargo bench -p bookhost-tests --bench bookhost-bench -- suite` \
         (the whole suite, one command). Side-by-side pairs run interleaved in the same process \
         against the same throw-away PostgreSQL.\n",
    );
    machine(&mut report);
    postgres_version(&mut report).await;
    let (host0, _) = cpu_seconds();
    sandbox_overhead(&mut report).await;
    instantiation(&mut report).await;
    host_calls(&mut report).await;
    precompiled_load(&mut report).await;
    hot_slot(&mut report).await;
    crate::scale::distinct_slots_at_scale(&mut report.0).await;
    memory(&mut report).await;
    crate::mcp::mcp_vs_http(&mut report.0).await;
    crate::languages::languages(&mut report.0).await;
    let (host1, _) = cpu_seconds();
    report.line(format!(
        "Suite wall time {:.0} s (CPU of the bench process, host and load generator: {:.0} s).",
        started.elapsed().as_secs_f64(),
        host1 - host0,
    ));
    std::fs::write(out, &report.0).unwrap();
    println!("\nwritten to {}", out.display());
}
