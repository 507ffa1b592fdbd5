//! The audit log: append an attempt's records without locks, link each
//! tenant's records into a hash chain afterwards, verify the chain, search.
//!
//! Threat model. The chain proves that the records of a tenant up to its
//! head are exactly those that were chained, in that order: changing,
//! deleting, inserting or reordering a record breaks a link that `verify`
//! names. It does not prove that nobody with write access to the database
//! rewrote a whole chain from some record on (the hash has no secret): for
//! that, export checkpoints (`bookhost audit checkpoint`: each tenant's head
//! position and hash) to somewhere the database's writers cannot reach, and
//! verify against them. Records not yet chained (the chainer runs every
//! second) are protected only from then on. Truncating the newest records is
//! detectable only against a checkpoint taken after them.

use sea_query::{Alias, Expr, PostgresQueryBuilder, Query};
use sea_query_binder::SqlxBinder;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::capabilities::audit::AuditCall;
use crate::capabilities::transaction::advisory_lock_id;
use crate::TenantId;

/// Everything about one attempt that its record carries (borrowed: the
/// record is built on every attempt, so it copies nothing it can avoid).
#[derive(Debug, Clone, Copy)]
pub struct AttemptAudit<'a> {
    pub tenant: TenantId,
    pub invocation_id: uuid::Uuid,
    pub attempt: u32,
    pub executor: &'a str,
    pub version: &'a str,
    /// committed, rolled_back, replayed, trapped, timed_out, limit_exceeded,
    /// host_failure, dry_run
    pub outcome: &'static str,
    pub duration_us: i64,
    pub calls: &'a [AuditCall],
}

/// Append one attempt's record: its outcome and every call it made.
pub async fn append(pool: &PgPool, attempt: &AttemptAudit<'_>) -> anyhow::Result<()> {
    let (sql, values) = insert(attempt).build_sqlx(PostgresQueryBuilder);
    sqlx::query_with(&sql, values).execute(pool).await?;
    Ok(())
}

/// The same as [`append`], as literal SQL (sea-query quotes every value), to
/// send in one round trip with the attempt's COMMIT or ROLLBACK.
pub fn append_sql(attempt: &AttemptAudit<'_>) -> String {
    insert(attempt).to_string(PostgresQueryBuilder)
}

fn insert(attempt: &AttemptAudit<'_>) -> sea_query::InsertStatement {
    let columns = [
        "tenant_id",
        "invocation_id",
        "attempt",
        "executor",
        "version",
        "outcome",
        "calls",
        "lock_wait_us",
        "duration_us",
        "recorded_at",
    ];
    // Straight to text (no intermediate JSON tree), stored as `json`: see
    // migration 0004 for why not `jsonb`.
    let calls = serde_json::to_string(attempt.calls).expect("audit calls serialize");
    let mut insert = Query::insert();
    insert
        .into_table(Alias::new("audit_records"))
        .columns(columns.map(Alias::new))
        .values_panic([
            attempt.tenant.0.into(),
            attempt.invocation_id.into(),
            (attempt.attempt as i32).into(),
            attempt.executor.into(),
            attempt.version.into(),
            attempt.outcome.into(),
            Expr::val(calls).cast_as(Alias::new("json")),
            attempt
                .calls
                .iter()
                .map(|c| c.lock_wait_us)
                .sum::<i64>()
                .into(),
            attempt.duration_us.into(),
            chrono::Utc::now().into(),
        ]);
    insert
}

/// One stored record, as searched and verified.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRecord {
    pub id: i64,
    pub tenant_id: uuid::Uuid,
    pub invocation_id: uuid::Uuid,
    pub attempt: i32,
    pub executor: String,
    pub version: String,
    /// The attempt's final outcome.
    pub outcome: String,
    /// Every capability call of the attempt, in order: `capability`,
    /// `table`, `detail` (redacted), `rows`, `outcome`, `error`,
    /// `lock_wait_us`, `duration_us`, `at`.
    #[schema(value_type = Vec<Object>)]
    pub calls: serde_json::Value,
    pub lock_wait_us: i64,
    pub duration_us: i64,
    pub recorded_at: chrono::DateTime<chrono::Utc>,
    pub chain_seq: Option<i64>,
    #[serde(serialize_with = "hex_option")]
    #[schema(value_type = Option<String>)]
    pub hash: Option<Vec<u8>>,
    #[serde(skip)]
    pub prev_hash: Option<Vec<u8>>,
}

fn hex_option<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

/// The columns of [`AuditRecord`], for `concat!` into static SQL.
macro_rules! record_columns {
    () => {
        "id, tenant_id, invocation_id, attempt, executor, version, outcome, calls, lock_wait_us, duration_us, \
         recorded_at, chain_seq, hash, prev_hash"
    };
}

const GENESIS: [u8; 32] = [0; 32];

/// The hash of a record at `seq` after `prev`: over every field but the chain
/// fields themselves, as canonical JSON (serde_json sorts object keys).
pub fn record_hash(record: &AuditRecord, seq: i64, prev: &[u8]) -> Vec<u8> {
    let content = serde_json::json!({
        "id": record.id,
        "tenant_id": record.tenant_id,
        "invocation_id": record.invocation_id,
        "attempt": record.attempt,
        "executor": record.executor,
        "version": record.version,
        "outcome": record.outcome,
        "calls": record.calls,
        "lock_wait_us": record.lock_wait_us,
        "duration_us": record.duration_us,
        "recorded_at": record.recorded_at.timestamp_micros(),
    });
    Sha256::new()
        .chain_update(prev)
        .chain_update(seq.to_be_bytes())
        .chain_update(content.to_string().as_bytes())
        .finalize()
        .to_vec()
}

/// Link records not yet chained, in id order, to their tenants' chains.
/// One chainer at a time across hosts (an advisory lock, waited for);
/// returns how many records it linked.
pub async fn chain_pending(pool: &PgPool) -> anyhow::Result<u64> {
    let mut linked = 0;
    loop {
        let mut tx = pool.begin().await?;
        // Wait for any other chainer: when this returns, everything appended
        // before the call is chained (verify relies on that).
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(advisory_lock_id(
                "audit-chainer",
                TenantId(uuid::Uuid::nil()),
                "",
            ))
            .execute(&mut *tx)
            .await?;
        let pending: Vec<AuditRecord> = sqlx::query_as(concat!(
            "SELECT ",
            record_columns!(),
            " FROM audit_records WHERE chain_seq IS NULL ORDER BY id LIMIT 2000"
        ))
        .fetch_all(&mut *tx)
        .await?;
        if pending.is_empty() {
            return Ok(linked);
        }
        let mut heads: std::collections::HashMap<uuid::Uuid, (i64, Vec<u8>)> = Default::default();
        let (mut ids, mut seqs, mut prevs, mut hashes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for record in &pending {
            let (seq, prev) = match heads.entry(record.tenant_id) {
                std::collections::hash_map::Entry::Occupied(head) => head.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
                        "SELECT chain_seq, hash FROM audit_records WHERE tenant_id = $1 AND chain_seq IS NOT NULL \
                         ORDER BY chain_seq DESC LIMIT 1",
                    )
                    .bind(record.tenant_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    slot.insert(head.unwrap_or((0, GENESIS.to_vec())))
                }
            };
            *seq += 1;
            let hash = record_hash(record, *seq, prev);
            ids.push(record.id);
            seqs.push(*seq);
            prevs.push(std::mem::replace(prev, hash.clone()));
            hashes.push(hash);
        }
        sqlx::query(
            "UPDATE audit_records r SET chain_seq = u.seq, prev_hash = u.prev, hash = u.hash \
             FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS u(id, seq, prev, hash) \
             WHERE r.id = u.id",
        )
        .bind(&ids)
        .bind(&seqs)
        .bind(&prevs)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        linked += ids.len() as u64;
    }
}

/// Run the chainer every `period` until the process ends.
pub fn spawn_chainer(pool: PgPool, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            if let Err(e) = chain_pending(&pool).await {
                tracing::warn!("audit chainer: {e:#}");
            }
        }
    })
}

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
        "SELECT DISTINCT ON (tenant_id) tenant_id, chain_seq, hash FROM audit_records \
         WHERE chain_seq IS NOT NULL ORDER BY tenant_id, chain_seq DESC",
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
        None => sqlx::query_scalar(
            "SELECT DISTINCT tenant_id FROM audit_records WHERE chain_seq IS NOT NULL ORDER BY tenant_id",
        )
        .fetch_all(pool)
        .await?,
    };
    let unchained: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_records WHERE chain_seq IS NULL AND ($1::uuid IS NULL OR tenant_id = $1)",
    )
    .bind(tenant.map(|t| t.0))
    .fetch_one(pool)
    .await?;
    let mut result = Verification {
        tenants: tenants.len(),
        records: 0,
        unchained,
        broken: Vec::new(),
    };
    for tenant_id in tenants {
        let records: Vec<AuditRecord> = sqlx::query_as(concat!(
            "SELECT ",
            record_columns!(),
            " FROM audit_records WHERE tenant_id = $1 AND chain_seq IS NOT NULL \
             ORDER BY chain_seq, id"
        ))
        .bind(tenant_id)
        .fetch_all(pool)
        .await?;
        result.records += records.len() as u64;
        let mut prev = GENESIS.to_vec();
        let mut broken = None;
        for (index, record) in records.iter().enumerate() {
            let expected_seq = index as i64 + 1;
            let seq = record.chain_seq.unwrap_or_default();
            let link = |reason: &str| BrokenLink {
                tenant_id,
                seq: expected_seq,
                record_id: Some(record.id),
                reason: reason.to_owned(),
            };
            if seq != expected_seq {
                broken = Some(link(&format!("expected position {expected_seq}, found {seq}: a record was deleted, inserted or moved")));
                break;
            }
            if record.prev_hash.as_deref() != Some(prev.as_slice()) {
                broken = Some(link("its predecessor hash does not match the previous record: a record before it was removed, inserted or reordered"));
                break;
            }
            let hash = record_hash(record, seq, &prev);
            if record.hash.as_deref() != Some(hash.as_slice()) {
                broken = Some(link(
                    "its content does not match its hash: the record was modified",
                ));
                break;
            }
            prev = hash;
        }
        if broken.is_none() {
            for checkpoint in checkpoints.iter().filter(|c| c.tenant_id == tenant_id) {
                let at = records.get(checkpoint.seq as usize - 1);
                if at.and_then(|r| r.hash.as_ref()).map(hex::encode).as_deref()
                    != Some(checkpoint.hash.as_str())
                {
                    broken = Some(BrokenLink {
                        tenant_id,
                        seq: checkpoint.seq,
                        record_id: at.map(|r| r.id),
                        reason: "the chain does not contain the checkpoint's head: it was rewritten or truncated".into(),
                    });
                }
            }
        }
        result.broken.extend(broken);
    }
    Ok(result)
}

/// Filters of an audit search; all optional.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
pub struct AuditFilter {
    pub tenant: Option<uuid::Uuid>,
    pub executor: Option<String>,
    pub capability: Option<String>,
    pub table: Option<String>,
    pub outcome: Option<String>,
    pub invocation_id: Option<uuid::Uuid>,
    /// RFC 3339; records at or after.
    pub from: Option<chrono::DateTime<chrono::Utc>>,
    /// RFC 3339; records before.
    pub to: Option<chrono::DateTime<chrono::Utc>>,
    /// Only records with a larger id (for following the log).
    pub after_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
}

/// Records matching `filter`, oldest first.
pub async fn search(pool: &PgPool, filter: &AuditFilter) -> anyhow::Result<Vec<AuditRecord>> {
    Ok(sqlx::query_as(concat!(
        "SELECT ", record_columns!(), " FROM audit_records WHERE \
         ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR executor = $2) \
         AND ($3::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('capability', $3::text))) \
         AND ($4::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('table', $4::text))) \
         AND ($5::text IS NULL OR outcome = $5 OR calls::jsonb @> jsonb_build_array(jsonb_build_object('outcome', $5::text))) \
         AND ($6::uuid IS NULL OR invocation_id = $6) \
         AND ($7::timestamptz IS NULL OR recorded_at >= $7) AND ($8::timestamptz IS NULL OR recorded_at < $8) \
         AND ($9::bigint IS NULL OR id > $9) ORDER BY id LIMIT $10"
    ))
    .bind(filter.tenant)
    .bind(&filter.executor)
    .bind(&filter.capability)
    .bind(&filter.table)
    .bind(&filter.outcome)
    .bind(filter.invocation_id)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.after_id)
    .bind(filter.limit.unwrap_or(100).clamp(1, 1000))
    .fetch_all(pool)
    .await?)
}
