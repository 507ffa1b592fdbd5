//! Executor versions (immutable, by digest) and which one is active.

use sqlx::PgPool;

use crate::TenantId;

/// A version's grant as decided at upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct GrantDecision {
    pub requested: Vec<String>,
    /// Capabilities calls may use (empty while approval is pending).
    pub granted: Vec<String>,
    /// Declared but refused by the deny list.
    pub denied: Vec<String>,
    /// `granted` or `pending-approval`.
    pub status: String,
}

/// One stored version.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct VersionInfo {
    /// SHA-256 of the component bytes (hex).
    pub version: String,
    pub size_bytes: i64,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
    pub active: bool,
}

/// An executor with its versions, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ExecutorInfo {
    pub name: String,
    pub active_version: String,
    pub description: String,
    pub versions: Vec<VersionInfo>,
}

/// What an upload stores.
pub struct NewVersion<'a> {
    pub name: &'a str,
    pub digest: &'a str,
    pub component: &'a [u8],
    pub description: &'a str,
    pub input_schema: &'a serde_json::Value,
    /// The grant decided for this version by the operator's policy.
    pub grant: &'a GrantDecision,
}

/// Store a version (if new) and make it active. Returns whether it was new
/// and when it was first uploaded.
pub async fn store_and_activate(
    pool: &PgPool,
    tenant: TenantId,
    version: NewVersion<'_>,
) -> anyhow::Result<(bool, chrono::DateTime<chrono::Utc>)> {
    let mut tx = pool.begin().await?;
    let inserted: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "INSERT INTO executor_versions (tenant_id, name, digest, component, description, input_schema, size_bytes, \
         capabilities, granted, grant_status) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING uploaded_at",
    )
    .bind(tenant.0)
    .bind(version.name)
    .bind(version.digest)
    .bind(version.component)
    .bind(version.description)
    .bind(version.input_schema)
    .bind(version.component.len() as i64)
    .bind(&version.grant.requested)
    .bind(&version.grant.granted)
    .bind(&version.grant.status)
    .fetch_optional(&mut *tx)
    .await?;
    let uploaded_at = match inserted {
        Some(at) => at,
        None => {
            sqlx::query_scalar(
                "SELECT uploaded_at FROM executor_versions WHERE tenant_id = $1 AND name = $2 AND digest = $3",
            )
            .bind(tenant.0)
            .bind(version.name)
            .bind(version.digest)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    activate(&mut tx, tenant, version.name, version.digest).await?;
    tx.commit().await?;
    Ok((inserted.is_some(), uploaded_at))
}

/// The channel on which a tenant's tool list changes are announced (the
/// payload is the tenant's id); MCP clients that listen are told.
pub const TOOLS_CHANGED: &str = "bookhost_tools_changed";

/// Announce that `tenant`'s tools changed (delivered when the transaction
/// commits, if in one).
async fn tools_changed(conn: impl sqlx::PgExecutor<'_>, tenant: TenantId) -> anyhow::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(TOOLS_CHANGED)
        .bind(tenant.0.to_string())
        .execute(conn)
        .await?;
    Ok(())
}

async fn activate(
    tx: &mut sqlx::PgConnection,
    tenant: TenantId,
    name: &str,
    digest: &str,
) -> anyhow::Result<()> {
    tools_changed(&mut *tx, tenant).await?;
    sqlx::query(
        "INSERT INTO executors (tenant_id, name, active_digest) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, name) DO UPDATE SET active_digest = EXCLUDED.active_digest, updated_at = now()",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(digest)
    .execute(tx)
    .await?;
    Ok(())
}

/// The grant of the active version (or of `version`).
pub async fn grant(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    version: Option<&str>,
) -> anyhow::Result<Option<(String, GrantDecision)>> {
    let row: Option<(String, Vec<String>, Vec<String>, String)> = super::retry::retrying(|| {
        sqlx::query_as(
            "SELECT v.digest, v.capabilities, v.granted, v.grant_status FROM executors e \
             JOIN executor_versions v ON v.tenant_id = e.tenant_id AND v.name = e.name \
             AND v.digest = coalesce($3, e.active_digest) WHERE e.tenant_id = $1 AND e.name = $2",
        )
        .bind(tenant.0)
        .bind(name)
        .bind(version)
        .fetch_optional(pool)
    })
    .await?;
    Ok(row.map(|(digest, requested, granted, status)| {
        let denied = if status == "granted" {
            requested
                .iter()
                .filter(|c| !granted.contains(c))
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let decision = GrantDecision {
            requested,
            granted,
            denied,
            status,
        };
        (digest, decision)
    }))
}

/// Record an operator's approval: `granted` becomes the version's grant.
/// With `only_from`, only a version whose grant is in that state now (the
/// console approves only versions pending approval, so a stale form cannot
/// undo a refusal). False when no version was changed.
pub async fn approve(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    version: &str,
    granted: &[String],
    only_from: Option<&str>,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE executor_versions SET granted = $4, grant_status = 'granted' \
         WHERE tenant_id = $1 AND name = $2 AND digest = $3 AND ($5::text IS NULL OR grant_status = $5)",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(version)
    .bind(granted)
    .bind(only_from)
    .execute(pool)
    .await?;
    let approved = done.rows_affected() == 1;
    if approved {
        tools_changed(pool, tenant).await?;
    }
    Ok(approved)
}

/// The stored bytes of a version.
pub async fn component(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    digest: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    Ok(super::retry::retrying(|| {
        sqlx::query_scalar(
            "SELECT component FROM executor_versions WHERE tenant_id = $1 AND name = $2 AND digest = $3",
        )
        .bind(tenant.0)
        .bind(name)
        .bind(digest)
        .fetch_optional(pool)
    })
    .await?)
}

/// The tenant's executors (all, or the one named), with their versions.
pub async fn list(
    pool: &PgPool,
    tenant: TenantId,
    only: Option<&str>,
) -> anyhow::Result<Vec<ExecutorInfo>> {
    let rows: Vec<(String, String, String, i64, chrono::DateTime<chrono::Utc>, bool)> = sqlx::query_as(
        "SELECT e.name, v.digest, v.description, v.size_bytes, v.uploaded_at, v.digest = e.active_digest \
         FROM executors e JOIN executor_versions v ON v.tenant_id = e.tenant_id AND v.name = e.name \
         WHERE e.tenant_id = $1 AND ($2::text IS NULL OR e.name = $2) \
         ORDER BY e.name, v.uploaded_at DESC, v.digest",
    )
    .bind(tenant.0)
    .bind(only)
    .fetch_all(pool)
    .await?;
    let mut executors: Vec<ExecutorInfo> = Vec::new();
    for (name, digest, description, size_bytes, uploaded_at, active) in rows {
        if executors.last().is_none_or(|e| e.name != name) {
            executors.push(ExecutorInfo {
                name: name.clone(),
                active_version: String::new(),
                description: String::new(),
                versions: Vec::new(),
            });
        }
        let executor = executors.last_mut().expect("pushed above");
        if active {
            executor.active_version = digest.clone();
            executor.description = description;
        }
        executor.versions.push(VersionInfo {
            version: digest,
            size_bytes,
            uploaded_at,
            active,
        });
    }
    Ok(executors)
}

/// Why a rollback could not happen.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("no executor named {0:?}")]
    UnknownExecutor(String),
    #[error("executor {name:?} has no version {version}")]
    UnknownVersion { name: String, version: String },
    #[error("executor {0:?} has no version older than the active one to roll back to")]
    NothingOlder(String),
    #[error(transparent)]
    Database(#[from] anyhow::Error),
}

/// Make `to` (or the version uploaded before the active one) active.
/// Returns (previous active, new active).
pub async fn rollback(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    to: Option<&str>,
) -> Result<(String, String), RollbackError> {
    let mut tx = pool.begin().await.map_err(anyhow::Error::from)?;
    let current: Option<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT e.active_digest, v.uploaded_at FROM executors e JOIN executor_versions v \
         ON v.tenant_id = e.tenant_id AND v.name = e.name AND v.digest = e.active_digest \
         WHERE e.tenant_id = $1 AND e.name = $2 FOR UPDATE OF e",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
    .map_err(anyhow::Error::from)?;
    let (current, current_uploaded) =
        current.ok_or_else(|| RollbackError::UnknownExecutor(name.to_owned()))?;
    let target: Option<String> = match to {
        Some(version) => sqlx::query_scalar(
            "SELECT digest FROM executor_versions WHERE tenant_id = $1 AND name = $2 AND digest = $3",
        )
        .bind(tenant.0)
        .bind(name)
        .bind(version)
        .fetch_optional(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?,
        None => sqlx::query_scalar(
            "SELECT digest FROM executor_versions WHERE tenant_id = $1 AND name = $2 \
             AND (uploaded_at, digest) < ($3, $4) ORDER BY uploaded_at DESC, digest DESC LIMIT 1",
        )
        .bind(tenant.0)
        .bind(name)
        .bind(current_uploaded)
        .bind(&current)
        .fetch_optional(&mut *tx)
        .await
        .map_err(anyhow::Error::from)?,
    };
    let target = target.ok_or_else(|| match to {
        Some(version) => RollbackError::UnknownVersion {
            name: name.to_owned(),
            version: version.to_owned(),
        },
        None => RollbackError::NothingOlder(name.to_owned()),
    })?;
    activate(&mut tx, tenant, name, &target).await?;
    tx.commit().await.map_err(anyhow::Error::from)?;
    Ok((current, target))
}

/// One executor as the console lists it: across tenants for the operator.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExecutorOverview {
    pub tenant_id: uuid::Uuid,
    pub name: String,
    pub active_digest: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub versions: i64,
    /// Versions waiting for an operator's approval.
    pub pending: i64,
}

/// Every executor (of one tenant, or all), by tenant and name.
pub async fn overview(
    pool: &PgPool,
    tenant: Option<TenantId>,
) -> anyhow::Result<Vec<ExecutorOverview>> {
    Ok(sqlx::query_as(
        "SELECT e.tenant_id, e.name, e.active_digest, e.updated_at, count(*) AS versions, \
         count(*) FILTER (WHERE v.grant_status = 'pending-approval') AS pending \
         FROM executors e JOIN executor_versions v ON v.tenant_id = e.tenant_id AND v.name = e.name \
         WHERE $1::uuid IS NULL OR e.tenant_id = $1 \
         GROUP BY e.tenant_id, e.name, e.active_digest, e.updated_at ORDER BY e.tenant_id, e.name",
    )
    .bind(tenant.map(|t| t.0))
    .fetch_all(pool)
    .await?)
}

/// One version with what it asked for and what it was given.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VersionGrant {
    pub digest: String,
    pub size_bytes: i64,
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
    pub active: bool,
    pub requested: Vec<String>,
    pub granted: Vec<String>,
    /// `granted`, `pending-approval` or `denied`.
    pub status: String,
}

/// An executor's versions, newest first, with their grants.
pub async fn version_grants(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
) -> anyhow::Result<Vec<VersionGrant>> {
    Ok(sqlx::query_as(
        "SELECT v.digest, v.size_bytes, v.uploaded_at, v.digest = e.active_digest AS active, \
         v.capabilities AS requested, v.granted, v.grant_status AS status \
         FROM executors e JOIN executor_versions v ON v.tenant_id = e.tenant_id AND v.name = e.name \
         WHERE e.tenant_id = $1 AND e.name = $2 ORDER BY v.uploaded_at DESC, v.digest",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_all(pool)
    .await?)
}

/// Record an operator's refusal of a version pending approval: it keeps no
/// capability. False when there is no such version pending.
pub async fn deny(
    pool: &PgPool,
    tenant: TenantId,
    name: &str,
    version: &str,
) -> anyhow::Result<bool> {
    let done = sqlx::query(
        "UPDATE executor_versions SET granted = '{}', grant_status = 'denied' \
         WHERE tenant_id = $1 AND name = $2 AND digest = $3 AND grant_status = 'pending-approval'",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(version)
    .execute(pool)
    .await?;
    let denied = done.rows_affected() == 1;
    if denied {
        tools_changed(pool, tenant).await?;
    }
    Ok(denied)
}
