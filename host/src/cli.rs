//! The command line: what each subcommand takes, and what it does.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{ExecutorEngine, ExecutorRegistry, Host, HostSettings, InvocationOutcome};
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

#[derive(Debug, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL; migrations are applied on connect.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage tenants.
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    /// Run one invocation of a built executor and print the report as JSON.
    ///
    /// Exit status: 0 when the executor returned ok (committed), 2 for an
    /// executor error result, 3 for any other outcome (trap, timeout, ...).
    Invoke {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The tenant's id (from `bookhost tenant create`).
        #[arg(long)]
        tenant: TenantId,
        /// The executor's name, for example `create-booking`.
        #[arg(long)]
        executor: String,
        /// The input, as JSON text.
        #[arg(long)]
        input: String,
        /// Directory of built executor components.
        #[arg(
            long,
            env = "BOOKHOST_EXECUTORS_DIR",
            default_value = "plugins/components"
        )]
        executors_dir: PathBuf,
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
    /// Create a tenant and print its id.
    Create {
        #[command(flatten)]
        db: DatabaseArgs,
        /// The tenant's display name (unique).
        name: String,
    },
}

/// Run a parsed command; returns the process exit status.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Tenant {
            command: TenantCommand::Create { db, name },
        } => {
            let pool = crate::db::connect(&db.database_url, 2).await?;
            let tenant = crate::db::create_tenant(&pool, &name).await?;
            println!("{tenant}");
            Ok(0)
        }
        Command::Migrate { db } => {
            crate::db::connect(&db.database_url, 2).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::Invoke {
            db,
            tenant,
            executor,
            input,
            executors_dir,
        } => {
            let pool = crate::db::connect(&db.database_url, 4).await?;
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
            let report = host.invoke(tenant, &executor, &input).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(match report.outcome {
                InvocationOutcome::Ok { .. } => 0,
                InvocationOutcome::UserError { .. } => 2,
                _ => 3,
            })
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
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            cluster.stop();
            Ok(0)
        }
    }
}
