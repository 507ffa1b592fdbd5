//! Stored proposals: a dry run's executor version, input, clock and write
//! set, kept for its tenant until it expires (read and written only in
//! transactions where row-level security admits that tenant).

use sqlx::PgPool;

use crate::TenantId;

/// A proposal as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Proposal {
    pub id: uuid::Uuid,
    pub executor: String,
    pub version: String,
    pub input: serde_json::Value,
    /// `[{table, operation, row}]`, in the order the dry run wrote them.
    pub writes: serde_json::Value,
    pub now_micros: i64,
    pub proposed_by: uuid::Uuid,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Store `proposal` for `tenant`; proposals that expired more than a day
/// ago go in the same transaction (until then a confirmation is told it
/// expired rather than that it never existed).
pub async fn store(pool: &PgPool, tenant: TenantId, proposal: &Proposal) -> anyhow::Result<()> {
    let mut tx = super::begin_as_tenant(pool, tenant).await?;
    sqlx::query(
        "DELETE FROM proposals WHERE tenant_id = $1 AND expires_at < now() - interval '1 day'",
    )
    .bind(tenant.0)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO proposals (tenant_id, id, executor, version, input, writes, now_micros, \
         proposed_by, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(tenant.0)
    .bind(proposal.id)
    .bind(&proposal.executor)
    .bind(&proposal.version)
    .bind(&proposal.input)
    .bind(&proposal.writes)
    .bind(proposal.now_micros)
    .bind(proposal.proposed_by)
    .bind(proposal.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `tenant`'s proposal `id`, expired or not.
pub async fn find(
    pool: &PgPool,
    tenant: TenantId,
    id: uuid::Uuid,
) -> anyhow::Result<Option<Proposal>> {
    let mut tx = super::begin_as_tenant(pool, tenant).await?;
    let found = sqlx::query_as(
        "SELECT id, executor, version, input, writes, now_micros, proposed_by, expires_at \
         FROM proposals WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.0)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}
