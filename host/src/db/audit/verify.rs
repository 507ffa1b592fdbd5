//! Verifying the chains (each tenant's first broken link) and the
//! checkpoints operators keep out of the database writers' reach.

use sqlx::PgPool;

use super::record::{record_hash, AuditRecord, GENESIS};
use crate::TenantId;

/// A tenant's chain head, for safekeeping.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sqlx::FromRow,
    utoipa::ToSchema,
)]
pub struct Checkpoint {
    pub tenant_id: uuid::Uuid,
    pub seq: i64,
    /// Hex SHA-256 of the record at `seq`.
    pub hash: String,
}

/// Every tenant's current head.
pub async fn checkpoint(pool: &PgPool) -> anyhow::Result<Vec<Checkpoint>> {
    let rows: Vec<(uuid::Uuid, i64, Vec<u8>)> = sqlx::query_as(
        "SELECT DISTINCT ON (tenant_id) tenant_id, chain_seq, hash FROM audit_links \
         ORDER BY tenant_id, chain_seq DESC",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(tenant_id, seq, hash)| Checkpoint {
            tenant_id,
            seq,
            hash: hex::encode(hash),
        })
        .collect())
}

/// The first broken link of a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    pub tenant_id: uuid::Uuid,
    /// Chain position where the chain breaks.
    pub seq: i64,
    /// The record found there (if any).
    pub record_id: Option<i64>,
    pub reason: String,
}

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub tenants: usize,
    pub records: u64,
    /// Records appended but not chained yet.
    pub unchained: i64,
    pub broken: Vec<BrokenLink>,
    /// Each tenant walked, with its chain's length (for the console's
    /// record of the last verification; not part of the API's answer).
    #[serde(skip)]
    pub lengths: Vec<(uuid::Uuid, i64)>,
}

/// Walk the chains (of one tenant, or all) and report each tenant's first
/// broken link; check the heads against `checkpoints` too.
pub async fn verify(
    pool: &PgPool,
    tenant: Option<TenantId>,
    checkpoints: &[Checkpoint],
) -> anyhow::Result<Verification> {
    let tenants: Vec<uuid::Uuid> = match tenant {
        Some(t) => vec![t.0],
        None => {
            sqlx::query_scalar("SELECT DISTINCT tenant_id FROM audit_links ORDER BY tenant_id")
                .fetch_all(pool)
                .await?
        }
    };
    let unchained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_records r WHERE ($1::uuid IS NULL OR r.tenant_id = $1) \
         AND NOT EXISTS (SELECT 1 FROM audit_links l WHERE l.record_id = r.id)",
    )
    .bind(tenant.map(|t| t.0))
    .fetch_one(pool)
    .await?;
    let mut result = Verification {
        tenants: tenants.len(),
        records: 0,
        unchained,
        broken: Vec::new(),
        lengths: Vec::new(),
    };
    for tenant_id in tenants {
        let links: Vec<ChainLink> = sqlx::query_as(
            "SELECT l.chain_seq, l.record_id, l.prev_hash, l.hash, r.tenant_id, r.invocation_id, \
             r.attempt, r.executor, r.version, r.outcome, r.calls, r.lock_wait_us, r.duration_us, \
             r.recorded_at, r.proposal_id, r.replay_reason FROM audit_links l LEFT JOIN audit_records r ON r.id = l.record_id \
             WHERE l.tenant_id = $1 ORDER BY l.chain_seq, l.record_id",
        )
        .bind(tenant_id)
        .fetch_all(pool)
        .await?;
        result.records += links.len() as u64;
        result.lengths.push((tenant_id, links.len() as i64));
        let mut prev = GENESIS.to_vec();
        let mut broken = None;
        for (index, link) in links.iter().enumerate() {
            let expected_seq = index as i64 + 1;
            let seq = link.chain_seq;
            let at = |reason: &str| BrokenLink {
                tenant_id,
                seq: expected_seq,
                record_id: Some(link.record_id),
                reason: reason.to_owned(),
            };
            if seq != expected_seq {
                broken = Some(at(&format!("expected position {expected_seq}, found {seq}: a record was deleted, inserted or moved")));
                break;
            }
            if link.prev_hash != prev {
                broken = Some(at("its predecessor hash does not match the previous record: a record before it was removed, inserted or reordered"));
                break;
            }
            let Some(record) = link.record() else {
                broken = Some(at("the record it links to is gone: it was deleted"));
                break;
            };
            let hash = record_hash(&record, seq, &prev);
            if link.hash != hash {
                broken = Some(at(
                    "its content does not match its hash: the record was modified",
                ));
                break;
            }
            prev = hash;
        }
        if broken.is_none() {
            for checkpoint in checkpoints.iter().filter(|c| c.tenant_id == tenant_id) {
                let at = links.get((checkpoint.seq as usize).wrapping_sub(1));
                if at.map(|l| hex::encode(&l.hash)).as_deref() != Some(checkpoint.hash.as_str()) {
                    broken = Some(BrokenLink {
                        tenant_id,
                        seq: checkpoint.seq,
                        record_id: at.map(|l| l.record_id),
                        reason: "the chain does not contain the checkpoint's head: it was rewritten or truncated".into(),
                    });
                }
            }
        }
        result.broken.extend(broken);
    }
    Ok(result)
}

/// One position of a chain with the record it links to, if that still exists.
#[derive(sqlx::FromRow)]
struct ChainLink {
    chain_seq: i64,
    record_id: i64,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
    tenant_id: Option<uuid::Uuid>,
    invocation_id: Option<uuid::Uuid>,
    attempt: Option<i32>,
    executor: Option<String>,
    version: Option<String>,
    outcome: Option<String>,
    calls: Option<serde_json::Value>,
    lock_wait_us: Option<i64>,
    duration_us: Option<i64>,
    recorded_at: Option<chrono::DateTime<chrono::Utc>>,
    proposal_id: Option<uuid::Uuid>,
    replay_reason: Option<String>,
}

impl ChainLink {
    /// The linked record (every column is NOT NULL, so all or none are set).
    fn record(&self) -> Option<AuditRecord> {
        Some(AuditRecord {
            id: self.record_id,
            tenant_id: self.tenant_id?,
            invocation_id: self.invocation_id?,
            attempt: self.attempt?,
            executor: self.executor.clone()?,
            version: self.version.clone()?,
            outcome: self.outcome.clone()?,
            calls: self.calls.clone()?,
            lock_wait_us: self.lock_wait_us?,
            duration_us: self.duration_us?,
            recorded_at: self.recorded_at?,
            proposal_id: self.proposal_id,
            replay_reason: self.replay_reason.clone(),
            chain_seq: Some(self.chain_seq),
            hash: Some(self.hash.clone()),
            prev_hash: Some(self.prev_hash.clone()),
        })
    }
}
