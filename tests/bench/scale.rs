//! Distinct slots at scale: the service end to end over HTTP against pgbench
//! running the same check-then-insert transaction directly, same database.

use std::fmt::Write as _;
use std::time::Instant;

use bookhost::api::ServiceConfig;
use bookhost::HostSettings;
use bookhost_tests::http::{serve, TestTenant};
use bookhost_tests::{executors, owner, pool};
use serde_json::json;

use crate::{cpu_seconds, thread_cpu_seconds};
use bookhost_tests::executors::*;

/// Threads of the load generator's own runtime, counted apart.
const LOAD_THREADS: &str = "bench-load";

const TENANTS: usize = 10;
const SERVICES: usize = 100;

fn say(report: &mut String, line: impl AsRef<str>) {
    println!("{}", line.as_ref());
    let _ = writeln!(report, "{}", line.as_ref());
}

/// What one HTTP run measured.
struct HttpRun {
    per_second: f64,
    /// Cores the service used (the process minus the load generator).
    service_cores: f64,
    /// Cores the load generator (HTTP clients, their own runtime) used.
    load_cores: f64,
    failed: usize,
}

/// `count` bookings over HTTP with `clients` concurrent clients, spread over
/// every tenant and service, each on a slot of its own. The clients run on
/// a runtime of their own (threads named `bench-load`), so their CPU is
/// counted apart from the service's.
async fn over_http(
    api: &bookhost_tests::http::Api,
    tenants: &[(TestTenant, Vec<String>)],
    first_slot: usize,
    count: usize,
    clients: usize,
) -> HttpRun {
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(LOAD_THREADS)
        .enable_all()
        .build()
        .expect("the load generator's runtime");
    let api = api.with_new_client();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (cpu_before, _) = cpu_seconds();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (api, tenants, next, failed) =
                (api.clone(), tenants.to_vec(), next.clone(), failed.clone());
            load.spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let slot = first_slot + i;
                    let (tenant, services) = &tenants[slot % TENANTS];
                    let service = &services[(slot / TENANTS) % SERVICES];
                    let start = chrono::DateTime::from_timestamp(
                        2_100_000_000 + (slot / (TENANTS * SERVICES)) as i64 * 3600,
                        0,
                    )
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                    let answer = api
                        .invoke(
                            &tenant.key,
                            CREATE_BOOKING,
                            &json!({"service_id": service, "customer": "http", "start": start}),
                        )
                        .await;
                    // A booking that gave up after 16 attempts answers 503
                    // retries-exhausted; it is counted, not fatal.
                    if answer.status != 200 {
                        answer.problem(503, "retries-exhausted");
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let wall = started.elapsed().as_secs_f64();
    let (cpu_after, _) = cpu_seconds();
    // Every `bench-load` thread alive now was started for this run.
    let load_cpu = thread_cpu_seconds(LOAD_THREADS);
    load.shutdown_background();
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    HttpRun {
        per_second: (count - failed) as f64 / wall,
        service_cores: (cpu_after - cpu_before - load_cpu) / wall,
        load_cores: load_cpu / wall,
        failed,
    }
}

/// pgbench running the same transaction for `seconds` with `clients`.
fn pgbench(clients: usize, seconds: u64) -> (f64, String) {
    let url = bookhost_tests::database_url();
    let socket = url.split("host=").nth(1).unwrap().to_string();
    let port = url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let script = std::env::temp_dir().join(format!("bookhost-pgbench-{}.sql", std::process::id()));
    // The same statements as create-booking, with the service picked through
    // a small lookup table (a join the host does not pay, so this is, if
    // anything, slower than what it stands for). The script inserts without
    // looking at the check, and pgbench 15 aborts the run on a constraint
    // violation: slots are drawn from 1e11 minutes (about 190,000 years, still
    // a valid timestamp) so that two draws for one service all but never
    // overlap (about 0.1 % per run at 50,000 bookings).
    std::fs::write(
        &script,
        "\\set n random(1, 1000)\n\
         \\set slot random(1, 100000000000)\n\
         BEGIN ISOLATION LEVEL SERIALIZABLE;\n\
         SELECT s.duration_minutes FROM services s JOIN bench_services b ON s.tenant_id = b.tenant_id AND s.id = b.service_id WHERE b.n = :n LIMIT 1;\n\
         SELECT k.id FROM bookings k JOIN bench_services b ON k.tenant_id = b.tenant_id AND k.service_id = b.service_id WHERE b.n = :n AND k.status IN ('pending', 'confirmed') AND k.starts_at < timestamptz '2060-01-01' + (:slot + 60) * interval '1 minute' AND k.ends_at > timestamptz '2060-01-01' + :slot * interval '1 minute' LIMIT 1;\n\
         INSERT INTO bookings (tenant_id, service_id, customer, starts_at, ends_at, status) SELECT b.tenant_id, b.service_id, 'pgbench', timestamptz '2060-01-01' + :slot * interval '1 minute', timestamptz '2060-01-01' + (:slot + 60) * interval '1 minute', 'confirmed' FROM bench_services b WHERE b.n = :n;\n\
         COMMIT;\n",
    )
    .unwrap();
    let bin = bookhost::db::local_cluster::postgres_bin_dir()
        .unwrap()
        .join("pgbench");
    let mut command = std::process::Command::new(bin);
    command
        // No `-d`: for pgbench that is --debug (a log line per message, tens
        // of MB per run, slowing pgbench down), not the database name.
        .args(["-n", "-h", &socket, "-p", &port, "-U", "postgres"])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
        ])
        .args(["--max-tries=10", "-f"])
        .arg(&script)
        .arg("postgres");
    if unsafe { libc::geteuid() } == 0 {
        // pgbench is happy as root; only the server refuses it.
    }
    let output = command.output().expect("running pgbench");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tps = text
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let retried = text
        .lines()
        .find(|l| l.starts_with("number of transactions retried"))
        .map(|l| l.trim().to_string())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&script);
    (tps, retried)
}

pub async fn distinct_slots_at_scale(report: &mut String) {
    say(
        report,
        "## 6. Distinct slots at scale: the service vs pgbench\n",
    );
    let host = bookhost::Host::new(pool(40).await, executors(), HostSettings::default());
    let server = serve(host, ServiceConfig::default()).await;
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        let tenant = server.tenant_with(&[CREATE_SERVICE, CREATE_BOOKING]).await;
        let mut services = Vec::new();
        for i in 0..SERVICES {
            let answer = server
                .invoke(
                    &tenant.key,
                    CREATE_SERVICE,
                    &json!({"name": format!("s-{i}"), "duration_minutes": 60}),
                )
                .await
                .expect(200);
            services.push(
                answer["result"]["service"]["id"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        tenants.push((tenant, services));
    }
    let db = owner();
    sqlx::raw_sql(
        "DROP TABLE IF EXISTS bench_services; \
         CREATE TABLE bench_services (n int PRIMARY KEY, tenant_id uuid NOT NULL, service_id uuid NOT NULL)",
    )
    .execute(&db)
    .await
    .unwrap();
    let mut n = 0;
    for (tenant, services) in &tenants {
        for service in services {
            n += 1;
            sqlx::query("INSERT INTO bench_services VALUES ($1, $2, $3::uuid)")
                .bind(n)
                .bind(tenant.id.0)
                .bind(service)
                .execute(&db)
                .await
                .unwrap();
        }
    }
    let api: bookhost_tests::http::Api = (*server).clone();
    // Warm up both.
    over_http(&api, &tenants, 0, 500, 8).await;
    let mut slot = 500;
    say(
        report,
        "10 tenants × 100 services, create-booking on distinct slots over HTTP (the service and \
         its HTTP clients in this one process, the clients on a runtime of their own whose \
         threads' CPU is read apart; audited, RLS on) and `pgbench` running the same \
         check-then-insert at SERIALIZABLE directly against the same PostgreSQL (superuser, \
         `--max-tries=10`), alternating. 3,000 requests per HTTP run, 15 s per pgbench run.\n",
    );
    say(report, "| clients | bookhost inv/s | cores: service | cores: load generator | pgbench tps | pgbench retries | bookhost / pgbench |");
    say(report, "|---|---|---|---|---|---|---|");
    for clients in [8usize, 32] {
        let run = over_http(&api, &tenants, slot, 3000, clients).await;
        slot += 3000;
        let (tps, retried) = tokio::task::spawn_blocking(move || pgbench(clients, 15))
            .await
            .unwrap();
        say(
            report,
            format!(
                "| {clients} | {:.0} ({} gave up) | {:.2} | {:.2} | {tps:.0} | {} | **{:.2}** |",
                run.per_second,
                run.failed,
                run.service_cores,
                run.load_cores,
                retried.trim_start_matches("number of transactions retried: "),
                run.per_second / tps
            ),
        );
    }
    say(report, "\nTarget: bookhost ≥ 0.7 × pgbench.\n");
    sqlx::raw_sql("DROP TABLE bench_services")
        .execute(&db)
        .await
        .unwrap();
}
