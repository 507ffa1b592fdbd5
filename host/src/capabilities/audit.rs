//! What the audit keeps of one capability call, with personal values redacted.
//!
//! Redaction rule: values of columns the catalog marks personal (`customer`,
//! `pet`) are replaced by `sha256:` and the first 16 hex digits of the SHA-256
//! of their JSON text. Equal values still correlate across records; the value
//! itself is not stored. Everything else (ids, times, statuses, lock keys) is
//! kept as given.

use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

use crate::bindings::{CallError, Condition, Field, Operator, Value};
use crate::db::{catalog, sql};

/// One capability call as the audit records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditCall {
    /// `lock`, `query`, `insert`, `update` or `delete`.
    pub capability: &'static str,
    pub table: Option<String>,
    /// Conditions, values or key, with personal values redacted.
    pub detail: Json,
    /// Rows returned or affected.
    pub rows: i64,
    /// `ok`, `denied`, `error:<kind>` or `aborted` (the attempt was doomed).
    pub outcome: String,
    pub error: Option<String>,
    pub lock_wait_us: i64,
    pub duration_us: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub fn error_kind(error: &CallError) -> &'static str {
    match error {
        CallError::Conflict(_) => "conflict",
        CallError::NotFound(_) => "not-found",
        CallError::Forbidden(_) => "forbidden",
        CallError::Invalid(_) => "invalid",
        CallError::LockTimeout(_) => "lock-timeout",
        CallError::LimitExceeded(_) => "limit-exceeded",
    }
}

pub fn error_message(error: &CallError) -> String {
    match error {
        CallError::Conflict(info) => format!("{}: {}", info.constraint, info.message),
        CallError::NotFound(m)
        | CallError::Forbidden(m)
        | CallError::Invalid(m)
        | CallError::LockTimeout(m)
        | CallError::LimitExceeded(m) => m.clone(),
    }
}

fn is_personal(table: &str, column: &str) -> bool {
    catalog::table(table)
        .and_then(|t| t.column(column))
        .is_some_and(|c| c.personal)
}

fn redacted(table: &str, column: &str, value: &Value) -> Json {
    let json = sql::value_to_json(value);
    if is_personal(table, column) && !json.is_null() {
        let digest = hex::encode(Sha256::digest(json.to_string().as_bytes()));
        Json::String(format!("sha256:{}", &digest[..16]))
    } else {
        json
    }
}

/// Conditions as JSON, personal values redacted.
pub fn conditions(table: &str, conditions: &[Condition]) -> Json {
    conditions
        .iter()
        .map(|c| {
            let value = |v: &Value| redacted(table, &c.column, v);
            let (op, operand) = match &c.op {
                Operator::Eq(v) => ("eq", value(v)),
                Operator::Ne(v) => ("ne", value(v)),
                Operator::Lt(v) => ("lt", value(v)),
                Operator::Le(v) => ("le", value(v)),
                Operator::Gt(v) => ("gt", value(v)),
                Operator::Ge(v) => ("ge", value(v)),
                Operator::In(vs) => ("in", Json::Array(vs.iter().map(value).collect())),
                Operator::IsNull => ("is-null", Json::Null),
                Operator::IsNotNull => ("is-not-null", Json::Null),
            };
            json!({ "column": c.column, "op": op, "value": operand })
        })
        .collect()
}

/// Written fields as a JSON object, personal values redacted.
pub fn fields(table: &str, fields: &[Field]) -> Json {
    fields
        .iter()
        .map(|f| (f.column.clone(), redacted(table, &f.column, &f.value)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
