//! Everything that speaks SQL: the table catalog, statement building, error
//! classification, migrations and a private PostgreSQL for development and tests.

pub mod audit;
pub mod batch;
pub mod catalog;
pub mod commit_status;
pub mod errors;
pub mod executors;
pub mod health;
pub mod idempotency;
pub mod insights;
pub mod keys;
pub mod local_cluster;
pub mod locks;
pub mod proposals;
pub mod reads;
pub mod retry;
pub mod schedule;
pub mod sql;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

use crate::TenantId;

/// The migrations under `migrations/`, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// The role the running host connects as: it owns no table and cannot
/// bypass row-level security (migration 0005 creates it and its grants).
pub const APP_ROLE: &str = "bookhost_app";

/// Apply migrations as the owner at `database_url`, then connect a pool of
/// `max_connections` as the host's role: `app_database_url` if given, else
/// the owner's URL with the user [`APP_ROLE`] (enough where PostgreSQL trusts
/// local connections; with passwords, give the app URL).
pub async fn connect(
    database_url: &str,
    app_database_url: Option<&str>,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let owner = PgConnectOptions::from_str(database_url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    let app = match app_database_url {
        Some(url) => PgConnectOptions::from_str(url).map_err(|e| {
            anyhow::anyhow!("BOOKHOST_APP_DATABASE_URL is not a valid PostgreSQL URL: {e}")
        })?,
        None => app_options(&owner),
    };
    connect_with(owner, app, max_connections).await
}

/// The owner's connection options with the user switched to [`APP_ROLE`].
pub fn app_options(owner: &PgConnectOptions) -> PgConnectOptions {
    owner.clone().username(APP_ROLE)
}

/// Options for every pool a [`crate::Host`] runs invocations on: each
/// connection prepares the audit's append when it connects (attempts
/// `EXECUTE` it in their COMMIT's round trip; see [`audit::append_sql`]),
/// and connections are handed out without sqlx's ping first (a round trip
/// per invocation, for the rare connection the server closed meanwhile,
/// which an attempt finds at its BEGIN and replays on another), except
/// connections idle since a connection fault was seen ([`health`]): after a
/// restart or a storm of terminated backends, the dead are weeded out
/// before use instead of one request each.
pub fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if !health::idle_since_fault(meta.idle_for) {
                    return Ok(true);
                }
                let pinged = tokio::time::timeout(
                    std::time::Duration::from_secs(1),
                    sqlx::Connection::ping(conn),
                )
                .await;
                Ok(matches!(pinged, Ok(Ok(()))))
            })
        })
        .after_connect(|conn, _| {
            Box::pin(async move {
                sqlx::Executor::execute(conn, audit::PREPARE_APPEND).await?;
                Ok(())
            })
        })
}

/// How long a request waits for a pooled connection.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Apply the migrations over one connection as `owner`.
pub async fn migrate(owner: PgConnectOptions) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(30))
        .connect_with(owner)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL (DATABASE_URL): {e}"))?;
    let applied = MIGRATOR.run(&pool).await;
    pool.close().await;
    applied.map_err(|e| anyhow::anyhow!("applying migrations failed: {e}"))
}

/// Like [`connect`], from already parsed options: migrate as `owner`, then
/// pool as `app`, refusing a role that would make row-level security moot.
pub async fn connect_with(
    owner: PgConnectOptions,
    app: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    migrate(owner).await?;
    let pool = pool_options()
        .max_connections(max_connections)
        // Waiting longer for a connection means the database is out of
        // reach (or overloaded): the request is better answered 503.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(app)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot connect to PostgreSQL as the host's role (BOOKHOST_APP_DATABASE_URL, \
                 default: DATABASE_URL with user {APP_ROLE}): {e}"
            )
        })?;
    check_app_role(&pool).await?;
    Ok(pool)
}

/// What row-level security needs of the role the host runs as.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleFacts {
    pub role: String,
    pub superuser: bool,
    pub bypasses_rls: bool,
    pub owned_tables: i64,
}

/// The facts about the pool's current role.
pub async fn role_facts(pool: &PgPool) -> anyhow::Result<RoleFacts> {
    Ok(sqlx::query_as(
        "SELECT r.rolname AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypasses_rls, \
                (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p')) \
                    AS owned_tables \
         FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(pool)
    .await?)
}

/// Refuse to run as a superuser, a role with BYPASSRLS or a table owner:
/// with any of them the second wall between tenants would not stand.
async fn check_app_role(pool: &PgPool) -> anyhow::Result<()> {
    let facts = role_facts(pool).await?;
    if facts.superuser || facts.bypasses_rls || facts.owned_tables > 0 {
        anyhow::bail!(
            "the host must not connect as role {:?} (superuser: {}, bypasses RLS: {}, owns {} tables): \
             row-level security would not separate tenants; connect as {APP_ROLE} \
             (BOOKHOST_APP_DATABASE_URL)",
            facts.role,
            facts.superuser,
            facts.bypasses_rls,
            facts.owned_tables
        );
    }
    Ok(())
}

/// The statement that admits `tenant`'s rows past row-level security for the
/// rest of the current transaction (a UUID's text needs no quoting).
pub fn set_tenant_sql(tenant: TenantId) -> String {
    format!("SET LOCAL bookhost.tenant = '{}'", tenant.0)
}

/// Begin a transaction in which row-level security admits `tenant`'s rows
/// (`BEGIN` and the setting in one round trip).
pub async fn begin_as_tenant(
    pool: &PgPool,
    tenant: TenantId,
) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    Ok(pool
        .begin_with(format!("BEGIN; {}", set_tenant_sql(tenant)))
        .await?)
}

/// Set the tenant's time zone (an IANA name the host's zone database knows;
/// PostgreSQL's own check is the last wall).
pub async fn set_tenant_time_zone(
    pool: &PgPool,
    tenant: TenantId,
    zone: &str,
) -> anyhow::Result<()> {
    crate::schedule::time_zone(zone)?;
    let done = sqlx::query("UPDATE tenants SET time_zone = $2 WHERE id = $1")
        .bind(tenant.0)
        .bind(zone)
        .execute(pool)
        .await
        .map_err(|e| match errors::constraint_name(&e) {
            Some("tenants_time_zone_known") => {
                anyhow::anyhow!("unknown time zone {zone:?}: the database does not know it")
            }
            _ => anyhow::anyhow!("setting the time zone failed: {e}"),
        })?;
    anyhow::ensure!(done.rows_affected() == 1, "no tenant {tenant}");
    Ok(())
}

/// Create a tenant named `name` and return its id.
pub async fn create_tenant(pool: &PgPool, name: &str) -> anyhow::Result<TenantId> {
    // The column's default (UTC), without naming it: this also runs on
    // databases migrated before time zones (the audit's upgrade test).
    let id: uuid::Uuid = sqlx::query_scalar("INSERT INTO tenants (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(|e| tenant_error(e, name, "UTC"))?;
    Ok(TenantId(id))
}

/// Create a tenant named `name` whose business runs in time zone `zone`.
pub async fn create_tenant_in(pool: &PgPool, name: &str, zone: &str) -> anyhow::Result<TenantId> {
    let id: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO tenants (name, time_zone) VALUES ($1, $2) RETURNING id")
            .bind(name)
            .bind(zone)
            .fetch_one(pool)
            .await
            .map_err(|e| tenant_error(e, name, zone))?;
    Ok(TenantId(id))
}

fn tenant_error(e: sqlx::Error, name: &str, zone: &str) -> anyhow::Error {
    match errors::constraint_name(&e) {
        Some("tenants_name_key") => anyhow::anyhow!("a tenant named {name:?} already exists"),
        Some("tenants_time_zone_known") => anyhow::anyhow!("unknown time zone {zone:?}"),
        Some(_) => anyhow::anyhow!("tenant name {name:?} is invalid (1 to 200 characters)"),
        None => anyhow::anyhow!("creating tenant {name:?} failed: {e}"),
    }
}

/// Whether a tenant with this id exists.
pub async fn tenant_exists(pool: &PgPool, tenant: TenantId) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1)")
            .bind(tenant.0)
            .fetch_one(pool)
            .await?,
    )
}

/// Every tenant's id and name, by name (for the operator console's filters).
pub async fn tenant_names(pool: &PgPool) -> anyhow::Result<Vec<(uuid::Uuid, String)>> {
    Ok(
        sqlx::query_as("SELECT id, name FROM tenants ORDER BY name, id")
            .fetch_all(pool)
            .await?,
    )
}
