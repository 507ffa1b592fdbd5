//! Building the WIT's values, fields and conditions in Rust, for tests and
//! benchmarks that call the transaction capability directly.

use bookhost::bindings::{Condition, Field, Operator, Value};

/// `column = value` as a row's field.
pub fn field(column: &str, value: Value) -> Field {
    Field {
        column: column.into(),
        value,
    }
}

fn condition(column: &str, op: Operator) -> Condition {
    Condition {
        column: column.into(),
        op,
    }
}

/// `column = value`.
pub fn eq(column: &str, value: Value) -> Condition {
    condition(column, Operator::Eq(value))
}

/// `column < value`.
pub fn lt(column: &str, value: Value) -> Condition {
    condition(column, Operator::Lt(value))
}

/// `column > value`.
pub fn gt(column: &str, value: Value) -> Condition {
    condition(column, Operator::Gt(value))
}

/// `column IN (values)`.
pub fn is_in(column: &str, values: Vec<Value>) -> Condition {
    condition(column, Operator::In(values))
}

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub fn uuid(id: &str) -> Value {
    Value::Uuid(id.into())
}

/// The value of `column` in `row`; panics if the row has no such column.
pub fn get<'r>(row: &'r [Field], column: &str) -> &'r Value {
    &row.iter()
        .find(|f| f.column == column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
        .value
}
