//! The chainer: links each tenant's appended records into its hash chain,
//! one chainer at a time across hosts, never skipping a late commit.

use sqlx::PgPool;

use super::record::{record_columns, record_hash, AuditRecord, GENESIS};
use crate::db::locks::{advisory_lock_id, LockNamespace};
use crate::TenantId;

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
            LockNamespace::AuditChainer,
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
