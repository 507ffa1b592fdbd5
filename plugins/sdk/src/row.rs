//! Typed access to the rows the host returns, by column name.

use serde_json::{Map, Value as Json};

use crate::errors::error;
use crate::{time, Field, Value};

/// Accessors for a row (`Vec<Field>` or `&[Field]`). A missing column or a
/// value of another type means the host's catalog differs from what the
/// executor was written against, reported as `unexpected_row`.
pub trait RowExt {
    /// The value of `column`, or `None` if the row has no such column.
    fn get(&self, column: &str) -> Option<&Value>;

    fn text(&self, column: &str) -> Result<&str, Json> {
        match self.get(column) {
            Some(Value::Text(s)) => Ok(s),
            other => Err(unexpected(column, "text", other)),
        }
    }

    fn int(&self, column: &str) -> Result<i64, Json> {
        match self.get(column) {
            Some(Value::Integer(i)) => Ok(*i),
            other => Err(unexpected(column, "integer", other)),
        }
    }

    fn boolean(&self, column: &str) -> Result<bool, Json> {
        match self.get(column) {
            Some(Value::Boolean(b)) => Ok(*b),
            other => Err(unexpected(column, "boolean", other)),
        }
    }

    /// A nullable UUID column.
    fn opt_uuid(&self, column: &str) -> Result<Option<&str>, Json> {
        match self.get(column) {
            Some(Value::Null) => Ok(None),
            _ => self.uuid(column).map(Some),
        }
    }

    fn uuid(&self, column: &str) -> Result<&str, Json> {
        match self.get(column) {
            Some(Value::Uuid(s)) => Ok(s),
            other => Err(unexpected(column, "uuid", other)),
        }
    }

    /// Microseconds since the Unix epoch, UTC.
    fn timestamp(&self, column: &str) -> Result<i64, Json> {
        match self.get(column) {
            Some(Value::Timestamp(t)) => Ok(*t),
            other => Err(unexpected(column, "timestamp", other)),
        }
    }

    /// A JSON column, parsed.
    fn json(&self, column: &str) -> Result<Json, Json> {
        match self.get(column) {
            Some(Value::Json(s)) => serde_json::from_str(s).map_err(|e| {
                error(
                    "unexpected_row",
                    format!("column {column:?} holds malformed JSON: {e}"),
                )
            }),
            other => Err(unexpected(column, "json", other)),
        }
    }

    /// The whole row as a JSON object (see [`value_to_json`]).
    fn to_json(&self) -> Json;

    /// The named columns as a JSON object, for answers that show exactly
    /// these fields whatever else the catalog exposes.
    fn pick(&self, columns: &[&str]) -> Result<Json, Json> {
        let mut out = Map::new();
        for column in columns {
            let v = self
                .get(column)
                .ok_or_else(|| unexpected(column, "present", None))?;
            out.insert(column.to_string(), value_to_json(v));
        }
        Ok(Json::Object(out))
    }
}

impl RowExt for [Field] {
    fn get(&self, column: &str) -> Option<&Value> {
        self.iter().find(|f| f.column == column).map(|f| &f.value)
    }

    fn to_json(&self) -> Json {
        Json::Object(
            self.iter()
                .map(|f| (f.column.clone(), value_to_json(&f.value)))
                .collect(),
        )
    }
}

/// A column value as callers see it: timestamps as RFC 3339 (UTC), JSON
/// columns as JSON, UUIDs as strings.
pub fn value_to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Float(f) => Json::from(*f),
        Value::Text(s) | Value::Uuid(s) => Json::String(s.clone()),
        Value::Timestamp(t) => Json::String(time::format_rfc3339(*t)),
        Value::Json(s) => serde_json::from_str(s).unwrap_or_else(|_| Json::String(s.clone())),
    }
}

fn unexpected(column: &str, expected: &str, got: Option<&Value>) -> Json {
    let got = match got {
        None => "missing".to_string(),
        Some(v) => format!("{v:?}"),
    };
    error(
        "unexpected_row",
        format!("column {column:?} should be {expected}, but is {got}"),
    )
}
