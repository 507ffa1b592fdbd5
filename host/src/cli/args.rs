//! The flags (and environment variables) shared by several commands, and
//! how those of `serve` and `dev` become the service's plain settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::capabilities::grant::{GrantMode, GrantPolicy};
use crate::service::{DatabaseSettings, DevSettings, ServeSettings, ServiceLimits};

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

impl From<DatabaseArgs> for DatabaseSettings {
    fn from(args: DatabaseArgs) -> Self {
        DatabaseSettings {
            url: args.database_url,
            app_url: args.app_database_url,
        }
    }
}

/// `bookhost serve` configuration (flags or environment).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "BOOKHOST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// The operator key (administers tenants). Without it operator endpoints refuse all.
    #[arg(long, env = "BOOKHOST_OPERATOR_KEY", hide_env_values = true)]
    pub operator_key: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl From<ServeArgs> for ServeSettings {
    fn from(args: ServeArgs) -> Self {
        ServeSettings {
            database: args.db.into(),
            listen: args.listen,
            operator_key: args.operator_key,
            limits: args.limits.into(),
        }
    }
}

/// `bookhost dev` configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Where the private PostgreSQL keeps its data (reused across runs).
    #[arg(
        long,
        env = "BOOKHOST_DEV_DATA_DIR",
        default_value = ".bookhost/postgres"
    )]
    pub data_dir: PathBuf,
    /// Port of the private PostgreSQL (127.0.0.1 and a Unix socket in the data dir).
    #[arg(long, env = "BOOKHOST_DEV_POSTGRES_PORT", default_value_t = 5433)]
    pub postgres_port: u16,
    /// Address the service listens on.
    #[arg(long, env = "BOOKHOST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Built executors to upload for the demo tenant.
    #[arg(
        long,
        env = "BOOKHOST_EXECUTORS_DIR",
        default_value = "plugins/components"
    )]
    pub executors_dir: PathBuf,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl From<DevArgs> for DevSettings {
    fn from(args: DevArgs) -> Self {
        DevSettings {
            data_dir: args.data_dir,
            postgres_port: args.postgres_port,
            listen: args.listen,
            executors_dir: args.executors_dir,
            limits: args.limits.into(),
        }
    }
}

/// How declared capabilities become grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GrantModeArg {
    /// Grant what the manifest declares (minus the deny list).
    AllowDeclared,
    /// Grant nothing until an operator approves the version.
    RequireApproval,
}

impl From<GrantModeArg> for GrantMode {
    fn from(mode: GrantModeArg) -> Self {
        match mode {
            GrantModeArg::AllowDeclared => GrantMode::AllowDeclared,
            GrantModeArg::RequireApproval => GrantMode::RequireApproval,
        }
    }
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
    /// Most of those one tenant's invocations hold at once (the rest of its
    /// invocations wait without one) [default: half of max-connections].
    #[arg(long, env = "BOOKHOST_CONNECTIONS_PER_TENANT")]
    pub connections_per_tenant: Option<usize>,
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
    #[arg(long, env = "BOOKHOST_MAX_UPLOAD_BYTES", default_value_t = 32 << 20)]
    pub max_upload_bytes: usize,
    /// Uploaded components compiled at once (more wait their turn).
    #[arg(long, env = "BOOKHOST_MAX_COMPILATIONS", default_value_t = 2)]
    pub max_compilations: usize,
    /// Longest one compilation may take before the upload is refused, in seconds.
    #[arg(long, env = "BOOKHOST_COMPILE_TIMEOUT_SECS", default_value_t = 120)]
    pub compile_timeout_secs: u64,
    /// How long an Idempotency-Key's response is replayed, in seconds.
    #[arg(long, env = "BOOKHOST_IDEMPOTENCY_TTL_SECS", default_value_t = 24 * 3600)]
    pub idempotency_ttl_secs: u64,
    /// How long a proposal can be confirmed, in seconds.
    #[arg(long, env = "BOOKHOST_PROPOSAL_TTL_SECS", default_value_t = 600)]
    pub proposal_ttl_secs: u64,
    /// Origins a browser page may call /mcp from, comma-separated
    /// (`https://app.example.com`, `http://localhost:*`) [default: loopback].
    #[arg(long, env = "BOOKHOST_MCP_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub mcp_allowed_origins: Option<Vec<String>>,
    /// Host header values /mcp serves, comma-separated (against DNS
    /// rebinding; `*` for any) [default: localhost, 127.0.0.1, ::1].
    #[arg(long, env = "BOOKHOST_MCP_ALLOWED_HOSTS", value_delimiter = ',')]
    pub mcp_allowed_hosts: Option<Vec<String>>,
    /// How declared capabilities become grants.
    #[arg(
        long,
        env = "BOOKHOST_GRANT_POLICY",
        value_enum,
        default_value = "allow-declared"
    )]
    pub grant_policy: GrantModeArg,
    /// Capabilities never granted, comma-separated: `delete:services`,
    /// `*:storefront_pages`, `delete:*`, `lock`.
    #[arg(long, env = "BOOKHOST_DENY", value_delimiter = ',')]
    pub deny: Vec<String>,
}

impl From<LimitArgs> for ServiceLimits {
    fn from(args: LimitArgs) -> Self {
        ServiceLimits {
            artifact_cache: args.artifact_cache,
            max_connections: args.max_connections,
            connections_per_tenant: args.connections_per_tenant.map(|n| n.max(1)),
            execution_timeout: Duration::from_millis(args.execution_timeout_ms),
            max_in_flight_per_tenant: args.max_in_flight_per_tenant,
            max_input_bytes: args.max_input_bytes,
            max_output_bytes: args.max_output_bytes,
            max_upload_bytes: args.max_upload_bytes,
            compile: crate::runtime::CompileLimits {
                max_concurrent: args.max_compilations.max(1),
                timeout: Duration::from_secs(args.compile_timeout_secs.max(1)),
            },
            idempotency_ttl: Duration::from_secs(args.idempotency_ttl_secs),
            proposal_ttl: Duration::from_secs(args.proposal_ttl_secs),
            mcp: {
                let defaults = crate::mcp::McpConfig::default();
                crate::mcp::McpConfig {
                    allowed_origins: args.mcp_allowed_origins.unwrap_or(defaults.allowed_origins),
                    allowed_hosts: match args.mcp_allowed_hosts {
                        Some(hosts) if hosts.iter().any(|h| h == "*") => Vec::new(),
                        Some(hosts) => hosts,
                        None => defaults.allowed_hosts,
                    },
                }
            },
            grant_policy: GrantPolicy {
                mode: args.grant_policy.into(),
                deny: args.deny,
            },
        }
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
