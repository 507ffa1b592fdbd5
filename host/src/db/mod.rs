//! Everything that speaks SQL: the table catalog, statement building, error
//! classification, migrations and a private PostgreSQL for development and tests.

pub mod audit;
pub mod catalog;
pub mod errors;
pub mod executors;
pub mod idempotency;
pub mod keys;
pub mod local_cluster;
pub mod sql;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;

use crate::TenantId;

/// The migrations under `migrations/`, embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connect a pool of `max_connections` to `database_url` and apply migrations.
pub async fn connect(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = PgConnectOptions::from_str(database_url)
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL: {e}"))?;
    connect_with(options, max_connections).await
}

/// Like [`connect`], from already parsed options.
pub async fn connect_with(
    options: PgConnectOptions,
    max_connections: u32,
) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(30))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
    MIGRATOR
        .run(&pool)
        .await
        .map_err(|e| anyhow::anyhow!("applying migrations failed: {e}"))?;
    Ok(pool)
}

/// Create a tenant named `name` and return its id.
pub async fn create_tenant(pool: &PgPool, name: &str) -> anyhow::Result<TenantId> {
    let id: uuid::Uuid = sqlx::query_scalar("INSERT INTO tenants (name) VALUES ($1) RETURNING id")
        .bind(name)
        .fetch_one(pool)
        .await
        .map_err(|e| match errors::constraint_name(&e) {
            Some("tenants_name_key") => anyhow::anyhow!("a tenant named {name:?} already exists"),
            Some(_) => anyhow::anyhow!("tenant name {name:?} is invalid (1 to 200 characters)"),
            None => anyhow::anyhow!("creating tenant {name:?} failed: {e}"),
        })?;
    Ok(TenantId(id))
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
