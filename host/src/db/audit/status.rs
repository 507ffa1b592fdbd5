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
/// held, and its first broken link. A chain that held but leaves out
/// records the chainer has passed (every record below its mark is linked
/// unless its links were deleted) is kept as broken too: a chain truncated
/// to nothing would otherwise look intact.
pub async fn save(pool: &PgPool, verification: &Verification) -> anyhow::Result<()> {
    for (tenant, length) in &verification.lengths {
        let found = verification.broken.iter().find(|b| b.tenant_id == *tenant);
        let mut broken = found.map(|b| (b.seq, b.record_id, b.reason.clone()));
        if broken.is_none() {
            let (unlinked, first): (i64, Option<i64>) = sqlx::query_as(
                "SELECT count(*), min(r.id) FROM audit_records r WHERE r.tenant_id = $1 \
                 AND r.id < (SELECT settled_below FROM audit_chainer) \
                 AND NOT EXISTS (SELECT 1 FROM audit_links l WHERE l.record_id = r.id)",
            )
            .bind(tenant)
            .fetch_one(pool)
            .await?;
            if unlinked > 0 {
                broken = Some((
                    length + 1,
                    first,
                    format!(
                        "{unlinked} record(s) the chainer has passed are in no link: links were \
                         deleted, or the chain was truncated"
                    ),
                ));
            }
        }
        let verified_seq = broken.as_ref().map_or(*length, |(seq, _, _)| seq - 1);
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
        .bind(broken.as_ref().map(|(seq, _, _)| *seq))
        .bind(broken.as_ref().and_then(|(_, record, _)| *record))
        .bind(broken.as_ref().map(|(_, _, reason)| reason.as_str()))
        .execute(pool)
        .await?;
    }
    Ok(())
}
