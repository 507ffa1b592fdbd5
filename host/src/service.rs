//! Running the service: build the host from configuration, serve HTTP with
//! graceful shutdown, and the one-command development setup.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::api::{app, AppState, ServiceConfig};
use crate::capabilities::grant::{GrantMode, GrantPolicy};
use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{ExecutorEngine, ExecutorRegistry};
use crate::{Host, HostSettings, TenantId};

/// `bookhost serve` configuration (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: crate::cli::DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "BOOKHOST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The operator key (administers tenants). Without it operator endpoints refuse all.
    #[arg(long, env = "BOOKHOST_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Limits shared by `serve` and `dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    /// Directory of compiled executors, so restarts do not recompile.
    #[arg(
        long,
        env = "BOOKHOST_ARTIFACT_CACHE",
        default_value = ".bookhost/artifacts"
    )]
    pub artifact_cache: PathBuf,
    /// Database connections (bounds concurrent invocations).
    #[arg(long, env = "BOOKHOST_MAX_CONNECTIONS", default_value_t = 32)]
    pub max_connections: u32,
    /// Wall-clock bound on one attempt of an invocation, in milliseconds.
    #[arg(long, env = "BOOKHOST_EXECUTION_TIMEOUT_MS", default_value_t = 10_000)]
    pub execution_timeout_ms: u64,
    /// Most invocations of one tenant running at once; more get 429.
    #[arg(long, env = "BOOKHOST_MAX_IN_FLIGHT_PER_TENANT", default_value_t = 64)]
    pub max_in_flight_per_tenant: usize,
    /// Largest accepted invocation input, in bytes.
    #[arg(long, env = "BOOKHOST_MAX_INPUT_BYTES", default_value_t = 1 << 20)]
    pub max_input_bytes: usize,
    /// Largest executor result kept, in bytes; more ends `limit_exceeded`.
    #[arg(long, env = "BOOKHOST_MAX_OUTPUT_BYTES", default_value_t = 1 << 20)]
    pub max_output_bytes: usize,
    /// Largest accepted component upload, in bytes.
    #[arg(long, env = "BOOKHOST_MAX_UPLOAD_BYTES", default_value_t = 8 << 20)]
    pub max_upload_bytes: usize,
    /// How long an Idempotency-Key's response is replayed, in seconds.
    #[arg(long, env = "BOOKHOST_IDEMPOTENCY_TTL_SECS", default_value_t = 24 * 3600)]
    pub idempotency_ttl_secs: u64,
    /// How declared capabilities become grants.
    #[arg(
        long,
        env = "BOOKHOST_GRANT_POLICY",
        value_enum,
        default_value = "allow-declared"
    )]
    pub grant_policy: GrantMode,
    /// Capabilities never granted, comma-separated: `delete:services`,
    /// `*:storefront_pages`, `delete:*`, `lock`.
    #[arg(long, env = "BOOKHOST_DENY", value_delimiter = ',')]
    pub deny: Vec<String>,
}

/// Build the host and API state on `pool`.
pub fn state(
    pool: sqlx::PgPool,
    limits: &LimitArgs,
    operator_key: Option<String>,
) -> anyhow::Result<AppState> {
    let settings = HostSettings {
        execution_timeout: Duration::from_millis(limits.execution_timeout_ms),
        max_in_flight_per_tenant: limits.max_in_flight_per_tenant.max(1),
        max_input_bytes: limits.max_input_bytes,
        max_output_bytes: limits.max_output_bytes,
        ..HostSettings::default()
    };
    let engine = ExecutorEngine::new(settings.engine.clone())?;
    let mut registry =
        ExecutorRegistry::new(engine)?.with_artifact_cache(limits.artifact_cache.clone())?;
    registry.max_component_bytes = limits.max_upload_bytes;
    let host = Host::new(pool, Arc::new(registry), settings);
    Ok(AppState::new(
        host,
        ServiceConfig {
            operator_key,
            max_component_bytes: limits.max_upload_bytes,
            idempotency_ttl: Duration::from_secs(limits.idempotency_ttl_secs),
            grant_policy: GrantPolicy {
                mode: limits.grant_policy,
                deny: limits.deny.clone(),
            },
        },
    ))
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

/// Serve `state` on `listen` until a shutdown signal, then let in-flight
/// requests (and so invocations) finish.
pub async fn serve(state: AppState, listen: SocketAddr) -> anyhow::Result<()> {
    // Link audit records into their tenants' hash chains in the background.
    let pool = state.host.pool().clone();
    let chainer = crate::db::audit::spawn_chainer(pool.clone(), Duration::from_secs(1));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!("bookhost listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    chainer.abort();
    if let Err(e) = crate::db::audit::chain_pending(&pool).await {
        tracing::warn!("chaining the last audit records: {e:#}");
    }
    tracing::info!("bookhost stopped");
    Ok(())
}

/// `bookhost serve`.
pub async fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let pool = args.db.connect(args.limits.max_connections).await?;
    serve(state(pool, &args.limits, args.operator_key)?, args.listen).await
}

/// `bookhost dev` configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Where the private PostgreSQL keeps its data (reused across runs).
    #[arg(long, default_value = ".bookhost/postgres")]
    pub data_dir: PathBuf,
    /// Port of the private PostgreSQL (127.0.0.1 and a Unix socket in the data dir).
    #[arg(long, default_value_t = 5433)]
    pub postgres_port: u16,
    /// Address the service listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Built executors to upload for the demo tenant.
    #[arg(long, default_value = "plugins/components")]
    pub executors_dir: PathBuf,
    #[command(flatten)]
    pub limits: LimitArgs,
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
pub async fn run_dev(args: DevArgs) -> anyhow::Result<()> {
    let options = ClusterOptions {
        port: args.postgres_port,
        tcp: true,
        unsafe_fast: false,
        die_with_parent: true,
    };
    // Started from this (the main) thread: the server dies with the thread
    // that started it (PR_SET_PDEATHSIG), and this one lives as long as we do.
    let cluster = LocalCluster::start(&args.data_dir, &options)?;
    let owner = cluster.connect_options();
    let app = crate::db::app_options(&owner);
    let pool = crate::db::connect_with(owner, app, args.limits.max_connections).await?;
    let operator_key = format!("op_{}", uuid::Uuid::new_v4().simple());
    let state = state(pool.clone(), &args.limits, Some(operator_key.clone()))?;
    let tenant = demo_tenant(&pool).await?;
    let executors = upload_dir(&state, tenant, &args.executors_dir).await?;
    let key = crate::db::keys::issue(&pool, tenant).await?;
    let service: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT id FROM services WHERE tenant_id = $1 ORDER BY created_at LIMIT 1",
    )
    .bind(tenant.0)
    .fetch_optional(&mut *crate::db::begin_as_tenant(&pool, tenant).await?)
    .await?;
    let service = match service {
        Some(id) => id.to_string(),
        None => {
            let report = state
                .host
                .invoke(
                    tenant,
                    "create-service",
                    r#"{"name": "Haircut", "duration_minutes": 30}"#,
                )
                .await?;
            match report.outcome {
                crate::InvocationOutcome::Ok { output } => output["service"]["id"]
                    .as_str()
                    .context("create-service answered without an id")?
                    .to_owned(),
                other => anyhow::bail!("creating the demo service failed: {other:?}"),
            }
        }
    };
    let start = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00Z");
    let base = format!("http://{}", args.listen);
    println!("bookhost dev");
    println!("  PostgreSQL:     {}", cluster.database_url());
    println!("  executors:      {}", executors.join(", "));
    println!("  demo tenant:    {tenant}");
    println!("  tenant key:     {key}");
    println!("  operator key:   {operator_key}");
    println!("  API:            {base} (OpenAPI at {base}/openapi.json)");
    println!();
    println!("Book a slot:");
    println!(
        "  curl -s -X POST {base}/v1/executors/create-booking/invoke \\\n    -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n    -d '{{\"service_id\": \"{service}\", \"customer\": \"Ada\", \"start\": \"{start}\"}}'"
    );
    println!("The agent's tools:");
    println!("  curl -s {base}/v1/tools -H 'Authorization: Bearer {key}'");
    println!();
    serve(state, args.listen).await?;
    drop(cluster);
    Ok(())
}
