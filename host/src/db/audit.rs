//! The audit log: append an attempt's records without locks, link each
//! tenant's records into a hash chain afterwards, verify the chain, search.
//!
//! Records are written once and never changed; the chain lives beside them
//! in `audit_links` (position, record id, predecessor hash, hash), which the
//! chainer only appends to.
//!
//! Threat model. The chain proves that the records of a tenant up to its
//! head are exactly those that were chained, in that order: changing,
//! deleting, inserting or reordering a record (or a link) breaks a link that
//! `verify` names. It does not prove that nobody with write access to the
//! database rewrote a whole chain from some record on (the hash has no
//! secret): for that, export checkpoints (`bookhost audit checkpoint`: each
//! tenant's head position and hash) to somewhere the database's writers
//! cannot reach, and verify against them. Records not yet chained (the
//! chainer runs every second) are protected only from then on. Truncating the
//! newest records is detectable only against a checkpoint taken after them.

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

/// The INSERT of one record, with its values as parameters.
macro_rules! append_insert {
    () => {
        "INSERT INTO audit_records (tenant_id, invocation_id, attempt, executor, version, outcome, \
         calls, lock_wait_us, duration_us, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10)"
    };
}

/// The name under which every pooled connection has [`append_insert!`]
/// prepared ([`crate::db::pool_options`] runs [`PREPARE_APPEND`] on connect).
pub const APPEND_STATEMENT: &str = "bookhost_audit_append";

/// Prepares the append on a connection, once, when it connects.
pub const PREPARE_APPEND: &str = concat!(
    "PREPARE bookhost_audit_append (uuid, uuid, integer, text, text, text, json, bigint, bigint, \
     timestamptz) AS ",
    append_insert!()
);

/// Append one attempt's record on its own: its outcome and every call it
/// made. (The bound INSERT itself, so this works on any connection.)
pub async fn append(pool: &PgPool, attempt: &AttemptAudit<'_>) -> anyhow::Result<()> {
    sqlx::query(append_insert!())
        .bind(attempt.tenant.0)
        .bind(attempt.invocation_id)
        .bind(attempt.attempt as i32)
        .bind(attempt.executor)
        .bind(attempt.version)
        .bind(attempt.outcome)
        .bind(serde_json::to_string(attempt.calls).expect("audit calls serialize"))
        .bind(lock_wait_us(attempt))
        .bind(attempt.duration_us)
        .bind(chrono::Utc::now())
        .execute(pool)
        .await?;
    Ok(())
}

fn lock_wait_us(attempt: &AttemptAudit<'_>) -> i64 {
    attempt.calls.iter().map(|c| c.lock_wait_us).sum()
}

/// The same append as literal SQL, to send in one round trip with the
/// attempt's COMMIT or ROLLBACK (which is why it cannot take bind
/// parameters): `EXECUTE` of the statement each connection prepared, so
/// PostgreSQL does not analyse and plan the INSERT again on every attempt,
/// with the text values in dollar quotes, which need no escaping here and no
/// unescaping in PostgreSQL's lexer. Both measured: see docs/BENCHMARKS.md.
pub fn append_sql(attempt: &AttemptAudit<'_>) -> String {
    use std::fmt::Write;
    // Straight to text (no intermediate JSON tree), stored as `json`: see
    // migration 0004 for why not `jsonb`.
    let calls = serde_json::to_string(attempt.calls).expect("audit calls serialize");
    let mut sql = String::with_capacity(calls.len() + 300);
    // Uuids, integers and the timestamp render as plain digits, hex and dashes.
    write!(
        sql,
        "EXECUTE {APPEND_STATEMENT}('{}', '{}', {}, ",
        attempt.tenant.0, attempt.invocation_id, attempt.attempt
    )
    .expect("writing to a String");
    for text in [attempt.executor, attempt.version, attempt.outcome, &calls] {
        push_dollar_quoted(&mut sql, text);
        sql.push_str(", ");
    }
    write!(
        sql,
        "{}, {}, '{}')",
        lock_wait_us(attempt),
        attempt.duration_us,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
    .expect("writing to a String");
    sql
}

/// `text` as a dollar-quoted SQL string constant, with a tag that does not
/// occur in it (so nothing in `text` can end the constant early).
fn push_dollar_quoted(sql: &mut String, text: &str) {
    let mut tag = String::from("$a$");
    let mut n = 0u32;
    while text.contains(tag.as_str()) {
        n += 1;
        tag = format!("$a{n}$");
    }
    sql.push_str(&tag);
    sql.push_str(text);
    sql.push_str(&tag);
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

/// The columns of [`AuditRecord`] from [`records_with_links!`], for
/// `concat!` into static SQL.
macro_rules! record_columns {
    () => {
        "r.id, r.tenant_id, r.invocation_id, r.attempt, r.executor, r.version, r.outcome, r.calls, \
         r.lock_wait_us, r.duration_us, r.recorded_at, l.chain_seq, l.hash, l.prev_hash"
    };
}

/// Records (`r`) with their link (`l`), if they have one.
macro_rules! records_with_links {
    () => {
        "audit_records r LEFT JOIN LATERAL (SELECT chain_seq, hash, prev_hash FROM audit_links \
         WHERE record_id = r.id ORDER BY chain_seq LIMIT 1) l ON true"
    };
}

const GENESIS: [u8; 32] = [0; 32];

/// The hash of a record at `seq` after `prev`: over every field but the chain
/// fields themselves, as canonical JSON (object keys sorted).
pub fn record_hash(record: &AuditRecord, seq: i64, prev: &[u8]) -> Vec<u8> {
    // Fields in alphabetical order, and `calls` as a serde_json::Value (whose
    // maps are sorted): the same bytes as a sorted JSON object, without
    // copying the calls into one.
    #[derive(serde::Serialize)]
    struct Content<'a> {
        attempt: i32,
        calls: &'a serde_json::Value,
        duration_us: i64,
        executor: &'a str,
        id: i64,
        invocation_id: uuid::Uuid,
        lock_wait_us: i64,
        outcome: &'a str,
        recorded_at: i64,
        tenant_id: uuid::Uuid,
        version: &'a str,
    }
    let content = serde_json::to_vec(&Content {
        attempt: record.attempt,
        calls: &record.calls,
        duration_us: record.duration_us,
        executor: &record.executor,
        id: record.id,
        invocation_id: record.invocation_id,
        lock_wait_us: record.lock_wait_us,
        outcome: &record.outcome,
        recorded_at: record.recorded_at.timestamp_micros(),
        tenant_id: record.tenant_id,
        version: &record.version,
    })
    .expect("audit record serializes");
    Sha256::new()
        .chain_update(prev)
        .chain_update(seq.to_be_bytes())
        .chain_update(&content)
        .finalize()
        .to_vec()
}

/// Records linked per chainer transaction at most.
const CHAIN_BATCH: i64 = 2000;

/// Link records not yet chained, in id order, to their tenants' chains.
/// One chainer at a time across hosts (an advisory lock, waited for);
/// returns how many records it linked. When it returns, every record
/// committed before the call is linked (verify relies on that).
pub async fn chain_pending(pool: &PgPool) -> anyhow::Result<u64> {
    let mut linked = 0;
    loop {
        let batch = chain_batch(pool).await?;
        linked += batch;
        if batch < CHAIN_BATCH as u64 {
            return Ok(linked);
        }
    }
}

/// One chainer transaction: link up to [`CHAIN_BATCH`] records, then move
/// the settled horizon on if it can (see migration 0006).
async fn chain_batch(pool: &PgPool) -> anyhow::Result<u64> {
    // READ COMMITTED whatever the database's default: each statement below
    // must see what committed before it began.
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(advisory_lock_id(
            "audit-chainer",
            TenantId(uuid::Uuid::nil()),
            "",
        ))
        .execute(&mut *tx)
        .await?;
    let (settled_below, pending_last_id, pending_transactions): (
        i64,
        Option<i64>,
        Option<Vec<String>>,
    ) = sqlx::query_as(
        "SELECT settled_below, pending_last_id, pending_transactions FROM audit_chainer FOR UPDATE",
    )
    .fetch_one(&mut *tx)
    .await?;
    // First whether the transactions we wait for have ended, then (in a
    // later statement, so a later snapshot under READ COMMITTED) which
    // records are unlinked: a record whose transaction ended in between is
    // then among them, never skipped.
    let horizon_reached = match &pending_transactions {
        Some(transactions) => {
            let running: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'virtualxid' AND virtualxid = ANY($1)",
            )
            .bind(transactions)
            .fetch_one(&mut *tx)
            .await?;
            running == 0
        }
        None => false,
    };
    let pending: Vec<AuditRecord> = sqlx::query_as(concat!(
        "SELECT ",
        record_columns!(),
        " FROM audit_records r CROSS JOIN LATERAL (SELECT NULL::bigint AS chain_seq, NULL::bytea AS hash, \
         NULL::bytea AS prev_hash) l WHERE r.id >= $1 \
         AND NOT EXISTS (SELECT 1 FROM audit_links k WHERE k.record_id = r.id) ORDER BY r.id LIMIT $2"
    ))
    .bind(settled_below)
    .bind(CHAIN_BATCH)
    .fetch_all(&mut *tx)
    .await?;
    let mut heads: std::collections::HashMap<uuid::Uuid, (i64, Vec<u8>)> = Default::default();
    let (mut tenants, mut ids, mut seqs, mut prevs, mut hashes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for record in &pending {
        let (seq, prev) = match heads.entry(record.tenant_id) {
            std::collections::hash_map::Entry::Occupied(head) => head.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let head: Option<(i64, Vec<u8>)> = sqlx::query_as(
                    "SELECT chain_seq, hash FROM audit_links WHERE tenant_id = $1 \
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
        tenants.push(record.tenant_id);
        ids.push(record.id);
        seqs.push(*seq);
        prevs.push(std::mem::replace(prev, hash.clone()));
        hashes.push(hash);
    }
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO audit_links (tenant_id, chain_seq, record_id, prev_hash, hash) \
             SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bytea[], $5::bytea[])",
        )
        .bind(&tenants)
        .bind(&seqs)
        .bind(&ids)
        .bind(&prevs)
        .bind(&hashes)
        .execute(&mut *tx)
        .await?;
    }
    // Every unlinked record we can see is linked now (unless the batch was
    // full). If all transactions running when the sequence stood at
    // `pending_last_id` have ended, no record at or below it can still
    // appear: the horizon moves past it, and a new one is taken.
    let complete = (ids.len() as i64) < CHAIN_BATCH;
    let (settled_below, wait_for) = match (pending_last_id, horizon_reached && complete) {
        (Some(last), true) => (settled_below.max(last + 1), None),
        (Some(last), false) => (settled_below, Some((last, pending_transactions))),
        (None, _) => (settled_below, None),
    };
    let (last_id, transactions) = match wait_for {
        Some(waiting) => waiting,
        None => {
            // The sequence first, then the running transactions: any
            // transaction that drew an id up to `last_id` began before
            // this second statement, so it is among them (or has ended).
            // Only sessions whose role may append records count (the host's
            // role, the owner): a session of a role that cannot, left open
            // (a read-only analyst's psql), must not hold the horizon back.
            // Not `current_user`: operators' commands chain as the owner
            // while the host appends as its own role.
            let last_id: i64 = sqlx::query_scalar(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM audit_records_id_seq",
            )
            .fetch_one(&mut *tx)
            .await?;
            let transactions: Vec<String> = sqlx::query_scalar(
                "SELECT l.virtualxid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
                 WHERE l.locktype = 'virtualxid' AND l.pid <> pg_backend_pid() \
                 AND has_table_privilege(a.usesysid, 'audit_records', 'INSERT')",
            )
            .fetch_all(&mut *tx)
            .await?;
            (last_id, Some(transactions))
        }
    };
    sqlx::query(
        "UPDATE audit_chainer SET settled_below = $1, pending_last_id = $2, pending_transactions = $3",
    )
    .bind(settled_below)
    .bind(last_id)
    .bind(transactions)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
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
    };
    for tenant_id in tenants {
        let links: Vec<ChainLink> = sqlx::query_as(
            "SELECT l.chain_seq, l.record_id, l.prev_hash, l.hash, r.tenant_id, r.invocation_id, \
             r.attempt, r.executor, r.version, r.outcome, r.calls, r.lock_wait_us, r.duration_us, \
             r.recorded_at FROM audit_links l LEFT JOIN audit_records r ON r.id = l.record_id \
             WHERE l.tenant_id = $1 ORDER BY l.chain_seq, l.record_id",
        )
        .bind(tenant_id)
        .fetch_all(pool)
        .await?;
        result.records += links.len() as u64;
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
            chain_seq: Some(self.chain_seq),
            hash: Some(self.hash.clone()),
            prev_hash: Some(self.prev_hash.clone()),
        })
    }
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
        "SELECT ", record_columns!(), " FROM ", records_with_links!(), " WHERE \
         ($1::uuid IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR executor = $2) \
         AND ($3::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('capability', $3::text))) \
         AND ($4::text IS NULL OR calls::jsonb @> jsonb_build_array(jsonb_build_object('table', $4::text))) \
         AND ($5::text IS NULL OR outcome = $5 OR calls::jsonb @> jsonb_build_array(jsonb_build_object('outcome', $5::text))) \
         AND ($6::uuid IS NULL OR invocation_id = $6) \
         AND ($7::timestamptz IS NULL OR recorded_at >= $7) AND ($8::timestamptz IS NULL OR recorded_at < $8) \
         AND ($9::bigint IS NULL OR id > $9) ORDER BY r.id LIMIT $10"
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
