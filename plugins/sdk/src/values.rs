//! Short constructors for the WIT `value`, `field`, `condition` and `order-by` records.

use crate::{Condition, Field, Operator, OrderBy, Value};

/// SQL NULL.
pub fn null() -> Value {
    Value::Null
}

pub fn boolean(b: bool) -> Value {
    Value::Boolean(b)
}

pub fn integer(i: i64) -> Value {
    Value::Integer(i)
}

pub fn float(f: f64) -> Value {
    Value::Float(f)
}

pub fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

/// A timestamp column value: microseconds since the Unix epoch, UTC.
pub fn timestamp(micros: i64) -> Value {
    Value::Timestamp(micros)
}

/// A JSON column value. Takes a parsed value so malformed JSON text cannot be sent.
pub fn json(v: &serde_json::Value) -> Value {
    Value::Json(v.to_string())
}

/// A UUID column value (canonical hyphenated text; the host checks it).
pub fn uuid(s: impl Into<String>) -> Value {
    Value::Uuid(s.into())
}

/// One column of a row to insert or of the changes of an update.
pub fn field(column: &str, value: Value) -> Field {
    Field {
        column: column.to_string(),
        value,
    }
}

fn cond(column: &str, op: Operator) -> Condition {
    Condition {
        column: column.to_string(),
        op,
    }
}

/// `column = value`
pub fn eq(column: &str, value: Value) -> Condition {
    cond(column, Operator::Eq(value))
}

/// `column <> value`
pub fn ne(column: &str, value: Value) -> Condition {
    cond(column, Operator::Ne(value))
}

/// `column < value`
pub fn lt(column: &str, value: Value) -> Condition {
    cond(column, Operator::Lt(value))
}

/// `column <= value`
pub fn le(column: &str, value: Value) -> Condition {
    cond(column, Operator::Le(value))
}

/// `column > value`
pub fn gt(column: &str, value: Value) -> Condition {
    cond(column, Operator::Gt(value))
}

/// `column >= value`
pub fn ge(column: &str, value: Value) -> Condition {
    cond(column, Operator::Ge(value))
}

/// `column IN (values)`; named `is_in` because `in` is a Rust keyword.
pub fn is_in(column: &str, values: impl IntoIterator<Item = Value>) -> Condition {
    cond(column, Operator::In(values.into_iter().collect()))
}

/// `column IS NULL`
pub fn is_null(column: &str) -> Condition {
    cond(column, Operator::IsNull)
}

/// `column IS NOT NULL`
pub fn is_not_null(column: &str) -> Condition {
    cond(column, Operator::IsNotNull)
}

/// Ascending order on `column`.
pub fn asc(column: &str) -> OrderBy {
    OrderBy {
        column: column.to_string(),
        descending: false,
    }
}

/// Descending order on `column`.
pub fn desc(column: &str) -> OrderBy {
    OrderBy {
        column: column.to_string(),
        descending: true,
    }
}
