//! The command line: what each subcommand takes, and what it does.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{ExecutorEngine, ExecutorRegistry, Host, HostSettings, InvocationOutcome};
use crate::service::{DevArgs, ServeArgs};
use crate::TenantId;

#[derive(Debug, Parser)]
#[command(
    name = "bookhost",
    version,
    about = "A booking engine whose business actions are WebAssembly components"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL of the tables' owner; migrations are applied on connect.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// PostgreSQL URL the host works through: a role that owns no table and
    /// cannot bypass row-level security [default: DATABASE_URL with user
    /// bookhost_app].
    #[arg(long, env = "BOOKHOST_APP_DATABASE_URL")]
    pub app_database_url: Option<String>,
}

impl DatabaseArgs {
    /// Migrate, then pool `max_connections` as the host's role.
    pub async fn connect(&self, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
        crate::db::connect(
            &self.database_url,
            self.app_database_url.as_deref(),
            max_connections,
        )
        .await
    }
}

/// Where a running bookhost server is, and the key to use with it.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(long, env = "BOOKHOST_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// A tenant API key.
    #[arg(long, env = "BOOKHOST_KEY", hide_env_values = true)]
    pub key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Everything a newcomer needs on one machine: a private PostgreSQL, a
    /// demo tenant with the example executors, a key, and the server.
    Dev(DevArgs),
    /// Manage tenants (directly in the database).
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Manage the tenant's executors on a running server.
    Executor {
        #[command(flatten)]
        server: ServerArgs,
        #[command(subcommand)]
        command: ExecutorCommand,
    },
    /// Run one invocation and print the result as JSON.
    ///
    /// With --tenant it runs locally: the built component from
    /// --executors-dir against DATABASE_URL, printing the full report.
    /// Without it, it asks a running server (--server, --key).
    ///
    /// Exit status: 0 when the executor's result committed, 2 when the
    /// executor refused (nothing written), 3 for any other outcome.
    Invoke {
        /// The executor's name, for example `create-booking`.
        #[arg(long)]
        executor: String,
        /// The input, as JSON text.
        #[arg(long)]
        input: String,
        /// Run locally for this tenant id (from `bookhost tenant create`).
        #[arg(long)]
        tenant: Option<TenantId>,
        /// PostgreSQL URL of the tables' owner (local runs).
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// PostgreSQL URL of the host's role (local runs) [default:
        /// DATABASE_URL with user bookhost_app].
        #[arg(long, env = "BOOKHOST_APP_DATABASE_URL")]
        app_database_url: Option<String>,
        /// Directory of built executor components (local runs).
        #[arg(
            long,
            env = "BOOKHOST_EXECUTORS_DIR",
            default_value = "plugins/components"
        )]
        executors_dir: PathBuf,
        /// Roll back after running and list the writes (server runs).
        #[arg(long)]
        dry_run: bool,
        /// Idempotency-Key header (server runs).
        #[arg(long)]
        idempotency_key: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Operators: the audit log, directly in the database.
    Audit {
        #[command(flatten)]
        db: DatabaseArgs,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List the tenant's tools (active executors) from a running server.
    Tools {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Apply the database migrations and exit.
    Migrate {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Run a private PostgreSQL server in the foreground (Ctrl-C stops it),
    /// initializing DATA_DIR on first use, and print its DATABASE_URL.
    Postgres {
        #[arg(long, default_value = ".bookhost/postgres")]
        data_dir: PathBuf,
        #[arg(long, default_value_t = 5433)]
        port: u16,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its id, then its first API key (shown once).
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The tenant's display name (unique).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExecutorCommand {
    /// Upload a component as a new version (it becomes active).
    Upload { name: String, file: PathBuf },
    /// List executors and their versions.
    List,
    /// What the active version declared and was granted.
    Grants { name: String },
    /// Make an older version active (default: the previous one).
    Rollback {
        name: String,
        #[arg(long)]
        version: Option<String>,
    },
}

/// Run a parsed command; returns the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Serve(args) => crate::service::run_serve(args).await.map(|()| 0),
        Command::Dev(args) => crate::service::run_dev(args).await.map(|()| 0),
        Command::Tenant {
            command: TenantCommand::Create { db, name },
        } => {
            let pool = db.connect(2).await?;
            let tenant = crate::db::create_tenant(&pool, &name).await?;
            let key = crate::db::keys::issue(&pool, tenant).await?;
            println!("{tenant}");
            println!("{key}");
            Ok(0)
        }
        Command::Migrate { db } => {
            db.connect(2).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Invoke {
            executor,
            input,
            tenant: Some(tenant),
            database_url,
            app_database_url,
            executors_dir,
            ..
        } => {
            let db = DatabaseArgs {
                database_url: database_url
                    .context("local invocations (--tenant) need DATABASE_URL")?,
                app_database_url,
            };
            invoke_locally(&db, tenant, &executor, &input, &executors_dir).await
        }
        Command::Invoke {
            executor,
            input,
            tenant: None,
            dry_run,
            idempotency_key,
            server,
            ..
        } => {
            let client = Client::new(&server)?;
            let path = format!(
                "/v1/executors/{executor}/invoke{}",
                if dry_run { "?dry_run=true" } else { "" }
            );
            let mut request = client.request(reqwest::Method::POST, &path).body(input);
            request = request.header("content-type", "application/json");
            if let Some(key) = idempotency_key {
                request = request.header("idempotency-key", key);
            }
            let status = client.print(request).await?;
            Ok(match status {
                200..=299 => 0,
                409 | 422 => 2,
                _ => 3,
            })
        }
        Command::Executor { server, command } => {
            let client = Client::new(&server)?;
            let request = match command {
                ExecutorCommand::Upload { name, file } => {
                    let bytes = std::fs::read(&file)
                        .with_context(|| format!("reading {}", file.display()))?;
                    client
                        .request(reqwest::Method::PUT, &format!("/v1/executors/{name}"))
                        .header("content-type", "application/wasm")
                        .body(bytes)
                }
                ExecutorCommand::List => client.request(reqwest::Method::GET, "/v1/executors"),
                ExecutorCommand::Grants { name } => client.request(
                    reqwest::Method::GET,
                    &format!("/v1/executors/{name}/grants"),
                ),
                ExecutorCommand::Rollback { name, version } => client
                    .request(
                        reqwest::Method::POST,
                        &format!("/v1/executors/{name}/rollback"),
                    )
                    .json(&serde_json::json!({ "version": version })),
            };
            Ok(if (200..300).contains(&client.print(request).await?) {
                0
            } else {
                1
            })
        }
        Command::Audit { db, command } => {
            let pool = db.connect(2).await?;
            run_audit(&pool, command).await
        }
        Command::Tools { server } => {
            let client = Client::new(&server)?;
            let status = client
                .print(client.request(reqwest::Method::GET, "/v1/tools"))
                .await?;
            Ok(if (200..300).contains(&status) { 0 } else { 1 })
        }
        Command::Postgres { data_dir, port } => {
            let options = ClusterOptions {
                port,
                tcp: true,
                unsafe_fast: false,
                die_with_parent: true,
            };
            let mut cluster = LocalCluster::start(&data_dir, &options)?;
            println!("DATABASE_URL={}", cluster.database_url());
            println!("(also on 127.0.0.1:{port}, trust authentication: for development only; Ctrl-C stops it)");
            crate::service::shutdown_signal().await;
            cluster.stop();
            Ok(0)
        }
    }
}

async fn invoke_locally(
    db: &DatabaseArgs,
    tenant: TenantId,
    executor: &str,
    input: &str,
    executors_dir: &std::path::Path,
) -> anyhow::Result<i32> {
    let pool = db.connect(4).await?;
    anyhow::ensure!(
        crate::db::tenant_exists(&pool, tenant).await?,
        "no tenant with id {tenant}"
    );
    let settings = HostSettings::default();
    let engine = ExecutorEngine::new(settings.engine.clone())?;
    let registry = ExecutorRegistry::new(engine)?;
    let path = executors_dir.join(format!("{executor}.wasm"));
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "no built executor at {} (build them with plugins/build.sh)",
            path.display()
        )
    })?;
    registry
        .load(&bytes)
        .await
        .with_context(|| format!("loading {}", path.display()))?;
    let host = Host::new(pool, Arc::new(registry), settings);
    let report = host.invoke(tenant, executor, input).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(match report.outcome {
        InvocationOutcome::Ok { .. } => 0,
        InvocationOutcome::UserError { .. } => 2,
        _ => 3,
    })
}

/// A small HTTP client for the server's API.
struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    fn new(server: &ServerArgs) -> anyhow::Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder().build()?,
            base: server.server.trim_end_matches('/').to_owned(),
            key: server.key.clone(),
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    /// Send, print the body (pretty JSON when it is JSON) and return the status.
    async fn print(&self, request: reqwest::RequestBuilder) -> anyhow::Result<u16> {
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = response.status().as_u16();
        let body = response.bytes().await?;
        let text = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(json) => serde_json::to_string_pretty(&json)?,
            Err(_) => String::from_utf8_lossy(&body).into_owned(),
        };
        if (200..300).contains(&status) {
            println!("{text}");
        } else {
            eprintln!("HTTP {status}");
            println!("{text}");
        }
        Ok(status)
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Chain pending records, walk every chain, report each first broken
    /// link (exit 1 if any).
    Verify {
        #[arg(long)]
        tenant: Option<TenantId>,
        /// A file written by `bookhost audit checkpoint`.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
    /// Print every tenant's chain head as JSON, for safekeeping.
    Checkpoint,
    /// Search records (oldest first).
    Search {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow new records as they are written (Ctrl-C stops).
    Tail {
        #[command(flatten)]
        filter: AuditFilterArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct AuditFilterArgs {
    #[arg(long)]
    tenant: Option<uuid::Uuid>,
    #[arg(long)]
    executor: Option<String>,
    /// Attempts with a call of this capability: lock, query, insert, update or delete.
    #[arg(long)]
    capability: Option<String>,
    #[arg(long)]
    table: Option<String>,
    /// An attempt outcome (committed, replayed, ...) or a call outcome (ok, denied, error:conflict, ...).
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    invocation: Option<uuid::Uuid>,
    /// RFC 3339.
    #[arg(long)]
    from: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339.
    #[arg(long)]
    to: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, default_value_t = 100)]
    limit: i64,
}

impl AuditFilterArgs {
    fn filter(&self) -> crate::db::audit::AuditFilter {
        crate::db::audit::AuditFilter {
            tenant: self.tenant,
            executor: self.executor.clone(),
            capability: self.capability.clone(),
            table: self.table.clone(),
            outcome: self.outcome.clone(),
            invocation_id: self.invocation,
            from: self.from,
            to: self.to,
            after_id: None,
            limit: Some(self.limit),
        }
    }
}

fn print_records(records: &[crate::db::audit::AuditRecord], json: bool) -> anyhow::Result<()> {
    for r in records {
        if json {
            println!("{}", serde_json::to_string(r)?);
        } else {
            let calls: Vec<String> = r
                .calls
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    let target = match c["table"].as_str() {
                        Some(table) => {
                            format!("{}:{table}", c["capability"].as_str().unwrap_or("?"))
                        }
                        None => c["capability"].as_str().unwrap_or("?").to_owned(),
                    };
                    format!("{target}={}", c["outcome"].as_str().unwrap_or("?"))
                })
                .collect();
            println!(
                "{:>8} {} {} #{} {:<14} {:<12} wait={}us {}us  {}",
                r.id,
                r.recorded_at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                r.invocation_id,
                r.attempt,
                r.executor,
                r.outcome,
                r.lock_wait_us,
                r.duration_us,
                calls.join(" "),
            );
        }
    }
    Ok(())
}

async fn run_audit(pool: &sqlx::PgPool, command: AuditCommand) -> anyhow::Result<i32> {
    use crate::db::audit;
    match command {
        AuditCommand::Verify { tenant, checkpoint } => {
            let checkpoints: Vec<audit::Checkpoint> = match checkpoint {
                Some(path) => serde_json::from_slice(
                    &std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?,
                )
                .with_context(|| format!("{} is not a checkpoint file", path.display()))?,
                None => Vec::new(),
            };
            audit::chain_pending(pool).await?;
            let verification = audit::verify(pool, tenant, &checkpoints).await?;
            println!("{}", serde_json::to_string_pretty(&verification)?);
            Ok(if verification.broken.is_empty() { 0 } else { 1 })
        }
        AuditCommand::Checkpoint => {
            audit::chain_pending(pool).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&audit::checkpoint(pool).await?)?
            );
            Ok(0)
        }
        AuditCommand::Search { filter, json } => {
            print_records(&audit::search(pool, &filter.filter()).await?, json)?;
            Ok(0)
        }
        AuditCommand::Tail { filter, json } => {
            let mut filter = filter.filter();
            filter.after_id = sqlx::query_scalar("SELECT max(id) FROM audit_records")
                .fetch_one(pool)
                .await?;
            loop {
                let records = audit::search(pool, &filter).await?;
                print_records(&records, json)?;
                if let Some(last) = records.last() {
                    filter.after_id = Some(last.id);
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
                        _ = crate::service::shutdown_signal() => return Ok(0),
                    }
                }
            }
        }
    }
}
