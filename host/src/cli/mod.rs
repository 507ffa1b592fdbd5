//! The command line: what each subcommand takes, and what it does.

mod args;
mod audit;
mod client;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

pub use self::args::{DatabaseArgs, DevArgs, GrantModeArg, LimitArgs, ServeArgs, ServerArgs};
use self::audit::AuditCommand;
use self::client::Client;
use crate::authoring::{self, Language};
use crate::db::local_cluster::{ClusterOptions, LocalCluster};
use crate::runtime::{ExecutorEngine, ExecutorRegistry, Host, HostSettings, InvocationOutcome};
use crate::service::{Application, DatabaseSettings};
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
    /// Start an executor project: a new folder with the WIT it targets, the
    /// SDK, a build, a README and a first test.
    New {
        /// The executor's name: 1 to 64 of a-z, 0-9 and '-', starting with a
        /// letter. Also the folder's, unless --dir.
        name: String,
        /// The language to write it in.
        #[arg(long, value_enum, default_value = "ts")]
        lang: Language,
        /// Where to make the project [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build an executor project into dist/NAME.wasm, checked as an upload
    /// is (imports, exports, manifest). Installs the project's pinned npm
    /// packages or componentize-py on first use.
    Build {
        /// The project's folder (where bookhost.toml is).
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// Run one invocation and print the result as JSON.
    ///
    /// With --local it runs the project's built component (--project) on a
    /// scratch PostgreSQL holding the example data, gone afterwards. With
    /// --tenant it runs the built component from --executors-dir against
    /// DATABASE_URL. Both print the full report. Otherwise it asks a running
    /// server (--server, --key).
    ///
    /// Exit status: 0 when the executor's result committed, 2 when the
    /// executor refused (nothing written), 3 for any other outcome.
    Invoke {
        /// The executor's name, for example `create-booking` [--local: the project's].
        #[arg(long, required_unless_present = "local")]
        executor: Option<String>,
        /// The input, as JSON text.
        #[arg(long)]
        input: String,
        /// Run the project's built component on a scratch database with the example data.
        #[arg(long, conflicts_with_all = ["tenant", "dry_run", "idempotency_key"])]
        local: bool,
        /// The project's folder, for --local.
        #[arg(long, default_value = ".")]
        project: PathBuf,
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
    /// Print the HTTP API's OpenAPI document (the one served at /openapi.json).
    Openapi,
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
        Command::Serve(args) => {
            Application::build(args.into())
                .await?
                .run_until_stopped()
                .await?;
            Ok(0)
        }
        Command::Dev(args) => crate::service::run_dev(args.into()).await.map(|()| 0),
        Command::Tenant {
            command: TenantCommand::Create { db, name },
        } => {
            let pool = DatabaseSettings::from(db).connect(2).await?;
            let tenant = crate::db::create_tenant(&pool, &name).await?;
            let key = crate::db::keys::issue(&pool, tenant).await?;
            println!("{tenant}");
            println!("{key}");
            Ok(0)
        }
        Command::Openapi => {
            let document = <crate::api::ApiDoc as utoipa::OpenApi>::openapi();
            println!("{}", document.to_pretty_json()?);
            Ok(0)
        }
        Command::Migrate { db } => {
            DatabaseSettings::from(db).connect(2).await?;
            println!("migrations applied");
            Ok(0)
        }
        Command::New { name, lang, dir } => {
            let name = crate::ExecutorName::parse(&name)?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(name.as_str()));
            let project = authoring::scaffold(&dir, &name, lang)?;
            let build = match lang {
                Language::Ts => "bookhost build && npm test",
                Language::Python => "bookhost build && python3 -m unittest",
                Language::Rust => "bookhost build && cargo test",
            };
            println!(
                "created {} ({} executor {name})\n\nnext:\n  cd {}\n  {build}\n  \
                 bookhost invoke --local --input '{{\"service_id\": \"{}\", \"customer\": \"Ada\", \"start\": \"2030-01-07T11:00:00Z\"}}'\n\n\
                 every `bookhost invoke --local` starts from this example data:\n{}",
                project.dir.display(),
                lang.as_str(),
                project.dir.display(),
                authoring::EXAMPLE_DATA.haircut,
                authoring::EXAMPLE_DATA.describe()
            );
            Ok(0)
        }
        Command::Build { project } => {
            let project = authoring::Project::open(&project)?;
            let say = |step: &str| eprintln!("bookhost build: {step}");
            let built = authoring::build(&project, &say).await?;
            let capabilities: Vec<String> = built
                .executor
                .capabilities
                .iter()
                .map(|c| c.to_string())
                .collect();
            println!(
                "{}: {:.1} MB; imports {}; capabilities {}",
                built.path.display(),
                built.size as f64 / 1e6,
                built.imports.join(", "),
                capabilities.join(", ")
            );
            Ok(0)
        }
        Command::Invoke {
            input,
            local: true,
            project,
            ..
        } => {
            let project = authoring::Project::open(&project)?;
            let report = authoring::invoke_local(&project, &input).await?;
            print_report(&report)
        }
        // clap requires --executor unless --local.
        Command::Invoke { executor: None, .. } => {
            anyhow::bail!("--executor is required (unless --local)")
        }
        Command::Invoke {
            executor: Some(executor),
            input,
            tenant: Some(tenant),
            database_url,
            app_database_url,
            executors_dir,
            ..
        } => {
            let db = DatabaseSettings {
                url: database_url.context("local invocations (--tenant) need DATABASE_URL")?,
                app_url: app_database_url,
            };
            invoke_locally(&db, tenant, &executor, &input, &executors_dir).await
        }
        Command::Invoke {
            executor: Some(executor),
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
            let pool = DatabaseSettings::from(db).connect(2).await?;
            audit::run(&pool, command).await
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
    db: &DatabaseSettings,
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
    print_report(&report)
}

/// The report as JSON; the exit status by outcome.
fn print_report(report: &crate::runtime::InvocationReport) -> anyhow::Result<i32> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(match report.outcome {
        InvocationOutcome::Ok { .. } => 0,
        InvocationOutcome::UserError { .. } => 2,
        _ => 3,
    })
}
