//! `bookhost-bench`: benchmarks against a throw-away PostgreSQL and the real
//! executors, measured side by side in one run. Prints a Markdown report.
//!
//! Run: `cargo bench -p bookhost-tests --bench bookhost-bench -- suite`
//! for everything the benchmark issue asks (written to docs/bench-results.md),
//! or one part: `audit` (what auditing costs), `audit-record` (the host-side
//! cost of building one record), `hostile` (an infinite loop against its
//! deadline, and a noisy neighbour), `rls`, `sandbox`, `instantiation`,
//! `phases` (where an invocation's time goes), `mcp` (MCP tools/call vs HTTP),
//! `languages` (Rust, TypeScript and Python create-booking side by side),
//! `booking` (availability for a month, create-booking with the richer rules),
//! `console` (create-booking with and without consoles open and polling).

mod booking;
mod console;
mod fairness;
mod languages;
mod mcp;
mod scale;
mod suite;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bookhost::{Host, HostSettings, InvocationOutcome, TenantId};
use bookhost_tests::executors::*;
use bookhost_tests::{create_service, executors, pool, tenant};
use serde_json::json;

/// Invocations per measured round, and concurrent clients.
const ROUND: usize = 1000;
const CLIENTS: usize = 8;
const ROUNDS: usize = 10;

/// Book `count` distinct slots with `clients` concurrent clients; returns
/// invocations per second and the CPU they cost.
async fn throughput(
    host: &Host,
    tenant: TenantId,
    services: &[String],
    first_slot: usize,
    count: usize,
    clients: usize,
) -> Measured {
    let (host_before, database_before) = cpu_seconds();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (host, services, next) = (host.clone(), services.to_vec(), next.clone());
            tokio::spawn(async move {
                let executor = host.registry().get(CREATE_BOOKING).unwrap();
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
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    let (host_after, database_after) = cpu_seconds();
    Measured {
        per_second,
        host_cpu_us: (host_after - host_before) * 1e6 / count as f64,
        database_cpu_us: (database_after - database_before) * 1e6 / count as f64,
    }
}

/// CPU seconds used so far by this process and by the PostgreSQL processes
/// it started (its descendants), from /proc: a cost per invocation that the
/// other work on a shared machine does not blur the way it blurs throughput.
fn cpu_seconds() -> (f64, f64) {
    let stat = |pid: &str| -> Option<(u32, f64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let stat = ProcStat::parse(&text)?;
        Some((stat.ppid, stat.cpu_seconds))
    };
    let me = std::process::id();
    let host = stat("self").map_or(0.0, |(_, used)| used);
    let processes: Vec<(u32, u32, f64)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let (ppid, used) = stat(&pid.to_string())?;
            Some((pid, ppid, used))
        })
        .collect();
    let parent: std::collections::HashMap<u32, u32> = processes
        .iter()
        .map(|&(pid, ppid, _)| (pid, ppid))
        .collect();
    let descends_from_me = |mut pid: u32| {
        while let Some(&ppid) = parent.get(&pid) {
            if ppid == me {
                return true;
            }
            pid = ppid;
        }
        false
    };
    let database = processes
        .iter()
        .filter(|&&(pid, _, _)| descends_from_me(pid))
        .map(|&(_, _, used)| used)
        .sum();
    (host, database)
}

/// The fields of a /proc `stat` file the benches read.
struct ProcStat<'a> {
    name: &'a str,
    ppid: u32,
    /// User + system time so far.
    cpu_seconds: f64,
}

impl<'a> ProcStat<'a> {
    fn parse(text: &'a str) -> Option<Self> {
        // SAFETY: sysconf has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        // pid (name) state ppid ... utime(14) stime(15): the name may hold
        // spaces and parentheses, so split at the last ')'.
        let (open, close) = (text.find('(')?, text.rfind(')')?);
        let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
        let used = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ProcStat {
            name: &text[open + 1..close],
            ppid: fields.get(1)?.parse().ok()?,
            cpu_seconds: used / ticks,
        })
    }
}

/// CPU seconds (user + system) used so far by this process's threads whose
/// name starts with `prefix`.
fn thread_cpu_seconds(prefix: &str) -> f64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.path().join("stat")).ok()?;
            let stat = ProcStat::parse(&text)?;
            stat.name.starts_with(prefix).then_some(stat.cpu_seconds)
        })
        .sum()
}

/// Throughput of one measured run plus the CPU it cost per invocation.
struct Measured {
    per_second: f64,
    host_cpu_us: f64,
    database_cpu_us: f64,
}

/// 100 services of `tenant`, and 300 bookings made on them to warm up;
/// returns the services and the next free slot.
async fn warmed_services(host: &Host, tenant: TenantId) -> (Vec<String>, usize) {
    let mut services = Vec::new();
    for i in 0..100 {
        services.push(create_service(host, tenant, &format!("bench-{i}"), 60).await);
    }
    throughput(host, tenant, &services, 0, 300, CLIENTS).await;
    (services, 300)
}

/// The median of each round's ratio to the baseline round run just before
/// it: robust against one round that other work on the machine slowed down.
fn median_ratio(series: &[f64], baseline: &[f64]) -> f64 {
    let mut ratios: Vec<f64> = series.iter().zip(baseline).map(|(s, b)| s / b).collect();
    ratios.sort_by(f64::total_cmp);
    (ratios[(ratios.len() - 1) / 2] + ratios[ratios.len() / 2]) / 2.0
}

async fn audit_overhead() {
    let registry = executors();
    let audited = Host::new(pool(16).await, registry.clone(), HostSettings::default());
    let unaudited = Host::new(pool(16).await, registry, suite::unaudited());
    let tenant = tenant(audited.pool()).await;
    let (services, mut slot) = warmed_services(&audited, tenant).await;
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
    let rates = |v: &[Measured]| v.iter().map(|m| m.per_second).collect::<Vec<_>>();
    let off_rates = rates(&off);
    let off_mean = mean(&off_rates);
    let median_ratio = |series: &[f64]| median_ratio(series, &off_rates);
    let cpu = |v: &[Measured]| {
        let host = mean(&v.iter().map(|m| m.host_cpu_us).collect::<Vec<_>>());
        let database = mean(&v.iter().map(|m| m.database_cpu_us).collect::<Vec<_>>());
        (host, database)
    };
    let (off_host, off_database) = cpu(&off);
    let off_cpu = off_host + off_database;
    println!("### Audit overhead\n");
    println!(
        "create-booking on distinct slots (100 services), {CLIENTS} concurrent clients, {ROUNDS} rounds of \
         {ROUND} invocations per series, the series interleaved. CPU per invocation: this process \
         (host) and the PostgreSQL processes it started (database), from /proc.\n"
    );
    println!(
        "| audit | throughput per round (inv/s) | mean | median per-round ratio | CPU µs/inv host + database | CPU ratio without / with |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| off | {} | {off_mean:.0} | 1.000 | {off_host:.0} + {off_database:.0} = {off_cpu:.0} | 1.000 |",
        fmt(&off_rates)
    );
    for (label, series) in [
        ("on (chained after each round)", &appended),
        ("on, chainer running every 1 s", &chained),
    ] {
        let series_rates = rates(series);
        let (host, database) = cpu(series);
        println!(
            "| {label} | {} | {:.0} | {:.3} | {host:.0} + {database:.0} = {:.0} | {:.3} |",
            fmt(&series_rates),
            mean(&series_rates),
            median_ratio(&series_rates),
            host + database,
            off_cpu / (host + database),
        );
    }
    println!(
        "\nTarget: with / without ≥ 0.90 (cost ≤ 10 %). When the CPU is the bottleneck (it is here: \
         host and database share two cores), the CPU ratio is the throughput ratio without the noise."
    );
}

/// What row-level security costs: the same host on the same database, once
/// as bookhost_app (policies apply) and once as the owner, a superuser that
/// bypasses them; rounds interleaved.
async fn rls_overhead() {
    let registry = executors();
    let walled = Host::new(pool(16).await, registry.clone(), HostSettings::default());
    let bypassing = Host::new(
        bookhost_tests::owner_with(16),
        registry,
        HostSettings::default(),
    );
    let tenant = tenant(&bookhost_tests::owner()).await;
    let (services, mut slot) = warmed_services(&walled, tenant).await;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        off.push(throughput(&bypassing, tenant, &services, slot, ROUND, CLIENTS).await);
        slot += ROUND;
        on.push(throughput(&walled, tenant, &services, slot, ROUND, CLIENTS).await);
        slot += ROUND;
    }
    let per_second = |v: &[Measured]| v.iter().map(|m| m.per_second).collect::<Vec<_>>();
    let median = median_ratio(&per_second(&on), &per_second(&off));
    let mean =
        |v: &[Measured], f: fn(&Measured) -> f64| v.iter().map(f).sum::<f64>() / v.len() as f64;
    println!("### Row-level security overhead\n");
    println!(
        "create-booking on distinct slots (100 services), {CLIENTS} clients, {ROUNDS} interleaved rounds of {ROUND}.\n"
    );
    println!("| RLS | mean inv/s | CPU µs/inv host + database | median per-round ratio |");
    println!("|---|---|---|---|");
    for (label, series, ratio) in [
        ("bypassed (superuser)", &off, 1.0),
        ("enforced (bookhost_app)", &on, median),
    ] {
        println!(
            "| {label} | {:.0} | {:.0} + {:.0} | {ratio:.3} |",
            mean(series, |m| m.per_second),
            mean(series, |m| m.host_cpu_us),
            mean(series, |m| m.database_cpu_us),
        );
    }
}

/// The host's side of one record alone: redacting a create-booking
/// attempt's three calls and building the SQL that appends it.
fn audit_record_cost() {
    use bookhost::bindings::Value;
    use bookhost::capabilities::audit::{insert_detail, query_detail};
    use bookhost::db::audit::AuditCall;
    use bookhost_tests::values::{eq, field, gt, lt, text};
    let service = Value::Uuid(uuid::Uuid::new_v4().to_string());
    let start = Value::Timestamp(1_893_492_000_000_000);
    let end = Value::Timestamp(1_893_495_600_000_000);
    let call = |capability, table: &str, detail| AuditCall {
        capability,
        table: Some(table.to_owned()),
        detail,
        rows: 1,
        outcome: "ok".into(),
        error: None,
        lock_wait_us: 0,
        duration_us: 120,
        at: chrono::Utc::now(),
    };
    let iterations = 20_000;
    let version = "0".repeat(64);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..iterations {
        let by_id = [eq("id", service.clone())];
        let overlapping = [
            eq("service_id", service.clone()),
            gt("ends_at", start.clone()),
            lt("starts_at", end.clone()),
        ];
        let values = [
            field("service_id", service.clone()),
            field("customer", text("bench")),
            field("starts_at", start.clone()),
            field("ends_at", end.clone()),
        ];
        let calls = vec![
            call(
                "query",
                "services",
                query_detail("services", &by_id, Some(1)),
            ),
            call(
                "query",
                "bookings",
                query_detail("bookings", &overlapping, None),
            ),
            call("insert", "bookings", insert_detail("bookings", &values)),
        ];
        let record = bookhost::db::audit::AttemptAudit {
            tenant: TenantId(uuid::Uuid::nil()),
            invocation_id: uuid::Uuid::new_v4(),
            attempt: 1,
            executor: CREATE_BOOKING,
            version: &version,
            outcome: bookhost::db::audit::AttemptOutcome::Committed,
            duration_us: 900,
            proposal: None,
            replay_reason: None,
            calls: &calls,
        };
        bytes += std::hint::black_box(bookhost::db::audit::append_sql(&record)).len();
    }
    let per = started.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    println!(
        "### Building one audit record (host side)\n\n{per:.1} µs per create-booking attempt \
         (3 calls, {} bytes of SQL)\n",
        bytes / iterations
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `tenant` creating `count` services one after the other: the latencies
/// (ms, sorted) of those that succeeded, and the outcomes of those that did not.
async fn quiet_creates(
    host: &Host,
    tenant: TenantId,
    count: usize,
) -> (Vec<f64>, Vec<&'static str>) {
    let (mut latencies, mut failed) = (Vec::new(), Vec::new());
    for i in 0..count {
        let input =
            json!({"name": format!("quiet-{i}-{}", uuid::Uuid::new_v4()), "duration_minutes": 30});
        let started = Instant::now();
        let report = host
            .invoke(tenant, CREATE_SERVICE, &input.to_string())
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

/// `succeeded | failed (outcomes) | p50 ms | p99 ms | max ms` of a run.
fn latency_cells(run: &[f64], failed: &[&str]) -> String {
    let (p50, p99, max) = match run.len() {
        0 => (f64::NAN, f64::NAN, f64::NAN),
        n => (percentile(run, 0.5), percentile(run, 0.99), run[n - 1]),
    };
    let mut kinds = failed.to_vec();
    kinds.dedup();
    format!(
        "{} | {} {kinds:?} | {p50:.1} | {p99:.1} | {max:.1}",
        run.len(),
        failed.len()
    )
}

/// How far past its deadline an infinite loop runs, and what 32 of them in
/// one tenant do to another tenant's latency.
async fn hostile() {
    let deadline = Duration::from_millis(300);
    let settings = HostSettings {
        execution_timeout: deadline,
        ..HostSettings::default()
    };
    let tick = settings.engine.epoch_tick;
    let host = Host::new(pool(48).await, executors(), settings);
    let noisy = tenant(host.pool()).await;
    let quiet = tenant(host.pool()).await;

    // The deadline: one spinning invocation at a time, 20 times.
    let mut overshoot = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let report = host
            .invoke(noisy, FIXTURE_HOSTILE, r#"{"mode":"spin"}"#)
            .await
            .unwrap();
        assert!(matches!(report.outcome, InvocationOutcome::Timeout { .. }));
        overshoot.push((started.elapsed().as_secs_f64() - deadline.as_secs_f64()) * 1000.0);
    }
    overshoot.sort_by(f64::total_cmp);
    println!("### Infinite loop against its deadline\n");
    println!(
        "`fixture-hostile` spin, deadline {} ms, epoch tick {} ms, 20 runs one at a time; time from \
         the call to the `timeout` outcome, past the deadline: p50 {:.1} ms, max {:.1} ms \
         (target: within two ticks, {} ms).\n",
        deadline.as_millis(),
        tick.as_millis(),
        percentile(&overshoot, 0.5),
        overshoot[overshoot.len() - 1],
        2 * tick.as_millis()
    );

    // The quiet tenant's create-service latency, alone and beside the noise.
    let alone = quiet_creates(&host, quiet, 100).await;
    // The noise, with the default per-tenant cap (64: above the 32 loops)
    // and with a cap of 8 (the other 24 loops are refused and retry).
    let mut rows = vec![("alone".to_owned(), alone)];
    for cap in [HostSettings::default().max_in_flight_per_tenant, 8] {
        let capped = Host::new(
            host.pool().clone(),
            executors(),
            HostSettings {
                execution_timeout: deadline,
                max_in_flight_per_tenant: cap,
                ..HostSettings::default()
            },
        );
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loopers: Vec<_> = (0..32)
            .map(|_| {
                let (host, stop) = (capped.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        match host
                            .invoke(noisy, FIXTURE_HOSTILE, r#"{"mode":"spin"}"#)
                            .await
                        {
                            Ok(_) => {}
                            // Refused at the cap: come back later, as Retry-After asks.
                            Err(bookhost::InvokeError::TenantBusy(_)) => {
                                tokio::time::sleep(Duration::from_millis(100)).await
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let run = quiet_creates(&capped, quiet, 20).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for looper in loopers {
            looper.await.unwrap();
        }
        rows.push((format!("beside 32 loops, per-tenant cap {cap}"), run));
    }
    println!("### Noisy neighbour\n");
    println!(
        "One tenant keeps 32 spinning `fixture-hostile` invocations going (deadline {} ms, each \
         replaced as it times out or, when refused at the tenant's cap, retried 100 ms later); \
         another tenant creates services one after the other (100 alone, 20 beside the noise).\n",
        deadline.as_millis()
    );
    println!("| quiet tenant's create-service | succeeded | failed (outcomes) | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    for (label, (run, failed)) in &rows {
        println!("| {label} | {} |", latency_cells(run, failed));
    }
    println!();
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` adds `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let arg = |n: usize| args.get(n).cloned();
    let which = arg(0).unwrap_or_else(|| "audit".into());
    match which.as_str() {
        "audit" => {
            audit_record_cost();
            audit_overhead().await
        }
        "audit-record" => audit_record_cost(),
        "hostile" => hostile().await,
        "rls" => rls_overhead().await,
        // One part of the suite alone, for profiling.
        "sandbox" => suite::sandbox_only().await,
        "phases" => suite::phases().await,
        "hot-slot" => suite::hot_slot_only().await,
        "scale" => scale::distinct_slots_at_scale(&mut String::new()).await,
        "mcp" => mcp::mcp_vs_http(&mut String::new()).await,
        "languages" => languages::languages(&mut String::new()).await,
        "keep-resident" => languages::keep_resident(&mut String::new()).await,
        "one-way" => {
            let arg = |n: usize, default: &str| arg(n).unwrap_or(default.into());
            suite::one_way(
                &arg(1, "wasm"),
                arg(2, "8").parse().expect("clients"),
                arg(3, "20000").parse().expect("count"),
            )
            .await
        }
        "instantiation" => suite::instantiation_only().await,
        "tenant-share" => fairness::tenant_share().await,
        "booking" => {
            let mut report = String::new();
            booking::booking(&mut report).await;
            println!("{report}");
        }
        "console" => {
            let mut report = String::new();
            console::console_cost(&mut report).await;
            println!("{report}");
        }
        "suite" => {
            let out = arg(1).map(std::path::PathBuf::from).unwrap_or_else(|| {
                std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../docs/bench-results.md")
            });
            suite::run(&out).await
        }
        other => {
            eprintln!(
                "unknown benchmark {other:?}; available: suite, audit, audit-record, hostile, rls, sandbox, one-way, phases, hot-slot, scale, mcp, languages, instantiation, tenant-share, booking, console"
            );
            std::process::exit(2);
        }
    }
}
