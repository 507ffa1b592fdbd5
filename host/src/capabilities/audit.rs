//! What the audit keeps of each capability call: the call's record, with
//! personal values redacted, made as the call ends.
//!
//! Redaction rule: values of columns the catalog marks personal (`customer`,
//! `pet`) are replaced by `sha256:` and the first 16 hex digits of the SHA-256
//! of their JSON text. Equal values still correlate across records; the value
//! itself is not stored. Everything else (ids, times, statuses, lock keys) is
//! kept as given.

use std::time::{Duration, Instant};

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::CapabilityError;
use crate::bindings::{CallError, Condition, Field, Operator, Value};
pub use crate::db::audit::AuditCall;
use crate::db::{catalog, sql};

/// The calls of one attempt, recorded in order as they end.
#[derive(Debug)]
pub struct CallRecorder {
    calls: Vec<AuditCall>,
    /// Keep each call's redacted detail (off when nothing is audited: only
    /// its kind and outcome are kept, for metrics).
    details: bool,
}

/// One call as it ended, for its record.
pub struct EndedCall<'a, T> {
    /// `lock`, `query`, `insert`, `update` or `delete`.
    pub capability: &'static str,
    pub table: Option<&'a str>,
    pub started: Instant,
    pub lock_wait: Duration,
    pub result: &'a Result<T, CapabilityError>,
    /// Rows returned or affected, when it succeeded.
    pub rows: u64,
}

impl CallRecorder {
    pub fn new(details: bool) -> Self {
        Self {
            calls: Vec::new(),
            details,
        }
    }

    /// Record a call; `detail` is built only when details are kept.
    pub fn record<T>(&mut self, call: EndedCall<'_, T>, detail: impl FnOnce() -> Box<RawValue>) {
        let detail = if self.details { detail() } else { no_detail() };
        let (outcome, error, rows) = match call.result {
            Ok(_) => ("ok".to_owned(), None, call.rows as i64),
            Err(CapabilityError::Denied(denied)) => {
                ("denied".to_owned(), Some(denied.to_string()), 0)
            }
            Err(CapabilityError::Call(e)) => (
                format!("error:{}", error_kind(e)),
                Some(error_message(e)),
                0,
            ),
            Err(CapabilityError::Abort(doom)) => ("aborted".to_owned(), Some(doom.to_string()), 0),
        };
        self.calls.push(AuditCall {
            capability: call.capability,
            table: call.table.map(str::to_owned),
            detail,
            rows,
            outcome,
            error,
            lock_wait_us: call.lock_wait.as_micros() as i64,
            duration_us: call.started.elapsed().as_micros() as i64,
            at: chrono::Utc::now(),
        });
    }

    /// Every call recorded so far, in order.
    pub fn take(&mut self) -> Vec<AuditCall> {
        std::mem::take(&mut self.calls)
    }
}

/// The detail of a call whose detail was not kept (auditing off).
pub fn no_detail() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

fn detail(value: &impl Serialize) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("audit detail serializes")
}

/// `lock`: `{"key": ...}`.
pub fn lock_detail(key: &str) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Lock<'a> {
        key: &'a str,
    }
    detail(&Lock { key })
}

/// `query`: `{"conditions": [...], "limit": ...}`.
pub fn query_detail(table: &str, conditions: &[Condition], limit: Option<u32>) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Query<'a> {
        conditions: Conditions<'a>,
        limit: Option<u32>,
    }
    detail(&Query {
        conditions: Conditions { table, conditions },
        limit,
    })
}

/// `availability`: `{"service_id": .., "from": .., "to": ..}` (no personal data).
pub fn schedule_detail(
    service: uuid::Uuid,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
) -> Box<RawValue> {
    detail(&serde_json::json!({
        "service_id": service,
        "from": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "to": end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }))
}

/// `insert`: `{"values": {...}}`.
pub fn insert_detail(table: &str, values: &[Field]) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Insert<'a> {
        values: Fields<'a>,
    }
    detail(&Insert {
        values: Fields {
            table,
            fields: values,
        },
    })
}

/// `update`: `{"conditions": [...], "changes": {...}}`.
pub fn update_detail(table: &str, conditions: &[Condition], changes: &[Field]) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Update<'a> {
        conditions: Conditions<'a>,
        changes: Fields<'a>,
    }
    detail(&Update {
        conditions: Conditions { table, conditions },
        changes: Fields {
            table,
            fields: changes,
        },
    })
}

/// `delete`: `{"conditions": [...]}`.
pub fn delete_detail(table: &str, conditions: &[Condition]) -> Box<RawValue> {
    #[derive(serde::Serialize)]
    struct Delete<'a> {
        conditions: Conditions<'a>,
    }
    detail(&Delete {
        conditions: Conditions { table, conditions },
    })
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

/// One value as the audit shows it: as its JSON form, or for a personal
/// column its digest.
struct Redacted<'a> {
    personal: bool,
    value: &'a Value,
}

impl Serialize for Redacted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            // Null (or a value with no JSON form) stays null even in a
            // personal column: it says nothing.
            Value::Null => s.serialize_unit(),
            _ if self.personal => match sql::value_to_json(self.value) {
                Json::Null => s.serialize_unit(),
                json => {
                    let digest = hex::encode(Sha256::digest(json.to_string().as_bytes()));
                    s.serialize_str(&format!("sha256:{}", &digest[..16]))
                }
            },
            Value::Boolean(b) => s.serialize_bool(*b),
            Value::Integer(i) => s.serialize_i64(*i),
            Value::Float(f) => Json::from(*f).serialize(s),
            Value::Text(t) | Value::Uuid(t) => s.serialize_str(t),
            Value::Timestamp(_) | Value::Json(_) => sql::value_to_json(self.value).serialize(s),
        }
    }
}

/// Conditions as a JSON array, personal values redacted.
struct Conditions<'a> {
    table: &'a str,
    conditions: &'a [Condition],
}

impl Serialize for Conditions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.conditions.len()))?;
        for c in self.conditions {
            let personal = is_personal(self.table, &c.column);
            let value = |value| Redacted { personal, value };
            let (op, operand): (&str, Option<Operand>) = match &c.op {
                Operator::Eq(v) => ("eq", Some(Operand::One(value(v)))),
                Operator::Ne(v) => ("ne", Some(Operand::One(value(v)))),
                Operator::Lt(v) => ("lt", Some(Operand::One(value(v)))),
                Operator::Le(v) => ("le", Some(Operand::One(value(v)))),
                Operator::Gt(v) => ("gt", Some(Operand::One(value(v)))),
                Operator::Ge(v) => ("ge", Some(Operand::One(value(v)))),
                Operator::In(vs) => ("in", Some(Operand::Many(personal, vs))),
                Operator::IsNull => ("is-null", None),
                Operator::IsNotNull => ("is-not-null", None),
            };
            seq.serialize_element(&ConditionEntry {
                column: &c.column,
                op,
                value: operand,
            })?;
        }
        seq.end()
    }
}

#[derive(serde::Serialize)]
struct ConditionEntry<'a> {
    column: &'a str,
    op: &'a str,
    value: Option<Operand<'a>>,
}

enum Operand<'a> {
    One(Redacted<'a>),
    Many(bool, &'a [Value]),
}

impl Serialize for Operand<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Operand::One(value) => value.serialize(s),
            Operand::Many(personal, values) => s.collect_seq(values.iter().map(|value| Redacted {
                personal: *personal,
                value,
            })),
        }
    }
}

/// Written fields as a JSON object (in the order given), personal values
/// redacted.
struct Fields<'a> {
    table: &'a str,
    fields: &'a [Field],
}

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.fields.len()))?;
        for f in self.fields {
            let value = Redacted {
                personal: is_personal(self.table, &f.column),
                value: &f.value,
            };
            map.serialize_entry(&f.column, &value)?;
        }
        map.end()
    }
}
