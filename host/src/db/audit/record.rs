//! A stored record as searched and verified, and the hash that chains it.

use sha2::{Digest, Sha256};

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
    /// The proposal this attempt proposed or confirmed, if any (a column
    /// since migration 0007: absent before it).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub proposal_id: Option<uuid::Uuid>,
    /// Why a replayed attempt was replayed (a column since migration 0009).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[sqlx(default)]
    pub replay_reason: Option<String>,
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
         r.lock_wait_us, r.duration_us, r.recorded_at, r.proposal_id, r.replay_reason, l.chain_seq, l.hash, l.prev_hash"
    };
}

/// Records (`r`) with their link (`l`), if they have one.
macro_rules! records_with_links {
    () => {
        "audit_records r LEFT JOIN LATERAL (SELECT chain_seq, hash, prev_hash FROM audit_links \
         WHERE record_id = r.id ORDER BY chain_seq LIMIT 1) l ON true"
    };
}

pub(super) use record_columns;
pub(super) use records_with_links;

/// The predecessor hash of a chain's first record.
pub(super) const GENESIS: [u8; 32] = [0; 32];

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
        // Only when present, so records made before proposals existed hash
        // as they did.
        #[serde(skip_serializing_if = "Option::is_none")]
        proposal_id: Option<uuid::Uuid>,
        recorded_at: i64,
        // Only when present, as for proposals.
        #[serde(skip_serializing_if = "Option::is_none")]
        replay_reason: Option<&'a str>,
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
        proposal_id: record.proposal_id,
        recorded_at: record.recorded_at.timestamp_micros(),
        replay_reason: record.replay_reason.as_deref(),
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
