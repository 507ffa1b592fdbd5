//! What became of a transaction whose COMMIT was sent and whose answer was
//! lost: the server keeps each transaction's fate by its id, as long as it
//! has not restarted since (a crash forgets ids that never reached its
//! write-ahead log, and hands them out again).

use sqlx::PgPool;

use super::retry::retrying;
use crate::TenantId;

/// A transaction's id and the server's start time when the id was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxIdentity {
    /// The full 64-bit id (`pg_current_xact_id()`).
    pub xid: i64,
    /// `pg_postmaster_start_time()` as text: another value later means the
    /// server restarted, and the id may since name another transaction.
    pub server_started: String,
}

/// The batch statement that selects a [`TxIdentity`] (assigning an id).
pub const SELECT_IDENTITY: &str =
    "SELECT pg_current_xact_id()::text, pg_postmaster_start_time()::text";

impl TxIdentity {
    /// From the two text columns of [`SELECT_IDENTITY`].
    pub fn from_row(row: &sqlx::postgres::PgRow) -> Option<Self> {
        use sqlx::Row;
        let xid: String = row.try_get(0).ok()?;
        Some(Self {
            xid: xid.parse().ok()?,
            server_started: row.try_get(1).ok()?,
        })
    }
}

/// A transaction's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XactStatus {
    Committed,
    Aborted,
    /// Its backend has not finished it yet (COMMIT still running, or the
    /// backend has not yet noticed its client is gone).
    InProgress,
}

/// Where the fate of an attempt can be read when its id cannot be trusted:
/// its audit record, written in the COMMIT's own batch, exists exactly when
/// it committed.
pub struct AttemptRecord {
    pub tenant: TenantId,
    pub invocation_id: uuid::Uuid,
    pub attempt: u32,
}

/// The fate of the transaction `identity` names; None when the server no
/// longer knows (the id is too old, or the server restarted and the attempt
/// has no record to tell by).
pub async fn status(
    pool: &PgPool,
    identity: &TxIdentity,
    record: Option<&AttemptRecord>,
) -> Result<Option<XactStatus>, sqlx::Error> {
    let (status, started): (Option<String>, String) = retrying(|| {
        sqlx::query_as("SELECT pg_xact_status($1::text::xid8), pg_postmaster_start_time()::text")
            .bind(identity.xid.to_string())
            .fetch_one(pool)
    })
    .await?;
    if started != identity.server_started {
        // Restarted: every transaction of the old server is over, and the
        // id may be reused; only the attempt's own record can tell.
        let Some(record) = record else {
            return Ok(None);
        };
        let committed: bool = retrying(|| {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM audit_records WHERE tenant_id = $1 \
                 AND invocation_id = $2 AND attempt = $3 AND outcome = 'committed')",
            )
            .bind(record.tenant.0)
            .bind(record.invocation_id)
            .bind(record.attempt as i32)
            .fetch_one(pool)
        })
        .await?;
        return Ok(Some(if committed {
            XactStatus::Committed
        } else {
            XactStatus::Aborted
        }));
    }
    Ok(status.and_then(|s| match s.as_str() {
        "committed" => Some(XactStatus::Committed),
        "aborted" => Some(XactStatus::Aborted),
        "in progress" => Some(XactStatus::InProgress),
        _ => None,
    }))
}
