//! Running the service from plain settings: build the host and the API state,
//! serve HTTP with graceful shutdown, and the one-command development setup.
//! It knows nothing of the command line.

mod demo;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::api::{app, AppState, ServiceConfig};
use crate::capabilities::grant::GrantPolicy;
use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{ExecutorEngine, ExecutorRegistry};
use crate::{Host, HostSettings, TenantId};

/// Where the database is.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// The tables' owner: migrations are applied as this role.
    pub url: String,
    /// The role the host works as [default: `url` with user bookhost_app].
    pub app_url: Option<String>,
}

impl DatabaseSettings {
    /// Migrate, then pool `max_connections` as the host's role.
    pub async fn connect(&self, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
        crate::db::connect(&self.url, self.app_url.as_deref(), max_connections).await
    }
}

/// The limits `serve` and `dev` share.
#[derive(Debug, Clone)]
pub struct ServiceLimits {
    /// Directory of compiled executors, so restarts do not recompile.
    pub artifact_cache: PathBuf,
    /// Database connections (bounds concurrent invocations).
    pub max_connections: u32,
    /// Most of them one tenant's invocations hold at once (default: half).
    pub connections_per_tenant: Option<usize>,
    /// Wall-clock bound on one attempt of an invocation.
    pub execution_timeout: Duration,
    /// Most invocations of one tenant running at once; more get 429.
    pub max_in_flight_per_tenant: usize,
    pub max_input_bytes: usize,
    pub max_output_bytes: usize,
    pub max_upload_bytes: usize,
    /// Compilations of uploads at once, and how long one may take.
    pub compile: crate::runtime::CompileLimits,
    /// How long an Idempotency-Key's response is replayed.
    pub idempotency_ttl: Duration,
    /// How long a proposal can be confirmed.
    pub proposal_ttl: Duration,
    /// How declared capabilities become grants.
    pub grant_policy: GrantPolicy,
    /// Who may reach the MCP endpoint.
    pub mcp: crate::mcp::McpConfig,
}

/// Everything `bookhost serve` needs.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub database: DatabaseSettings,
    pub listen: SocketAddr,
    /// The operator key; without it operator endpoints refuse everything.
    pub operator_key: Option<String>,
    pub limits: ServiceLimits,
}

/// Everything `bookhost dev` needs.
#[derive(Debug, Clone)]
pub struct DevSettings {
    /// Where the private PostgreSQL keeps its data (reused across runs).
    pub data_dir: PathBuf,
    /// Port of the private PostgreSQL (127.0.0.1 and a Unix socket in the data dir).
    pub postgres_port: u16,
    pub listen: SocketAddr,
    /// Built executors to upload for the demo tenant.
    pub executors_dir: PathBuf,
    pub limits: ServiceLimits,
}

/// Build the host and API state on `pool`.
pub fn state(
    pool: sqlx::PgPool,
    limits: &ServiceLimits,
    operator_key: Option<String>,
) -> anyhow::Result<AppState> {
    let settings = HostSettings {
        execution_timeout: limits.execution_timeout,
        max_in_flight_per_tenant: limits.max_in_flight_per_tenant.max(1),
        max_input_bytes: limits.max_input_bytes,
        max_output_bytes: limits.max_output_bytes,
        connections_per_tenant: limits.connections_per_tenant,
        ..HostSettings::default()
    };
    let engine = ExecutorEngine::new(settings.engine.clone())?;
    let mut registry = ExecutorRegistry::new(engine)?
        .with_artifact_cache(limits.artifact_cache.clone())?
        .with_compile_limits(limits.compile.clone());
    registry.max_component_bytes = limits.max_upload_bytes;
    let host = Host::new(pool, Arc::new(registry), settings);
    Ok(AppState::new(
        host,
        ServiceConfig {
            operator_key,
            max_component_bytes: limits.max_upload_bytes,
            idempotency_ttl: limits.idempotency_ttl,
            proposal_ttl: limits.proposal_ttl,
            grant_policy: limits.grant_policy.clone(),
            mcp: limits.mcp.clone(),
        },
    ))
}

/// A built service, listening, not yet serving.
pub struct Application {
    state: AppState,
    listener: tokio::net::TcpListener,
}

impl Application {
    /// Connect (migrating first), build the host and bind the listener.
    pub async fn build(settings: ServeSettings) -> anyhow::Result<Self> {
        let pool = settings
            .database
            .connect(settings.limits.max_connections)
            .await?;
        let state = state(pool, &settings.limits, settings.operator_key)?;
        Self::with_state(state, settings.listen).await
    }

    /// Bind `listen` for an already built state.
    pub async fn with_state(state: AppState, listen: SocketAddr) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        Ok(Self { state, listener })
    }

    /// Where it listens (the port is known even when 0 was asked for).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until a shutdown signal; then drain: new requests are refused
    /// 503 while those in flight (and so their invocations) finish, within
    /// the execution timeout and a margin; then chain the last audit records.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // Link audit records into their tenants' hash chains in the background.
        let pool = self.state.host.pool().clone();
        let chainer = crate::db::audit::spawn_chainer(pool.clone(), Duration::from_secs(1));
        // Requests fail fast while the database is unreachable.
        let probe = self
            .state
            .host
            .health()
            .spawn_probe((*pool.connect_options()).clone());
        tracing::info!("bookhost listening on http://{}", self.local_addr()?);
        let lifecycle = self.state.lifecycle.clone();
        let grace = self.state.host.settings().execution_timeout + Duration::from_secs(5);
        let drained = std::sync::Arc::new(tokio::sync::Notify::new());
        let drain = {
            let drained = drained.clone();
            async move {
                shutdown_signal().await;
                tracing::info!(
                    in_flight = lifecycle.in_flight(),
                    "stopping: refusing new requests, finishing those in flight"
                );
                lifecycle.start_draining();
                if !lifecycle.drained(grace).await {
                    tracing::warn!(
                        in_flight = lifecycle.in_flight(),
                        "requests still in flight after {} ms",
                        grace.as_millis()
                    );
                }
                drained.notify_one();
            }
        };
        let serve = axum::serve(self.listener, app(self.state)).with_graceful_shutdown(drain);
        // Connections kept open past the drain do not hold the stop.
        let hard_stop = async {
            drained.notified().await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        tokio::select! {
            served = serve => served?,
            () = hard_stop => tracing::warn!("closing connections still open after the drain"),
        }
        probe.abort();
        chainer.abort();
        if let Err(e) = crate::db::audit::chain_pending(&pool).await {
            tracing::warn!("chaining the last audit records: {e:#}");
        }
        tracing::info!("bookhost stopped");
        Ok(())
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}

/// The demo tenant, created on first use.
async fn demo_tenant(pool: &sqlx::PgPool) -> anyhow::Result<TenantId> {
    let existing: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM tenants WHERE name = 'demo'")
            .fetch_optional(pool)
            .await?;
    match existing {
        Some(id) => Ok(TenantId(id)),
        None => crate::db::create_tenant(pool, "demo").await,
    }
}

async fn upload_dir(state: &AppState, tenant: TenantId, dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "no built executors in {} (run plugins/build.sh first)",
                dir.display()
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        // Test fixtures (hostile or faulty on purpose) are not for a demo tenant.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("fixture-"))
        })
        .collect();
    paths.sort();
    anyhow::ensure!(
        !paths.is_empty(),
        "no built executors in {} (run plugins/build.sh first)",
        dir.display()
    );
    let mut names = Vec::new();
    for path in paths {
        let bytes = std::fs::read(&path)?;
        let loaded = state
            .host
            .registry()
            .load(&bytes)
            .await
            .with_context(|| format!("loading {}", path.display()))?;
        crate::db::executors::store_and_activate(
            state.host.pool(),
            tenant,
            crate::db::executors::NewVersion {
                name: loaded.name.as_str(),
                digest: &loaded.digest,
                component: &bytes,
                description: &loaded.description,
                input_schema: &loaded.input_schema,
                grant: &state.config.grant_policy.decide(&loaded.capabilities),
            },
        )
        .await?;
        names.push(loaded.name.to_string());
    }
    Ok(names)
}

/// `bookhost dev`: a private PostgreSQL, migrations, a demo tenant with the
/// example executors and a service, a fresh key, and the server.
pub async fn run_dev(settings: DevSettings) -> anyhow::Result<()> {
    let options = ClusterOptions {
        port: settings.postgres_port,
        tcp: true,
        unsafe_fast: false,
        die_with_parent: true,
    };
    // Started from this (the main) thread: the server dies with the thread
    // that started it (PR_SET_PDEATHSIG), and this one lives as long as we do.
    let cluster = LocalCluster::start(&settings.data_dir, &options)?;
    let owner = cluster.connect_options();
    let app = crate::db::app_options(&owner);
    let pool = crate::db::connect_with(owner, app, settings.limits.max_connections).await?;
    let operator_key = format!("op_{}", uuid::Uuid::new_v4().simple());
    let state = state(pool.clone(), &settings.limits, Some(operator_key.clone()))?;
    let tenant = demo_tenant(&pool).await?;
    let executors = upload_dir(&state, tenant, &settings.executors_dir).await?;
    let key = crate::db::keys::issue(&pool, tenant).await?;
    let demo = demo::demo_business(&state.host, tenant).await?;
    let application = Application::with_state(state, settings.listen).await?;
    let base = format!("http://{}", application.local_addr()?);
    println!("bookhost dev");
    println!("  PostgreSQL:     {}", cluster.database_url());
    println!("  executors:      {}", executors.join(", "));
    println!("  demo tenant:    {tenant}");
    println!("  tenant key:     {key}");
    println!("  operator key:   {operator_key}");
    println!("  API:            {base} (OpenAPI at {base}/openapi.json)");
    println!("  console:        {base}/console (sign in with the operator key, or the tenant key)");
    println!();
    let auth = format!("-H 'Authorization: Bearer {key}'");
    let invoke = |executor: &str, body: String| {
        format!(
            "  curl -s -X POST {base}/v1/executors/{executor}/invoke \\\n    {auth} -H 'Content-Type: application/json' \\\n    -d '{body}'"
        )
    };
    println!(
        "The demo business ({}): Haircut (Ana or Ben), Yoga class (8 seats, Studio), Massage (confirmed by the salon)",
        demo::TIME_ZONE
    );
    println!("Free haircut slots tomorrow (or the next weekday):");
    println!(
        "  curl -s '{base}/v1/services/{}/availability?from={}&to={}' {auth}",
        demo.haircut,
        demo.start,
        demo.later.replace("T11:", "T18:")
    );
    println!("Hold a slot for ten minutes:");
    println!(
        "{}",
        invoke(
            "hold-slot",
            format!(
                r#"{{"service_id": "{}", "customer": "Ada", "start": "{}"}}"#,
                demo.haircut, demo.start
            )
        )
    );
    println!("Book it with the hold's id:");
    println!(
        "{}",
        invoke(
            "create-booking",
            format!(
                r#"{{"service_id": "{}", "customer": "Ada", "start": "{}", "hold_id": "HOLD_ID"}}"#,
                demo.haircut, demo.start
            )
        )
    );
    println!("Move it an hour later:");
    println!(
        "{}",
        invoke(
            "reschedule-booking",
            format!(
                r#"{{"booking_id": "BOOKING_ID", "start": "{}"}}"#,
                demo.later
            )
        )
    );
    println!("Take a seat in the yoga class:");
    println!(
        "{}",
        invoke(
            "create-booking",
            format!(
                r#"{{"service_id": "{}", "customer": "Bea", "start": "{}"}}"#,
                demo.yoga, demo.class_start
            )
        )
    );
    println!("Ask for a massage (pending until confirm-booking):");
    println!(
        "{}",
        invoke(
            "create-booking",
            format!(
                r#"{{"service_id": "{}", "customer": "Cy", "start": "{}"}}"#,
                demo.massage, demo.later
            )
        )
    );
    println!("The agent's tools:");
    println!("  curl -s {base}/v1/tools -H 'Authorization: Bearer {key}'");
    println!();
    application.run_until_stopped().await?;
    drop(cluster);
    Ok(())
}
