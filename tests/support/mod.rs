//! Shared test support: a throw-away PostgreSQL started once per test binary,
//! the executors built from `plugins/`, and helpers to run them.

pub mod booking;
pub mod browser;
pub mod documented;
pub mod fleet;
pub mod history;
pub mod http;
pub mod mcp;
pub mod proxy;
pub mod values;

/// The executors built from `plugins/`, named by constants generated from
/// its crates (tests/build.rs), and `foreach_executor!`.
pub mod executors {
    include!(concat!(env!("OUT_DIR"), "/executors.rs"));
}

use std::path::PathBuf;
use std::sync::{mpsc, Arc, OnceLock};

use crate::executors::*;
use bookhost::db::local_cluster::{ClusterOptions, LocalCluster};
use bookhost::runtime::{EngineSettings, ExecutorEngine, ExecutorRegistry};
use bookhost::{Host, HostSettings, InvocationOutcome, InvocationReport, TenantId};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The `bookhost` binary of this build.
pub fn bookhost_binary() -> PathBuf {
    // target/<profile>/deps/integration-<hash> -> target/<profile>/bookhost
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("bookhost");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        binary.display()
    );
    binary
}

/// Where `plugins/build.sh` puts the components.
pub fn components_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../plugins/components")
}

/// Connection options of the test cluster, started (and migrated) on first use.
/// The server runs from a thread that lives as long as the test process, and
/// dies with it (PR_SET_PDEATHSIG), so no server outlives a test run.
pub fn database() -> PgConnectOptions {
    cluster().0.clone()
}

/// The test cluster's `DATABASE_URL`, for the command-line tests.
pub fn database_url() -> String {
    cluster().1.clone()
}

fn cluster() -> &'static (PgConnectOptions, String) {
    static CLUSTER: OnceLock<(PgConnectOptions, String)> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("bookhost-test-{}", std::process::id()));
        remove_stale_clusters();
        let (ready, started) = mpsc::channel();
        std::thread::Builder::new()
            .name("test-postgres".into())
            .spawn(move || {
                let options = ClusterOptions {
                    port: 5432,
                    die_with_parent: true,
                    ..Default::default()
                };
                let cluster = match LocalCluster::start(&root, &options) {
                    Ok(cluster) => cluster,
                    Err(e) => return ready.send(Err(e)).unwrap(),
                };
                let connect = cluster.connect_options();
                let url = cluster.database_url();
                let migrated = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let pool = PgPoolOptions::new()
                            .max_connections(1)
                            .connect_with(connect.clone())
                            .await?;
                        bookhost::db::MIGRATOR.run(&pool).await?;
                        pool.close().await;
                        anyhow::Ok(())
                    });
                ready.send(migrated.map(|()| (connect, url))).unwrap();
                let _keep = cluster;
                loop {
                    std::thread::park();
                }
            })
            .unwrap();
        started
            .recv()
            .unwrap()
            .expect("starting the test PostgreSQL")
    })
}

/// Test clusters of processes that no longer exist.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name
            .strip_prefix("bookhost-test-")
            .and_then(|p| p.parse::<u32>().ok())
        {
            if !PathBuf::from(format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A pool on the test database as the host's role (`bookhost_app`: owns no
/// table, cannot bypass row-level security), for the current test's runtime.
pub async fn pool(max_connections: u32) -> PgPool {
    bookhost::db::pool_options()
        .max_connections(max_connections)
        .connect_with(bookhost::db::app_options(&database()))
        .await
        .expect("connecting to the test PostgreSQL as bookhost_app")
}

/// A pool as the tables' owner (a superuser, so row-level security does not
/// apply): for setting up and checking rows behind the host's back. Connects
/// on first use, on the runtime that uses it.
pub fn owner() -> PgPool {
    owner_with(2)
}

/// Like [`owner`], with room for `max_connections` (a host running as the
/// owner, which bypasses row-level security).
pub fn owner_with(max_connections: u32) -> PgPool {
    bookhost::db::pool_options()
        .max_connections(max_connections)
        .connect_lazy_with(database())
}

/// Every executor under plugins/components, compiled once per test binary.
pub fn executors() -> Arc<ExecutorRegistry> {
    static REGISTRY: OnceLock<Arc<ExecutorRegistry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            // Loading is async (describe() runs in wasm); use a runtime of its
            // own on a thread of its own, whatever runtime the test is on.
            std::thread::spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let engine = ExecutorEngine::new(EngineSettings::default()).unwrap();
                        // Compiled artifacts kept across test binaries and
                        // runs: JavaScript and Python components take
                        // seconds each to compile.
                        let registry = ExecutorRegistry::new(engine)
                            .unwrap()
                            .with_artifact_cache(env!("BOOKHOST_TEST_ARTIFACTS").into())
                            .unwrap();
                        let dir = components_dir();
                        let names = registry.load_dir(&dir).await.unwrap_or_else(|e| {
                            panic!(
                                "loading executors from {} (run plugins/build.sh): {e:#}",
                                dir.display()
                            )
                        });
                        assert!(
                            names.iter().any(|n| n.as_str() == "create-booking"),
                            "no create-booking in {}: run plugins/build.sh",
                            dir.display()
                        );
                        Arc::new(registry)
                    })
            })
            .join()
            .unwrap()
        })
        .clone()
}

/// A host with `settings` and a pool of `connections`.
pub async fn host_with(settings: HostSettings, connections: u32) -> Host {
    Host::new(pool(connections).await, executors(), settings)
}

/// A host with the default (real) discipline.
pub async fn host(connections: u32) -> Host {
    host_with(HostSettings::default(), connections).await
}

/// A fresh tenant, so tests sharing the database never see each other's rows.
pub async fn tenant(pool: &PgPool) -> TenantId {
    bookhost::db::create_tenant(pool, &format!("test-{}", uuid::Uuid::new_v4()))
        .await
        .unwrap()
}

/// An empty database of its own (not migrated), for a test that must not
/// share the test database; returns its name and connection options. Drop
/// it with [`drop_database`].
pub async fn scratch_database(prefix: &str) -> (String, PgConnectOptions) {
    let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&owner())
        .await
        .unwrap();
    let options = database().database(&name);
    (name, options)
}

/// Drop a [`scratch_database`], whoever is still connected.
pub async fn drop_database(name: &str) {
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&owner())
        .await
        .unwrap();
}

/// How many services `tenant` has (read as the owner, past row-level security).
pub async fn services_of(tenant: TenantId) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM services WHERE tenant_id = $1")
        .bind(tenant.0)
        .fetch_one(&owner())
        .await
        .unwrap()
}

/// Invoke and return the report; panics on an invocation that cannot start.
pub async fn invoke(
    host: &Host,
    tenant: TenantId,
    executor: &str,
    input: Value,
) -> InvocationReport {
    host.invoke(tenant, executor, &input.to_string())
        .await
        .unwrap()
}

/// The output of an invocation that must have succeeded.
pub fn ok_output(report: &InvocationReport) -> &Value {
    match &report.outcome {
        InvocationOutcome::Ok { output } => output,
        other => panic!("expected ok, got {other:?} (logs: {:?})", report.logs),
    }
}

/// The error code (`error` field) of an executor's error result, if it is one.
pub fn user_error_code(report: &InvocationReport) -> Option<&str> {
    match &report.outcome {
        InvocationOutcome::UserError { body } => body.get("error").and_then(Value::as_str),
        _ => None,
    }
}

/// Create a service through the create-service executor; returns its id.
pub async fn create_service(host: &Host, tenant: TenantId, name: &str, minutes: i64) -> String {
    let report = invoke(
        host,
        tenant,
        CREATE_SERVICE,
        serde_json::json!({"name": name, "duration_minutes": minutes}),
    )
    .await;
    ok_output(&report)["service"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Run `count` invocations at once (each on its own task) and collect the reports.
pub async fn concurrently(
    host: &Host,
    tenant: TenantId,
    executor: &str,
    inputs: Vec<Value>,
) -> Vec<InvocationReport> {
    let tasks: Vec<_> = inputs
        .into_iter()
        .map(|input| {
            let host = host.clone();
            let executor = executor.to_owned();
            tokio::spawn(async move {
                host.invoke(tenant, &executor, &input.to_string())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut reports = Vec::with_capacity(tasks.len());
    for task in tasks {
        reports.push(task.await.unwrap());
    }
    reports
}

/// Counts of outcomes by kind (and user error code), for assertions and reports.
pub fn tally(reports: &[InvocationReport]) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for report in reports {
        let key = match user_error_code(report) {
            Some(code) => format!("user_error:{code}"),
            None => report.outcome.kind().to_owned(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Have the server close the connection of a one-connection pool, as a
/// restart or an idle timeout would; the pool does not notice until it
/// hands the connection out again.
pub async fn close_the_only_connection(pool: &PgPool) {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    // sqlx returns a connection to the pool in a task of its own, pinging
    // it first: terminated before that ping, the pool would drop it and the
    // next acquire would open a fresh one. Wait until it is idle again.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pool.num_idle() != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection never went back to the pool"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&owner())
        .await
        .unwrap();
    assert!(terminated);
}
