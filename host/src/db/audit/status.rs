//! Each tenant's chain as the console shows it: its head, what is not
//! chained yet, and the last verification (kept in `audit_verifications`).

use sqlx::PgPool;

use super::verify::Verification;
use crate::TenantId;

/// A tenant's chain: head, records waiting for the chainer, last verification.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChainStatus {
    pub tenant_id: uuid::Uuid,
    pub tenant_name: Option<String>,
    /// The head's position and hash (None while nothing is chained).
    pub head_seq: Option<i64>,
    pub head_hash: Option<Vec<u8>>,
    pub unchained: i64,
    pub verified_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The last position the last verification found holding.
    pub verified_seq: Option<i64>,
    pub broken_seq: Option<i64>,
    pub broken_record: Option<i64>,
    pub broken_reason: Option<String>,
}

/// The chain of every tenant with audit records (or of one). Records below
/// the chainer's `settled_below` are all linked, so only those above it are
/// looked at for the unchained count.
pub async fn chains(pool: &PgPool, tenant: Option<TenantId>) -> anyhow::Result<Vec<ChainStatus>> {
    Ok(sqlx::query_as(
        "SELECT t.id AS tenant_id, t.name AS tenant_name, h.chain_seq AS head_seq, h.hash AS head_hash, \
         (SELECT count(*) FROM audit_records r WHERE r.tenant_id = t.id \
          AND r.id >= (SELECT settled_below FROM audit_chainer) \
          AND NOT EXISTS (SELECT 1 FROM audit_links l WHERE l.record_id = r.id)) AS unchained, \
         v.verified_at, v.verified_seq, v.broken_seq, v.broken_record, v.broken_reason \
         FROM tenants t \
         LEFT JOIN LATERAL (SELECT chain_seq, hash FROM audit_links l WHERE l.tenant_id = t.id \
          ORDER BY chain_seq DESC LIMIT 1) h ON true \
         LEFT JOIN audit_verifications v ON v.tenant_id = t.id \
         WHERE ($1::uuid IS NULL OR t.id = $1) \
         AND (h.chain_seq IS NOT NULL OR EXISTS (SELECT 1 FROM audit_records r WHERE r.tenant_id = t.id)) \
         ORDER BY t.name, t.id",
    )
    .bind(tenant.map(|t| t.0))
    .fetch_all(pool)
    .await?)
}

/// Keep what a verification found, per tenant walked: how far each chain
/// held, and its first broken link.
pub async fn save(pool: &PgPool, verification: &Verification) -> anyhow::Result<()> {
    for (tenant, length) in &verification.lengths {
        let broken = verification.broken.iter().find(|b| b.tenant_id == *tenant);
        let verified_seq = broken.map_or(*length, |b| b.seq - 1);
        sqlx::query(
            "INSERT INTO audit_verifications (tenant_id, verified_at, records, verified_seq, \
             broken_seq, broken_record, broken_reason) VALUES ($1, now(), $2, $3, $4, $5, $6) \
             ON CONFLICT (tenant_id) DO UPDATE SET verified_at = EXCLUDED.verified_at, \
             records = EXCLUDED.records, verified_seq = EXCLUDED.verified_seq, \
             broken_seq = EXCLUDED.broken_seq, broken_record = EXCLUDED.broken_record, \
             broken_reason = EXCLUDED.broken_reason",
        )
        .bind(tenant)
        .bind(length)
        .bind(verified_seq)
        .bind(broken.map(|b| b.seq))
        .bind(broken.and_then(|b| b.record_id))
        .bind(broken.map(|b| b.reason.as_str()))
        .execute(pool)
        .await?;
    }
    Ok(())
}
