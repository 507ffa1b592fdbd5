//! Appending an attempt's record: its outcome and every capability call it
//! made, bound on its own or as literal SQL riding with COMMIT or ROLLBACK.

use serde_json::value::RawValue;
use sqlx::PgPool;

use crate::db::errors::RetryReason;
use crate::TenantId;

/// One capability call as the audit records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditCall {
    /// `lock`, `query`, `insert`, `update` or `delete`.
    pub capability: &'static str,
    pub table: Option<String>,
    /// Conditions, values or key, with personal values redacted, as JSON
    /// text: serialized once, straight from the call's own arguments, since
    /// this is built on every call of every audited attempt.
    pub detail: Box<RawValue>,
    /// Rows returned or affected.
    pub rows: i64,
    /// `ok`, `denied`, `error:<kind>` or `aborted` (the attempt was doomed).
    pub outcome: String,
    pub error: Option<String>,
    pub lock_wait_us: i64,
    pub duration_us: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// How one attempt ended, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// `execute` returned ok and the transaction committed.
    Committed,
    /// `execute` returned an error result; rolled back.
    RolledBack,
    /// A serialization failure, deadlock, contended lock or lost connection:
    /// rolled back and run again.
    Replayed,
    Trapped,
    TimedOut,
    LimitExceeded,
    HostFailure,
    /// A dry run that succeeded, rolled back on purpose.
    DryRun,
    /// A proposal's confirmation whose write set was not the proposal's:
    /// rolled back, nothing written.
    Changed,
    /// The connection was lost after COMMIT was sent and the server could
    /// not be asked: the record rode with COMMIT, so it exists exactly when
    /// the attempt committed (never written under this name; metrics only).
    CommitUnknown,
}

impl AttemptOutcome {
    /// The name stored in the record (and used as a metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Committed => "committed",
            AttemptOutcome::RolledBack => "rolled_back",
            AttemptOutcome::Replayed => "replayed",
            AttemptOutcome::Trapped => "trapped",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::LimitExceeded => "limit_exceeded",
            AttemptOutcome::HostFailure => "host_failure",
            AttemptOutcome::DryRun => "dry_run",
            AttemptOutcome::Changed => "changed",
            AttemptOutcome::CommitUnknown => "commit_unknown",
        }
    }
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything about one attempt that its record carries (borrowed: the
/// record is built on every attempt, so it copies nothing it can avoid).
#[derive(Debug, Clone, Copy)]
pub struct AttemptAudit<'a> {
    pub tenant: TenantId,
    pub invocation_id: uuid::Uuid,
    pub attempt: u32,
    pub executor: &'a str,
    pub version: &'a str,
    pub outcome: AttemptOutcome,
    pub duration_us: i64,
    /// The proposal this attempt proposed or confirmed, if any: the link
    /// between a proposal's dry run and its confirmation.
    pub proposal: Option<uuid::Uuid>,
    /// Why a replayed attempt was replayed (None for every other outcome).
    pub replay_reason: Option<RetryReason>,
    pub calls: &'a [AuditCall],
}

/// The INSERT of one record, with its values as parameters.
macro_rules! append_insert {
    () => {
        "INSERT INTO audit_records (tenant_id, invocation_id, attempt, executor, version, outcome, \
         calls, lock_wait_us, duration_us, recorded_at, proposal_id, replay_reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::json, $8, $9, $10, $11, $12)"
    };
}

/// The name under which every pooled connection has [`append_insert!`]
/// prepared ([`crate::db::pool_options`] runs [`PREPARE_APPEND`] on connect).
pub const APPEND_STATEMENT: &str = "bookhost_audit_append";

/// Prepares the append on a connection, once, when it connects.
pub const PREPARE_APPEND: &str = concat!(
    "PREPARE bookhost_audit_append (uuid, uuid, integer, text, text, text, json, bigint, bigint, \
     timestamptz, uuid, text) AS ",
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
        .bind(attempt.outcome.as_str())
        .bind(serde_json::to_string(attempt.calls).expect("audit calls serialize"))
        .bind(lock_wait_us(attempt))
        .bind(attempt.duration_us)
        .bind(chrono::Utc::now())
        .bind(attempt.proposal)
        .bind(attempt.replay_reason.map(RetryReason::as_str))
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
    for text in [
        attempt.executor,
        attempt.version,
        attempt.outcome.as_str(),
        &calls,
    ] {
        push_dollar_quoted(&mut sql, text);
        sql.push_str(", ");
    }
    write!(
        sql,
        "{}, {}, '{}', ",
        lock_wait_us(attempt),
        attempt.duration_us,
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    )
    .expect("writing to a String");
    match attempt.proposal {
        Some(proposal) => write!(sql, "'{proposal}', ").expect("writing to a String"),
        None => sql.push_str("NULL, "),
    }
    // A fixed word from the host, never the executor's.
    match attempt.replay_reason {
        Some(reason) => write!(sql, "'{}')", reason.as_str()).expect("writing to a String"),
        None => sql.push_str("NULL)"),
    }
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
