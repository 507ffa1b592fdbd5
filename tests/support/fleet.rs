//! `Fleet`: N real `bookhost serve` processes on a PostgreSQL cluster of their own, with the handles fault tests need.
//!
//! Unlike the shared test cluster (one per test binary, never stopped),
//! a fleet's cluster belongs to one test, so the test may stop it with
//! `-m immediate`, restart it, terminate its backends and count its locks
//! without disturbing any other test. Each host is a real process (so it
//! can be SIGKILLed mid-commit), optionally behind its own [`FaultProxy`]
//! (so one host can be cut off the database while the others carry on).
//!
//! Every child process is started from one supervisor thread that lives
//! as long as the fleet: with `PR_SET_PDEATHSIG` they die with that
//! thread, so no server or host outlives a test, even one that is killed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bookhost::db::local_cluster::{ClusterOptions, LocalCluster};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::executors::*;
use crate::history::{Client, RetryPolicy};
use crate::http::TestTenant;
use crate::proxy::FaultProxy;

/// How to build a fleet.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// Host processes (the issue asks for at least 3).
    pub hosts: usize,
    /// Tenants created, each with an API key and every executor of `executors`.
    pub tenants: usize,
    /// Executors (names of plugins/components/<name>.wasm) uploaded for each tenant.
    pub executors: Vec<&'static str>,
    /// Put each host behind a [`FaultProxy`] of its own.
    pub proxied: bool,
    /// `BOOKHOST_MAX_CONNECTIONS` of each host.
    pub max_connections: u32,
    /// More environment for every host (e.g. `BOOKHOST_EXECUTION_TIMEOUT_MS`).
    pub env: Vec<(String, String)>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            hosts: 3,
            tenants: 1,
            executors: vec![
                CREATE_SERVICE,
                CREATE_BOOKING,
                DELETE_SERVICE,
                REQUEST_APPOINTMENT,
                UPDATE_PAGE_SECTION,
            ],
            proxied: false,
            max_connections: 16,
            env: Vec::new(),
        }
    }
}

/// A running fleet. Dropping it kills the hosts and stops the cluster;
/// when the test is panicking it prints the tail of every log first and
/// keeps the directory for inspection.
pub struct Fleet {
    dir: PathBuf,
    supervisor: Supervisor,
    pg_port: u16,
    cluster: Mutex<Option<LocalCluster>>,
    restarts: AtomicU32,
    owner: PgPool,
    operator_key: String,
    tenants: Vec<TestTenant>,
    executors: Vec<&'static str>,
    hosts: Vec<Mutex<HostProcess>>,
    proxies: Vec<Option<Arc<FaultProxy>>>,
    http: reqwest::Client,
}

struct HostProcess {
    port: u16,
    child: Option<Child>,
    log: PathBuf,
    starts: u32,
    /// DATABASE_URL and the rest of its environment.
    env: Vec<(String, String)>,
}

/// Runs jobs on the thread every child process is started from (see the
/// module docs); the thread ends when the fleet, and so the sender, goes.
struct Supervisor(Mutex<mpsc::Sender<Box<dyn FnOnce() + Send>>>);

impl Supervisor {
    fn new() -> Self {
        let (jobs, queue) = mpsc::channel::<Box<dyn FnOnce() + Send>>();
        std::thread::spawn(move || queue.into_iter().for_each(|job| job()));
        Self(Mutex::new(jobs))
    }

    /// Run `job` on the supervisor thread (it may block there) and await its result.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = tokio::sync::oneshot::channel();
        let job = Box::new(move || drop(done.send(job())));
        (self.0.lock().unwrap().send(job)).expect("the supervisor thread is gone");
        result.await.expect("a supervisor job panicked")
    }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free local port")
        .port()
}

fn cluster_options(port: u16) -> ClusterOptions {
    ClusterOptions {
        port,
        tcp: true,
        unsafe_fast: true,
        die_with_parent: true,
    }
}

/// Fleet directories of test processes that no longer exist.
fn remove_stale_fleets() {
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("bookhost-fleet-")
            .and_then(|r| r.split('-').next());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Fleet {
    /// Start the cluster (migrated), the hosts (ready), the tenants (keys,
    /// executors uploaded and loaded on every host).
    pub async fn new(options: FleetOptions) -> Fleet {
        assert!(options.hosts >= 1, "a fleet needs a host");
        remove_stale_fleets();
        let dir = std::env::temp_dir().join(format!(
            "bookhost-fleet-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("creating the fleet directory");
        let supervisor = Supervisor::new();
        let pg_port = free_port();
        let pg_root = dir.join("pg");
        let cluster = supervisor
            .run(move || LocalCluster::start(&pg_root, &cluster_options(pg_port)))
            .await
            .expect("starting the fleet's PostgreSQL");
        let owner_options = cluster.connect_options();
        // The owner pool pings before handing a connection out, so it
        // outlives restarts of the cluster (checks run right after them).
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_lazy_with(owner_options.clone());
        bookhost::db::MIGRATOR
            .run(&owner)
            .await
            .expect("migrating the fleet's database");
        // `unsafe_fast` means synchronous_commit=off: commits acknowledged
        // before their WAL left the server, lost by `stop_immediate` (the
        // checker caught it). The hosts' sessions wait for that write again;
        // fsync stays off, which a killed server (not machine) never notices.
        sqlx::query("ALTER DATABASE postgres SET synchronous_commit = on")
            .execute(&owner)
            .await
            .expect("making commits survive a crash of the server");

        let operator_key = format!("operator-{}", uuid::Uuid::new_v4());
        let artifacts = dir.join("artifacts");
        let connections = options.max_connections.to_string();
        let upstream = SocketAddr::from(([127, 0, 0, 1], pg_port));
        let (mut proxies, mut hosts) = (Vec::new(), Vec::new());
        for i in 0..options.hosts {
            let proxy = FaultProxy::start(upstream).await.expect("starting a proxy");
            let proxy = options.proxied.then(|| Arc::new(proxy));
            let db_port = proxy.as_ref().map_or(pg_port, |p| p.port());
            let port = free_port();
            let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,bookhost=info".into());
            let db = format!("postgres://postgres@127.0.0.1:{db_port}/postgres");
            let mut env: Vec<(String, String)> = [
                ("DATABASE_URL", db),
                ("BOOKHOST_LISTEN", format!("127.0.0.1:{port}")),
                ("BOOKHOST_OPERATOR_KEY", operator_key.clone()),
                ("BOOKHOST_ARTIFACT_CACHE", artifacts.display().to_string()),
                ("BOOKHOST_MAX_CONNECTIONS", connections.clone()),
                ("RUST_LOG", log),
            ]
            .map(|(k, v)| (k.to_owned(), v))
            .into();
            env.extend(options.env.iter().cloned());
            proxies.push(proxy);
            hosts.push(Mutex::new(HostProcess {
                port,
                child: None,
                log: dir.join(format!("host-{i}.log")),
                starts: 0,
                env,
            }));
        }
        let mut fleet = Fleet {
            dir,
            supervisor,
            pg_port,
            cluster: Mutex::new(Some(cluster)),
            restarts: AtomicU32::new(0),
            owner,
            operator_key,
            tenants: Vec::new(),
            executors: options.executors.clone(),
            hosts,
            proxies,
            http: reqwest::Client::new(),
        };
        // Host 0 first: the others then start with the migrations done
        // and the artifacts of its compilations cached.
        fleet.start(0).await;
        for _ in 0..options.tenants {
            let tenant = fleet.create_tenant().await;
            fleet.tenants.push(tenant);
        }
        let rest: Vec<_> = (1..options.hosts).map(|i| fleet.start(i)).collect();
        futures::future::join_all(rest).await;
        fleet
    }

    /// A tenant made through the operator API of host 0, with every
    /// executor of the fleet uploaded (and loaded on every running host).
    pub async fn create_tenant(&self) -> TestTenant {
        let name = format!("fleet-{}", uuid::Uuid::new_v4());
        let request = (self.http.post(format!("{}/v1/tenants", self.host(0))))
            .bearer_auth(&self.operator_key)
            .json(&serde_json::json!({ "name": name }));
        let (status, body) = send(request, "creating a tenant").await;
        assert_eq!(status, 201, "creating a tenant: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let tenant = TestTenant {
            id: bookhost::TenantId(body["id"].as_str().unwrap().parse().unwrap()),
            name: body["name"].as_str().unwrap().to_owned(),
            key: body["api_key"].as_str().unwrap().to_owned(),
        };
        for name in &self.executors {
            let url = format!("{}/v1/executors/{name}", self.host(0));
            let request = (self.http.put(url).bearer_auth(&tenant.key))
                .header("content-type", "application/wasm")
                .body(crate::http::component(name));
            let (status, text) = send(request, name).await;
            assert!(
                matches!(status, 200 | 201),
                "uploading {name}: {status} {text}"
            );
        }
        for i in 0..self.hosts.len() {
            if self.is_running(i) {
                self.warm_up(i, &tenant).await;
            }
        }
        tenant
    }

    /// Have host `i` load every executor, so that the first operations of
    /// a test do not all wait on the same compilation: an input that
    /// breaks the schema is refused (422) only after the executor is loaded.
    async fn warm_up(&self, i: usize, tenant: &TestTenant) {
        for name in &self.executors {
            let url = format!("{}/v1/executors/{name}/invoke", self.host(i));
            let request = (self.http.post(url).bearer_auth(&tenant.key))
                .header("content-type", "application/json")
                .body("{\"fleet-warm-up\": true}");
            let (status, text) = send(request, name).await;
            assert_eq!(status, 422, "warming up {name} on host {i}: {text}");
        }
    }

    /// The hosts' base URLs (`http://127.0.0.1:<port>`), stable across restarts.
    pub fn hosts(&self) -> Vec<String> {
        (0..self.hosts.len()).map(|i| self.host(i)).collect()
    }

    /// Host `i`'s base URL.
    pub fn host(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.hosts[i].lock().unwrap().port)
    }

    /// The first tenant.
    pub fn tenant(&self) -> &TestTenant {
        &self.tenants[0]
    }

    pub fn tenants(&self) -> &[TestTenant] {
        &self.tenants
    }

    pub fn operator_key(&self) -> &str {
        &self.operator_key
    }

    /// A history client of the first tenant over every host.
    pub fn client(&self) -> Client {
        self.client_for(self.tenant())
    }

    /// A history client of `tenant` over every host.
    pub fn client_for(&self, tenant: &TestTenant) -> Client {
        Client::new(self.hosts(), &tenant.key)
    }

    /// Like [`Self::client_for`], with its own retry bounds.
    pub fn client_with(&self, tenant: &TestTenant, policy: RetryPolicy) -> Client {
        Client::with_policy(self.hosts(), &tenant.key, policy)
    }

    /// Host `i`'s proxy, when the fleet is `proxied`.
    pub fn proxy(&self, i: usize) -> Option<Arc<FaultProxy>> {
        self.proxies[i].clone()
    }

    /// A pool as the tables' owner (a superuser) on the cluster's Unix
    /// socket, never through a proxy: for checks and pg_terminate_backend.
    /// It survives cluster restarts (it pings before use).
    pub fn owner_pool(&self) -> PgPool {
        self.owner.clone()
    }

    /// The cluster's TCP port on 127.0.0.1.
    pub fn postgres_port(&self) -> u16 {
        self.pg_port
    }

    /// Backend pids of the hosts' role (`bookhost_app`): their pooled
    /// connections, idle or busy.
    pub async fn app_backends(&self) -> Vec<i32> {
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE usename = $1 ORDER BY pid")
            .bind(bookhost::db::APP_ROLE)
            .fetch_all(&self.owner)
            .await
            .expect("listing the hosts' backends")
    }

    /// `pg_terminate_backend(pid)`: whether a backend was signalled.
    pub async fn terminate_backend(&self, pid: i32) -> bool {
        sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&self.owner)
            .await
            .unwrap_or(false)
    }

    /// Whether host `i`'s process is running (reaps it if it exited).
    pub fn is_running(&self, i: usize) -> bool {
        let mut host = self.hosts[i].lock().unwrap();
        let running = matches!(host.child.as_mut().map(Child::try_wait), Some(Ok(None)));
        if !running {
            host.child = None;
        }
        running
    }

    /// Host `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.hosts[i].lock().unwrap().child.as_ref().map(Child::id)
    }

    /// `kill -9` host `i` and reap it: in-flight requests and transactions
    /// die with it, nothing of it runs afterwards.
    pub fn kill9(&self, i: usize) {
        let child = self.hosts[i].lock().unwrap().child.take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM host `i` (graceful stop) and return at once; see
    /// [`Self::wait_exit`].
    pub fn sigterm(&self, i: usize) {
        if let Some(pid) = self.pid(i) {
            // SAFETY: signalling our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
    }

    /// Wait up to `limit` for host `i` to exit; its status if it did.
    pub async fn wait_exit(&self, i: usize, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let status = {
                let mut host = self.hosts[i].lock().unwrap();
                let status = host.child.as_mut()?.try_wait().ok()?;
                if status.is_some() {
                    host.child = None;
                }
                status
            };
            if status.is_some() || Instant::now() >= deadline {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Start host `i` (again, after `kill9`/`sigterm`), on its port and
    /// with its environment, and wait until its /readyz answers 200. Panics
    /// (with its log) if it exits or is not ready within 30 s. Executors
    /// are loaded into it before it returns.
    pub async fn start(&self, i: usize) {
        assert!(!self.is_running(i), "host {i} is already running");
        let (env, log, start) = {
            let mut host = self.hosts[i].lock().unwrap();
            host.starts += 1;
            (host.env.clone(), host.log.clone(), host.starts)
        };
        let binary = crate::bookhost_binary();
        let child = self
            .supervisor
            .run(move || spawn_host(&binary, &env, &log, start))
            .await;
        self.hosts[i].lock().unwrap().child = Some(child);
        if !self.wait_ready(i, Duration::from_secs(30)).await {
            panic!(
                "host {i} did not become ready within 30 s (running: {}); its log:\n{}",
                self.is_running(i),
                tail(&self.logs(i), 60)
            );
        }
        for tenant in self.tenants.iter().take(1) {
            self.warm_up(i, tenant).await;
        }
    }

    /// GET /readyz of host `i`: its status, or `None` without an answer
    /// within a second.
    pub async fn readyz(&self, i: usize) -> Option<u16> {
        self.http
            .get(format!("{}/readyz", self.host(i)))
            .timeout(Duration::from_secs(1))
            .send()
            .await
            .ok()
            .map(|r| r.status().as_u16())
    }

    /// Wait up to `limit` for host `i`'s /readyz to answer 200; false if
    /// it does not (or the process exits).
    pub async fn wait_ready(&self, i: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_running(i) {
                return false;
            }
            if self.readyz(i).await == Some(200) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `pg_ctl stop -m immediate` (SIGQUIT to the postmaster): every backend
    /// killed, crash recovery on the next start. Returns once it has exited.
    pub fn stop_immediate(&self) {
        let cluster = self.cluster.lock().unwrap().take();
        if let Some(mut cluster) = cluster {
            if let Some(pid) = cluster.pid() {
                // SAFETY: signalling our own child process.
                unsafe { libc::kill(pid as i32, libc::SIGQUIT) };
            }
            // Reaps the exited postmaster (its SIGINT finds it gone).
            cluster.stop();
        }
    }

    /// Start PostgreSQL again, same port and data directory (stopped with
    /// [`Self::stop_immediate`] first if running), and wait until it accepts
    /// connections. The hosts must find their way back by themselves.
    pub async fn restart(&self) {
        self.stop_immediate();
        let restarts = self.restarts.fetch_add(1, Ordering::SeqCst) + 1;
        let root = self.dir.join("pg");
        // LocalCluster::start truncates the log: keep the previous one.
        let _ = std::fs::rename(
            root.join("postgres.log"),
            root.join(format!("postgres-{restarts}.log")),
        );
        let port = self.pg_port;
        let cluster = self
            .supervisor
            .run(move || LocalCluster::start(&root, &cluster_options(port)))
            .await
            .expect("restarting the fleet's PostgreSQL");
        *self.cluster.lock().unwrap() = Some(cluster);
    }

    /// Host `i`'s log (stdout and stderr of every start, each headed by a
    /// `--- start N ---` line).
    pub fn logs(&self, i: usize) -> String {
        std::fs::read_to_string(&self.hosts[i].lock().unwrap().log).unwrap_or_default()
    }

    /// The current PostgreSQL server log.
    pub fn postgres_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pg").join("postgres.log")).unwrap_or_default()
    }

    /// The fleet's directory (cluster, logs, artifact cache).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Send `request`; its status and body (panics naming `what` if no answer comes).
async fn send(request: reqwest::RequestBuilder, what: &str) -> (u16, String) {
    let request = request.timeout(Duration::from_secs(120));
    let response = (request.send().await).unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn spawn_host(binary: &Path, env: &[(String, String)], log: &Path, start: u32) -> Child {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("opening a host log");
    let _ = writeln!(file, "--- start {start} ---");
    let mut command = Command::new(binary);
    command.arg("serve");
    // Nothing of the test's own environment may configure the host.
    for (key, _) in std::env::vars() {
        if key.starts_with("BOOKHOST_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("a log handle"))
        .stderr(file);
    // SAFETY: prctl is async-signal-safe; it only sets a flag on the child.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    command.spawn().expect("starting bookhost serve")
}

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for i in 0..self.hosts.len() {
            self.kill9(i);
        }
        if panicking {
            for i in 0..self.hosts.len() {
                let (host, logs) = (self.host(i), tail(&self.logs(i), 40));
                eprintln!("=== fleet host {i} ({host}), last lines ===\n{logs}");
            }
            let logs = tail(&self.postgres_log(), 40);
            eprintln!("=== fleet PostgreSQL, last lines ===\n{logs}");
        }
        if let Some(mut cluster) = self.cluster.lock().unwrap().take() {
            cluster.stop();
        }
        if panicking {
            eprintln!("fleet directory kept: {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
